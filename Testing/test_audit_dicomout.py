"""Audit of the DICOM objects written on a foreign CT: identity text, VR lengths, series consistency, ROI names."""

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.io.dicom_write import study_from_series, write_ct_series, write_rtdose
from SlicerImgSuite.registration.dicom_sro import write_spatial_registration
from SlicerImgSuite.review.export import export_seg
from SlicerImgSuite.rtstruct.structure_set import read_rtstruct
from SlicerImgSuite.rtstruct.write import reference_series, write_rtstruct

STS_CT = Path("ibsi-sts-ct-rtstruct/STS_001/dicom/image")


def _foreign_ct(shared_data, folder: Path, edit, count: int = 6) -> Path:
    """The first ``count`` STS_001 CT slices, each edited by ``edit(dataset, index)``."""
    folder.mkdir()
    for i, src in enumerate(sorted((shared_data / STS_CT).iterdir())[:count]):
        ds = pydicom.dcmread(src)
        edit(ds, i)
        ds.save_as(folder / f"{i:04d}.dcm")
    return folder


def _japanese(ds, i):
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "山田^太郎=ヤマダ^タロウ"


def _dciodvfy_errors(path) -> list[str]:
    report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]


def test_rtdose_ct_and_reg_on_a_utf8_ct_keep_the_patient_name(shared_data, tmp_path):
    # the name was written as '??^??=???^???' (no SpecificCharacterSet: pydicom fell back to Latin-1)
    ct = _foreign_ct(shared_data, tmp_path / "ct", _japanese)
    study = study_from_series(ct)
    dose = sitk.Image(8, 6, 4, sitk.sitkFloat32) + 2.0
    write_rtdose(dose, tmp_path / "RD.dcm", study)
    write_ct_series(dose, tmp_path / "out", study)
    mask = reference_series(ct).image()
    mask[10:20, 10:20, 2:4] = 1
    seg = tmp_path / "SEG.dcm"
    export_seg(seg, ct, {"GTV": mask})
    reg = write_spatial_registration(sitk.TranslationTransform(3, (1.0, 2.0, 3.0)), tmp_path / "reg", ct, ct)
    for path in [tmp_path / "RD.dcm", next((tmp_path / "out").iterdir()), reg, seg]:
        ds = pydicom.dcmread(path)
        assert (ds.SpecificCharacterSet, str(ds.PatientName)) == ("ISO_IR 192", "山田^太郎=ヤマダ^タロウ"), path
        assert ds.PatientID == "STS_001"
    # STS_001's StudyID has 17 characters (SH allows 16): copied whole, a dciodvfy error in the RTDOSE, REG and SEG
    assert [_dciodvfy_errors(p) for p in (tmp_path / "RD.dcm", reg, seg)] == [[], [], []]


@pytest.mark.parametrize(
    ("keyword", "tag"), [("StudyInstanceUID", "(0020,000D)"), ("FrameOfReferenceUID", "(0020,0052)")]
)
def test_a_series_mixing_two_frames_of_reference_is_refused(shared_data, tmp_path, keyword, tag):
    # every other slice in another study / Frame of Reference (a merge, a per-file anonymizer): the RTSTRUCT took the
    # first slice's and referenced all of them as one grid
    def edit(ds, i):
        if i % 2:
            setattr(ds, keyword, "1.2.3.4.5.6.7")

    ct = _foreign_ct(shared_data, tmp_path / "ct", edit)
    square = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0]], float)
    with pytest.raises(ImgSuiteError, match=rf"{keyword} \({tag}\) is 1\.2\.3\.4\.5\.6\.7") as error:
        write_rtstruct(tmp_path / "RS.dcm", ct, [{"name": "GTV", "contours": [square]}])
    assert "0001.dcm" in str(error.value)
    assert not (tmp_path / "RS.dcm").exists()


def _small_ct(folder: Path) -> Path:
    write_ct_series(sitk.Image(16, 16, 3, sitk.sitkInt16), folder)
    return folder


_SQUARE = np.array([[2, 2, 0], [8, 2, 0], [8, 8, 0], [2, 8, 0]], float)
_LONG = "PTV_" + "x" * 60 + "_left_lung"  # 74 characters; ROIName (LO) holds 64


def test_long_roi_names_that_would_fall_together_are_refused(tmp_path):
    # both were cut to the same 64 characters without a word: two ROIs named alike in the planning system
    ct = _small_ct(tmp_path / "ct")
    rois = [{"name": name, "contours": [_SQUARE]} for name in (_LONG, _LONG.replace("left", "right"))]
    with pytest.raises(ImgSuiteError, match="would both be written as 'PTV_x+'"):
        write_rtstruct(tmp_path / "RS.dcm", ct, rois)
    assert not (tmp_path / "RS.dcm").exists()


def test_roi_names_are_written_as_one_lo_value_and_read_back(tmp_path):
    ct = _small_ct(tmp_path / "ct")
    rois = [{"name": name, "contours": [_SQUARE]} for name in ("GTV\\boost", _LONG)]
    with pytest.warns(UserWarning, match="written as 'GTV/boost'"):
        write_rtstruct(tmp_path / "RS.dcm", ct, rois)
    ds = pydicom.dcmread(tmp_path / "RS.dcm")
    # a backslash was written as is: read back as two values ['GTV', 'boost'], a dciodvfy VM error
    assert [r.ROIName for r in ds.StructureSetROISequence] == ["GTV/boost", _LONG[:64]]
    assert _dciodvfy_errors(tmp_path / "RS.dcm") == []
    # a foreign RTSTRUCT holding one: our reader spelled the name "['GTV', 'boost']"
    masks = {roi["name"]: reference_series(ct).image() for roi in rois}
    for mask in masks.values():
        mask[2:8, 2:8, 0] = 1
    with pytest.warns(UserWarning, match="written as 'GTV/boost'"):
        export_seg(tmp_path / "SEG.dcm", ct, masks)
    labels = [s.SegmentLabel for s in pydicom.dcmread(tmp_path / "SEG.dcm").SegmentSequence]
    assert labels == ["GTV/boost", _LONG[:64]] and _dciodvfy_errors(tmp_path / "SEG.dcm") == []
    ds.StructureSetROISequence[0].ROIName = "GTV\\boost"
    ds.save_as(tmp_path / "foreign.dcm")
    assert read_rtstruct(tmp_path / "foreign.dcm").names()[0] == "GTV\\boost"


def test_rtdose_on_a_ct_lacking_optional_tags_invents_no_study_or_patient_values(shared_data, tmp_path):
    # StudyDate/Time became today, StudyID "1" and PatientSex "O" (Other): a second, contradicting study description
    keys = ("StudyDate", "StudyTime", "StudyID", "AccessionNumber", "PatientBirthDate", "PatientSex")

    def strip(ds, i):
        for key in keys:
            delattr(ds, key)

    ct = _foreign_ct(shared_data, tmp_path / "ct", strip)
    write_rtdose(sitk.Image(8, 6, 4, sitk.sitkFloat32) + 2.0, tmp_path / "RD.dcm", study_from_series(ct))
    ds = pydicom.dcmread(tmp_path / "RD.dcm")
    assert {key: ds.get(key) for key in keys} == dict.fromkeys(keys, "")
    source = pydicom.dcmread(next(ct.iterdir()), stop_before_pixels=True)
    assert (ds.StudyInstanceUID, ds.FrameOfReferenceUID) == (source.StudyInstanceUID, source.FrameOfReferenceUID)
    assert _dciodvfy_errors(tmp_path / "RD.dcm") == []


def test_seg_on_a_latin1_ct_keeps_a_chinese_segment_label(shared_data, tmp_path):
    # highdicom kept the CT's ISO_IR 100: the label was written '??_GTV'
    def latin(ds, i):
        ds.SpecificCharacterSet, ds.PatientName = "ISO_IR 100", "Müller^Jürgen"

    ct = _foreign_ct(shared_data, tmp_path / "ct", latin)
    mask = reference_series(ct).image()
    mask[10:20, 10:20, 2:4] = 1
    export_seg(tmp_path / "SEG.dcm", ct, {"肿瘤_GTV": mask})
    ds = pydicom.dcmread(tmp_path / "SEG.dcm")
    assert (ds.SegmentSequence[0].SegmentLabel, str(ds.PatientName)) == ("肿瘤_GTV", "Müller^Jürgen")
    assert _dciodvfy_errors(tmp_path / "SEG.dcm") == []
