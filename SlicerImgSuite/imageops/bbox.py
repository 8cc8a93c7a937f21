"""Bounding box of a structure in mm, and a mask of that box (plastimatch ``bbox``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError, check_number
from ._util import array_view_of, to_image


@dataclass(frozen=True)
class BoundingBox:
    """A box in physical (LPS) mm and the voxel index range it came from.

    ``coordinates`` is ``(x1, x2, y1, y2, ...)``: the axis-aligned box holding every corner of every non-zero
    voxel, grown by the margin. ``indices`` is ``(i1, i2, j1, j2, ...)``, first and last non-zero voxel per
    axis, both inclusive, without the margin.
    """

    coordinates: tuple[float, ...]
    indices: tuple[int, ...]


def bounding_box(image: sitk.Image, *, margin: float = 0.0) -> BoundingBox:
    """The physical bounding box of an image's non-zero voxels, grown by ``margin`` mm on every side.

    Voxels are boxes: the result holds all their corners, so a one-voxel structure gives a box one voxel wide.
    With oblique direction cosines the box is still axis aligned in patient coordinates (plastimatch's rule).

    Parameters
    ----------
    image : SimpleITK.Image
        A 2D or 3D scalar image; non-zero voxels are the structure.
    margin : float
        mm added on every side (negative shrinks).

    Examples
    --------
    >>> m = sitk.Image([4, 4, 4], sitk.sitkUInt8); m[1, 2, 3] = 1
    >>> b = bounding_box(m, margin=1.0)
    >>> b.coordinates, b.indices
    ((-0.5, 2.5, 0.5, 3.5, 1.5, 4.5), (1, 1, 2, 2, 3, 3))
    """
    check_number(margin, "--margin")
    values = array_view_of(image)
    # first and last non-zero index per numpy axis from one-axis projections (any() is true for a non-zero
    # value, NaN included, as != 0), each on the block left by the axes before; then the voxels of that block
    block = []
    for axis in range(values.ndim):
        hits = np.flatnonzero(values.any(axis=tuple(a for a in range(values.ndim) if a != axis)))
        if not hits.size:
            raise ImgSuiteError("bbox: the image has no non-zero voxel")
        block.append(slice(int(hits[0]), int(hits[-1]) + 1))
        values = values[tuple(block[-1] if a == axis else slice(None) for a in range(values.ndim))]
    where = np.argwhere(values != 0) + [b.start for b in block]  # (z, y, x) rows
    n = image.GetDimension()
    index = where[:, ::-1].astype(np.float64)  # (x, y, z) columns
    direction = np.array(image.GetDirection()).reshape(n, n)
    spacing = np.array(image.GetSpacing())
    scaled = direction * spacing  # column a: one voxel step along axis a, mm
    centres = np.array(image.GetOrigin()) + index @ scaled.T
    half = 0.5 * np.abs(scaled).sum(axis=1)
    low = centres.min(axis=0) - half - margin
    high = centres.max(axis=0) + half + margin
    first, last = where.min(axis=0)[::-1], where.max(axis=0)[::-1]
    return BoundingBox(
        tuple(float(v) for pair in zip(low, high) for v in pair),
        tuple(int(v) for pair in zip(first, last) for v in pair),
    )


def bounding_box_mask(image: sitk.Image, box: BoundingBox, *, z_only: bool = False) -> sitk.Image:
    """A uchar mask on ``image``'s grid: 1 where the voxel centre lies in ``box`` (plastimatch ``bbox --output``).

    As plastimatch: the z limits include a centre lying exactly on them, the x and y limits do not;
    ``z_only`` ignores x and y (whole slices).

    Examples
    --------
    >>> m = sitk.Image([4, 4, 4], sitk.sitkUInt8); m[1, 2, 3] = 1
    >>> int(sitk.GetArrayFromImage(bounding_box_mask(m, bounding_box(m))).sum())
    1
    >>> int(sitk.GetArrayFromImage(bounding_box_mask(m, bounding_box(m), z_only=True)).sum())
    16
    """
    n = image.GetDimension()
    scaled = np.array(image.GetDirection()).reshape(n, n) * np.array(image.GetSpacing())
    c = box.coordinates
    axes = [2] if n == 3 else []  # z limits inclusive, x and y strict (plastimatch)
    if not z_only:
        axes += list(range(min(n, 2)))
    inside = np.ones([1] * n, bool)
    for d in axes:
        # physical coordinate d of every voxel centre, as a sum of one broadcast term per index axis
        coordinate = image.GetOrigin()[d] + sum(
            _along(scaled[d, a] * np.arange(image.GetSize()[a], dtype=np.float64), a, n)
            for a in range(n)
            if scaled[d, a] != 0
        )
        low, high = c[2 * d], c[2 * d + 1]
        # broadcast shapes stay small (one term per axis) until the one full-size pass below
        inside = inside & (
            (coordinate >= low) & (coordinate <= high) if d == 2 else (coordinate > low) & (coordinate < high)
        )
    full = np.empty(image.GetSize()[::-1], np.uint8)
    np.copyto(full, np.broadcast_to(inside, full.shape))
    return to_image(full, image)  # isVector=False: a 4D image's mask stays 4D (not a 3D vector image)


def _along(values: np.ndarray, axis: int, n: int) -> np.ndarray:
    """A 1D array along index axis ``axis`` (x = 0) of an ``n``-D (z, y, x) numpy array, for broadcasting."""
    shape = [1] * n
    shape[n - 1 - axis] = values.size
    return values.reshape(shape)
