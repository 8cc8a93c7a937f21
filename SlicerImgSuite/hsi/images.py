"""Cubes as ``SimpleITK`` vector images (bands as components) and writing them to NRRD, NIfTI or ENVI."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from .envi_header import EnviHeader

UNIT_MM = {"mm": 1.0, "millimeters": 1.0, "m": 1000.0, "meters": 1000.0, "cm": 10.0, "um": 1e-3, "micrometers": 1e-3}


def pixel_spacing(header: EnviHeader) -> tuple[float, float]:
    """``pixel size = {x, y, units=...}`` in mm (default 1 x 1)."""
    value = header.get("pixel size")
    if not isinstance(value, list) or len(value) < 2:
        return 1.0, 1.0
    scale = 1.0
    for item in value[2:]:
        key, _, unit = item.partition("=")
        if key.strip().lower() == "units":
            scale = UNIT_MM.get(unit.strip().lower(), 1.0)
    try:
        return float(value[0]) * scale, float(value[1]) * scale
    except ValueError:
        return 1.0, 1.0


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
    from ..io.images import write_image

    write_image(image_from_cube(cube, header), path)
