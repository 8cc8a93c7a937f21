"""Image grids: build one from origin/dim/spacing, compare two, resample one onto another.

All coordinates are DICOM/ITK patient coordinates (LPS, millimetres).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from .errors import ImgSuiteError

INTERPOLATORS = {
    "nn": sitk.sitkNearestNeighbor,
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
    "label": sitk.sitkLabelGaussian,
}


def grid_image(
    origin: Sequence[float],
    dim: Sequence[int],
    spacing: Sequence[float],
    direction: Sequence[float] | None = None,
    pixel_type: int = sitk.sitkUInt8,
) -> sitk.Image:
    """An empty image that only carries a grid (a reference for resampling or rasterizing).

    Parameters
    ----------
    origin : sequence of float
        Centre of the first voxel, LPS mm.
    dim : sequence of int
        Number of voxels along each axis (i, j, k).
    spacing : sequence of float
        Voxel size in mm.
    direction : sequence of float, optional
        Row-major direction cosines (9 values in 3D); identity by default.

    Examples
    --------
    >>> g = grid_image((0, 0, 0), (4, 3, 2), (1.0, 1.0, 2.5))
    >>> g.GetSize(), g.GetSpacing()
    ((4, 3, 2), (1.0, 1.0, 2.5))
    """
    if not (len(origin) == len(dim) == len(spacing)):
        raise ImgSuiteError(f"origin, dim and spacing need the same number of values, got {origin}, {dim}, {spacing}")
    check_grid_values(origin, dim, spacing)
    image = sitk.Image([int(d) for d in dim], pixel_type)
    image.SetOrigin([float(v) for v in origin])
    image.SetSpacing([float(v) for v in spacing])
    if direction is not None:
        image.SetDirection([float(v) for v in direction])
    return image


def check_grid_values(origin=None, dim=None, spacing=None, bytes_per_voxel: int = 4) -> None:
    """Refuse a grid no one can mean: a NaN or infinite origin, a spacing that is not a finite number > 0, a
    dim below 1, or so many voxels that the image would not fit in memory (``--origin/--dim/--spacing``).

    Examples
    --------
    >>> check_grid_values((0, 0, 0), (4, 4, 4), (1.0, 1.0, 1.0))
    >>> check_grid_values(spacing=(1.0, 0.0, 1.0))
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: --spacing must be finite numbers > 0, got 1 0 1
    """
    from .errors import check_memory

    def text(values):
        return " ".join(f"{float(v):g}" for v in values)

    if origin is not None and not all(math.isfinite(float(v)) for v in origin):
        raise ImgSuiteError(f"--origin must be finite numbers, got {text(origin)}")
    if spacing is not None and not all(math.isfinite(float(v)) and float(v) > 0 for v in spacing):
        raise ImgSuiteError(f"--spacing must be finite numbers > 0, got {text(spacing)}")
    if dim is not None:
        if not all(math.isfinite(float(d)) and 1 <= float(d) < 2**31 for d in dim):
            raise ImgSuiteError(f"--dim must be whole numbers >= 1, got {text(dim)}")
        check_memory(math.prod(int(d) for d in dim) * bytes_per_voxel, f"an output grid of --dim {text(dim)}")


def same_grid(a: sitk.Image, b: sitk.Image, tolerance: float = 1e-4) -> bool:
    """True when two images share size, origin, spacing and direction (to ``tolerance`` mm)."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tolerance)
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tolerance)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    )


def require_same_grid(a: sitk.Image, b: sitk.Image, what_a: str, what_b: str) -> None:
    """Raise a clear error naming both inputs when their grids differ (direction shown when it differs)."""
    if a.GetDimension() != b.GetDimension():  # a 2D picture given with a volume: no grid to compare
        raise ImgSuiteError(
            f"geometry mismatch: {what_a} is a {a.GetDimension()}D image (size {a.GetSize()}); "
            f"{what_b} is {b.GetDimension()}D (size {b.GetSize()})",
            what_b,
        )
    if not same_grid(a, b):
        show_direction = not np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
        raise ImgSuiteError(
            f"geometry mismatch: {what_a} has {_describe(a, show_direction)}; "
            f"{what_b} has {_describe(b, show_direction)}",
            what_b,
        )


def _describe(image: sitk.Image, direction: bool) -> str:
    text = f"size {image.GetSize()}, origin {_fmt(image.GetOrigin())}, spacing {_fmt(image.GetSpacing())}"
    return text + (f", direction {_fmt(image.GetDirection())}" if direction else "")


def resample_like(
    image: sitk.Image,
    reference: sitk.Image,
    interpolation: str = "linear",
    default_value: float = 0.0,
    transform: sitk.Transform | None = None,
) -> sitk.Image:
    """Resample ``image`` onto the grid of ``reference`` (keeping ``image``'s pixel type).

    ``transform`` maps reference (fixed) points to ``image`` (moving) points, as ITK does.
    """
    try:
        interp = INTERPOLATORS[interpolation]
    except KeyError:
        raise ImgSuiteError(f"unknown interpolation {interpolation!r}; use one of {sorted(INTERPOLATORS)}") from None
    return sitk.Resample(
        image,
        reference,
        transform or sitk.Transform(),
        interp,
        float(default_value),
        image.GetPixelID(),
    )


def covered_by(image: sitk.Image, reference: sitk.Image, transform: sitk.Transform | None = None) -> np.ndarray:
    """Boolean array on ``reference``'s grid: where its voxels lie inside ``image``'s grid (nearest voxel), i.e.
    where ``resample_like(image, reference, transform=transform)`` holds a value of ``image`` and not the fill value.

    Examples
    --------
    >>> small = sitk.Image([2, 2, 2], sitk.sitkFloat32)
    >>> covered_by(small, sitk.Image([4, 2, 2], sitk.sitkUInt8))[0, 0].tolist()
    [True, True, False, False]
    """
    ones = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(image)
    return sitk.GetArrayFromImage(resample_like(ones, reference, "nearest", transform=transform)) > 0


def coarse_grid(reference: sitk.Image, max_voxels: int = 2_000_000) -> sitk.Image:
    """``reference`` bin-shrunk (the same factor on every axis) to at most about ``max_voxels``: a quick look.

    Examples
    --------
    >>> coarse_grid(sitk.Image([100, 100, 100], sitk.sitkUInt8), 1000).GetSize()
    (10, 10, 10)
    """
    n = float(np.prod(reference.GetSize()))
    if n <= max_voxels:
        return reference
    f = int(np.ceil((n / max_voxels) ** (1 / reference.GetDimension())))
    return sitk.BinShrink(reference, [f] * reference.GetDimension())


def reaches(image: sitk.Image, reference: sitk.Image, transform: sitk.Transform | None = None) -> bool:
    """Whether any voxel of ``reference``'s grid (seen on a coarse grid: a quick look) maps inside ``image``."""
    return bool(covered_by(image, coarse_grid(reference, 100_000), transform).any())


def warn_if_uncovered(image: sitk.Image, reference: sitk.Image, what: str, transform=None) -> None:
    """Warn when ``image`` does not :func:`reach <reaches>` ``reference``'s grid through ``transform``: resampled
    there, it leaves only the fill value."""
    if not reaches(image, reference, transform):
        check = "the output grid" + (", and the transform's direction: fixed -> moving" if transform else "")
        warnings.warn(f"{what}: no output voxel maps inside it, so the output holds only the fill value (check "
                      f"{check})", stacklevel=3)  # fmt: skip


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"
