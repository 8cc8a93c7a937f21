"""Third audit pass, as a new medical physicist on the shared data the tests used least (PlantCV ENVI cubes,
the Savu projections, the Nelms RTDOSE grids, the OpenTPS lung CT, the dicompyler-core CT): realistic mistakes
(a 2D image where a 3D dose or grid is meant, a dose given to a CT tool, an output that is the input's own
header) must end in one error line naming the file and the problem (exit 2, no traceback, nothing written).
Each test failed on main.
"""

from __future__ import annotations

import csv
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from test_audit_values import _refused

from SlicerImgSuite.cli import main

ENVI = "envi-hyperspectral-plantcv"


def test_envi_output_whose_header_is_the_input_writes_nothing(shared_data, tmp_path, capsys):
    """``hsi convert cube.hdr --output cube.envi`` writes cube.envi + cube.hdr: the .hdr is the input, refused, but
    only after the 1.5 MB binary cube.envi had been written (a half-written output left beside the input)."""
    for name in ("corn-kernel-hyperspectral.hdr", "corn-kernel-hyperspectral.raw"):
        shutil.copy(shared_data / ENVI / name, tmp_path / name)
    header = tmp_path / "corn-kernel-hyperspectral.hdr"
    before = header.read_bytes()
    out = tmp_path / "corn-kernel-hyperspectral.envi"
    _refused(["hsi", "convert", header, "--output", out], capsys, out, header, "input")
    assert header.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [header.name, "corn-kernel-hyperspectral.raw"]


SAVU_VIEW = ("savu-parallel-beam-tomo-small", "tiffs", "raw_00000.tiff")
LUNG = ("opentps-4dct-light-lung", "00")


@pytest.mark.parametrize(
    "command",
    [["diff", "{2d}", "{3d}", "{out}"], ["add", "{2d}", "{3d}", "--output", "{out}"], ["compare", "{2d}", "{3d}"],
     ["mask", "--input", "{3d}", "--mask", "{2d}", "--output", "{out}"], ["dice", "{2d}", "{3d}"]],
)  # fmt: skip
def test_a_2d_image_against_a_3d_one_is_refused_naming_it(shared_data, tmp_path, capsys, command):
    """A Savu projection (2D TIFF) given with the lung CT: a numpy broadcasting traceback (exit 1) in the grid check."""
    view, ct, out = shared_data.joinpath(*SAVU_VIEW), shared_data.joinpath(*LUNG), tmp_path / "out.nrrd"
    args = [a.format(**{"2d": view, "3d": ct, "out": out}) for a in command]
    _refused(args, capsys, out, "raw_00000.tiff", "2D", "3D")


NELMS = "nelms-dvh-analytic-phantom"


@pytest.mark.parametrize("which", ["dvh", "gamma_2d_3d", "gamma_2d_2d"])
def test_a_2d_image_declared_a_dose_is_refused_naming_it(shared_data, tmp_path, capsys, which):
    """A 2D image with ``--dose-units gy`` (a film or portal image exported as TIFF, here a Savu projection) as the
    dose: dvh and gamma ended in a SimpleITK or numpy traceback (exit 1)."""
    view = shared_data.joinpath(*SAVU_VIEW)
    rtdose = shared_data / NELMS / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm"
    out = tmp_path / "out.csv"
    args = {
        "dvh": ["dvh", "--input-dose", view, "--dose-units", "gy", "--referenced-ct", shared_data / NELMS / "CT_3mm",
                "--input-rtstruct", shared_data / NELMS / "STRUCTURES_3mm" / "Sphere_30_0.dcm", "--output-stats", out],
        "gamma_2d_3d": ["gamma", rtdose, view, "--dose-units", "gy", "--output", out],
        "gamma_2d_2d": ["gamma", view, view, "--dose-units", "gy", "--output", out],
    }[which]  # fmt: skip
    _refused(args, capsys, out, "raw_00000.tiff", "2D")


@pytest.mark.parametrize("fast", [[], ["--fast"]])
def test_segment_refuses_a_dose_and_still_takes_the_ct(shared_data, tmp_path, capsys, fast):
    """``segment --input RD.dcm``: the Nelms dose (Gy, all above -300) came out as a 'body' filling the whole grid,
    exit 0 (a warning about the field of view only). The lung CT beside it is still segmented."""
    rtdose = shared_data / NELMS / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm"
    out = tmp_path / "body.nrrd"
    _refused(["segment", "--input", rtdose, "--output-img", out, *fast], capsys, out, rtdose, "dose")
    assert main(["segment", "--input", str(shared_data.joinpath(*LUNG)), "--output-img", str(out), *fast, "-q"]) == 0
    assert 0 < sitk.GetArrayFromImage(sitk.ReadImage(str(out))).mean() < 0.5


def test_wed_refuses_a_dose_and_still_takes_the_ct(shared_data, tmp_path, capsys):
    """``wed --input-ct RD.dcm``: the Nelms dose (Gy read as HU, stopping power ~1) gave water-equivalent depths of
    a water box, exit 0. The lung CT is still taken."""
    rtdose = shared_data / NELMS / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm"
    out = tmp_path / "wed.nrrd"
    _refused(["wed", "--input-ct", rtdose, "--pos", "0 -1000 0", "--output", out], capsys, out, rtdose, "dose")
    args = ["wed", "--input-ct", str(shared_data.joinpath(*LUNG)), "--pos", "0 -1000 0", "--output", str(out), "-q"]
    assert main(args) == 0 and sitk.GetArrayFromImage(sitk.ReadImage(str(out))).max() > 0


def test_dose_units_that_contradict_the_dose_are_refused(shared_data, tmp_path, capsys):
    """``--dose-units cgy`` on a dose that states GY: on our own NRRD dose output it was applied (every dose 100 times
    too low: Nelms AntPost max 0.40 Gy instead of 40.0, exit 0); on the RTDOSE it was silently ignored. Both are
    now one error naming the file; the agreeing ``gy`` is still accepted."""
    rtdose = shared_data / NELMS / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm"
    gy = tmp_path / "dose.nrrd"
    assert main(["convert", "--input-dose-img", str(rtdose), "--output-dose-img", str(gy), "-q"]) == 0
    out = tmp_path / "out.nrrd"
    for source, tag in ((gy, "DoseUnits"), (rtdose, "DoseUnits (3004,0002)")):
        args = ["convert", "--input-dose-img", source, "--dose-units", "cgy", "--output-dose-img", out]
        _refused(args, capsys, out, source, tag, "GY", "--dose-units")
        assert main([*map(str, args[:4]), "gy", *map(str, args[5:]), "-q"]) == 0
        assert sitk.GetArrayFromImage(sitk.ReadImage(str(out))).max() == pytest.approx(40.0, rel=1e-4)
        out.unlink()


def test_slicer_dvh_of_a_loaded_dose_ignores_the_plain_volume_units(shared_data, mrml):
    """The RT structure sets module's "Units of a plain volume" left at cGy (from an earlier plain volume) applied to
    a loaded RTDOSE too: the Nelms sphere's mean came out 0.16 Gy instead of 16.0 Gy."""
    from SlicerImgSuite.io import read_image
    from SlicerImgSuite.mrml.volumes import volume_node_from_image
    from SlicerImgSuite.rtstruct.nodes import dose_node_from_file, dvh_nodes, segmentation_from_rtstruct

    ct_node = volume_node_from_image(mrml, read_image(shared_data / NELMS / "CT_3mm"), "CT")
    seg, _, _ = segmentation_from_rtstruct(mrml, shared_data / NELMS / "STRUCTURES_3mm" / "Sphere_30_0.dcm", ct_node)
    dose_node = dose_node_from_file(mrml, shared_data / NELMS / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm")
    _, _, own = dvh_nodes(mrml, seg, dose_node, ct_node)
    _, _, with_plain_units = dvh_nodes(mrml, seg, dose_node, ct_node, dose_units="cgy")
    assert own["Sphere_30_0"]["mean"] == pytest.approx(16.0, abs=0.05)  # Nelms: analytic Dmean 1600 cGy
    assert with_plain_units["Sphere_30_0"]["mean"] == pytest.approx(own["Sphere_30_0"]["mean"], rel=1e-6)


def test_an_empty_roi_is_written_without_an_empty_contour_sequence(shared_data, tmp_path):
    """dicompyler-core's RTSTRUCT has an ROI without contours (Areola, ROIContour item with no ContourSequence);
    written back it got an empty ContourSequence: dciodvfy 'Bad Sequence number of Items 0 (1-n Required)'."""
    folder = shared_data / "dicompyler-core-example"
    out = tmp_path / "out"
    args = ["convert", "--input", folder / "rtss.dcm", "--referenced-ct", folder, "--output-dicom", out, "-q"]
    assert main([str(a) for a in args]) == 0
    report = subprocess.run(["dciodvfy", str(out / "RS.dcm")], capture_output=True, text=True, timeout=120)
    assert not [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
    ds = pydicom.dcmread(out / "RS.dcm")
    counts = {str(rc.ReferencedROINumber): len(rc.get("ContourSequence", [])) for rc in ds.ROIContourSequence}
    assert counts["2"] == 0 and counts["1"] == 141 and len(counts) == 10  # Areola kept, BODY's contours all kept
    from SlicerImgSuite.rtstruct.structure_set import read_rtstruct

    assert [r.name for r in read_rtstruct(out / "RS.dcm").rois][:2] == ["BODY", "Areola"]


@pytest.mark.parametrize("lods", ["-1", "1,-2"])
def test_hsi_pack_refuses_a_negative_level_of_detail(shared_data, tmp_path, capsys, lods):
    """``hsi pack --lods -1`` on the PlantCV corn cube: a TypeError traceback from the binning (2**-1 pixels)."""
    out = tmp_path / "corn.hsi"
    _refused(["hsi", "pack", shared_data / ENVI / "corn-kernel-hyperspectral.hdr", "--lods", lods, "--output", out],
             capsys, out, "--lods", lods)  # fmt: skip


def test_a_single_ct_slice_has_the_same_grid_as_a_file_and_as_a_folder(shared_data, tmp_path):
    """dicompyler-core's one CT slice (SliceThickness 3 mm): read as its folder the voxels were 3 mm thick, read as
    the file (``--fixed ct.0.dcm``, ``header ct.0.dcm``) 1 mm (GDCM's default), so BODY rasterized on it measured
    46.6 cc instead of 139.8 cc (40396 voxels of 1.0742 x 1.0742 mm)."""
    from SlicerImgSuite.io import read_image

    folder = shared_data / "dicompyler-core-example"
    alone = tmp_path / "ct"
    alone.mkdir()
    (alone / "ct.0.dcm").symlink_to(folder / "ct.0.dcm")
    as_file, as_folder = read_image(folder / "ct.0.dcm"), read_image(alone)
    assert as_file.GetSpacing() == pytest.approx(as_folder.GetSpacing()) and as_file.GetSpacing()[2] == 3.0
    assert as_file.GetOrigin() == pytest.approx(as_folder.GetOrigin())
    assert np.array_equal(sitk.GetArrayFromImage(as_file), sitk.GetArrayFromImage(as_folder))
    out = tmp_path / "rois"
    args = ["convert", "--input", folder / "rtss.dcm", "--fixed", folder / "ct.0.dcm", "--output-prefix", out, "-q"]
    assert main([str(a) for a in args]) == 0
    body = sitk.ReadImage(str(out / "BODY.nrrd"))
    cc = sitk.GetArrayFromImage(body).sum() * np.prod(body.GetSpacing()) / 1000
    assert cc == pytest.approx(40396 * 1.074219**2 * 3 / 1000, rel=1e-4)


def test_linked_folders_are_followed_once(shared_data, tmp_path, capsys):
    """A cohort of linked patient folders (the two OpenTPS phases) indexed as '0 series from 0 files', exit 0, an
    empty index for the cohort runner; a study whose CT folder is a link read as 'no DICOM files'. A link back
    to its own folder is walked once."""
    from SlicerImgSuite.cohort.tables import read_table

    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for phase in ("00", "50"):
        (cohort / f"patient{phase}").symlink_to(shared_data / "opentps-4dct-light-lung" / phase)
    (cohort / "self").symlink_to(".")
    assert main(["index", str(cohort), "--output", str(tmp_path / "index.parquet"), "-q"]) == 0
    assert sorted(int(row["file_count"]) for row in read_table(tmp_path / "index.parquet")) == [47, 47]
    study = tmp_path / "study"
    study.mkdir()
    (study / "CT").symlink_to(shared_data.joinpath(*LUNG))
    assert main(["convert", "--input", str(study), "--output-img", str(tmp_path / "ct.nrrd"), "-q"]) == 0
    assert sitk.ReadImage(str(tmp_path / "ct.nrrd")).GetSize() == (100, 100, 47)


@pytest.mark.parametrize("command", [["warp", "--input", "{ct}", "--xf", "{ct}", "--output-img", "{out}"],
                                     ["xf-convert", "--input", "{ct}", "--output", "{out}"]])  # fmt: skip
def test_a_folder_given_as_a_transform_is_one_error_line(shared_data, tmp_path, capfd, command):
    """``warp --xf CT_folder`` (the CT folder where the transform was meant): ITK's HDF5 probe wrote 25 lines of
    'HDF5-DIAG: Error detected' on the terminal before the error line."""
    ct, out = shared_data.joinpath(*LUNG), tmp_path / "out.tfm"
    capfd.readouterr()
    assert main([a.format(ct=ct, out=out) for a in command] + ["-q"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "HDF5" not in err and str(ct) in err and "folder" in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "command, given, kind",
    [(["stats", "{rs}"], "rs", "RTSTRUCT"), (["header", "{plan}"], "plan", "RTPLAN"),
     (["crop", "--input", "{ct}", "--structure", "{rs}", "--output", "{out}"], "rs", "RTSTRUCT"),
     (["convert", "--input", "{plan}", "--referenced-ct", "{ct}", "--output-labelmap", "{out}"], "plan", "RTPLAN")],
)  # fmt: skip
def test_a_structure_set_or_plan_given_as_an_image_is_named_as_such(shared_data, tmp_path, capsys, command, given, kind):
    """The Nelms RTSTRUCT or dicompyler's RTPLAN where an image is meant: 'PixelData (7FE0,0010) is missing',
    'Rows x Columns = 0 x 0: no pixels' (both read as a damaged file) or '--output-labelmap do not apply to this
    input (an image)' for an RTPLAN."""
    files = {"rs": shared_data / NELMS / "STRUCTURES_3mm" / "Sphere_30_0.dcm",
             "plan": shared_data / "dicompyler-core-example" / "rtplan.dcm"}  # fmt: skip
    out = tmp_path / "out.nrrd"
    args = [a.format(ct=shared_data.joinpath(*LUNG), out=out, **files) for a in command]
    _refused(args, capsys, out, files[given], f"a DICOM {kind} object, not an image")


def test_a_cube_written_as_a_picture_is_refused_not_cut_to_four_channels(shared_data, tmp_path, capsys):
    """``hsi convert corn.hdr --output corn.png``: exit 0 and a 43 x 31 RGBA PNG whose 4 channels were none of the
    580 bands (ITK's PNG writer); the same cube as TIFF keeps every band."""
    header = shared_data / ENVI / "corn-kernel-hyperspectral.hdr"
    out = tmp_path / "corn.png"
    _refused(["hsi", "convert", header, "--output", out], capsys, out, out, "580 bands", "PNG")
    assert main(["hsi", "convert", str(header), "--output", str(tmp_path / "corn.tif"), "-q"]) == 0
    raw = np.fromfile(header.with_suffix(".raw"), "<u2").reshape(31, 580, 43).transpose(0, 2, 1)  # BIL
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "corn.tif"))), raw)


def test_dvh_reads_plastimatchs_ss_img(shared_data, tmp_path):
    """``dvh --input-ss-img`` with the ss-img plastimatch 1.9.4 writes (a vector of uchar planes, here 2 for the
    Nelms sphere's structure set): a 'too many values to unpack' traceback. Read as bits it gives the sphere the
    statistics of the RTSTRUCT path (mean 16.0 Gy, analytic 1600 cGy)."""
    base = shared_data / NELMS
    rs, ct = base / "STRUCTURES_3mm" / "Sphere_30_0.dcm", base / "CT_3mm"
    dose = base / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm"
    ss, names = tmp_path / "ss.nrrd", tmp_path / "ss.txt"
    subprocess.run(["plastimatch", "convert", "--input", str(rs), "--referenced-ct", str(ct), "--output-ss-img", str(ss),
                    "--output-ss-list", str(names)], check=True, capture_output=True, timeout=300)  # fmt: skip
    assert sitk.ReadImage(str(ss)).GetNumberOfComponentsPerPixel() == 2
    stats = {}
    for how in (["--input-ss-img", ss, "--input-ss-list", names], ["--input-rtstruct", rs, "--referenced-ct", ct]):
        out = tmp_path / f"{how[0]}.csv"
        assert main([str(a) for a in ["dvh", "--input-dose", dose, *how, "--output-stats", out, "-q"]]) == 0
        stats[how[0]] = {r["structure"]: r for r in csv.DictReader(open(out))}["Sphere_30_0"]
    plm, ours = stats["--input-ss-img"], stats["--input-rtstruct"]
    assert float(plm["mean"]) == pytest.approx(16.0, abs=0.1) == float(ours["mean"])
    assert float(plm["volume_cc"]) == pytest.approx(float(ours["volume_cc"]), rel=0.02)


@pytest.mark.parametrize(
    "command",
    [["warp", "--input", "{2d}", "--xf", "{xf}", "--output-img", "{out}"],
     ["synth-vf", "--fixed", "{2d}", "--xf-trans", "1 2 3", "--output", "{out}"]],
)  # fmt: skip
def test_a_2d_image_with_a_3d_transform_is_refused_naming_it(shared_data, tmp_path, capsys, command):
    """A Savu projection (2D TIFF) warped by a 3D transform, or as synth-vf's grid: a SimpleITK 'miss matching
    dimensions' or a numpy reshape traceback (exit 1)."""
    xf = tmp_path / "id.tfm"
    sitk.WriteTransform(sitk.TranslationTransform(3, (0, 0, 0)), str(xf))
    out = tmp_path / "out.mha"
    args = [a.format(**{"2d": shared_data.joinpath(*SAVU_VIEW), "xf": xf, "out": out}) for a in command]
    _refused(args, capsys, out, "raw_00000.tiff", "2D", "3D")


@pytest.mark.parametrize(
    "command",
    [["resample", "--input", "{3d}", "--fixed", "{2d}", "--output", "{out}"],
     ["resample", "--input", "{2d}", "--fixed", "{3d}", "--output", "{out}"],
     ["convert", "--input", "{3d}", "--fixed", "{2d}", "--output-img", "{out}"],
     ["convert", "--input-dose-img", "{dose}", "--fixed", "{2d}", "--output-dose-img", "{out}"]],
)  # fmt: skip
def test_a_fixed_grid_of_another_dimension_is_refused_naming_it(shared_data, tmp_path, capsys, command):
    """``--fixed`` a 2D TIFF for the lung CT or the Nelms dose (or the CT for a 2D image): a SimpleITK 'Expected
    vector of length 3 but only got 2 elements' traceback (exit 1)."""
    values = {"2d": shared_data.joinpath(*SAVU_VIEW), "3d": shared_data.joinpath(*LUNG), "out": tmp_path / "out.nrrd",
              "dose": shared_data / NELMS / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm"}  # fmt: skip
    fixed = command[command.index("--fixed") + 1]
    _refused([a.format(**values) for a in command], capsys, values["out"], fixed.format(**values), "--fixed", "2D")
