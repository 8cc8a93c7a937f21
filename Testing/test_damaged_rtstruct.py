"""Damaged RTSTRUCTs: an error naming the file and the tag, never a traceback or a silent empty labelmap."""

from __future__ import annotations

import pydicom
import pytest
from damage import set_raw

from SlicerImgSuite.cli import main


def _contour_data(ds):
    return ds.ROIContourSequence[0].ContourSequence[0]


def _nan(ds):
    set_raw(_contour_data(ds), "ContourData", "nan\\0\\0\\1\\1\\0\\1\\0\\0")


def _inf(ds):
    set_raw(_contour_data(ds), "ContourData", "inf\\0\\0\\1\\1\\0\\1\\0\\0")


def _text(ds):
    set_raw(_contour_data(ds), "ContourData", "a\\b\\c\\1\\1\\0\\1\\0\\0")


def _huge(ds):
    set_raw(_contour_data(ds), "ContourData", "1e12\\0\\0\\1\\1\\0\\1\\0\\0")


def _no_reference(ds):
    del ds.ROIContourSequence[0].ReferencedROINumber


def _absent_roi(ds):
    ds.ROIContourSequence[0].ReferencedROINumber = 999


def _duplicate(ds):
    ds.StructureSetROISequence[1].ROINumber = ds.StructureSetROISequence[0].ROINumber


def _no_roi_sequence(ds):
    del ds.StructureSetROISequence


def _modality_ct(ds):
    ds.Modality = "CT"


@pytest.mark.parametrize(
    "mutate, words",
    [
        (_nan, "ContourData (3006,0050) holds NaN"),
        (_inf, "ContourData (3006,0050) holds NaN or infinite"),
        (_text, "ContourData (3006,0050) holds text"),
        (_huge, "ContourData (3006,0050) holds a coordinate of 1e+12"),
        (_no_reference, "has no ReferencedROINumber (3006,0084)"),
        (_absent_roi, "ROI 999, which StructureSetROISequence (3006,0020) does not declare"),
        (_duplicate, "is used by two ROIs"),
        (_no_roi_sequence, "StructureSetROISequence (3006,0020) is missing"),
        (_modality_ct, "Modality (0008,0060) is CT"),
    ],
)
def test_damaged_rtstruct_is_an_error_naming_file_and_tag(phantom, tmp_path, capsys, mutate, words):
    ds = pydicom.dcmread(phantom.rtstruct)
    mutate(ds)
    rs = tmp_path / "RS.dcm"
    ds.save_as(rs)
    out = tmp_path / "lm.nrrd"
    args = ["convert", "--input", str(rs), "--referenced-ct", str(phantom.ct_dir), "--output-labelmap", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(rs) in err and words in err, err
    assert "Traceback" not in err and not out.exists()
