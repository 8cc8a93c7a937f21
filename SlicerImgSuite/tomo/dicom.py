"""DICOM projection images: a folder of single-frame RT Image, DX, XA or RF files as a projection set.

Geometry per file (patient head first supine, couch at 0, LPS mm):

- RT Image (IEC 61217): ``GantryAngle``, ``RadiationMachineSAD``, ``RTImageSID``, ``RTImagePosition``
  (receptor-plane x, y of the first pixel), ``ImagePlanePixelSpacing``, optional
  ``XRayImageReceptorTranslation`` (x, y shift of the panel), ``RTImageOrientation`` and
  ``IsocenterPosition``. The source at gantry angle ``a`` is at ``iso + SAD (sin a, -cos a, 0)``
  (0 = anterior, 90 = patient left); columns run along the receptor's X, rows along its -Y (feet).
- DX / XA / RF (C-arm): ``DistanceSourceToDetector``, ``DistanceSourceToPatient`` (source to isocentre),
  ``PositionerPrimaryAngle`` (LAO +), ``PositionerSecondaryAngle`` (cranial +), ``ImagerPixelSpacing``.
  At 0/0 the detector is anterior, columns run to the patient's left and rows to the feet; the panel is
  centred on the central ray.

Pixel values are ``stored x RescaleSlope + RescaleIntercept`` and are taken as line integrals (DRRs);
take the log of raw radiographs first (``imgsuite tomo --log``).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..errors import ImgSuiteError
from ..io.atomic import atomic_dir
from .geometry import Geometry
from .projset import ProjectionSet

RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"


def dicom_files(folder: Path) -> list[Path]:
    """Files in ``folder`` that start like DICOM (``DICM`` at byte 128)."""
    out = []
    for f in sorted(folder.iterdir()):
        if f.is_file():
            with open(f, "rb") as fh:
                if fh.read(132)[128:] == b"DICM":
                    out.append(f)
    return out


def read_dicom_projections(folder: str | os.PathLike) -> ProjectionSet:
    """Read every DICOM projection image in ``folder``, ordered by acquisition angle.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from SlicerImgSuite.tomo.geometry import arc_sweep
    >>> g = arc_sweep(3, 20, sad=1000, sid=1500, dims=(4, 3), pixel_size=(1, 1), rotation_axis=(0, 0, 1))
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "rt"
    >>> write_rtimage_projections(ProjectionSet(np.ones((3, 3, 4), np.float32), g), d)
    >>> ps = read_dicom_projections(d)
    >>> ps.images.shape, bool(np.allclose(ps.geometry.sources, g.sources))
    ((3, 3, 4), True)
    """
    folder = Path(folder)
    files = dicom_files(folder) if folder.is_dir() else []
    if not files:
        raise ImgSuiteError("no DICOM files in this folder", folder)
    views = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except Exception as exc:  # pydicom raises many types on corrupt files
            raise ImgSuiteError(f"cannot read DICOM file: {exc}", f) from None
        views.append(_view(ds, f))
    dims, pixel = views[0][1].shape[::-1], views[0][3]
    for _, image, _, ps, f, _ in views:
        if image.shape[::-1] != dims or not np.allclose(ps, pixel, rtol=1e-4):
            raise ImgSuiteError(f"projection size or pixel pitch differs from the first file ({dims}, {pixel})", f)
    views.sort(key=lambda v: v[0])
    geometry = Geometry(
        sources=[v[2][0] for v in views],
        centers=[v[2][1] for v in views],
        u_axes=[v[2][2] for v in views],
        v_axes=[v[2][3] for v in views],
        pixel_size=pixel,
        dims=dims,
        image_center=[v[5] for v in views],
    )
    return ProjectionSet(np.stack([v[1] for v in views]).astype(np.float32), geometry)


def _numbers(ds, keyword: str, count: int, f: Path, default=None) -> np.ndarray:
    value = ds.get(keyword, default)
    if value is None:
        raise ImgSuiteError(f"{ds.get('Modality', '?')} image has no {keyword}: cannot place the projection", f)
    values = np.atleast_1d(np.asarray(value, float))
    if values.size != count:
        raise ImgSuiteError(f"{keyword} needs {count} values, got {values.tolist()}", f)
    return values


def _pixels(ds, f: Path) -> np.ndarray:
    if "PixelData" not in ds:
        raise ImgSuiteError("DICOM file has no pixel data", f)
    try:
        image = ds.pixel_array.astype(np.float64)
    except Exception as exc:
        raise ImgSuiteError(f"cannot decode pixel data: {exc}", f) from None
    if image.ndim != 2:
        raise ImgSuiteError(f"expected one 2-D projection per file, got pixel array {image.shape}", f)
    return image * float(ds.get("RescaleSlope", 1.0)) + float(ds.get("RescaleIntercept", 0.0))


def _check_patient(ds, f: Path) -> None:
    position = ds.get("PatientPosition", "HFS") or "HFS"
    couch = float(ds.get("PatientSupportAngle", 0.0) or 0.0)
    if position != "HFS" or abs(couch) > 1e-6:
        raise ImgSuiteError(
            f"only head-first supine with the couch at 0 is supported, got {position}, couch {couch}", f
        )


def _check_distances(sad: float, sid: float, tags: tuple, f: Path) -> None:
    """Source-isocentre within source-panel, as the plastimatch reader: swapped tags put the panel between the
    source and the patient, a magnification off by (SID/SAD)^2 that reconstructs without a word."""
    if not (np.isfinite(sad) and np.isfinite(sid) and 0 < sad <= sid):
        raise ImgSuiteError(f"need 0 < {tags[0]} <= {tags[1]}, got {sad:g} and {sid:g} mm (swapped?)", f)


def _view(ds, f: Path):
    """(sort angle, pixels, (first-pixel position, u, v ...), pixel size, file, image centre) of one file."""
    modality = ds.get("Modality", "")
    if ds.get("SOPClassUID") == RT_IMAGE or modality == "RTIMAGE":
        return _rt_image_view(ds, f)
    if modality in ("DX", "XA", "RF", "CR"):
        return _carm_view(ds, f)
    raise ImgSuiteError(f"not a projection image (modality {modality or 'missing'}; need RTIMAGE, DX, XA or RF)", f)


def _rt_image_view(ds, f: Path):
    _check_patient(ds, f)
    angle = float(_numbers(ds, "GantryAngle", 1, f)[0])
    sad = float(_numbers(ds, "RadiationMachineSAD", 1, f)[0])
    sid = float(_numbers(ds, "RTImageSID", 1, f)[0])
    _check_distances(sad, sid, ("RadiationMachineSAD", "RTImageSID"), f)
    dy, dx = _numbers(ds, "ImagePlanePixelSpacing", 2, f)
    first = _numbers(ds, "RTImagePosition", 2, f)
    shift = _numbers(ds, "XRayImageReceptorTranslation", 3, f, (0.0, 0.0, 0.0))
    orient = _numbers(ds, "RTImageOrientation", 6, f, (1.0, 0.0, 0.0, 0.0, -1.0, 0.0))
    iso = _numbers(ds, "IsocenterPosition", 3, f, (0.0, 0.0, 0.0))
    a = np.radians(angle)
    to_source = np.array([np.sin(a), -np.cos(a), 0.0])
    x_r = np.array([np.cos(a), np.sin(a), 0.0])  # IEC gantry X in LPS
    y_r = np.array([0.0, 0.0, 1.0])  # IEC gantry Y: towards the gantry = superior
    z_r = to_source
    basis = np.stack([x_r, y_r, z_r])
    u, v = orient[:3] @ basis, orient[3:] @ basis
    origin = iso - (sid - sad) * to_source + shift[0] * x_r + shift[1] * y_r
    first_pixel = origin + first[0] * x_r + first[1] * y_r
    source = iso + sad * to_source
    angle = (angle + 180.0) % 360.0 - 180.0  # sweeps through 0 sort as -20 .. 20
    return angle, _pixels(ds, f), (source, first_pixel, u, v), (dx, dy), f, (0.0, 0.0)


def _carm_view(ds, f: Path):
    _check_patient(ds, f)
    sid = float(_numbers(ds, "DistanceSourceToDetector", 1, f)[0])
    sod = float(_numbers(ds, "DistanceSourceToPatient", 1, f)[0])
    _check_distances(sod, sid, ("DistanceSourceToPatient", "DistanceSourceToDetector"), f)
    primary = np.radians(float(_numbers(ds, "PositionerPrimaryAngle", 1, f)[0]))
    secondary = np.radians(float(_numbers(ds, "PositionerSecondaryAngle", 1, f, 0.0)[0]))
    dy, dx = _numbers(ds, "ImagerPixelSpacing", 2, f)
    to_detector = np.array(
        [np.sin(primary) * np.cos(secondary), -np.cos(primary) * np.cos(secondary), np.sin(secondary)]
    )
    u = np.array([np.cos(primary), np.sin(primary), 0.0])
    v = -np.cross(to_detector, u)  # rows towards the feet at 0/0
    pixels = _pixels(ds, f)
    ic = ((pixels.shape[1] - 1) / 2.0, (pixels.shape[0] - 1) / 2.0)
    source = -sod * to_detector
    return float(np.degrees(primary)), pixels, (source, source + sid * to_detector, u, v), (dx, dy), f, ic


def write_rtimage_projections(
    projections: ProjectionSet,
    folder: str | os.PathLike,
    isocenter=(0.0, 0.0, 0.0),
    study: dict | None = None,
) -> None:
    """Write a projection set whose views turn about the superior axis (circular scans, arcs about z) as
    RT Image files, one per view (16-bit, with a rescale slope so line integrals keep 5 digits)."""
    g = projections.geometry
    iso = np.asarray(isocenter, float)
    images = np.asarray(projections.images, np.float32)
    lo, hi = float(images.min(initial=0.0)), float(images.max(initial=0.0))
    slope = (hi - lo) / 65535.0 or 1.0
    study = dict(study or {})
    series_uid, frame_uid, study_uid = generate_uid(), study.get("FrameOfReferenceUID") or generate_uid(), None
    study_uid = study.get("StudyInstanceUID") or generate_uid()
    now = datetime.datetime.now()
    with atomic_dir(folder) as tmp:
        for i in range(len(g)):
            to_source = g.sources[i] - iso
            sad = float(np.linalg.norm(to_source))
            to_source /= sad
            if abs(to_source[2]) > 1e-6:
                raise ImgSuiteError(
                    f"view {i}: the source is not in the axial plane of the isocentre; RT Image needs a gantry rotation about the superior axis",
                    folder,
                )
            angle = float(np.degrees(np.arctan2(to_source[0], -to_source[1]))) % 360.0
            x_r = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle)), 0.0])
            y_r = np.array([0.0, 0.0, 1.0])
            n = g.normals[i]
            if abs(abs(np.dot(n, -to_source)) - 1.0) > 1e-6:
                raise ImgSuiteError(
                    f"view {i}: the panel does not face the isocentre; cannot write it as RT Image", folder
                )
            sid = float(g.sid[i])
            origin = iso - (sid - sad) * to_source
            first = g.pixel_positions(i, 0.0, 0.0) - origin
            ds = pydicom.Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = RT_IMAGE
            ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.SOPClassUID, ds.SOPInstanceUID = RT_IMAGE, ds.file_meta.MediaStorageSOPInstanceUID
            ds.PatientName = study.get("PatientName", "Phantom^Patient")
            ds.PatientID = study.get("PatientID", "PHANTOM001")
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
            ds.StudyDate = ds.ContentDate = now.strftime("%Y%m%d")
            ds.StudyTime = ds.ContentTime = now.strftime("%H%M%S")
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "RTIMAGE", 1, i + 1
            ds.ImageType = ["DERIVED", "SECONDARY", "DRR"]
            ds.ConversionType = "WSD"
            ds.RTImageLabel, ds.RTImagePlane = f"view {i + 1}", "NORMAL"
            ds.PatientPosition, ds.PatientSupportAngle = "HFS", 0.0
            ds.GantryAngle = round(angle, 6)
            ds.RadiationMachineSAD, ds.RTImageSID = round(sad, 6), round(sid, 6)
            ds.IsocenterPosition = [round(float(x), 6) for x in iso]
            ds.ImagePlanePixelSpacing = [g.pixel_size[1], g.pixel_size[0]]
            ds.RTImagePosition = [round(float(np.dot(first, x_r)), 6), round(float(np.dot(first, y_r)), 6)]
            ds.RTImageOrientation = [
                round(float(x), 9)
                for x in (g.u_axes[i] @ np.stack([x_r, y_r, to_source]).T).tolist()
                + (g.v_axes[i] @ np.stack([x_r, y_r, to_source]).T).tolist()
            ]
            ds.XRayImageReceptorTranslation = [0.0, 0.0, round(sad - sid, 6)]
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.Rows, ds.Columns = images.shape[1], images.shape[2]
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{slope:.10g}", f"{lo:.10g}", "US"
            ds.PixelIntensityRelationship = "LIN"
            stored = np.clip(np.rint((images[i] - lo) / slope), 0, 65535).astype(np.uint16)
            ds.PixelData = stored.tobytes()
            ds.save_as(tmp / f"RI{i + 1:04d}.dcm", enforce_file_format=True)
