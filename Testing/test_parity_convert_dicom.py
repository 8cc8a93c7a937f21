"""``convert --output-dicom`` of an image (issue 16 item 1), side by side with Debian plastimatch 1.9.4.

What plastimatch 1.9.4 does that ours does better (checked here): it truncates a float image to its rescale
step (error up to one slope; ours rounds, at most half), drops --study-description and most --metadata tags,
and writes any --patient-pos text (``XYZ``) it is given. The images are a real CT (IBSI STS_001, NIfTI) and
the same CT resampled onto an oblique grid (fractional values, so a fractional rescale slope).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.io import read_image


@pytest.fixture(scope="module")
def ct(shared_data):
    return sitk.ReadImage(str(shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "nifti" / "CT_image.nii.gz"))


@pytest.fixture(scope="module")
def oblique(ct, tmp_path_factory):
    """The real CT resampled (linear) onto a grid rotated about two axes: float values with fractions."""
    grid = sitk.Image(40, 36, 12, sitk.sitkFloat32)
    grid.SetSpacing((1.1, 1.3, 2.7))
    grid.SetDirection(sitk.VersorTransform((1, 2, 0.5), 0.35).GetMatrix())
    centre = ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in ct.GetSize()])
    offset = grid.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in grid.GetSize()])
    grid.SetOrigin([o + c - f for o, c, f in zip(grid.GetOrigin(), centre, offset)])
    image = sitk.Resample(sitk.Cast(ct, sitk.sitkFloat32), grid, sitk.Transform(), sitk.sitkLinear, -1000.0)
    path = tmp_path_factory.mktemp("oblique") / "oblique.nrrd"
    sitk.WriteImage(image, str(path))
    return path


def _convert(*argv) -> int:
    return main(["convert", "-q", *[str(a) for a in argv]])


def _slices(folder):
    return sorted(folder.glob("*.dcm"))


def _assert_same_geometry(back, image, atol=1e-6):
    assert back.GetSize() == image.GetSize()
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=10 * atol)
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), rtol=1e-9, atol=atol)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-3 * atol)


def test_oblique_float_image_round_trips_within_half_a_rescale_step(oblique, tmp_path):
    image = sitk.ReadImage(str(oblique))
    assert _convert("--input", oblique, "--output-dicom", tmp_path / "dcm") == 0
    first = pydicom.dcmread(_slices(tmp_path / "dcm")[0], stop_before_pixels=True)
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    slope = float(first.RescaleSlope)
    assert slope == pytest.approx((values.max() - values.min()) / 65534, rel=1e-9)  # the whole int16 range used
    back = read_image(tmp_path / "dcm")
    _assert_same_geometry(back, image)
    error = np.abs(sitk.GetArrayFromImage(back).astype(np.float64) - values)
    assert error.max() <= slope / 2 + 1e-4 * np.abs(values).max() * 1e-3
    assert error.max() > 0  # fractions are quantised: the bound above is what holds, not equality


def test_integer_ct_is_exact_and_every_slice_dciodvfy_clean(ct, tmp_path):
    small = ct[60:100, 50:90, 10:16]  # real HU values (float32 file, integer values)
    sitk.WriteImage(small, str(tmp_path / "ct.nrrd"))
    assert (
        _convert("--input", tmp_path / "ct.nrrd", "--output-dicom", tmp_path / "dcm", "--filenames-without-uids") == 0
    )
    files = _slices(tmp_path / "dcm")
    assert [f.name for f in files] == [f"CT{k:04d}.dcm" for k in range(1, 7)]
    assert pydicom.dcmread(files[0]).RescaleSlope == 1
    back = read_image(tmp_path / "dcm")
    _assert_same_geometry(back, small)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(small))
    for path in files:
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        assert "Error" not in report.stdout + report.stderr, report.stderr


def test_left_handed_image_keeps_its_voxels_in_space(ct, tmp_path):
    small = ct[60:70, 50:58, 10:15]
    flipped = sitk.Flip(small, [False, False, True], flipAboutOrigin=False)  # same voxels, direction z = -1
    flipped.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    flipped.SetOrigin(small.TransformIndexToPhysicalPoint((0, 0, 4)))
    sitk.WriteImage(flipped, str(tmp_path / "lh.nrrd"))
    assert _convert("--input", tmp_path / "lh.nrrd", "--output-dicom", tmp_path / "dcm") == 0
    back = read_image(tmp_path / "dcm")
    _assert_same_geometry(back, small)  # slices in DICOM's (right-handed) order
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(small))


def test_metadata_options_are_written(ct, tmp_path):
    sitk.WriteImage(ct[60:70, 50:60, 10:13], str(tmp_path / "ct.nrrd"))
    assert _convert(
        "--input", tmp_path / "ct.nrrd", "--output-dicom", tmp_path / "dcm", "--patient-name", "Doe^Jane",
        "--patient-id", "J001", "--patient-pos", "ffp", "--series-description", "planning CT", "--series-number", 7,
        "--study-description", "pelvis", "--modality", "mr", "--metadata", "0008,0080=General Hospital",
        "--metadata", "PatientBirthDate=19700101", "--metadata", "(0020,0010)=S42",
        "--series-uid", "1.2.826.0.1.3680043.8.498.1234",
    ) == 0  # fmt: skip
    files = _slices(tmp_path / "dcm")
    ds = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert {d.SeriesInstanceUID for d in ds} == {ds[0].SeriesInstanceUID} and len(files) == 3
    d = ds[0]
    assert (d.PatientName, d.PatientID, d.PatientPosition, d.SeriesDescription) == (
        "Doe^Jane",
        "J001",
        "FFP",
        "planning CT",
    )
    assert (d.SeriesNumber, d.StudyDescription, d.Modality, d.InstitutionName) == (
        7,
        "pelvis",
        "MR",
        "General Hospital",
    )
    assert (d.PatientBirthDate, d.StudyID) == ("19700101", "S42")
    assert d.SeriesInstanceUID == "1.2.826.0.1.3680043.8.498.1234"
    assert d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and files[0].name == f"MR0001_{d.SOPInstanceUID}.dcm"


def test_referenced_ct_gives_patient_study_and_frame_unless_regenerated(ct, shared_data, tmp_path):
    reference = shared_data / "ibsi-sts-ct-rtstruct" / "STS_003" / "dicom" / "image"
    source = pydicom.dcmread(sorted(reference.glob("*.dcm"))[0], stop_before_pixels=True)
    sitk.WriteImage(ct[60:70, 50:60, 10:12], str(tmp_path / "ct.nrrd"))
    assert _convert("--input", tmp_path / "ct.nrrd", "--output-dicom", tmp_path / "same", "--dicom-dir", reference) == 0
    assert _convert("--input", tmp_path / "ct.nrrd", "--output-dicom", tmp_path / "new", "--referenced-ct", reference,
                    "--regenerate-study-uids", "--patient-id", "OTHER") == 0  # fmt: skip
    same = pydicom.dcmread(_slices(tmp_path / "same")[0], stop_before_pixels=True)
    new = pydicom.dcmread(_slices(tmp_path / "new")[0], stop_before_pixels=True)
    for key in ("PatientName", "PatientID", "StudyInstanceUID", "FrameOfReferenceUID", "StudyDescription"):
        assert same[key].value == source[key].value, key
    assert new.PatientName == source.PatientName and new.PatientID == "OTHER"
    assert new.StudyInstanceUID != source.StudyInstanceUID and new.FrameOfReferenceUID != source.FrameOfReferenceUID
    assert same.SeriesInstanceUID != source.SeriesInstanceUID


def test_dicom_input_in_a_subfolder_is_named_and_keeps_its_study(shared_data, tmp_path, capsys):
    series = shared_data / "ibsi-sts-ct-rtstruct" / "STS_004" / "dicom" / "image"
    shutil.copytree(series, tmp_path / "patient" / "study" / "series")
    assert main(["convert", "--input", str(tmp_path / "patient"), "--output-dicom", str(tmp_path / "dcm"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "using series" in err and "study/series" in err
    source = pydicom.dcmread(sorted(series.glob("*.dcm"))[0], stop_before_pixels=True)
    ours = pydicom.dcmread(_slices(tmp_path / "dcm")[0], stop_before_pixels=True)
    assert (ours.PatientID, ours.StudyInstanceUID, ours.FrameOfReferenceUID) == (
        source.PatientID, source.StudyInstanceUID, source.FrameOfReferenceUID)  # fmt: skip
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(read_image(tmp_path / "dcm")), sitk.GetArrayFromImage(read_image(series))
    )


def test_plastimatch_reads_our_series_to_the_same_voxels_and_ours_is_closer(oblique, tmp_path):
    image = sitk.ReadImage(str(oblique))
    assert _convert("--input", oblique, "--output-dicom", tmp_path / "ours") == 0
    for args in (["--input", tmp_path / "ours", "--output-img", tmp_path / "ours_by_plm.nrrd"],
                 ["--input", oblique, "--output-dicom", tmp_path / "plm"],
                 ["--input", tmp_path / "plm", "--output-img", tmp_path / "plm_by_plm.nrrd"]):  # fmt: skip
        subprocess.run(["plastimatch", "convert", *map(str, args)], check=True, capture_output=True, timeout=120)
    by_plastimatch = sitk.ReadImage(str(tmp_path / "ours_by_plm.nrrd"))
    _assert_same_geometry(by_plastimatch, image, atol=1e-5)  # plastimatch's reader: single precision
    ours = read_image(tmp_path / "ours")
    np.testing.assert_allclose(sitk.GetArrayFromImage(by_plastimatch), sitk.GetArrayFromImage(ours), atol=1e-3)
    values = sitk.GetArrayFromImage(image)
    our_error = np.abs(sitk.GetArrayFromImage(by_plastimatch) - values).max()
    their_error = np.abs(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "plm_by_plm.nrrd"))) - values).max()
    assert our_error < 0.6 * their_error  # rounding (half a step) against plastimatch's truncation (a whole step)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--metadata", "0008,0080"], "KEY=VALUE"),
        (["--metadata", "ABCD,0001=x"], "not a public DICOM tag"),
        (["--metadata", "0028,0030=1\\1"], "set by the series writer"),
        (["--metadata", "PatientBirthDate=yesterday"], "PatientBirthDate"),
        (["--metadata", "PatientName=A", "--patient-name", "B"], "--patient-name sets too"),
        (["--series-description", "x" * 70], "--series-description"),
        (["--patient-name", "Doe\\Jane"], "holds one value"),
        (["--patient-name", "Doe\x01"], "control character"),
        (["--series-number", "99999999999999"], "32-bit signed integer"),
        (["--series-uid", "1.2.abc"], "--series-uid: SeriesInstanceUID"),
    ],
)
def test_bad_metadata_is_one_line_and_writes_nothing(ct, tmp_path, capsys, extra, message):
    sitk.WriteImage(ct[60:64, 50:54, 10:12], str(tmp_path / "ct.nrrd"))
    assert _convert("--input", tmp_path / "ct.nrrd", "--output-dicom", tmp_path / "dcm", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("imgsuite convert: error:")
    assert not (tmp_path / "dcm").exists()


def _image(array, direction=None, dtype=np.float32):
    image = sitk.GetImageFromArray(np.asarray(array, dtype=dtype))
    if direction:
        image.SetDirection(direction)
    return image


@pytest.mark.parametrize(
    "image, message",
    [
        (_image(np.full((2, 3, 3), np.nan)), "NaN or infinite"),
        (_image(np.zeros((2, 3, 3)), (1, 0.3, 0, 0, 1, 0, 0, 0, 1)), "not orthonormal"),
        (_image(np.zeros((3, 3))), "3D scalar image"),
    ],
)
def test_images_a_series_cannot_hold_are_refused(tmp_path, capsys, image, message):
    sitk.WriteImage(image, str(tmp_path / "bad.nrrd"))
    assert _convert("--input", tmp_path / "bad.nrrd", "--output-dicom", tmp_path / "dcm", "--output-img",
                    tmp_path / "also.nrrd") == 2  # fmt: skip
    err = capsys.readouterr().err
    assert message in err and "bad.nrrd: --output-dicom" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "dcm").exists() and not (tmp_path / "also.nrrd").exists()


def test_output_over_the_input_series_is_refused(shared_data, tmp_path, capsys):
    series = tmp_path / "series"
    shutil.copytree(shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "dicom" / "image", series)
    before = sorted(p.name for p in series.iterdir())
    assert _convert("--input", series, "--output-dicom", series) == 2
    assert "--output-dicom" in capsys.readouterr().err
    assert sorted(p.name for p in series.iterdir()) == before
    (tmp_path / "file").write_text("x")
    assert _convert("--input", series, "--output-dicom", tmp_path / "file") == 2
    assert (tmp_path / "file").read_text() == "x"


def test_plastimatch_reads_the_series_our_writer_makes_with_short_values(phantom, tmp_path):
    """The demo phantom's CT (origin -152 mm: values shorter than their fixed-width slots) read by plastimatch."""
    out = tmp_path / "ct.nrrd"
    subprocess.run(["plastimatch", "convert", "--input", str(phantom.ct_dir), "--output-img", str(out)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    theirs = sitk.ReadImage(str(out))
    _assert_same_geometry(theirs, phantom.ct, atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(theirs), sitk.GetArrayFromImage(phantom.ct))


def test_names_beyond_ascii_are_utf8_and_dciodvfy_clean(ct, tmp_path):
    sitk.WriteImage(ct[60:64, 50:54, 10:11], str(tmp_path / "ct.nrrd"))
    assert _convert("--input", tmp_path / "ct.nrrd", "--output-dicom", tmp_path / "dcm", "--patient-name",
                    "Müller^Jürgen", "--study-description", "山田") == 0  # fmt: skip
    path = _slices(tmp_path / "dcm")[0]
    ds = pydicom.dcmread(path)
    assert (ds.SpecificCharacterSet, ds.PatientName, ds.StudyDescription) == ("ISO_IR 192", "Müller^Jürgen", "山田")
    report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    assert "Error" not in report.stdout + report.stderr, report.stderr


def test_study_folder_with_the_ct_below_an_rtstruct_reads_the_ct(shared_data, tmp_path, capsys):
    """plastimatch 1.9.4 takes such a folder for its RTSTRUCT, exits 0 and writes no --output-img; ours reads the CT."""
    source = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001"
    shutil.copytree(source / "dicom" / "image", tmp_path / "study" / "CT")
    shutil.copy(source / "dicom" / "mask" / "RS.dcm", tmp_path / "study" / "RS.dcm")
    assert main(["convert", "--input", str(tmp_path / "study"), "--output-img", str(tmp_path / "ours.nrrd"), "-q"]) == 0
    assert "using series" in capsys.readouterr().err
    subprocess.run(["plastimatch", "convert", "--input", str(tmp_path / "study"), "--output-img",
                    str(tmp_path / "plm.nrrd")], check=True, capture_output=True, timeout=120)  # fmt: skip
    assert not (tmp_path / "plm.nrrd").exists()
    ours, reference = (
        sitk.ReadImage(str(tmp_path / "ours.nrrd")),
        sitk.ReadImage(str(source / "nifti" / "CT_image.nii.gz")),
    )
    _assert_same_geometry(ours, reference, atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(reference))
