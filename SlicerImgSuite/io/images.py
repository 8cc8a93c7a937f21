"""Read and write images: any SimpleITK format, or a DICOM series folder.

``SimpleITK.Image`` (LPS, geometry attached) is what every function returns.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..progress import ProgressCallback
from .atomic import atomic_path
from .dicom_series import is_dicom_file, read_dicom_series

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
    series_uid: str | None = None,
    modality: str | None = None,
    resample_uneven: bool = False,
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """Read an image file (NRRD, MHA, NIfTI, single DICOM, ...) or a DICOM series folder.

    Parameters
    ----------
    path : path
        A file SimpleITK reads, or a folder holding a DICOM series.
    series_uid, modality, resample_uneven :
        For folders: see :func:`SlicerImgSuite.io.dicom_series.read_dicom_series`.

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
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        kind = "DICOM file" if is_dicom_file(path) else "image file"
        raise ImgSuiteError(f"cannot read {kind}: {_itk_reason(exc)}", path) from None


def write_image(
    image: sitk.Image,
    path: str | os.PathLike,
    output_type: str | None = None,
    compress: bool = False,
) -> None:
    """Write ``image`` to ``path`` atomically, optionally cast to a plastimatch ``--output-type``.

    Casting to an integer type clamps to the type's range (as plastimatch does) and rounds.
    Files are uncompressed by default (several times faster to write and read for NRRD/MHA);
    ``compress=True`` gzips where the format allows.
    """
    if output_type:
        image = cast_image(image, output_type)
    with atomic_path(path) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), compress)
        except RuntimeError as exc:
            raise ImgSuiteError(f"cannot write image: {_itk_reason(exc)}", path) from None


def cast_image(image: sitk.Image, output_type: str) -> sitk.Image:
    """Cast to a plastimatch type name (``uchar``, ``short``, ``float``, ...), clamping integers."""
    try:
        pixel_id = OUTPUT_TYPES[output_type]
    except KeyError:
        raise ImgSuiteError(f"unknown output type {output_type!r}; use one of {', '.join(OUTPUT_TYPES)}") from None
    if image.GetPixelID() == pixel_id:
        return image
    probe = sitk.Image([1] * image.GetDimension(), pixel_id)
    dtype = sitk.GetArrayViewFromImage(probe).dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = sitk.GetArrayFromImage(image)
        if np.issubdtype(array.dtype, np.floating):
            array = np.rint(array)
        array = np.clip(array, info.min, info.max).astype(dtype)
        out = sitk.GetImageFromArray(array, isVector=image.GetNumberOfComponentsPerPixel() > 1)
        out.CopyInformation(image)
        return out
    return sitk.Cast(image, pixel_id)


def _itk_reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.lower().startswith("description:"):
            return ln.split(":", 1)[1].strip()
    return lines[-1][:200] if lines else type(exc).__name__
