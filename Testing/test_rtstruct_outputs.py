"""Structure-set outputs, RTSTRUCT writing, DVH and gamma: CLI, real MRML, dciodvfy and plastimatch anchors."""

from __future__ import annotations

import csv
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.rtstruct import (
    Grid,
    dose_samples,
    dose_statistics,
    gamma_index,
    rasterize,
    read_rtdose,
    read_rtstruct,
    write_rtstruct_from_masks,
)


def _dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def converted(phantom, tmp_path_factory):
    out = tmp_path_factory.mktemp("convert")
    rc = main(
        ["convert", "--input", str(phantom.rtstruct), "--referenced-ct", str(phantom.ct_dir), "-q",
         "--output-labelmap", str(out / "lm.nrrd"), "--output-ss-img", str(out / "ss.nrrd"),
         "--output-ss-list", str(out / "ss.txt"), "--output-prefix", str(out / "prefix"),
         "--output-seg", str(out / "s.seg.nrrd"), "--output-dicom", str(out / "dicom")]
    )  # fmt: skip
    assert rc == 0
    return out


def test_convert_outputs_agree(phantom, converted):
    names = read_rtstruct(phantom.rtstruct).names()
    lines = (converted / "ss.txt").read_text().splitlines()
    assert [ln.split("|")[2] for ln in lines] == names
    assert lines[0].split("|")[0] == "0" and len(lines[0].split("|")[1].split()) == 3
    ss = sitk.ReadImage(str(converted / "ss.nrrd"))
    assert ss.GetPixelID() == sitk.sitkUInt32
    bits = sitk.GetArrayFromImage(ss)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(converted / "lm.nrrd")))
    for n, name in enumerate(names):
        per = sitk.GetArrayFromImage(sitk.ReadImage(str(converted / "prefix" / f"{name}.nrrd")))
        assert per.dtype == np.uint8 and set(np.unique(per)) <= {0, 1}
        assert np.array_equal(per.astype(bool), (bits >> n) & 1 == 1)
    # the labelmap holds the last structure where they overlap
    last = len(names) - 1
    assert np.array_equal(labels == last + 1, (bits >> last) & 1 == 1)
    assert sitk.ReadImage(str(converted / "lm.nrrd")).GetOrigin() == pytest.approx(phantom.ct.GetOrigin())


def test_seg_nrrd_loads_in_slicer_with_names_and_colours(phantom, converted, mrml):
    import slicer

    from SlicerImgSuite.mrml.segmentations import masks_from_segmentation_node, segment_colors

    node = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    mrml.scene.AddNode(storage)
    storage.SetFileName(str(converted / "s.seg.nrrd"))
    assert storage.ReadData(node)
    masks = masks_from_segmentation_node(node, phantom.ct)
    ss = read_rtstruct(phantom.rtstruct)
    assert sorted(masks) == sorted(ss.names())
    bits = sitk.GetArrayFromImage(sitk.ReadImage(str(converted / "ss.nrrd")))
    for n, name in enumerate(ss.names()):
        assert np.array_equal(sitk.GetArrayFromImage(masks[name]) > 0, (bits >> n) & 1 == 1), name
    colors = segment_colors(node)
    assert tuple(colors["GTV"]) == tuple(ss.roi("GTV").color)


def test_rewritten_rtstruct_validates_and_round_trips(phantom, converted):
    path = converted / "dicom" / "RS.dcm"
    report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    assert "Error" not in report.stderr + report.stdout, report.stderr
    again = rasterize(read_rtstruct(path), phantom.ct)
    first = rasterize(read_rtstruct(phantom.rtstruct), phantom.ct)
    grid = Grid.of(phantom.ct)
    for a, b in zip(first, again):
        assert np.array_equal(a.full(grid), b.full(grid))


def test_masks_to_rtstruct_round_trip_is_exact_and_valid(phantom, tmp_path):
    import pydicom

    path = tmp_path / "RS.dcm"
    write_rtstruct_from_masks(path, phantom.ct_dir, phantom.masks, colors=phantom.colors)
    report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    assert "Error" not in report.stderr + report.stdout, report.stderr
    ds = pydicom.dcmread(path)
    ct = pydicom.dcmread(sorted(phantom.ct_dir.iterdir())[0], stop_before_pixels=True)
    assert ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == ct.FrameOfReferenceUID
    series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == ct.SeriesInstanceUID and ds.PatientID == ct.PatientID
    assert ds.StudyInstanceUID == ct.StudyInstanceUID and ds.SeriesInstanceUID != ct.SeriesInstanceUID
    ct_uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in phantom.ct_dir.iterdir()}
    refs = {
        c.ContourImageSequence[0].ReferencedSOPInstanceUID for r in ds.ROIContourSequence for c in r.ContourSequence
    }
    assert refs <= ct_uids
    grid = Grid.of(phantom.ct)
    for m in rasterize(read_rtstruct(path), phantom.ct):
        truth = sitk.GetArrayFromImage(phantom.masks[m.roi.name]).astype(bool)
        assert _dice(m.full(grid), truth) == 1.0, m.roi.name  # exact, holes included (RING)
        assert tuple(m.roi.color) == tuple(phantom.colors[m.roi.name])


def test_mask_off_the_ct_grid_is_refused_and_nothing_written(phantom, tmp_path):
    shifted = sitk.Image(phantom.masks["GTV"])
    shifted.SetOrigin([v + 1.0 for v in shifted.GetOrigin()])
    with pytest.raises(ImgSuiteError, match="not on the reference CT grid"):
        write_rtstruct_from_masks(tmp_path / "RS.dcm", phantom.ct_dir, {"GTV": shifted})
    assert list(tmp_path.iterdir()) == []


def test_frame_of_reference_mismatch_is_refused(shared_data, tmp_path, capsys):
    rs = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom" / "mask" / "RS.dcm"
    other_ct = shared_data / "ibsi-sts-ct-rtstruct" / "STS_003" / "dicom" / "image"
    rc = main(
        ["convert", "--input", str(rs), "--referenced-ct", str(other_ct), "--output-labelmap", str(tmp_path / "x.nrrd")]
    )
    assert rc == 2 and "Frame of Reference mismatch" in capsys.readouterr().err
    assert not (tmp_path / "x.nrrd").exists()


def test_ss_img_and_list_convert_back_to_rtstruct(phantom, converted, tmp_path):
    rc = main(
        ["convert", "--input", str(converted / "ss.nrrd"), "--input-ss-list", str(converted / "ss.txt"), "-q",
         "--referenced-ct", str(phantom.ct_dir), "--output-dicom", str(tmp_path / "back")]
    )  # fmt: skip
    assert rc == 0
    grid = Grid.of(phantom.ct)
    bits = sitk.GetArrayFromImage(sitk.ReadImage(str(converted / "ss.nrrd")))
    for n, m in enumerate(rasterize(read_rtstruct(tmp_path / "back" / "RS.dcm"), phantom.ct)):
        assert np.array_equal(m.full(grid).astype(bool), (bits >> n) & 1 == 1)


def test_dvh_cli_and_statistics(phantom, converted, tmp_path):
    out, stats_csv = tmp_path / "dvh.csv", tmp_path / "stats.csv"
    rc = main(
        ["dvh", "--input-dose", str(phantom.rtdose), "--input-ss-img", str(converted / "ss.nrrd"), "-q",
         "--input-ss-list", str(converted / "ss.txt"), "--output-csv", str(out), "--output-stats", str(stats_csv),
         "--bin-width", "0.5"]
    )  # fmt: skip
    assert rc == 0
    rows = list(csv.reader(open(out)))
    assert rows[0][0] == "Dose (Gy)" and "PTV" in rows[0]
    ptv = rows[0].index("PTV")
    volumes = [float(r[ptv]) for r in rows[1:]]
    assert volumes == sorted(volumes, reverse=True) and volumes[0] > 0  # cumulative
    stats = {r["structure"]: r for r in csv.DictReader(open(stats_csv))}
    # RTDOSE read back matches the phantom's dose (DoseGridScaling applied)
    dose = read_rtdose(phantom.rtdose)
    assert np.allclose(
        sitk.GetArrayFromImage(dose),
        sitk.GetArrayFromImage(phantom.dose),
        atol=1e-3 * float(sitk.GetArrayFromImage(phantom.dose).max()),
    )
    ptv_mask = [m for m in rasterize(read_rtstruct(phantom.rtstruct), phantom.ct) if m.roi.name == "PTV"][0]
    d, v = dose_samples(ptv_mask, dose, phantom.ct)
    assert float(stats["PTV"]["mean"]) == pytest.approx(dose_statistics(d, v)["mean"], rel=1e-4)
    assert float(stats["PTV"]["D95"]) <= float(stats["PTV"]["mean"]) <= float(stats["PTV"]["D2"])


def test_nelms_dvh_points_within_35_cgy(shared_data, tmp_path):
    """Accurate DVH vs Nelms analytic values (1 mm set): mean within 1 %, D99/D95/D5/D1 within 35 cGy (1.25 % of 28 Gy)."""
    base = shared_data / "nelms-dvh-analytic-phantom"
    truth = {
        r["structure"] + r["gradient"]: r
        for r in csv.DictReader(open(base / "ANALYTICAL_RESULTS" / "analytic_values_1mm_3mm_subset.csv"))
    }
    cases = [("Sphere_10_0", "AntPost", "Z(AP)"), ("Cone_10_0", "SupInf", "Y(SI)"), ("RtCone_10_0", "AntPost", "Z(AP)")]
    for name, dose_file, gradient in cases:
        out = tmp_path / f"{name}.csv"
        rc = main(
            ["dvh", "--input-rtstruct", str(base / "STRUCTURES_1mm" / f"{name}.dcm"), "--referenced-ct", str(base / "CT_1mm"),
             "--input-dose", str(base / "DOSE_GRIDS" / f"Linear_{dose_file}_1mm_Aligned.dcm"), "--accurate",
             "--output-stats", str(out), "-q"]
        )  # fmt: skip
        assert rc == 0
        stats = [r for r in csv.DictReader(open(out)) if float(r["volume_cc"]) > 0][0]
        expected = truth[name + gradient]
        assert 100 * float(stats["mean"]) == pytest.approx(float(expected["Dmean_cGy"]), rel=0.01), name
        for key in ("D99", "D95", "D5", "D1"):
            assert abs(100 * float(stats[key]) - float(expected[f"{key}_cGy"])) <= 35, (name, key, stats[key])


def test_gamma_subvoxel_search_passes_a_2mm_shift_on_a_3mm_grid(tmp_path):
    z, y, x = np.mgrid[:24, :24, :24] * 3.0

    def field(shift):  # a broad dose blob; the 10 % threshold keeps the evaluation away from the grid edges
        return np.exp(-((x - 36 - shift) ** 2 + (y - 36) ** 2 + (z - 36) ** 2) / (2 * 15.0**2)).astype(np.float32)

    ref, shifted = sitk.GetImageFromArray(field(0.0)), sitk.GetImageFromArray(field(2.0))
    ref.SetSpacing((3, 3, 3))
    shifted.SetSpacing((3, 3, 3))
    gamma, rate = gamma_index(ref, shifted, dose_percent=1.0, dta_mm=3.0)
    assert rate == 100.0
    # a voxel-only search (lattice step = voxel size) fails part of it: the search must be sub-voxel
    _, coarse = gamma_index(ref, shifted, dose_percent=1.0, dta_mm=3.0, resolution_mm=3.0)
    assert coarse < 95.0
    # plastimatch's default search on the same files, for the record
    sitk.WriteImage(ref, str(tmp_path / "a.mha"))
    sitk.WriteImage(shifted, str(tmp_path / "b.mha"))
    rc = main(
        [
            "gamma",
            str(tmp_path / "a.mha"),
            str(tmp_path / "b.mha"),
            "--dose-tolerance",
            "0.01",
            "--output",
            str(tmp_path / "g.mha"),
            "--dose-units",
            "gy",
            "-q",
        ]
    )
    assert rc == 0 and sitk.ReadImage(str(tmp_path / "g.mha")).GetSize() == ref.GetSize()
    plm = subprocess.run(
        ["plastimatch", "gamma", "--dose-tolerance", "0.01", "--dta-tolerance", "3", str(tmp_path / "a.mha"), str(tmp_path / "b.mha")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert plm.returncode == 0


def test_slicer_jobs_on_real_mrml(phantom, mrml, tmp_path):
    from SlicerImgSuite.mrml.segmentations import masks_from_segmentation_node
    from SlicerImgSuite.mrml.tables import rows_from_table_node
    from SlicerImgSuite.mrml.volumes import volume_node_from_image
    from SlicerImgSuite.rtstruct.nodes import dvh_nodes, rtstruct_from_segmentation, segmentation_from_rtstruct

    ct_node = volume_node_from_image(mrml, phantom.ct, "CT")
    seg, lm, _ = segmentation_from_rtstruct(mrml, phantom.rtstruct, ct_node, make_labelmap=True)
    ss = read_rtstruct(phantom.rtstruct)
    assert seg.GetSegmentation().GetNumberOfSegments() == len(ss.rois) and lm is not None
    segment = seg.GetSegmentation().GetSegment(seg.GetSegmentation().GetSegmentIdBySegmentName("GTV"))
    assert tuple(round(c * 255) for c in segment.GetColor()) == tuple(ss.roi("GTV").color)
    extent = segment.GetRepresentation("Binary labelmap").GetExtent()  # the GTV's box, not the whole CT
    box = [extent[2 * a + 1] - extent[2 * a] + 1 for a in range(3)]
    assert all(b < s for b, s in zip(box, phantom.ct.GetSize())), box
    # export the segmentation back and compare with the direct rasterization
    out = tmp_path / "RS.dcm"
    rtstruct_from_segmentation(seg, phantom.ct_dir, out)
    grid = Grid.of(phantom.ct)
    direct = {m.roi.name: m.full(grid) for m in rasterize(ss, phantom.ct)}
    for m in rasterize(read_rtstruct(out), phantom.ct):
        assert _dice(m.full(grid), direct[m.roi.name]) == 1.0, m.roi.name
    masks = masks_from_segmentation_node(seg, phantom.ct)
    assert np.array_equal(sitk.GetArrayFromImage(masks["PTV"]) > 0, direct["PTV"] > 0)
    dose_node = volume_node_from_image(mrml, read_rtdose(phantom.rtdose), "Dose")
    table, chart, stats = dvh_nodes(mrml, seg, dose_node, ct_node)
    header, rows = rows_from_table_node(table)
    assert header[0] == "Dose (Gy)" and "PTV" in header and chart is not None
    assert stats["PTV"]["mean"] > stats["LUNG_L"]["mean"]


def test_slicer_import_from_a_dicom_folder_brings_its_ct(phantom, mrml, tmp_path):
    import shutil

    import pydicom

    from SlicerImgSuite.rtstruct.nodes import segmentation_from_rtstruct

    folder = tmp_path / "patient"
    shutil.copytree(phantom.ct_dir, folder)
    shutil.copy(phantom.rtstruct, folder / "RS.dcm")
    seg, _, _ = segmentation_from_rtstruct(mrml, folder)  # no reference volume: the folder's CT
    cts = [n for n in mrml.scene.GetNodesByClass("vtkMRMLScalarVolumeNode") if n.GetName() == "Phantom CT"]
    assert len(cts) == 1 and cts[0].GetImageData().GetDimensions() == phantom.ct.GetSize()
    assert seg.GetSegmentation().GetNumberOfSegments() == len(read_rtstruct(phantom.rtstruct).rois)
    # an RTSTRUCT of another Frame of Reference is refused before anything enters the scene
    ds = pydicom.dcmread(folder / "RS.dcm")
    ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.3.4"
    if "FrameOfReferenceUID" in ds:
        ds.FrameOfReferenceUID = "1.2.3.4"
    ds.save_as(folder / "RS.dcm")
    nodes = mrml.scene.GetNumberOfNodes()
    with pytest.raises(ImgSuiteError, match="Frame of Reference mismatch"):
        segmentation_from_rtstruct(mrml, folder)
    assert mrml.scene.GetNumberOfNodes() == nodes


def test_open_contours_and_points_become_markups(phantom, mrml, tmp_path):
    import pydicom

    from SlicerImgSuite.mrml.markups import points_from_fiducial_node
    from SlicerImgSuite.mrml.volumes import volume_node_from_image
    from SlicerImgSuite.rtstruct.nodes import segmentation_from_rtstruct

    ds = pydicom.dcmread(phantom.rtstruct)
    line = np.array([[-80.0, 20.0, 0.0], [-60.0, 25.0, 0.0], [-40.0, 20.0, 0.0]])
    marker = np.array([[10.0, -5.0, 3.0]])
    for kind, pts in (("OPEN_PLANAR", line), ("POINT", marker)):
        c = pydicom.Dataset()
        c.ContourGeometricType, c.NumberOfContourPoints = kind, len(pts)
        c.ContourData = [f"{v:.3f}" for v in pts.ravel()]
        ds.ROIContourSequence[0].ContourSequence.append(c)
    ds.save_as(tmp_path / "RS.dcm")
    body = ds.StructureSetROISequence[0].ROIName
    ct_node = volume_node_from_image(mrml, phantom.ct, "CT")
    segmentation_from_rtstruct(mrml, tmp_path / "RS.dcm", ct_node)
    curves = [n for n in mrml.scene.GetNodesByClass("vtkMRMLMarkupsCurveNode")]
    assert len(curves) == 1 and curves[0].GetName() == body
    np.testing.assert_allclose(points_from_fiducial_node(curves[0])[0], line, atol=1e-6)
    fiducial = mrml.scene.GetFirstNode(body, "vtkMRMLMarkupsFiducialNode")
    np.testing.assert_allclose(points_from_fiducial_node(fiducial)[0], marker, atol=1e-6)


def test_folder_with_ct_and_rtstruct_is_accepted(phantom, tmp_path):
    import shutil

    folder = tmp_path / "study"
    shutil.copytree(phantom.ct_dir, folder)
    shutil.copy(phantom.rtstruct, folder / "RS.dcm")
    rc = main(["convert", "--input", str(folder), "--output-labelmap", str(tmp_path / "lm.nrrd"), "-q"])
    assert rc == 0
    lm = sitk.ReadImage(str(tmp_path / "lm.nrrd"))
    assert lm.GetSize() == phantom.ct.GetSize()
    assert lm.GetOrigin() == pytest.approx(phantom.ct.GetOrigin())
    names = read_rtstruct(folder).names()  # the last structure is never overwritten in a labelmap
    truth = sitk.GetArrayFromImage(phantom.masks[names[-1]]).astype(bool)
    assert _dice(sitk.GetArrayFromImage(lm) == len(names), truth) > 0.95


def test_ss_image_widens_beyond_32_structures(phantom):
    from SlicerImgSuite.rtstruct import Roi, RoiMask, ss_image
    from SlicerImgSuite.rtstruct.outputs import masks_from_ss_image

    grid = Grid.of(phantom.ct)
    masks = [RoiMask(Roi(n + 1, f"R{n}"), (n, 0, 0), np.ones((1, 1, 1), bool)) for n in range(70)]
    for count, pixel in ((32, sitk.sitkUInt32), (40, sitk.sitkUInt64), (70, sitk.sitkVectorUInt64)):
        image = ss_image(masks[:count], phantom.ct)
        assert image.GetPixelID() == pixel
        back = masks_from_ss_image(image, count)
        for n in range(count):
            assert np.array_equal(back[n], masks[n].full(grid).astype(bool)), (count, n)


def test_accurate_convert_gives_half_covered_voxels(phantom, tmp_path):
    rc = main(
        ["convert", "--input", str(phantom.rtstruct), "--referenced-ct", str(phantom.ct_dir), "--accurate", "-q",
         "--output-prefix", str(tmp_path / "acc")]
    )  # fmt: skip
    assert rc == 0
    accurate = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "acc" / "GTV.nrrd"))).astype(bool)
    centre = rasterize(read_rtstruct(phantom.rtstruct), phantom.ct, names=["GTV"])[0].full(Grid.of(phantom.ct))
    assert _dice(accurate, centre) > 0.97


def test_dvh_agrees_with_plastimatch_dvh(phantom, converted, tmp_path):
    """plastimatch reads our ss-img/ss-list; its row x is the fraction at or above x - width/2 (centred bins)."""
    from SlicerImgSuite.rtstruct import volume_at_dose

    dose = read_rtdose(phantom.rtdose)
    sitk.WriteImage(dose, str(tmp_path / "dose.mha"))
    width = 5.0
    subprocess.run(
        ["plastimatch", "dvh", "--input-ss-img", str(converted / "ss.nrrd"), "--input-ss-list", str(converted / "ss.txt"),
         "--input-dose", str(tmp_path / "dose.mha"), "--output-csv", str(tmp_path / "plm.csv"), "--num-bins", "13",
         "--bin-width", str(width)], check=True, capture_output=True,
    )  # fmt: skip
    rows = list(csv.reader(open(tmp_path / "plm.csv")))
    names = rows[0][1:]
    for m in rasterize(read_rtstruct(phantom.rtstruct), phantom.ct):
        d, v = dose_samples(m, dose, phantom.ct)
        column = names.index(m.roi.name) + 1
        for row in rows[2:]:
            ours = volume_at_dose(d, v, float(row[0]) - width / 2) / 100
            assert abs(ours - float(row[column])) < 0.01, (m.roi.name, row[0], ours, row[column])


def test_output_dicom_without_a_ct_fails_before_anything_is_written(phantom, tmp_path, capsys):
    labelmap, dicom = tmp_path / "x.nrrd", tmp_path / "D"
    rc = main(
        ["convert", "--input", str(phantom.rtstruct), "--output-labelmap", str(labelmap), "--output-dicom", str(dicom)]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "--output-dicom needs --referenced-ct" in err and str(phantom.rtstruct) in err
    assert list(tmp_path.iterdir()) == []  # neither X nor D


def test_a_late_write_failure_leaves_no_output(phantom, tmp_path, capsys):
    # the labelmap is written first and succeeds; the ss-img (unknown format) fails after it
    labelmap, bad = tmp_path / "lm.nrrd", tmp_path / "ss.unknownformat"
    rc = main(["convert", "--input", str(phantom.rtstruct), "--referenced-ct", str(phantom.ct_dir), "-q",
               "--output-labelmap", str(labelmap), "--output-ss-img", str(bad)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and f"{bad}: cannot write image" in err  # the user's path, not a temporary one
    assert list(tmp_path.iterdir()) == []


def _read_seg(path):
    import gzip

    header, data = path.read_bytes().split(b"\n\n", 1)
    fields = dict(line.split(":=", 1) for line in header.decode().splitlines() if ":=" in line)
    return fields, gzip.decompress(data)


def test_seg_nrrd_holds_one_slice_not_a_grid_per_structure(tmp_path):
    import tracemalloc

    from SlicerImgSuite.rtstruct import Roi, RoiMask, write_seg_nrrd

    reference = sitk.Image(256, 256, 64, sitk.sitkUInt8)  # 4 MiB per full-grid uint8 array
    rng = np.random.default_rng(1)
    masks = []
    for n in range(12):  # boxes that overlap (extra layers); ROI 5 is empty
        array = rng.random((8, 40, 40)) > 0.5 if n != 5 else np.zeros((0, 0, 0), bool)
        offset = tuple(int(v) for v in rng.integers(0, [60, 60, 50]))
        masks.append(RoiMask(Roi(n + 1, f"R{n}", (n, 2 * n, 3 * n)), offset, array))
    tracemalloc.start()
    write_seg_nrrd(masks, reference, tmp_path / "s.seg.nrrd")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 256 * 256 * 64  # less than one full grid (12 full masks before)
    fields, data = _read_seg(tmp_path / "s.seg.nrrd")
    layers = max(int(fields[f"Segment{n}_Layer"]) for n in range(12)) + 1
    assert layers > 1
    volume = np.frombuffer(data, np.uint8).reshape(64, 256, 256, layers)
    grid = Grid.of(reference)
    seen = set()
    for n, m in enumerate(masks):
        layer, label = int(fields[f"Segment{n}_Layer"]), int(fields[f"Segment{n}_LabelValue"])
        assert (layer, label) not in seen  # the empty ROI gets its own label too
        seen.add((layer, label))
        assert np.array_equal(volume[..., layer] == label, m.full(grid).astype(bool)), n


def test_dvh_refuses_a_dose_from_another_frame_of_reference(phantom, tmp_path, capsys):
    import pydicom

    dose = pydicom.dcmread(phantom.rtdose)
    dose.FrameOfReferenceUID = "1.2.3.4.5"
    dose.save_as(tmp_path / "RD.dcm")
    rc = main(["dvh", "--input-rtstruct", str(phantom.rtstruct), "--input-dose", str(tmp_path / "RD.dcm"), "-q",
               "--output-stats", str(tmp_path / "stats.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "Frame of Reference mismatch" in err
    assert str(phantom.rtstruct) in err and str(tmp_path / "RD.dcm") in err and "1.2.3.4.5" in err
    assert not (tmp_path / "stats.csv").exists()


def test_reference_series_checks_slices_as_the_series_reader_does(tmp_path):
    """An RTSTRUCT's reference CT goes through io.dicom_series' rules: two slices at one position or two
    orientations are refused (naming the files), unevenly spaced slices are a warning, not a silent grid."""
    import copy

    from SlicerImgSuite.errors import ImgSuiteError
    from SlicerImgSuite.io.dicom_write import write_ct_series
    from SlicerImgSuite.rtstruct.write import reference_series

    ct = sitk.Image(4, 3, 4, sitk.sitkInt16)
    ct.SetSpacing((1.0, 1.0, 2.0))
    headers = write_ct_series(ct, tmp_path / "ct")
    assert reference_series(tmp_path / "ct").grid.size == (4, 3, 4)
    twice = [copy.deepcopy(d) for d in headers]  # one copy each: the written headers share elements
    twice[2].ImagePositionPatient = list(twice[1].ImagePositionPatient)
    with pytest.raises(ImgSuiteError, match="same position"):
        reference_series(twice)
    tilted = [copy.deepcopy(d) for d in headers]
    tilted[3].ImageOrientationPatient = [1, 0, 0, 0, 0.8, 0.6]
    with pytest.raises(ImgSuiteError, match="orientations"):
        reference_series(tilted)
    uneven = [copy.deepcopy(d) for d in headers]
    uneven[3].ImagePositionPatient = [*uneven[3].ImagePositionPatient[:2], float(uneven[3].ImagePositionPatient[2]) + 3]
    with pytest.warns(UserWarning, match="unevenly spaced"):
        assert reference_series(uneven).grid.spacing[2] == pytest.approx(2.0)
