"""Cut and regrid images: ``crop`` (plastimatch crop) and ``resample`` (plastimatch resample)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import INTERPOLATORS, grid_image, warn_if_uncovered
from ..io.images import cast_image
from ._util import run_filter


def crop(image: sitk.Image, voxels: Sequence[int]) -> sitk.Image:
    """Keep the voxels between two corners, both included (plastimatch ``crop --voxels``).

    Parameters
    ----------
    image : SimpleITK.Image
    voxels : sequence of int
        ``(x0, x1, y0, y1[, z0, z1])`` voxel indices of the first and last kept voxel per axis.

    Returns
    -------
    SimpleITK.Image
        The sub-image; its origin moves to the first kept voxel, the direction is kept.

    Examples
    --------
    >>> crop(sitk.Image(10, 8, 6, sitk.sitkInt16), (1, 3, 2, 5, 0, 2)).GetSize()
    (3, 4, 3)
    """
    ndim = image.GetDimension()
    if len(voxels) != 2 * ndim:
        raise ImgSuiteError(f"crop needs {2 * ndim} voxel indices (x0 x1 y0 y1 ...), got {len(voxels)}")
    lo = [int(voxels[2 * d]) for d in range(ndim)]
    hi = [int(voxels[2 * d + 1]) for d in range(ndim)]
    size = image.GetSize()
    for d in range(ndim):
        if not (0 <= lo[d] <= hi[d] < size[d]):
            raise ImgSuiteError(
                f"crop box {list(voxels)} lies outside the image (size {list(size)}): axis {'xyzt'[d]} needs "
                f"0 <= first <= last <= {size[d] - 1}, got {lo[d]}..{hi[d]}"
            )
    # Extract, not RegionOfInterest: the same sub-image, and SimpleITK builds it for a 4D image too (a traceback)
    return sitk.Extract(image, [h - lo_ + 1 for lo_, h in zip(lo, hi)], lo)


def zcrop_voxels(image: sitk.Image, voxels: Sequence[int], zsup: float, zinf: float) -> list[int]:
    """Shrink the slab of slices ``voxels[4]..voxels[5]`` by ``zsup`` mm at its superior (+z) end and ``zinf``
    mm at its inferior end (plastimatch's ``--zcrop "zsup zinf"``): slices whose centre stays within the
    slab's mm extent (voxel corners) so reduced are kept.

    Examples
    --------
    >>> zcrop_voxels(sitk.Image(4, 4, 10, sitk.sitkUInt8), (0, 3, 0, 3, 2, 8), 2.0, 1.0)
    [0, 3, 0, 3, 3, 6]
    """
    if image.GetDimension() != 3:
        raise ImgSuiteError("--zcrop needs a 3D image")
    scaled = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    if abs(scaled[2, 0]) + abs(scaled[2, 1]) > 1e-6 * abs(scaled[2, 2]):
        raise ImgSuiteError("--zcrop needs slices across z: the image's third axis is oblique")
    k0, k1 = int(voxels[4]), int(voxels[5])
    dz = scaled[2, 2]
    centres = image.GetOrigin()[2] + np.arange(k0, k1 + 1) * dz
    low, high = centres.min() - abs(dz) / 2 + zinf, centres.max() + abs(dz) / 2 - zsup
    keep = np.flatnonzero((centres >= low - 1e-6) & (centres <= high + 1e-6)) + k0
    if not len(keep):
        raise ImgSuiteError(f"--zcrop {zsup:g} {zinf:g} leaves no slice of z {low - zinf:g}..{high + zsup:g} mm")
    return [*map(int, voxels[:4]), int(keep[0]), int(keep[-1])]


def mask_bounding_box(mask: sitk.Image) -> list[int]:
    """``(x0, x1, y0, y1, z0, z1)``: the smallest voxel box holding every non-zero voxel of ``mask``."""
    array = sitk.GetArrayViewFromImage(mask) != 0
    if not array.any():
        raise ImgSuiteError("the structure is empty: no bounding box to crop to")
    box = []
    for axis in reversed(range(array.ndim)):  # numpy axes are (z, y, x)
        other = tuple(a for a in range(array.ndim) if a != axis)
        idx = np.flatnonzero(array.any(axis=other))
        box += [int(idx[0]), int(idx[-1])]
    return box


def coordinates_to_voxels(image: sitk.Image, coordinates: Sequence[float]) -> list[int]:
    """``(x0, x1, y0, y1, z0, z1)`` in mm to the voxel indices of the nearest voxels (for ``--coordinates``).

    The smallest voxel box holding the whole mm box (clipped to the image); on an oblique image that box also holds
    voxels just outside the mm box, as a crop in voxels must.
    """
    ndim = image.GetDimension()
    # every corner of the mm box, not only the two given: on an oblique image the others reach further in index
    # space, and two corners alone cropped away voxels lying inside the box (a whole 30-degree image lost half)
    pairs = [(float(coordinates[2 * d]), float(coordinates[2 * d + 1])) for d in range(ndim)]
    corners = np.array([image.TransformPhysicalPointToContinuousIndex(c) for c in itertools.product(*pairs)])
    voxels = []
    for d in range(ndim):
        a, b = corners[:, d].min(), corners[:, d].max()
        voxels += [max(0, int(np.ceil(a - 1e-6))), min(image.GetSize()[d] - 1, int(np.floor(b + 1e-6)))]
    return voxels


def output_grid(
    image: sitk.Image,
    origin: Sequence[float] | None = None,
    dim: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
    subsample: Sequence[int] | None = None,
) -> sitk.Image:
    """The grid plastimatch's ``resample`` builds from partial options; missing pieces come from ``image``.

    ``subsample`` bins ``s`` voxels into one (see :func:`subsample_grid`). With only ``spacing``, the first voxel
    stays and as many voxels fit as inside the old extent; with only ``dim``, the first and last voxel centres stay.
    """
    _check_positive(dim, spacing)
    if subsample is not None:
        return subsample_grid(image, subsample)
    n0 = np.array(image.GetSize(), float)
    s0 = np.array(image.GetSpacing(), float)
    if spacing is not None and dim is None:
        dim = np.floor((n0 - 1) * s0 / np.array(spacing, float) + 1e-4).astype(int) + 1
    if dim is not None and spacing is None:
        d = np.array(dim, float)
        spacing = np.where(d > 1, (n0 - 1) * s0 / np.maximum(d - 1, 1), s0)
    return grid_image(
        image.GetOrigin() if origin is None else origin,
        image.GetSize() if dim is None else dim,
        s0 if spacing is None else spacing,
        image.GetDirection() if direction is None else direction,
    )


def subsample_grid(image: sitk.Image, rates: Sequence[int]) -> sitk.Image:
    """The grid of ``image`` binned ``rates`` voxels to one (plastimatch ``resample --subsample``).

    As plastimatch: spacing times the rate, ``ceil(n / s - 0.5)`` voxels (7 voxels at rate 4 give 2; a last
    part-bin of at least half a bin counts), and the first new voxel at the centre of the first bin. That
    centre is taken along the image's own axes, so oblique images bin correctly (plastimatch moves it along
    x/y/z, which is off by the rotation).
    """
    s = np.array(rates, int)
    n0 = np.array(image.GetSize(), int)
    if (s < 1).any():
        raise ImgSuiteError(f"--subsample needs integers >= 1, got {list(rates)}")
    dim = -((s - 2 * n0) // (2 * s))  # ceil(n/s - 1/2) in exact integer arithmetic
    if (dim < 1).any():
        axis = int(np.argmax(dim < 1))
        raise ImgSuiteError(
            f"--subsample {s[axis]} along {'xyz'[axis]} leaves no voxel of the {n0[axis]}; use at most {2 * n0[axis] - 1}"
        )
    s0 = np.array(image.GetSpacing(), float)
    d0 = np.array(image.GetDirection(), float).reshape(image.GetDimension(), -1)
    origin = np.array(image.GetOrigin(), float) + d0 @ ((s - 1) * s0 / 2)
    return grid_image(origin, dim, s0 * s, d0.ravel())


def _check_positive(dim, spacing) -> None:
    """Refuse empty or inverted grids before any arithmetic divides by them."""
    if dim is not None and any(int(v) < 1 for v in dim):
        raise ImgSuiteError(f"--dim needs at least 1 voxel per axis, got {list(dim)}")
    if spacing is not None and not all(float(v) > 0 for v in spacing):
        raise ImgSuiteError(f"--spacing needs values > 0 mm, got {list(spacing)}")


def resample(
    image: sitk.Image,
    reference: sitk.Image | None = None,
    *,
    origin: Sequence[float] | None = None,
    dim: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
    subsample: Sequence[int] | None = None,
    interpolation: str = "linear",
    default_value: float = 0.0,
    output_type: str | None = None,
    progress=None,
) -> sitk.Image:
    """Resample onto ``reference``'s grid or onto a grid made from the options (plastimatch ``resample``).

    Parameters
    ----------
    image : SimpleITK.Image
    reference : SimpleITK.Image, optional
        Its grid is used as is (``--fixed``); otherwise see :func:`output_grid`.
    origin, dim, spacing, direction, subsample : optional
        The output grid when there is no ``reference`` (plastimatch ``--origin``, ``--dim``, ``--spacing``,
        ``--direction-cosines``, ``--subsample``): see :func:`output_grid`.
    interpolation : {"linear", "nn"}
    default_value : float
        Value of output voxels outside ``image``.
    output_type : str, optional
        plastimatch type name; by default the input's pixel type (integers truncate, as ITK casts).
    progress : callable, optional
        ``progress(fraction, message)``; may raise ``Cancelled``.

    Returns
    -------
    SimpleITK.Image
        ``image`` on the new grid.

    Examples
    --------
    >>> out = resample(sitk.Image(10, 8, 6, sitk.sitkFloat32), subsample=(2, 2, 1))
    >>> out.GetSize(), out.GetSpacing()
    ((5, 4, 6), (2.0, 2.0, 1.0))
    """
    if interpolation not in ("linear", "nn"):
        raise ImgSuiteError(f"--interpolation must be nn or linear, got {interpolation!r}")
    grid = reference if reference is not None else output_grid(image, origin, dim, spacing, direction, subsample)
    # ITK interpolates in double precision and casts integers by clamping and truncating, as plastimatch does
    f = sitk.ResampleImageFilter()
    f.SetReferenceImage(grid)
    f.SetInterpolator(INTERPOLATORS[interpolation])
    f.SetDefaultPixelValue(float(default_value))
    f.SetOutputPixelType(image.GetPixelID())
    warn_if_uncovered(image, grid, "the input image")
    out = run_filter(f, image, progress=progress, message="resampling")
    return cast_image(out, output_type) if output_type else out
