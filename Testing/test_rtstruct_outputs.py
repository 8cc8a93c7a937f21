"""Structure-set outputs, RTSTRUCT writing, DVH and gamma: CLI, real MRML, dciodvfy and plastimatch anchors."""

from __future__ import annotations

import csv
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.io import read_image
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
    write_rtstruct_from_masks(path, phantom.ct_dir, phantom.masks, phantom.colors)
    report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    assert "Error" not in report.stderr + report.stdout, report.stderr
    ds = pydicom.dcmread(path)
    ct = pydicom.dcmread(sorted(phantom.ct_dir.iterdir())[0], stop_before_pixels=True)
    assert ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == ct.FrameOfReferenceUID
    series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == ct.SeriesInstanceUID and ds.PatientID == ct.PatientID
    assert ds.StudyInstanceUID == ct.StudyInstanceUID and ds.SeriesInstanceUID != ct.SeriesInstanceUID
    ct_uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in phantom.ct_dir.iterdir()}
    refs = {c.ContourImageSequence[0].ReferencedSOPInstanceUID for r in ds.ROIContourSequence for c in r.ContourSequence}
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
    rc = main(["convert", "--input", str(rs), "--referenced-ct", str(other_ct), "--output-labelmap", str(tmp_path / "x.nrrd")])
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
    assert np.allclose(sitk.GetArrayFromImage(dose), sitk.GetArrayFromImage(phantom.dose), atol=1e-3 * float(sitk.GetArrayFromImage(phantom.dose).max()))
    ptv_mask = [m for m in rasterize(read_rtstruct(phantom.rtstruct), phantom.ct) if m.roi.name == "PTV"][0]
    d, v = dose_samples(ptv_mask, dose, phantom.ct)
    assert float(stats["PTV"]["mean"]) == pytest.approx(dose_statistics(d, v)["mean"], rel=1e-4)
    assert float(stats["PTV"]["D95"]) <= float(stats["PTV"]["mean"]) <= float(stats["PTV"]["D2"])


def test_nelms_dvh_mean_dose_within_one_percent(shared_data):
    base = shared_data / "nelms-dvh-analytic-phantom"
    ct = read_image(base / "CT_1mm")
    dose = read_rtdose(base / "DOSE_GRIDS" / "Linear_AntPost_1mm_Aligned.dcm")
    truth = {"Sphere_10_0": (1600, 724.5, 2475), "Cone_10_0": (1600, 814.5, 2385), "RtCone_10_0": (2200, 1284, 2759)}
    for name, (mean, d95, d5) in truth.items():
        mask = [m for m in rasterize(read_rtstruct(base / "STRUCTURES_1mm" / f"{name}.dcm"), ct, oversample=8) if m.array.size][0]
        s = dose_statistics(*dose_samples(mask, dose, ct))
        assert 100 * s["mean"] == pytest.approx(mean, rel=0.01), name
        assert abs(100 * s["D95"] - d95) <= 35 and abs(100 * s["D5"] - d5) <= 35, (name, s)  # 35 cGy = 1.25 % of 28 Gy


def test_gamma_subvoxel_search_passes_a_2mm_shift_on_a_3mm_grid(tmp_path):
    z, y, x = np.mgrid[:24, :24, :24] * 3.0

    def field(shift):  # a broad dose blob; the 10 % threshold keeps the evaluation away from the grid edges
        return np.exp(-((x - 36 - shift) ** 2 + (y - 36) ** 2 + (z - 36) ** 2) / (2 * 15.0**2)).astype(np.float32)

    ref, shifted = sitk.GetImageFromArray(field(0.0)), sitk.GetImageFromArray(field(2.0))
    ref.SetSpacing((3, 3, 3))
    shifted.SetSpacing((3, 3, 3))
    gamma, rate = gamma_index(ref, shifted, 1.0, 3.0)
    assert rate == 100.0
    # a voxel-only search (lattice step = voxel size) fails part of it: the search must be sub-voxel
    _, coarse = gamma_index(ref, shifted, 1.0, 3.0, resolution_mm=3.0)
    assert coarse < 95.0
    # plastimatch's default search on the same files, for the record
    sitk.WriteImage(ref, str(tmp_path / "a.mha"))
    sitk.WriteImage(shifted, str(tmp_path / "b.mha"))
    rc = main(["gamma", str(tmp_path / "a.mha"), str(tmp_path / "b.mha"), "--dose-tolerance", "0.01", "--output", str(tmp_path / "g.mha"), "-q"])
    assert rc == 0 and sitk.ReadImage(str(tmp_path / "g.mha")).GetSize() == ref.GetSize()
    plm = subprocess.run(
        ["plastimatch", "gamma", "--dose-tolerance", "0.01", "--dta-tolerance", "3", str(tmp_path / "a.mha"), str(tmp_path / "b.mha")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert plm.returncode == 0
