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


def write_rtdose(dose: sitk.Image, path: str | os.PathLike, study: dict, description: str = "SlicerImgSuite dose"):
    """Write a dose image (Gy) as a DICOM RTDOSE: multi-frame uint32 with DoseGridScaling.

    The frames are the image's slices; GridFrameOffsetVector holds their offsets from the first
    frame along the slice normal (the usual "relative" convention).
    """
    from .atomic import atomic_path

    array = sitk.GetArrayViewFromImage(dose).astype(np.float64)
    if array.min(initial=0) < 0:
        raise ImgSuiteError("dose must not be negative", path)
    scaling = max(float(array.max(initial=0)), 1e-9) / 4_000_000_000
    stored = np.rint(array / scaling).astype(np.uint32)
    direction = np.array(dose.GetDirection()).reshape(3, 3)
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.2"
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTDOSE"
    for key, value in study.items():
        setattr(ds, key, value)
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 3
    ds.SeriesDescription = description
    ds.Manufacturer = "SlicerImgSuite"
    ds.InstanceNumber = 1
    ds.PositionReferenceIndicator = ""
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
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    ds.DoseGridScaling = f"{scaling:.10g}"
    ds.PixelData = stored.tobytes()
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return ds
