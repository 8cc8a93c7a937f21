"""DICOM series reading on real data and on generated edge cases."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.io import read_image, scan_folder, write_image
from SlicerImgSuite.io.dicom_write import new_study, write_ct_series


@pytest.mark.parametrize("case", ["STS_001", "STS_003", "STS_004"])
def test_ibsi_series_matches_reference_nifti(shared_data, case):
    root = shared_data / "ibsi-sts-ct-rtstruct" / case
    image = read_image(root / "dicom" / "image")
    reference = sitk.ReadImage(str(root / "nifti" / "CT_image.nii.gz"))
    assert image.GetSize() == reference.GetSize()
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(image.GetDirection(), reference.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(reference))


def test_nelms_folders_share_a_series_uid_but_are_never_merged(shared_data):
    root = shared_data / "nelms-dvh-analytic-phantom"
    one = read_image(root / "CT_1mm")
    three = read_image(root / "CT_3mm")
    assert one.GetMetaData("0020|000e") == three.GetMetaData("0020|000e")
    assert one.GetSize()[2] == len(list((root / "CT_1mm").glob("*.dcm")))
    assert three.GetSize()[2] == len(list((root / "CT_3mm").glob("*.dcm")))
    assert one.GetSpacing()[2] == pytest.approx(1.0)
    assert three.GetSpacing()[2] == pytest.approx(3.0)


def test_4d_lung_spacing_comes_from_positions_not_slice_thickness(shared_data):
    folder = shared_data / "opentps-4dct-light-lung" / "00"
    image = read_image(folder)
    first = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
    assert float(first.SliceThickness) == pytest.approx(2.0)
    assert image.GetSpacing()[2] == pytest.approx(6.0)
    assert image.GetSize() == (100, 100, 47)


def test_slices_sorted_by_position_not_file_name(tmp_path, phantom):
    # Rename files in reverse order and scramble InstanceNumber: geometry must not change.
    files = sorted(phantom.ct_dir.glob("*.dcm"))
    for n, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = (n * 7) % len(files) + 1
        ds.save_as(tmp_path / f"z{len(files) - n:03d}.dcm")
    image = read_image(tmp_path)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(phantom.ct))
    np.testing.assert_allclose(image.GetOrigin(), phantom.ct.GetOrigin(), atol=1e-4)


def _small_ct(direction=None, slope=None):
    array = (np.arange(5 * 6 * 7).reshape(5, 6, 7) % 300 - 100).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((10.0, -20.0, 30.0))
    if direction is not None:
        image.SetDirection(direction)
    return image


def test_oblique_series_round_trip(tmp_path):
    direction = sitk.VersorTransform((1, 1, 0), 0.4).GetMatrix()
    image = _small_ct(direction)
    write_ct_series(image, tmp_path / "ct", new_study())
    back = read_image(tmp_path / "ct")
    np.testing.assert_allclose(back.GetDirection(), direction, atol=1e-6)
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))


def test_rescale_slope_and_intercept_applied_per_slice(tmp_path):
    image = _small_ct()
    write_ct_series(image, tmp_path / "ct", new_study())
    files = sorted((tmp_path / "ct").glob("*.dcm"))
    for k, f in enumerate(files):  # store value v as (v - intercept) / slope with a slope that varies
        ds = pydicom.dcmread(f)
        slope, intercept = 0.5 * (k + 1), -1024.0
        stored = ds.pixel_array.astype(np.float64)
        ds.PixelData = np.rint((stored - intercept) / slope).astype(np.int16).tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = str(slope), str(intercept)
        ds.save_as(f)
    back = sitk.GetArrayFromImage(read_image(tmp_path / "ct"))
    expected = sitk.GetArrayFromImage(image).astype(np.float64)
    assert np.max(np.abs(back - expected)) <= 0.5 * len(files) / 2 + 1e-6


def test_uneven_spacing_is_an_error_unless_resampling_is_asked(tmp_path):
    image = _small_ct()
    write_ct_series(image, tmp_path / "ct", new_study())
    files = sorted((tmp_path / "ct").glob("*.dcm"))
    ds = pydicom.dcmread(files[2])  # move slice 2 up 1 mm: gaps 2.5, 3.5, 1.5, 2.5
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 1.0
    ds.save_as(files[2])
    with pytest.raises(ImgSuiteError, match="unevenly spaced") as err:
        read_image(tmp_path / "ct")
    assert str(tmp_path / "ct") in str(err.value)
    resampled = read_image(tmp_path / "ct", resample_uneven=True)
    assert resampled.GetSpacing()[2] == pytest.approx(2.5)
    assert resampled.GetSize()[2] == 5
    # the resampled slice 2 lies between the stored slices at 32.5 and 36 mm
    array = sitk.GetArrayViewFromImage(resampled).astype(float)
    original = sitk.GetArrayViewFromImage(image).astype(float)
    np.testing.assert_allclose(array[2], original[1] + (original[2] - original[1]) * (2.5 / 3.5), atol=1e-3)


def test_folder_with_two_series_lists_them_and_selects(tmp_path, phantom):
    folder = tmp_path / "mixed"
    write_ct_series(_small_ct(), tmp_path / "a", new_study())
    shutil.copytree(tmp_path / "a", folder)
    for f in phantom.ct_dir.glob("*.dcm"):
        shutil.copy(f, folder / f"p_{f.name}")
    shutil.copy(phantom.rtstruct, folder / "RS.dcm")
    series = scan_folder(folder)
    assert len(series) == 3 and sorted(s.modality for s in series) == ["CT", "CT", "RTSTRUCT"]
    with pytest.raises(ImgSuiteError, match="2 image series"):
        read_image(folder)
    uid = phantom.ct.GetMetaData("0020|000e")
    chosen = read_image(folder, series_uid=uid)
    assert chosen.GetSize() == phantom.ct.GetSize()
    with pytest.raises(ImgSuiteError, match="not an image series"):
        read_image(folder, series_uid=[s.uid for s in series if s.modality == "RTSTRUCT"][0])
    # the same from the command line (input- names: plastimatch's --series-uid sets output metadata)
    from SlicerImgSuite.cli import main

    assert main(["header", str(folder)]) == 2
    assert (
        main(["convert", "--input", str(folder), "--input-series-uid", uid, "--output-img", str(tmp_path / "c.nrrd")])
        == 0
    )
    assert sitk.ReadImage(str(tmp_path / "c.nrrd")).GetSize() == phantom.ct.GetSize()


def test_corrupt_dicom_names_the_file(tmp_path, phantom):
    folder = tmp_path / "ct"
    shutil.copytree(phantom.ct_dir, folder)
    victim = sorted(folder.glob("*.dcm"))[3]
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(ImgSuiteError) as err:
        read_image(folder)
    assert victim.name in str(err.value)


@pytest.mark.parametrize("damage", ["cut inside SeriesInstanceUID", "PixelData removed", "unknown VR"])
def test_a_slice_without_its_pixels_is_refused_not_dropped(tmp_path, phantom, damage):
    # cut inside its series UID, a slice once formed a "series" of its own and the volume came out a slice short
    folder = tmp_path / "ct"
    shutil.copytree(phantom.ct_dir, folder)
    victim = sorted(folder.glob("*.dcm"))[-1]
    if damage == "PixelData removed":
        ds = pydicom.dcmread(victim)
        del ds.PixelData
        ds.save_as(victim)
    elif damage == "unknown VR":  # a flipped bit: SeriesDescription's VR LO read as LM (once a pydicom traceback)
        data = victim.read_bytes()
        at = data.index(b"\x08\x00\x3e\x10LO")
        victim.write_bytes(data[: at + 4] + b"LM" + data[at + 6 :])
    else:
        data = victim.read_bytes()
        uid = pydicom.dcmread(victim).SeriesInstanceUID.encode()
        victim.write_bytes(data[: data.rindex(uid) + len(uid) // 2])
    with pytest.raises(ImgSuiteError, match="PixelData .7FE0,0010. is missing|cannot be read as one") as err:
        read_image(folder)
    assert victim.name in str(err.value)


def test_a_damaged_element_of_a_non_image_object_is_named_not_a_traceback(tmp_path, phantom):
    folder = tmp_path / "ct"
    shutil.copytree(phantom.ct_dir, folder)
    data = phantom.rtstruct.read_bytes()
    at = data.index(b"\x08\x00\x3e\x10LO")  # SeriesDescription, its VR made unknown
    (folder / "RS.dcm").write_bytes(data[: at + 4] + b"LM" + data[at + 6 :])
    with pytest.raises(ImgSuiteError, match="corrupt DICOM header.*LM") as err:
        read_image(folder)
    assert "RS.dcm" in str(err.value)


def test_non_dicom_files_beside_a_series_are_ignored(tmp_path, phantom):
    folder = tmp_path / "ct"
    shutil.copytree(phantom.ct_dir, folder)
    (folder / "README.txt").write_text("not dicom")
    assert read_image(folder).GetSize() == phantom.ct.GetSize()


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ImgSuiteError, match="no such file"):
        read_image(tmp_path / "nothing.nrrd")
    bad = tmp_path / "bad.nrrd"
    bad.write_text("garbage")
    with pytest.raises(ImgSuiteError) as err:
        read_image(bad)
    assert "bad.nrrd" in str(err.value)
    with pytest.raises(ImgSuiteError, match="no DICOM files"):
        read_image(tmp_path)


def test_write_image_is_atomic(tmp_path):
    out = tmp_path / "x.nrrd"
    write_image(_small_ct(), out)
    before = out.read_bytes()
    with pytest.raises(ImgSuiteError):
        write_image(_small_ct(), out, output_type="nonsense")
    with pytest.raises(ImgSuiteError):
        write_image(_small_ct(), tmp_path / "x.unknownformat")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nrrd"]


def test_cast_clamps_like_plastimatch(tmp_path):
    image = sitk.GetImageFromArray(np.array([[[-5.6, 100.4, 300.0]]], dtype=np.float32))
    write_image(image, tmp_path / "u.nrrd", output_type="uchar")
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "u.nrrd"))).ravel().tolist() == [0, 100, 255]


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_written_series_validate_with_dciodvfy(tmp_path, modality):
    """Every slice we write is a valid CT/MR image object (dicom3tools' dciodvfy: no errors)."""
    import subprocess

    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(0, 100, (3, 16, 16)).astype(np.int16))
    image.SetSpacing((1.0, 1.0, 2.0))
    write_ct_series(image, tmp_path / "series", new_study(), modality=modality)
    for path in sorted((tmp_path / "series").iterdir()):
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        assert "Error" not in report.stderr + report.stdout, report.stderr


def test_a_picture_format_that_drops_the_geometry_says_so(tmp_path, phantom, capsys):
    from SlicerImgSuite.cli import main

    # a CT written as TIFF lost its origin and slice spacing without a word (plastimatch too)
    assert main(["convert", "--input", str(phantom.ct_dir), "--output-img", str(tmp_path / "ct.tif")]) == 0
    err = capsys.readouterr().err
    assert "ct.tif: this format does not keep the image's origin, spacing" in err
    assert main(["convert", "--input", str(phantom.ct_dir), "--output-img", str(tmp_path / "ct.nrrd")]) == 0
    assert "does not keep" not in capsys.readouterr().err


def test_a_format_no_reader_knows_is_named_plainly(tmp_path):
    (tmp_path / "scan.czi").write_bytes(b"ZISRAWFILE" + bytes(100))
    with pytest.raises(ImgSuiteError, match="scan.czi: not an image format read here .*`imgsuite nuclei` reads it"):
        read_image(tmp_path / "scan.czi")  # was SimpleITK's 'Unable to determine ImageIO reader for ...'
