"""Write a ``SimpleITK.Image`` as a DICOM CT (or MR) image series with pydicom: one file per slice.

Used by the demo phantom, ``imgsuite synth --output-dicom`` and ``convert --output-dicom``.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..errors import ImgSuiteError
from .atomic import atomic_dir

SOP_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
# what an object placed on an existing series' grid copies from it (same patient, study, Frame of Reference)
STUDY_KEYS = [
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID", "StudyDate",
    "StudyTime", "StudyDescription", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID",
]  # fmt: skip


def new_study(patient_name: str = "Phantom^Patient", patient_id: str = "PHANTOM001") -> dict:
    """Patient/study attributes shared by every object of one generated study (CT, RTSTRUCT, RTDOSE)."""
    now = datetime.datetime.now()
    return {
        "PatientName": patient_name,
        "PatientID": patient_id,
        "PatientBirthDate": "",
        "PatientSex": "O",
        "StudyInstanceUID": generate_uid(),
        "StudyID": "1",
        "StudyDate": now.strftime("%Y%m%d"),
        "StudyTime": now.strftime("%H%M%S"),
        "AccessionNumber": "",
        "ReferringPhysicianName": "",
        "FrameOfReferenceUID": generate_uid(),
    }


def write_ct_series(
    image: sitk.Image,
    folder: str | os.PathLike,
    study: dict | None = None,
    modality: str = "CT",
    series_description: str = "SlicerImgSuite",
    series_number: int = 1,
) -> list[pydicom.Dataset]:
    """Write ``image`` (values in HU for CT) as one DICOM file per slice in ``folder``.

    Parameters
    ----------
    image : SimpleITK.Image
        3D scalar image, LPS, any direction cosines; values are rounded to int16.
    folder : path
        Created (or replaced) atomically.
    study : dict, optional
        Patient/study/frame-of-reference attributes from :func:`new_study`; a new study by default.

    Returns
    -------
    list of pydicom.Dataset
        The written slices (without pixel data), first slice first: what an RTSTRUCT references.
    """
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError(f"a DICOM series needs a 3D scalar image, got {image.GetDimension()}D")
    if modality not in SOP_CLASS:
        raise ImgSuiteError(f"cannot write modality {modality!r}; use one of {', '.join(SOP_CLASS)}")
    study = dict(study or new_study())
    array = sitk.GetArrayViewFromImage(image)
    if array.min(initial=0) < -32768 or array.max(initial=0) > 32767:
        raise ImgSuiteError("values do not fit 16-bit DICOM pixels (-32768..32767)")
    pixels = np.rint(array).astype(np.int16)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = image.GetSpacing()
    series_uid = generate_uid()
    headers = []
    with atomic_dir(folder) as tmp:
        for k in range(pixels.shape[0]):
            position = image.TransformIndexToPhysicalPoint((0, 0, k))
            ds = _slice_dataset(study, modality, series_uid, series_description, series_number)
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
            ds.ImageOrientationPatient = [f"{v:.8f}" for v in np.concatenate([direction[:, 0], direction[:, 1]])]
            ds.SliceLocation = f"{float(np.dot(position, np.cross(direction[:, 0], direction[:, 1]))):.6f}"
            ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
            ds.SliceThickness = f"{spacing[2]:.6f}"
            ds.Rows, ds.Columns = pixels.shape[1], pixels.shape[2]
            ds.PixelData = pixels[k].tobytes()
            ds.save_as(Path(tmp) / f"{modality}{k + 1:04d}.dcm", enforce_file_format=True)
            del ds.PixelData
            headers.append(ds)
    return headers


def _slice_dataset(study: dict, modality: str, series_uid: str, description: str, number: int) -> pydicom.Dataset:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SOP_CLASS[modality]
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    for key, value in study.items():
        setattr(ds, key, value)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.SeriesDate, ds.SeriesTime = study.get("StudyDate", ""), study.get("StudyTime", "")
    ds.Manufacturer = "SlicerImgSuite"
    ds.PositionReferenceIndicator = ""
    ds.Laterality = ""  # General Series, type 2C: empty (no paired organ is named)
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU" if modality == "CT" else "US"
    if modality == "CT":
        ds.KVP = ""
    else:
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "SE", "NONE", "", "3D"
        ds.EchoTime, ds.RepetitionTime, ds.EchoTrainLength = "", "", ""
    ds.PatientPosition = "HFS"
    ds.AcquisitionNumber = 1
    return ds


def study_from_file(path: str | os.PathLike) -> dict:
    """Patient, study and Frame of Reference attributes of one DICOM file (a CT slice, an RTDOSE ...)."""
    import warnings

    try:
        first = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:
        raise ImgSuiteError(f"cannot read DICOM header ({type(exc).__name__}: {exc})", path) from None
    study = {}
    with warnings.catch_warnings():  # a source's own VR overflows are its business
        warnings.simplefilter("ignore")
        for key in STUDY_KEYS:
            value = first.get(key)
            if value is not None and (value != "" or not key.endswith("UID")):
                study[key] = value
    return study


def study_from_series(folder: str | os.PathLike, series_uid: str | None = None, modality: str | None = None) -> dict:
    """The study of the image series in ``folder`` (what an object placed on its grid belongs to)."""
    from .dicom_series import scan_folder, select_series

    info = select_series(folder, scan_folder(folder), series_uid, modality)
    return new_study() | study_from_file(info.files[0])


# RT Dose Storage
RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"


def write_rtdose(
    dose: sitk.Image,
    path: str | os.PathLike,
    study: dict,
    description: str = "SlicerImgSuite dose",
    *,
    summation_type: str = "PLAN",
    plan_uid: str | None = None,
    fraction_group: str | int | None = None,
    bits: int = 16,
    series_number: int = 3,
) -> pydicom.Dataset:
    """Write a dose image (Gy) as a DICOM RTDOSE: multi-frame unsigned integers with DoseGridScaling.

    DoseGridScaling is chosen so that the maximum dose uses the whole integer range (16 bits by
    default: 1/65535 of the maximum per step; ``bits=32`` for finer steps). The frames are the image's
    slices; GridFrameOffsetVector holds their offsets from the first frame along the slice normal (the
    usual "relative" convention). ``study`` (:func:`new_study`, :func:`study_from_series`) gives the
    patient, study and Frame of Reference: give the CT's. The dose references the plan ``plan_uid``
    (a new UID when none: the standard needs a plan reference for a PLAN dose) and, for a FRACTION
    dose, the plan's fraction group ``fraction_group`` (1 by default).

    Examples
    --------
    ::

        write_rtdose(dose, "RD.dcm", study_from_series("CT/"))
    """
    from .atomic import atomic_path

    if bits not in (16, 32):
        raise ImgSuiteError(f"an RTDOSE holds 16 or 32 bits per value, not {bits}", path)
    if dose.GetDimension() != 3 or dose.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError("an RTDOSE needs a 3D scalar dose", path)
    array = sitk.GetArrayViewFromImage(dose).astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ImgSuiteError("the dose holds NaN or infinite values", path)
    if array.min(initial=0) < 0:
        raise ImgSuiteError(f"dose must not be negative (minimum {array.min():g} Gy)", path)
    top = float(2**bits - 1)
    scaling = max(float(array.max(initial=0)), 1e-9) / top
    stored = np.clip(np.rint(array / scaling), 0, top).astype(np.uint16 if bits == 16 else np.uint32)
    ds = _rtdose_dataset(study, description, series_number)
    _rtdose_geometry(ds, dose, stored, bits)
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation_type or "PLAN"
    ds.DoseGridScaling = f"{scaling:.10g}"
    plan = pydicom.Dataset()
    plan.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"  # RT Plan Storage
    plan.ReferencedSOPInstanceUID = plan_uid or generate_uid()
    if ds.DoseSummationType == "FRACTION":
        group = pydicom.Dataset()
        group.ReferencedFractionGroupNumber = str(fraction_group or 1)
        plan.ReferencedFractionGroupSequence = [group]
    ds.ReferencedRTPlanSequence = [plan]
    ds.PixelData = stored.tobytes()
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return ds


def _rtdose_dataset(study: dict, description: str, series_number: int) -> pydicom.Dataset:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTDOSE_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = RTDOSE_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTDOSE"
    for key, value in study.items():
        setattr(ds, key, value)
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.Manufacturer = "SlicerImgSuite"
    ds.OperatorsName = ""
    ds.InstanceNumber = 1
    ds.PositionReferenceIndicator = ""
    return ds


def _rtdose_geometry(ds: pydicom.Dataset, dose: sitk.Image, stored: np.ndarray, bits: int) -> None:
    direction = np.array(dose.GetDirection()).reshape(3, 3)
    ds.ImagePositionPatient = [f"{v:.6f}" for v in dose.GetOrigin()]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in np.concatenate([direction[:, 0], direction[:, 1]])]
    ds.PixelSpacing = [f"{dose.GetSpacing()[1]:.6f}", f"{dose.GetSpacing()[0]:.6f}"]
    ds.SliceThickness = ""
    ds.NumberOfFrames = stored.shape[0]
    ds.FrameIncrementPointer = pydicom.tag.Tag(0x3004, 0x000C)
    ds.GridFrameOffsetVector = [f"{k * dose.GetSpacing()[2]:.6f}" for k in range(stored.shape[0])]
    ds.Rows, ds.Columns = stored.shape[1], stored.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
