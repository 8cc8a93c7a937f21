"""``thumbnail``: one slice of a volume as a 2D picture, with a window and level (plastimatch ``thumbnail``)."""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError, check_memory, check_number
from ..io.atomic import atomic_path
from ..io.images import save_image

AXES = {"x": 0, "y": 1, "z": 2}


def thumbnail(
    image: sitk.Image,
    axis: str = "z",
    loc: float | None = None,
    dim: int | None = None,
    spacing: float | None = None,
    default_value: float = -1000.0,
) -> sitk.Image:
    """A 2D float32 slice across ``axis`` at ``loc`` mm, linearly interpolated.

    By default the slice goes through the image centre (the ``imgsuite thumbnail`` command defaults to 0 mm, as
    plastimatch), covers the image's extent and keeps its in-plane voxels. With ``dim`` and/or ``spacing`` the
    slice is a ``dim x dim`` square (default 16 voxels of 30 mm) centred on 0 in the plane, as plastimatch's
    thumbnail is. The 2D image's axes are the remaining patient axes in x, y, z order. A ``loc`` outside the
    image (beyond the outer half voxel, where nothing can be interpolated) is refused.

    Examples
    --------
    >>> t = thumbnail(sitk.Image(8, 6, 4, sitk.sitkInt16))
    >>> t.GetSize()
    (8, 6)
    """
    if axis not in AXES:
        raise ImgSuiteError(f"--axis must be x, y or z, got {axis!r}")
    if image.GetDimension() != 3:
        raise ImgSuiteError(f"thumbnail needs a 3D image, got {image.GetDimension()}D")
    a = AXES[axis]
    plane = [d for d in range(3) if d != a]
    lo, hi = _bounds(image)
    if loc is None:
        loc = float((lo[a] + hi[a]) / 2)
    _check_loc(image, a, loc)
    if dim is not None or spacing is not None:
        n = int(dim or 16)  # 0: the default, as plastimatch
        s = float(spacing or 30.0)
        if n < 1 or not (np.isfinite(s) and s > 0):
            raise ImgSuiteError(f"--dim must be >= 1 and --spacing a finite number > 0 mm, got {dim} and {spacing}")
        check_memory(4 * n * n, f"a {n} x {n} thumbnail (--dim)")
        origin = [-(n - 1) * s / 2] * 2
        sizes, spacings = [n, n], [s, s]
    else:
        native = min(image.GetSpacing())
        spacings = [native, native]
        sizes = [max(1, int(np.floor((hi[d] - lo[d]) / native + 1e-6)) + 1) for d in plane]
        origin = [lo[d] for d in plane]
    ref = sitk.Image([sizes[0], sizes[1], 1], sitk.sitkFloat32)
    o3 = [0.0, 0.0, 0.0]
    o3[plane[0]], o3[plane[1]], o3[a] = origin[0], origin[1], float(loc)
    s3 = [1.0, 1.0, 1.0]
    s3[plane[0]], s3[plane[1]] = spacings
    direction = np.zeros((3, 3))
    direction[plane[0], 0] = direction[plane[1], 1] = direction[a, 2] = 1.0
    ref.SetOrigin(o3)
    ref.SetSpacing([s3[plane[0]], s3[plane[1]], 1.0])
    ref.SetDirection(direction.ravel().tolist())
    slab = sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32),
        ref,
        sitk.Transform(),
        sitk.sitkLinear,
        float(default_value),
        sitk.sitkFloat32,
    )
    out = sitk.GetImageFromArray(sitk.GetArrayFromImage(slab)[0])
    out.SetOrigin(origin)
    out.SetSpacing(spacings)
    return out


def _bounds(image: sitk.Image, pad: float = 0.0):
    """Lowest and highest x, y, z over the corners of the voxel-centre box grown by ``pad`` voxels."""
    size = np.array(image.GetSize()) - 1 + 2 * pad
    corners = np.array(
        [image.TransformContinuousIndexToPhysicalPoint((b * size - pad).tolist()) for b in np.ndindex(2, 2, 2)]
    )
    return corners.min(axis=0), corners.max(axis=0)


def _check_loc(image: sitk.Image, axis: int, loc: float) -> None:
    """Refuse a slice that misses the image: it would be a picture of the default value only."""
    lo, hi = _bounds(image, 0.5)
    if not lo[axis] <= loc < hi[axis]:  # ITK interpolates up to half a voxel beyond the outer centres
        name = "xyz"[axis]
        raise ImgSuiteError(
            f"--loc {loc:g} mm is outside the image, which covers {name} = {lo[axis]:g} to {hi[axis]:g} mm"
        )


def window_level(values: np.ndarray, window: float | None = None, level: float | None = None) -> np.ndarray:
    """Map values to uint8 grey levels; without a window, the 1st-99th percentile range is used."""
    values = np.asarray(values, np.float64)
    check_number(window, "--window")
    check_number(level, "--level")
    if window is None or level is None:
        lo, hi = np.percentile(values, [1, 99]) if values.size else (0.0, 1.0)
        if window is None:
            window = max(hi - lo, 1e-6)
        if level is None:
            level = (hi + lo) / 2
    if window <= 0:
        raise ImgSuiteError(f"--window must be > 0, got {window}")
    return np.clip(np.rint((values - (level - window / 2)) / window * 255.0), 0, 255).astype(np.uint8)


def write_png(
    slice_image: sitk.Image,
    path: str | os.PathLike,
    window: float | None = None,
    level: float | None = None,
    flip_rows: bool = False,
) -> None:
    """Write a 2D slice as an 8-bit PNG. Row 0 is the first y: for an axial LPS slice that is anterior at the
    top and patient right on the left (radiological display); ``flip_rows`` puts superior up on
    sagittal/coronal slices."""
    grey = window_level(sitk.GetArrayViewFromImage(slice_image), window, level)
    if flip_rows:
        grey = grey[::-1]
    with atomic_path(path) as tmp:
        save_image(sitk.GetImageFromArray(grey), tmp, shown_as=path)
