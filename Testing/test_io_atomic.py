"""Folder outputs: written whole or not at all, and never at the cost of what else the folder holds."""

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.io import atomic_dir, read_image
from SlicerImgSuite.io.dicom_write import write_ct_series


def _ct(value: int = 0) -> sitk.Image:
    image = sitk.GetImageFromArray(np.full((3, 8, 8), value, np.int16))
    image.SetSpacing((1.0, 1.0, 2.0))
    return image


def test_series_written_into_a_folder_keeps_the_users_other_files(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("dose prescription: 60 Gy")
    (folder / "sub").mkdir()
    (folder / "sub" / "keep.txt").write_text("x")
    write_ct_series(_ct(), folder)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["CT0001.dcm", "CT0002.dcm", "CT0003.dcm", "notes.txt", "sub"]
    assert (folder / "notes.txt").read_text() == "dose prescription: 60 Gy"
    # written again: the slices are replaced by the new ones, nothing is left beside the folder
    write_ct_series(_ct(100), folder)
    assert sitk.GetArrayFromImage(read_image(folder)).min() == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_changes_nothing_in_the_folder(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(folder) as tmp:
        (tmp / "a.txt").write_text("new")
        (tmp / "b.txt").write_text("new")
        raise RuntimeError("writer failed half-way")
    assert [p.name for p in folder.iterdir()] == ["a.txt"] and (folder / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(ImgSuiteError, match="out: output folder exists as a file"):
        write_ct_series(_ct(), tmp_path / "out")
    assert (tmp_path / "out").read_text() == "a file"
