"""Transforms as DICOM registration objects (plastimatch ``xf-convert --output-dicom``), and back.

A linear transform becomes a Spatial Registration object. Its matrix maps the moving image's patient coordinates
into the fixed image's (DICOM's direction: "registers the referenced images to the local RCS"), so it is the
inverse of the ITK transform, which maps fixed points to moving points.

A displacement field becomes a Deformable Spatial Registration object. There DICOM's direction is ITK's: the grid
lies in the Registered RCS (the fixed image's frame) and each vector, added to its grid point, addresses the sample
point in the Source RCS (the moving image's frame), so the field is written as it is, float32 (DICOM's OF).

Both frames of reference come from the DICOM files of each image series.
"""

from __future__ import annotations

import datetime
import os
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError

SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.1"
DEFORMABLE_SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.3"


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
    grid: sitk.Image | None = None,
) -> Path:
    """Write ``transform`` (fixed -> moving, ITK's sense) as a DICOM registration object into ``folder``.

    Parameters
    ----------
    transform : SimpleITK.Transform
        A linear transform (Spatial Registration object) or a displacement field transform (Deformable Spatial
        Registration object). Another deformable transform (a B-spline) is sampled on ``grid``.
    folder : path
        Output folder (created); the file is ``REG_<SOP Instance UID>.dcm``.
    fixed_dicom, moving_dicom : path
        Folders with the fixed and the moving image series (plastimatch ``--fixed-rcs``/``--moving-rcs``).
    series_description : str
        Series and content description of the object.
    grid : SimpleITK.Image, optional
        Grid on which a deformable transform that is not a vector field is sampled.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from pydicom.uid import generate_uid

    from ..io.atomic import atomic_dir

    fixed, moving = _series(fixed_dicom), _series(moving_dicom)
    if transform.IsLinear():
        matrix = np.linalg.inv(homogeneous_matrix(transform))  # moving -> fixed, as DICOM wants
        ds = _dataset(fixed[0], series_description, SPATIAL_REGISTRATION)
        ds.RegistrationSequence = [
            _registration(fixed[0].FrameOfReferenceUID, np.eye(4), fixed),
            _registration(moving[0].FrameOfReferenceUID, matrix, moving),
        ]
    else:
        ds = _dataset(fixed[0], series_description, DEFORMABLE_SPATIAL_REGISTRATION)
        _enhanced_equipment(ds)
        ds.DeformableRegistrationSequence = [_deformable(moving, _field(transform, grid))]
    ds.FrameOfReferenceUID = fixed[0].FrameOfReferenceUID
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


def _field(transform: sitk.Transform, grid: sitk.Image | None) -> sitk.Image:
    """The displacement field of a deformable transform: its own, or sampled on ``grid``."""
    if transform.GetName() == "DisplacementFieldTransform":
        return sitk.DisplacementFieldTransform(transform).GetDisplacementField()
    if grid is None:
        raise ImgSuiteError(
            f"a {transform.GetName()} is written as a vector field: give its grid (--fixed IMG or "
            "--origin/--dim/--spacing)"
        )
    from .vf import transform_to_field

    return transform_to_field(transform, grid)


def _deformable(moving: list, field: sitk.Image):
    """The Deformable Registration Sequence item: the moving frame, its images and the vector grid."""
    from pydicom.dataset import Dataset

    if field.GetDimension() != 3 or field.GetNumberOfComponentsPerPixel() != 3:
        raise ImgSuiteError("a Deformable Spatial Registration object holds a 3D field of 3-vectors")
    vectors = sitk.GetArrayFromImage(field).astype("<f4")  # (z, y, x, 3): x fastest, as DICOM orders them
    if not np.isfinite(vectors).all():
        raise ImgSuiteError("the field holds NaN or infinite vectors")
    axes = np.array(field.GetDirection()).reshape(3, 3)
    if not np.allclose(axes.T @ axes, np.eye(3), atol=1e-6):
        raise ImgSuiteError("the field's axes are not orthogonal unit vectors; DICOM's grid needs them")
    origin = np.array(field.GetOrigin())
    if np.linalg.det(axes) < 0:  # DICOM's third axis is row x column: walk the planes the other way
        origin = origin + (field.GetSize()[2] - 1) * field.GetSpacing()[2] * axes[:, 2]
        vectors = vectors[::-1]
    grid = Dataset()
    grid.ImagePositionPatient = [_ds(v) for v in origin]
    grid.ImageOrientationPatient = [_ds(v) for v in (*axes[:, 0], *axes[:, 1])]
    grid.GridDimensions = list(field.GetSize())
    grid.GridResolution = list(field.GetSpacing())
    grid.VectorGridData = np.ascontiguousarray(vectors).tobytes()
    item = Dataset()
    item.SourceFrameOfReferenceUID = moving[0].FrameOfReferenceUID
    item.ReferencedImageSequence = [_reference(h) for h in moving]
    item.RegistrationTypeCodeSequence = [_registration_code()]
    item.DeformableRegistrationGridSequence = [grid]
    return item


def _enhanced_equipment(ds) -> None:
    """The Enhanced General Equipment module (type 1 in the deformable object): the software is the device."""
    from .. import __version__

    ds.ManufacturerModelName = "imgsuite"
    ds.DeviceSerialNumber = "0"  # no hardware: a placeholder, as the module asks for a value
    ds.SoftwareVersions = __version__


def _ds(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value) + 0.0)  # + 0.0: no "-0"


def read_spatial_registration(path: str | os.PathLike) -> sitk.Transform:
    """The transform (fixed -> moving, ITK's sense) of a DICOM Spatial or Deformable Spatial Registration file.

    A Spatial Registration object gives an affine transform from the one item whose matrix is not the identity; a
    Deformable one gives the vector field of its grid item, with its pre- and post-deformation matrices composed.

    Examples
    --------
    >>> read_spatial_registration("missing.dcm")
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: missing.dcm: no such file
    """
    import pydicom

    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("no such file", path)
    ds = pydicom.dcmread(path)
    sop = str(ds.get("SOPClassUID", ""))
    if sop == SPATIAL_REGISTRATION:
        return _read_matrix_registration(ds, path)
    if sop == DEFORMABLE_SPATIAL_REGISTRATION:
        return _read_deformable(ds, path)
    raise ImgSuiteError(f"SOP Class UID {sop or '(none)'} is not a (Deformable) Spatial Registration object", path)


def _matrix(item, path: Path) -> np.ndarray:
    values = np.array([float(v) for v in item.FrameOfReferenceTransformationMatrix])
    if values.size != 16 or not np.allclose(values[12:], [0, 0, 0, 1]):
        raise ImgSuiteError("FrameOfReferenceTransformationMatrix is not a 4 x 4 homogeneous matrix", path)
    return values.reshape(4, 4)


def _affine(matrix: np.ndarray) -> sitk.AffineTransform:
    return sitk.AffineTransform(matrix[:3, :3].ravel().tolist(), matrix[:3, 3].tolist())


def _read_matrix_registration(ds, path: Path) -> sitk.Transform:
    matrices = [
        _matrix(m, path)
        for item in ds.get("RegistrationSequence", [])
        for mr in item.get("MatrixRegistrationSequence", [])
        for m in mr.get("MatrixSequence", [])
    ]
    moved = [m for m in matrices if not np.allclose(m, np.eye(4), atol=1e-12)]
    if len(moved) > 1:
        raise ImgSuiteError(f"{len(moved)} registrations in one object; only one can be read as a transform", path)
    return _affine(np.linalg.inv(moved[0] if moved else np.eye(4)))  # DICOM's matrix is moving -> fixed


def _read_deformable(ds, path: Path) -> sitk.Transform:
    items = [i for i in ds.get("DeformableRegistrationSequence", []) if i.get("DeformableRegistrationGridSequence")]
    if len(items) != 1:
        raise ImgSuiteError(f"{len(items)} deformation grids (DeformableRegistrationSequence); one is read", path)
    item, (grid,) = items[0], items[0].DeformableRegistrationGridSequence
    size = [int(v) for v in grid.GridDimensions]
    data = np.frombuffer(grid.VectorGridData, "<f4")
    if data.size != 3 * int(np.prod(size)):
        raise ImgSuiteError(f"VectorGridData holds {data.size} values; GridDimensions {size} need 3 per point", path)
    row, col = np.array(grid.ImageOrientationPatient, float).reshape(2, 3)
    axes = np.stack([row, col, np.cross(row, col)], axis=1)
    field = sitk.GetImageFromArray(data.astype(np.float64).reshape(size[2], size[1], size[0], 3), isVector=True)
    field.SetOrigin([float(v) for v in grid.ImagePositionPatient])
    field.SetSpacing([float(v) for v in grid.GridResolution])
    field.SetDirection(axes.ravel().tolist())
    pre = item.get("PreDeformationMatrixRegistrationSequence")
    if pre and not np.allclose(m := _matrix(pre[0], path), np.eye(4), atol=1e-12):
        # source = post(pre x + D(x)): pre x - x is affine, so it adds to the field exactly on the grid
        from .vf import transform_to_field

        field = field + transform_to_field(_affine(m), field)
    transform = sitk.DisplacementFieldTransform(field)
    post = item.get("PostDeformationMatrixRegistrationSequence")
    if post and not np.allclose(m := _matrix(post[0], path), np.eye(4), atol=1e-12):
        return sitk.CompositeTransform([_affine(m), transform])  # the field first, then the post matrix
    return transform


def _dataset(fixed, series_description: str, sop_class: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from ..io.dicom_write import copied_study_value

    now = datetime.datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    # UTF-8, as an RTSTRUCT: ISO_IR 100 (Latin-1) wrote a Japanese patient name as '??^??'
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):  # fmt: skip
        with warnings.catch_warnings():  # the source's own SH overflows are cut, not reported
            warnings.simplefilter("ignore")
            setattr(ds, key, copied_study_value(key, getattr(fixed, key, "")))
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
    mr = Dataset()
    mr.MatrixSequence = [m]
    mr.RegistrationTypeCodeSequence = [_registration_code()]
    item = Dataset()
    item.FrameOfReferenceUID = frame_uid
    item.ReferencedImageSequence = [_reference(h) for h in series]
    item.MatrixRegistrationSequence = [mr]
    return item


def _registration_code():
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "125024", "DCM", "Image Content-based Alignment"
    return code


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
