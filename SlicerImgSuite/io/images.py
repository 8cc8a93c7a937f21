"""Read and write images: any SimpleITK format, or a DICOM series folder.

``SimpleITK.Image`` (LPS, geometry attached) is what every function returns.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..progress import ProgressCallback
from .atomic import atomic_path
from .dicom_series import IMAGE_STORAGE_EXCLUDED, is_dicom_file, read_dicom_series, validate_slice

# plastimatch's --output-type names
OUTPUT_TYPES = {
    "uchar": sitk.sitkUInt8,
    "char": sitk.sitkInt8,
    "ushort": sitk.sitkUInt16,
    "short": sitk.sitkInt16,
    "uint": sitk.sitkUInt32,
    "int": sitk.sitkInt32,
    "ulong": sitk.sitkUInt64,
    "long": sitk.sitkInt64,
    "float": sitk.sitkFloat32,
    "double": sitk.sitkFloat64,
}


def read_image(
    path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    modality: str | None = None,
    resample_uneven: bool = False,
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """Read an image file (NRRD, MHA, NIfTI, single DICOM, ...) or a DICOM series folder.

    Parameters
    ----------
    path : path
        A file SimpleITK reads, or a folder holding a DICOM series. An RTDOSE file is read by
        :func:`SlicerImgSuite.rtstruct.dose.read_rtdose` (float32, Gy).
    series_uid, modality, resample_uneven :
        For folders: see :func:`SlicerImgSuite.io.dicom_series.read_dicom_series`.
    progress : callable, optional
        ``(fraction, message)`` while a series is read.

    Returns
    -------
    SimpleITK.Image
        The image in LPS (a DICOM series with rescaled values, HU for CT).

    Examples
    --------
    >>> import tempfile, pathlib, SimpleITK as sitk
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x.nrrd"
    >>> write_image(sitk.Image(3, 2, 1, sitk.sitkInt16), f)
    >>> read_image(f).GetSize()
    (3, 2, 1)
    """
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path, series_uid, modality, resample_uneven, progress)
    if not path.exists():
        raise ImgSuiteError("no such file or folder", path)
    if is_dicom_file(path):
        from ..rtstruct.dose import is_rtdose_file, read_rtdose

        if is_rtdose_file(path):  # pixels x DoseGridScaling, in Gy: the one RTDOSE reader
            return read_rtdose(path)
        refuse_non_image(path)
        validate_slice(path, require_geometry=False)
    elif path.suffix.lower() in (".mha", ".mhd"):
        _check_metaimage_geometry(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        if "Unable to determine ImageIO reader" in str(exc):
            hint = " (a microscopy file: `imgsuite nuclei` reads it)" if path.suffix.lower() == ".czi" else ""
            raise ImgSuiteError(f"not an image format read here (NRRD, MetaImage, NIfTI, DICOM, TIFF, PNG ...){hint}",
                                path) from None
        kind = "DICOM file" if is_dicom_file(path) else "image file"
        raise ImgSuiteError(f"cannot read {kind}: {_itk_reason(exc)}", path) from None
    if is_dicom_file(path):
        _single_slice_thickness(image, path)
    geometry = (*image.GetOrigin(), *image.GetSpacing(), *image.GetDirection())
    if not np.all(np.isfinite(geometry)):
        raise ImgSuiteError(
            f"the header's geometry is not finite: origin {image.GetOrigin()}, spacing {image.GetSpacing()}, "
            f"direction {image.GetDirection()}",
            path,
        )
    return image


def refuse_non_image(path: Path) -> None:
    """An RTSTRUCT or RTPLAN where an image is meant: say so (the pixel checks said 'PixelData is missing' or
    'Rows x Columns = 0 x 0', which reads as a damaged file)."""
    import pydicom

    try:
        modality = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
    except Exception:
        return  # the slice checks below name what is wrong with it
    if modality.strip().upper() in IMAGE_STORAGE_EXCLUDED - {"RTDOSE", "SEG"}:
        raise ImgSuiteError(f"a DICOM {modality.strip()} object, not an image", path)


def _single_slice_thickness(image: sitk.Image, path: Path) -> None:
    """One slice read from its file gets SliceThickness as its third spacing, as the same slice read as a folder
    (:func:`~SlicerImgSuite.io.dicom_series.slice_geometry`): GDCM gave 1 mm, so a structure on the dicompyler
    CT slice (3 mm) had a third of its volume when the CT was given as a file."""
    if image.GetDimension() != 3 or image.GetSize()[2] != 1:
        return
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SliceThickness", "NumberOfFrames"])
    try:
        thickness = float(ds.get("SliceThickness") or 0)
    except (TypeError, ValueError):
        return  # not a number: the folder reader refuses it; alone, GDCM's spacing stays
    if int(ds.get("NumberOfFrames") or 1) == 1 and np.isfinite(thickness) and thickness > 0:
        image.SetSpacing((*image.GetSpacing()[:2], thickness))


# modalities whose values are not HU: a task that reads HU (body thresholds, stopping powers) would run on nonsense
_NOT_HU = {"RTDOSE", "MR", "PT", "NM", "US"}


def require_hu(image: sitk.Image, task: str) -> None:
    """Refuse an image that says it is not in HU: a dose (``DoseUnits``, what an RTDOSE and our dose outputs carry)
    or a DICOM modality other than CT. An image that says nothing (NRRD, NIfTI) is taken as HU.

    Examples
    --------
    >>> dose = sitk.Image(2, 2, 2, sitk.sitkFloat32)
    >>> dose.SetMetaData("DoseUnits", "GY")
    >>> require_hu(dose, "wed")
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: wed needs a CT in HU; this image is a dose
    """
    modality = next((image.GetMetaData(k).strip() for k in ("0008|0060", "Modality") if image.HasMetaDataKey(k)), "")
    if image.HasMetaDataKey("DoseUnits") or modality.upper() in _NOT_HU:
        kind = "a dose" if image.HasMetaDataKey("DoseUnits") else f"modality {modality}"
        raise ImgSuiteError(f"{task} needs a CT in HU; this image is {kind}")


def warn_if_no_air(image: sitk.Image, task: str, hint: str = "") -> None:
    """Warn when an image taken as HU has values above 0 and none below: no air nor fat, as in an MR or a CT stored
    without its rescale (air 0 instead of -1000), whose air then counts as water. A flat water phantom says nothing.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn_if_no_air(sitk.Image(2, 2, 2, sitk.sitkUInt16) + 1500, "wed")
    >>> str(seen[0].message)[:38]
    'wed takes the values as HU, but none i'
    """
    values = sitk.GetArrayViewFromImage(image)
    if values.size and values.min() >= 0 and values.max() > 0:
        warnings.warn(f"{task} takes the values as HU, but none is below 0 ({float(values.min()):g} to "
                      f"{float(values.max()):g}): no air. If this is an MR or a CT stored without its rescale (air 0 "
                      "instead of -1000), air counts as water here" + (f". {hint}" if hint else ""), stacklevel=3)  # fmt: skip


# MetaImage keys holding geometry numbers (ITK reads a NaN among them as 0, silently)
_METAIMAGE_GEOMETRY = ("Offset", "Origin", "Position", "ElementSpacing", "TransformMatrix", "Rotation", "Orientation")


def _check_metaimage_geometry(path: Path) -> None:
    """Refuse a ``.mha``/``.mhd`` header whose geometry keys hold NaN or infinity (read as 0 otherwise)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16).split(b"ElementDataFile", 1)[0].decode("latin-1")
    for line in head.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in _METAIMAGE_GEOMETRY:
            try:
                numbers = [float(v) for v in value.split()]
            except ValueError:
                continue  # ITK reports what it cannot parse
            if not np.all(np.isfinite(numbers)):
                raise ImgSuiteError(f"{key.strip()} = {value.strip()} in the header is not finite", path)


def write_image(
    image: sitk.Image,
    path: str | os.PathLike,
    output_type: str | None = None,
    compress: bool = False,
) -> None:
    """Write ``image`` to ``path`` atomically, optionally cast to a plastimatch ``--output-type``.

    Casting to an integer type truncates toward zero and clamps to the type's range, as plastimatch does.
    Files are uncompressed by default (several times faster to write and read for NRRD/MHA);
    ``compress=True`` gzips where the format allows.
    """
    if output_type:
        image = cast_image(image, output_type)
    with atomic_path(path) as tmp:
        save_image(image, tmp, compress, shown_as=path)
        if Path(path).suffix.lower() in _PICTURE_SUFFIXES:
            _warn_lost_geometry(image, tmp, path)


_PICTURE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")  # formats that may keep no patient geometry


def _warn_lost_geometry(image: sitk.Image, written, path) -> None:
    """Warn when a picture format dropped the image's origin, spacing or direction (read back from ``written``)."""
    import warnings

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(written))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return
    lost = [name for name, ours, theirs in (("origin", image.GetOrigin(), reader.GetOrigin()),
                                            ("spacing", image.GetSpacing(), reader.GetSpacing()),
                                            ("direction", image.GetDirection(), reader.GetDirection()))
            if len(ours) != len(theirs) or not np.allclose(ours, theirs, rtol=1e-4, atol=1e-4)]
    if lost:
        warnings.warn(f"{path}: this format does not keep the image's {', '.join(lost)} (written: origin "
                      f"{tuple(round(v, 3) for v in reader.GetOrigin())}, spacing "
                      f"{tuple(round(v, 4) for v in reader.GetSpacing())}); use .nrrd, .mha or .nii.gz to keep them",
                      stacklevel=3)


def save_image(image: sitk.Image, path: str | os.PathLike, compress: bool = False, shown_as=None) -> None:
    """Write ``image`` to ``path`` directly (a temporary path already); errors name ``shown_as`` (the final path)."""
    try:
        sitk.WriteImage(image, str(path), compress)
    except RuntimeError as exc:
        reason = _itk_reason(exc).replace(str(path), str(shown_as or path))  # ITK names the temporary file
        raise ImgSuiteError(f"cannot write image: {reason}", shown_as or path) from None


def cast_image(image: sitk.Image, output_type: str) -> sitk.Image:
    """Cast to a plastimatch type name (``uchar``, ``short``, ``float``, ...) by :func:`cast_values`' rule."""
    try:
        pixel_id = OUTPUT_TYPES[output_type]
    except KeyError:
        raise ImgSuiteError(f"unknown output type {output_type!r}; use one of {', '.join(OUTPUT_TYPES)}") from None
    if image.GetPixelID() == pixel_id:
        return image
    probe = sitk.Image([1] * image.GetDimension(), pixel_id)
    dtype = sitk.GetArrayViewFromImage(probe).dtype
    array = cast_values(sitk.GetArrayFromImage(image), dtype)
    out = sitk.GetImageFromArray(array, isVector=image.GetNumberOfComponentsPerPixel() > 1)
    out.CopyInformation(image)
    return out


def cast_values(values, dtype) -> np.ndarray:
    """Cast an array to ``dtype`` as plastimatch (ITK's static_cast after its clamp) does: to an integer type,
    floats truncate toward zero (1.7 -> 1, -1.7 -> -1), then clamp to the type's range; NaN becomes 0.

    Examples
    --------
    >>> cast_values(np.array([1.7, -1.7, 2.5, 1e6]), np.int16).tolist()
    [1, -1, 2, 32767]
    """
    values, dtype = np.asarray(values), np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer) or values.dtype.kind == "b":
        return values.astype(dtype)
    info = np.iinfo(dtype)
    if values.dtype.kind in "iu":  # integer to integer: clamp exactly, no float round trip
        src = np.iinfo(values.dtype)
        return np.clip(values, max(info.min, src.min), min(info.max, src.max)).astype(dtype)
    values = np.where(np.isnan(values), 0.0, np.trunc(values))
    top = values >= float(info.max)  # a 64-bit maximum rounds up in float and would wrap: set it afterwards
    out = np.asarray(np.clip(np.where(top, 0.0, values), info.min, info.max)).astype(dtype)
    out[top] = info.max
    return out


def _itk_reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.lower().startswith("description:"):
            return ln.split(":", 1)[1].strip()
    return lines[-1][:200] if lines else type(exc).__name__
