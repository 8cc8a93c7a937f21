"""Dose jobs given inputs that gave a result with no meaning (audit of the RT dose jobs, 2026-12-07).

Each case ran to exit 0 on main: two doses of different Frames of Reference compared voxel by voxel (100 %),
a blank reference grid against a blank one (100 %), and a --mask or --reference-dose that leaves no point
to analyse ("pass rate: nan %", gamma image written); dvh rasterized structures on a --referenced-ct of another
Frame of Reference (convert refuses that CT). Each is now refused with exit 2, naming the file, and nothing is
written.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main

NELMS = "nelms-dvh-analytic-phantom"
NELMS_DOSE = (NELMS, "DOSE_GRIDS", "Linear_AntPost_3mm_Aligned.dcm")


@pytest.fixture
def rtdose(shared_data):
    return shared_data.joinpath(*NELMS_DOSE)


def _refused(argv, capsys, output, *expected) -> None:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert not output.exists()


def test_gamma_refuses_doses_of_two_frames_of_reference(rtdose, tmp_path, capsys):
    other = pydicom.dcmread(rtdose)  # the same dose, exported in another patient's frame: 100 % on main
    other.FrameOfReferenceUID = "1.2.826.0.1.3680043.2.1125.9"
    other.save_as(tmp_path / "other.dcm")
    out = tmp_path / "gamma.nrrd"
    _refused(["gamma", rtdose, tmp_path / "other.dcm", "--output", out], capsys, out,
             str(rtdose), "Frame of Reference mismatch", "1.2.826.0.1.3680043.2.1125.9", "other.dcm")  # fmt: skip
    # a dose image written from the other RTDOSE keeps its Frame of Reference in the header: refused too
    written = ["convert", "--input", tmp_path / "other.dcm", "--output-img", tmp_path / "o.nrrd", "-q"]
    assert main([str(a) for a in written]) == 0
    _refused(["gamma", tmp_path / "o.nrrd", rtdose, "--output", out], capsys, out, "o.nrrd", "Frame of Reference")
    # one in the same frame is compared as before
    assert main(["gamma", str(rtdose), str(rtdose), "--output", str(out), "-q"]) == 0 and out.exists()


def test_gamma_refuses_a_blank_reference_without_a_reference_dose(rtdose, tmp_path, capsys):
    blank = pydicom.dcmread(rtdose)  # an RTDOSE exported before the dose was computed
    blank.PixelData = np.zeros_like(blank.pixel_array).tobytes()
    blank.save_as(tmp_path / "blank.dcm")
    out = tmp_path / "gamma.nrrd"
    _refused(["gamma", tmp_path / "blank.dcm", tmp_path / "blank.dcm", "--output", out], capsys, out,
             "blank.dcm", "the reference dose is 0 Gy at most", "--reference-dose")  # fmt: skip
    # with a normalisation dose given, the blank reference is compared (and fails against a real dose)
    text = tmp_path / "rate.txt"
    argv = ["gamma", tmp_path / "blank.dcm", rtdose, "--reference-dose", "2", "--output-text", text, "-q"]
    assert main([str(a) for a in argv]) == 0
    rate = float(text.read_text().split("pass rate:")[1].split("%")[0])
    assert rate < 50


@pytest.mark.parametrize("case", ["mask_outside", "threshold_above_max"])
def test_gamma_refuses_when_no_point_is_analysed(rtdose, tmp_path, capsys, case):
    out = tmp_path / "gamma.nrrd"
    argv = ["gamma", rtdose, rtdose, "--output", out]
    if case == "mask_outside":  # a mask of another grid that misses the dose entirely
        mask = sitk.Image([5, 5, 5], sitk.sitkUInt8) + 1
        mask.SetOrigin([900.0, 900.0, 900.0])
        sitk.WriteImage(mask, str(tmp_path / "mask.nrrd"))
        argv += ["--mask", tmp_path / "mask.nrrd"]
    else:  # --reference-dose 1000 Gy: the 10 % threshold (100 Gy) lies above every voxel
        argv += ["--reference-dose", "1000"]
    _refused(argv, capsys, out, str(rtdose), "no voxel is analysed", "--analysis-threshold")


def test_dvh_refuses_a_referenced_ct_of_another_frame_of_reference(shared_data, rtdose, tmp_path, capsys):
    """The dose an image without a Frame of Reference (computed on a rescan), --referenced-ct that rescan: main
    sampled it at the structure set's coordinates (exit 0); convert and the Slicer module refuse that CT."""
    ct = tmp_path / "rescan"
    ct.mkdir()
    for f in sorted((shared_data / NELMS / "CT_3mm").glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.2.1125.7"
        ds.save_as(ct / f.name)
    plain = sitk.ReadImage(str(rtdose))  # GDCM: the geometry, no dose metadata
    sitk.WriteImage(sitk.Cast(plain, sitk.sitkFloat32) * 1e-8, str(tmp_path / "dose.mha"))
    rs = shared_data / NELMS / "STRUCTURES_3mm" / "Cone_30_0.dcm"
    out = tmp_path / "stats.csv"
    argv = ["dvh", "--input-dose", tmp_path / "dose.mha", "--dose-units", "gy", "--input-rtstruct", rs]
    _refused([*argv, "--referenced-ct", ct, "--output-stats", out], capsys, out,
             "Cone_30_0.dcm", "Frame of Reference mismatch", "1.2.826.0.1.3680043.2.1125.7")  # fmt: skip
    # the CT of the structures' own frame is taken as before
    own = [*argv, "--referenced-ct", shared_data / NELMS / "CT_3mm", "--output-stats", out]
    assert main([str(a) for a in own]) == 0
    assert out.exists()


@pytest.mark.parametrize("job", ["dvh", "gamma"])
def test_a_dose_image_with_nan_values_is_refused(shared_data, rtdose, tmp_path, capsys, job):
    """A dose image with NaN voxels (no dose computed or measured there) read as a dose: main's DVH put them in
    bin 0 (stats NaN, V20Gy from a curve that mixed them in; with the default bins a "more than 1e+07 bins" error),
    its gamma counted them as failures (84.21 % on this dose, no message). The RTDOSE reader refused them already."""
    plain = sitk.Cast(sitk.ReadImage(str(rtdose)), sitk.sitkFloat32) * 1e-8
    values = sitk.GetArrayFromImage(plain)
    values[:, 9, :] = np.nan  # a row through the cone
    holed = sitk.GetImageFromArray(values)
    holed.CopyInformation(plain)
    sitk.WriteImage(holed, str(tmp_path / "nan.mha"))
    sitk.WriteImage(plain, str(tmp_path / "plain.mha"))
    out = tmp_path / "out.csv"
    rs = shared_data / NELMS / "STRUCTURES_3mm" / "Cone_30_0.dcm"
    if job == "dvh":
        argv = ["dvh", "--input-rtstruct", rs, "--referenced-ct", shared_data / NELMS / "CT_3mm", "--num-bins", "500"]
        argv += ["--dose-units", "gy", "--output-stats", out, "--input-dose"]
    else:
        argv = ["gamma", "--dose-units", "gy", "--output-text", out, tmp_path / "plain.mha"]
    _refused([*argv, tmp_path / "nan.mha"], capsys, out, "nan.mha", "361 of 6859 dose values are NaN or infinite")
    assert main([str(a) for a in [*argv, tmp_path / "plain.mha"]]) == 0 and out.exists()


def test_dice_of_rtstructs_refuses_two_frames_of_reference(shared_data, tmp_path, capsys):
    """`imgsuite dice RS_a RS_b --reference-structure --test-structure` (docs/rtstruct.md's two-observer example)
    compared contours of two Frames of Reference, or rasterized them on a --referenced-ct of another, as if one:
    Dice 1.000000 on main. The review compare job refused this already; dice now does too."""
    rs = shared_data / NELMS / "STRUCTURES_3mm" / "Cone_30_0.dcm"
    other = pydicom.dcmread(rs)  # the same contours, drawn on a rescan (another frame)
    other.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.826.0.1.3680043.2.1125.8"
    for roi in other.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = "1.2.826.0.1.3680043.2.1125.8"
    other.save_as(tmp_path / "other.dcm")
    names = ["--reference-structure", "Cone_30_0", "--test-structure", "Cone_30_0"]
    out = tmp_path / "nothing"  # dice writes no file
    _refused(["dice", rs, tmp_path / "other.dcm", *names], capsys, out, "Frame of Reference mismatch", "other.dcm")
    both_other = ["dice", tmp_path / "other.dcm", tmp_path / "other.dcm", *names]
    _refused([*both_other, "--referenced-ct", shared_data / NELMS / "CT_3mm"],
             capsys, out, "other.dcm", "1.2.826.0.1.3680043.2.1125.8", "CT_3mm")  # fmt: skip
    assert main(["dice", str(rs), str(rs), *names, "--referenced-ct", str(shared_data / NELMS / "CT_3mm")]) == 0
    assert "DICE:      1.000000" in capsys.readouterr().out


def test_dvh_on_a_ct_with_a_missing_slice_offers_and_takes_resample_uneven(shared_data, rtdose, tmp_path, capsys):
    """A --referenced-ct with one slice missing is refused with a hint naming --resample-uneven, which dvh lacked
    (an argparse error followed); with it, the CT is resampled to even slices and the DVH matches the full CT's."""
    import csv

    ct = tmp_path / "gap"
    ct.mkdir()
    files = sorted((shared_data / NELMS / "CT_3mm").glob("*.dcm"), key=lambda f: float(pydicom.dcmread(
        f, stop_before_pixels=True).ImagePositionPatient[2]))  # fmt: skip
    for f in files[: len(files) // 2] + files[len(files) // 2 + 1 :]:  # the middle slice left out
        (ct / f.name).symlink_to(f)
    rs = shared_data / NELMS / "STRUCTURES_3mm" / "Cone_30_0.dcm"
    argv = ["dvh", "--input-dose", rtdose, "--input-rtstruct", rs, "--referenced-ct"]
    _refused([*argv, ct, "--output-stats", tmp_path / "x.csv"], capsys, tmp_path / "x.csv",
             "unevenly spaced", "--resample-uneven")  # fmt: skip
    stats = {}
    for name, folder, extra in (("gap", ct, ["--resample-uneven"]), ("full", shared_data / NELMS / "CT_3mm", [])):
        assert main([str(a) for a in [*argv, folder, *extra, "--output-stats", tmp_path / f"{name}.csv"]]) == 0
        with open(tmp_path / f"{name}.csv", newline="") as handle:
            stats[name] = next(r for r in csv.DictReader(handle) if r["structure"] == "Cone_30_0")
    numbers = [k for k, v in stats["full"].items() if v.replace(".", "", 1).isdigit()]
    assert len(numbers) >= 4
    for key in numbers:  # the resampled grid's DVH is the full CT's within 2 % (one slice of the cone interpolated)
        assert float(stats["gap"][key]) == pytest.approx(float(stats["full"][key]), rel=0.02, abs=0.05), key
