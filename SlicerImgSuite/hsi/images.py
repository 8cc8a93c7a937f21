"""Cubes as ``SimpleITK`` vector images (bands as components) and writing them to NRRD, NIfTI or ENVI."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from .envi_header import EnviHeader

UNIT_MM = {
    "m": 1000.0, "meters": 1000.0, "metres": 1000.0, "meter": 1000.0, "metre": 1000.0,
    "mm": 1.0, "millimeters": 1.0, "millimetres": 1.0, "cm": 10.0, "centimeters": 1.0e1, "centimetres": 1.0e1,
    "um": 1e-3, "micrometers": 1e-3, "micrometres": 1e-3, "microns": 1e-3, "nm": 1e-6, "nanometers": 1e-6,
    "km": 1e6, "kilometers": 1e6, "kilometres": 1e6,
}  # fmt: skip


def pixel_spacing(header: EnviHeader, path=None) -> tuple[float, float]:
    """``pixel size = {x, y, units=...}`` in mm (default 1 x 1 when the header has none).

    ENVI's pixel size is in **metres** unless ``units=`` says otherwise (``{0.0001, 0.0001}`` is 0.1 mm);
    unknown units are warned about and taken as metres.

    Examples
    --------
    >>> from .envi_header import parse_header
    >>> pixel_spacing(parse_header("ENVI\\npixel size = {0.0002, 0.0001}"))
    (0.2, 0.1)
    >>> pixel_spacing(parse_header("ENVI\\npixel size = {0.3, 0.1, units=mm}"))
    (0.3, 0.1)
    """
    value = header.get("pixel size")
    if not isinstance(value, list) or len(value) < 2:
        return 1.0, 1.0
    scale = UNIT_MM["m"]
    for item in value[2:]:
        key, _, unit = item.partition("=")
        if key.strip().lower() == "units":
            unit = unit.strip().lower()
            if unit not in UNIT_MM:
                import warnings

                from .envi_header import EnviHeaderWarning

                warnings.warn(
                    f"{path or 'header'}: unknown pixel size units {unit!r}: assuming metres",
                    EnviHeaderWarning,
                    stacklevel=2,
                )
            scale = UNIT_MM.get(unit, UNIT_MM["m"])
    try:
        x, y = float(value[0]) * scale, float(value[1]) * scale
    except ValueError:
        return 1.0, 1.0
    return (x, y) if x > 0 and y > 0 and np.isfinite(x) and np.isfinite(y) else (1.0, 1.0)


def image_from_cube(cube: np.ndarray, header: EnviHeader | None = None) -> sitk.Image:
    """A 2D vector image: x = samples, y = lines, one component per band; wavelengths as metadata.

    Examples
    --------
    >>> image = image_from_cube(np.zeros((4, 5, 3), np.uint16))
    >>> image.GetSize(), image.GetNumberOfComponentsPerPixel()
    ((5, 4), 3)
    """
    header = header or EnviHeader()
    array = np.asarray(cube)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    if np.iscomplexobj(array):
        raise ImgSuiteError("complex cubes cannot be written as NRRD/NIfTI images (use .envi)")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=True)
    image.SetSpacing(pixel_spacing(header))
    for key in ("wavelength", "wavelength units", "fwhm", "band names"):
        value = header.get(key)
        if value:
            image.SetMetaData(key.replace(" ", "_"), " ".join(value) if isinstance(value, list) else value)
    return image


def label_image(classification: np.ndarray, header: EnviHeader | None = None) -> sitk.Image:
    """The classification ``(lines, samples)`` as a 2D label image on the cube's pixel grid."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(classification))
    image.SetSpacing(pixel_spacing(header or EnviHeader()))
    return image


_PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def write_cube(cube: np.ndarray, header: EnviHeader, path: str | os.PathLike) -> None:
    """Write a cube by the output's suffix: ``.envi`` (ENVI pair, header beside it), else any SimpleITK
    format (``.nrrd``, ``.nii.gz``, ``.mha``) with the bands as the vector dimension."""
    path = Path(path)
    if path.suffix.lower() in (".envi", ".hdr", ".raw", ".img"):
        from .envi import write_envi

        if path.suffix.lower() == ".hdr":
            path = path.with_suffix(".envi")
        interleave = str(header.get("interleave", "bsq")).lower()
        write_envi(path, np.asarray(cube), header, interleave if interleave in ("bsq", "bil", "bip") else "bsq")
        return
    if path.suffix.lower() in _PICTURE_SUFFIXES and cube.shape[2] > 4:  # ITK's PNG writer kept 4 channels of 580
        raise ImgSuiteError(
            f"a {path.suffix.lstrip('.').upper()} picture holds at most 4 channels; the cube has {cube.shape[2]} bands: "
            "write .nrrd, .nii.gz, .mha, .tif or .envi (or keep 4 bands or fewer with --bands)",
            path,
        )
    from ..io.images import write_image

    write_image(image_from_cube(cube, header), path)
