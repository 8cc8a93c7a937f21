"""A linear transform as a DICOM Spatial Registration object (plastimatch ``xf-convert --output-dicom``).

The matrix maps the moving image's patient coordinates into the fixed image's (DICOM's direction: "registers the
referenced images to the local RCS"), so it is the inverse of the ITK transform, which maps fixed points to
moving points. Both frames of reference come from one DICOM file of each image series.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError

SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.1"


def homogeneous_matrix(transform: sitk.Transform) -> np.ndarray:
    """The 4 x 4 matrix of a linear transform: ``p -> M @ [p, 1]``.

    Examples
    --------
    >>> homogeneous_matrix(sitk.TranslationTransform(3, (1, 2, 3)))[:3, 3].tolist()
    [1.0, 2.0, 3.0]
    """
    if not transform.IsLinear():
        raise ImgSuiteError(f"a {transform.GetName()} is not linear; only a linear transform fits a matrix")
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    columns = [np.array(transform.TransformPoint(tuple(e))) - origin for e in np.eye(3)]
    out = np.eye(4)
    out[:3, :3] = np.stack(columns, axis=1)
    out[:3, 3] = origin
    return out


def matrix_type(matrix: np.ndarray) -> str:
    """RIGID (rotation), RIGID_SCALE (rotation and one scale) or AFFINE, as DICOM names them."""
    a = matrix[:3, :3]
    gram = a.T @ a
    if np.allclose(gram, np.eye(3), atol=1e-6) and np.linalg.det(a) > 0:
        return "RIGID"
    if np.allclose(gram, gram[0, 0] * np.eye(3), atol=1e-6 * gram[0, 0]) and np.linalg.det(a) > 0:
        return "RIGID_SCALE"
    return "AFFINE"


def _series(folder) -> list:
    """Headers of the DICOM images in ``folder`` (one series with a frame of reference)."""
    import pydicom

    folder = Path(folder)
    if not folder.is_dir():
        raise ImgSuiteError("not a folder of DICOM images", folder)
    headers = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM: skipped, as the series readers do
            continue
        if "FrameOfReferenceUID" in ds and "SOPInstanceUID" in ds:
            headers.append(ds)
    if not headers:
        raise ImgSuiteError("no DICOM image with a Frame of Reference UID in this folder", folder)
    return headers


def write_spatial_registration(
    transform: sitk.Transform,
    folder: str | os.PathLike,
    fixed_dicom: str | os.PathLike,
    moving_dicom: str | os.PathLike,
    *,
    series_description: str = "imgsuite registration",
) -> Path:
    """Write ``transform`` (fixed -> moving, ITK's sense) as a Spatial Registration object into ``folder``.

    Parameters
    ----------
    transform : SimpleITK.Transform
        A linear transform.
    folder : path
        Output folder (created); the file is ``REG_<SOP Instance UID>.dcm``.
    fixed_dicom, moving_dicom : path
        Folders with the fixed and the moving image series (plastimatch ``--fixed-rcs``/``--moving-rcs``).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from pydicom.uid import generate_uid

    from ..io.atomic import atomic_dir

    fixed, moving = _series(fixed_dicom), _series(moving_dicom)
    matrix = np.linalg.inv(homogeneous_matrix(transform))  # moving -> fixed, as DICOM wants
    ds = _dataset(fixed[0], series_description)
    ds.FrameOfReferenceUID = fixed[0].FrameOfReferenceUID
    ds.RegistrationSequence = [
        _registration(fixed[0].FrameOfReferenceUID, np.eye(4), fixed),
        _registration(moving[0].FrameOfReferenceUID, matrix, moving),
    ]
    ds.StudiesContainingOtherReferencedInstancesSequence = _other_studies(ds.StudyInstanceUID, moving)
    if not ds.StudiesContainingOtherReferencedInstancesSequence:
        del ds.StudiesContainingOtherReferencedInstancesSequence
    ds.ReferencedSeriesSequence = [
        _referenced_series(s) for s in _by_series(fixed + moving) if s[0].StudyInstanceUID == ds.StudyInstanceUID
    ]
    uid = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    name = f"REG_{uid}.dcm"
    with atomic_dir(folder) as tmp:
        ds.save_as(Path(tmp) / name, enforce_file_format=True)
    return Path(folder) / name


def _dataset(fixed, series_description: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    now = datetime.datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SPATIAL_REGISTRATION
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SPATIAL_REGISTRATION
    for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):  # fmt: skip
        setattr(ds, key, getattr(fixed, key, ""))
    ds.StudyInstanceUID = fixed.StudyInstanceUID
    ds.Modality = "REG"
    ds.Laterality = ""  # type 2C in General Series; dciodvfy asks for it
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.SeriesDescription = series_description
    ds.Manufacturer = "SlicerImgSuite"
    ds.PositionReferenceIndicator = getattr(fixed, "PositionReferenceIndicator", "")
    ds.InstanceNumber = 1
    ds.ContentLabel = "REGISTRATION"
    ds.ContentDescription = series_description
    ds.ContentCreatorName = ""
    ds.ContentDate = ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.ContentTime = ds.InstanceCreationTime = now.strftime("%H%M%S")
    return ds


def _registration(frame_uid: str, matrix: np.ndarray, series: list):
    from pydicom.dataset import Dataset

    m = Dataset()
    m.FrameOfReferenceTransformationMatrixType = matrix_type(matrix)
    m.FrameOfReferenceTransformationMatrix = [f"{v:.10g}" for v in matrix.ravel()]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "125024", "DCM", "Image Content-based Alignment"
    mr = Dataset()
    mr.MatrixSequence = [m]
    mr.RegistrationTypeCodeSequence = [code]
    item = Dataset()
    item.FrameOfReferenceUID = frame_uid
    item.ReferencedImageSequence = [_reference(h) for h in series]
    item.MatrixRegistrationSequence = [mr]
    return item


def _reference(header):
    from pydicom.dataset import Dataset

    r = Dataset()
    r.ReferencedSOPClassUID = header.SOPClassUID
    r.ReferencedSOPInstanceUID = header.SOPInstanceUID
    return r


def _by_series(headers: list) -> list[list]:
    groups: dict[str, list] = {}
    for h in headers:
        groups.setdefault(h.SeriesInstanceUID, []).append(h)
    return list(groups.values())


def _referenced_series(series: list):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.SeriesInstanceUID = series[0].SeriesInstanceUID
    item.ReferencedInstanceSequence = [_reference(h) for h in series]
    return item


def _other_studies(study_uid: str, headers: list) -> list:
    from pydicom.dataset import Dataset

    out = []
    for series in _by_series([h for h in headers if h.StudyInstanceUID != study_uid]):
        item = Dataset()
        item.StudyInstanceUID = series[0].StudyInstanceUID
        item.ReferencedSeriesSequence = [_referenced_series(series)]
        out.append(item)
    return out
