"""Read DICOM RTDOSE: DoseGridScaling, GridFrameOffsetVector, orientation; Gy as float32."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from ..errors import ImgSuiteError


def read_rtdose(path: str | os.PathLike) -> sitk.Image:
    """Read an RTDOSE file into a float32 image in Gy on its own grid (LPS).

    Frames are placed by GridFrameOffsetVector (relative to ImagePositionPatient, or absolute
    when its first value equals the first frame's position, as some systems write); the offsets
    must be evenly spaced. Values are pixel x DoseGridScaling, converted to Gy when DoseUnits is CGY.

    Examples
    --------
    ::

        dose = read_rtdose("RD.dcm")
        dose.GetPixelIDTypeAsString()
        # -> '32-bit float'
    """
    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("no such file", path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ImgSuiteError(f"cannot read DICOM file ({type(exc).__name__}: {exc})", path) from None
    if str(ds.get("Modality", "")) != "RTDOSE":
        raise ImgSuiteError(f"not an RTDOSE (Modality {ds.get('Modality', 'missing')})", path)
    for key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "PixelData"):
        if key not in ds:
            raise ImgSuiteError(f"RTDOSE lacks {key}", path)
    try:
        pixels = ds.pixel_array.astype(np.float32)
    except Exception as exc:
        raise ImgSuiteError(f"cannot decode the dose pixels ({exc})", path) from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = pixels.reshape(frames, int(ds.Rows), int(ds.Columns))
    pixels *= np.float32(float(ds.get("DoseGridScaling", 1.0) or 1.0))
    if str(ds.get("DoseUnits", "GY")).upper() == "CGY":
        pixels /= 100.0
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    offsets = np.array([float(v) for v in ds.get("GridFrameOffsetVector", [0.0])][:frames], float)
    if frames > 1:
        if len(offsets) != frames:
            raise ImgSuiteError(f"GridFrameOffsetVector has {len(offsets)} values for {frames} frames", path)
        if offsets[0] != 0 and np.isclose(offsets[0], ipp @ normal):
            offsets = offsets - offsets[0]  # absolute positions (type 2 offsets)
        steps = np.diff(offsets)
        if np.any(np.abs(steps - steps[0]) > 1e-3 * max(abs(steps[0]), 1)):
            raise ImgSuiteError("RTDOSE frames are unevenly spaced (GridFrameOffsetVector)", path)
        dz = float(steps[0])
    else:
        dz = float(ds.get("SliceThickness", 1.0) or 1.0)
    if dz < 0:  # frames run against the normal: flip them so spacing is positive
        pixels, dz = pixels[::-1], -dz
        ipp = ipp + normal * offsets[-1]
    image = sitk.GetImageFromArray(np.ascontiguousarray(pixels))
    ps = [float(v) for v in ds.PixelSpacing]
    image.SetSpacing([ps[1], ps[0], dz])
    image.SetOrigin(ipp.tolist())
    image.SetDirection(np.column_stack([row, col, normal]).ravel().tolist())
    return image
