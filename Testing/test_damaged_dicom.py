"""Damaged DICOM series: every slice is checked before use; an error names the file and the tag."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from damage import cut_pixels, damage_file

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.io import read_image


@pytest.fixture
def ct_copy(phantom, tmp_path):
    folder = tmp_path / "ct"
    shutil.copytree(phantom.ct_dir, folder)
    return folder, sorted(folder.glob("*.dcm"))


@pytest.mark.parametrize(
    "keyword, text, words",
    [
        ("ImagePositionPatient", "nan\\0\\0", "ImagePositionPatient"),
        ("ImagePositionPatient", "inf\\0\\0", "ImagePositionPatient"),
        ("ImagePositionPatient", "1\\2", "3 are needed"),
        ("ImagePositionPatient", "one\\two\\three", "holds text"),
        ("ImagePositionPatient", None, "ImagePositionPatient (0020,0032) is missing"),
        ("ImageOrientationPatient", "1\\0\\0\\0\\nan\\0", "ImageOrientationPatient"),
        ("ImageOrientationPatient", "1\\0\\0\\1\\0\\0", "orthogonal"),
        ("PixelSpacing", "nan\\1", "PixelSpacing"),
        ("PixelSpacing", "0\\1", "positive"),
        ("PixelSpacing", "-1\\-1", "positive"),
        ("PixelSpacing", "1", "2 are needed"),
        ("RescaleSlope", "nan", "RescaleSlope"),
        ("RescaleSlope", "0", "RescaleSlope"),
        ("RescaleSlope", "abc", "holds text"),
        ("RescaleIntercept", "1e30", "RescaleIntercept"),
        ("BitsAllocated", None, "BitsAllocated"),
    ],
)
def test_bad_tag_in_one_slice_is_an_error_naming_file_and_tag(ct_copy, tmp_path, capsys, keyword, text, words):
    folder, files = ct_copy
    victim = files[len(files) // 2]
    damage_file(victim, keyword, text)
    out = tmp_path / "out.nrrd"
    assert main(["convert", "--input", str(folder), "--output-img", str(out)]) == 2
    err = capsys.readouterr().err
    assert victim.name in err and words in err, err
    assert "Traceback" not in err and not out.exists()


def test_twelve_bit_allocation_is_refused(ct_copy):
    folder, files = ct_copy
    ds = pydicom.dcmread(files[1])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 12, 12, 11
    ds.save_as(files[1])
    with pytest.raises(ImgSuiteError, match=r"CT\d+\.dcm: BitsAllocated \(0028,0100\) = 12"):
        read_image(folder)


@pytest.mark.parametrize("how", ["element", "file"])
def test_truncated_slice_is_never_read_as_zeros(ct_copy, how):
    folder, files = ct_copy
    victim = files[2]
    if how == "element":
        cut_pixels(victim, 0.5)
    else:
        victim.write_bytes(victim.read_bytes()[:-300])
    with pytest.raises(ImgSuiteError, match=rf"{victim.name}: .*truncated slice"):
        read_image(folder)


def test_patient_folder_is_searched_recursively_and_the_series_named(phantom, tmp_path):
    nested = tmp_path / "patient" / "study1" / "series7"
    shutil.copytree(phantom.ct_dir, nested)
    (tmp_path / "patient" / "README.txt").write_text("not DICOM")
    with pytest.warns(UserWarning, match=r"using series .* found in study1/series7"):
        image = read_image(tmp_path / "patient")
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(phantom.ct))


def test_top_level_series_wins_over_subfolders(phantom, tmp_path):
    shutil.copytree(phantom.ct_dir, tmp_path / "ct")
    shutil.copytree(phantom.ct_dir, tmp_path / "ct" / "copy")  # never merged in: the top level has a series
    assert read_image(tmp_path / "ct").GetSize() == phantom.ct.GetSize()
