"""Masks on images: ``mask``, ``fill``, ``threshold`` and ``union`` (plastimatch's commands)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError, check_number
from ._util import array_of, cast_like, mask_array, to_image


def mask_image(image: sitk.Image, mask: sitk.Image, mask_value: float = 0.0) -> sitk.Image:
    """Set every voxel OUTSIDE the mask to ``mask_value`` (plastimatch ``mask``); the pixel type is kept.

    Examples
    --------
    >>> img = sitk.Image(4, 4, 1, sitk.sitkInt16) + 5
    >>> m = sitk.Image(4, 4, 1, sitk.sitkUInt8); m[1, 1, 0] = 1
    >>> int(sitk.GetArrayFromImage(mask_image(img, m, -1)).sum())
    -10
    """
    inside = mask_array(mask, image)
    if not inside.any():  # an empty mask (a structure on another grid, a wrong label) leaves nothing of the image
        warnings.warn(f"the mask is empty: every voxel becomes {mask_value:g}", stacklevel=2)
    return _set(image, ~inside, mask_value)


def fill_image(image: sitk.Image, mask: sitk.Image, mask_value: float = 0.0) -> sitk.Image:
    """Set every voxel INSIDE the mask (non-zero) to ``mask_value`` (plastimatch ``fill``)."""
    return _set(image, mask_array(mask, image), mask_value)


def _set(image: sitk.Image, where: np.ndarray, value: float) -> sitk.Image:
    array = array_of(image)
    stored = cast_like(np.array(float(value)), array.dtype)
    # the pixel type is kept (plastimatch), so a value beyond its range is clamped (-1000 in a uint16 image is 0):
    # say so; a fraction truncated toward zero (-1200.7 -> -1200) is plastimatch's rule and stays quiet
    if array.dtype.kind in "iu" and np.trunc(float(value)) != float(stored):
        warnings.warn(f"mask value {value:g} is outside the range of the image's {array.dtype} voxels: "
                      f"{stored} is written instead", stacklevel=3)  # fmt: skip
    array[where] = stored
    return to_image(array, image)


def threshold(
    image: sitk.Image,
    above: float | None = None,
    below: float | None = None,
    ranges: Sequence[float] | None = None,
) -> sitk.Image:
    """A uint8 mask: 1 where the voxel is ``>= above``, ``<= below`` or inside one of the closed ``ranges``
    ``(lo1, hi1, lo2, hi2, ...)`` (plastimatch ``threshold --above/--below/--range``).

    Examples
    --------
    >>> img = sitk.GetImageFromArray([[0.0, 50.0, 100.0, 150.0]])
    >>> sitk.GetArrayFromImage(threshold(img, above=100)).tolist()
    [[0, 0, 1, 1]]
    """
    if sum(x is not None for x in (above, below, ranges)) != 1:
        raise ImgSuiteError("threshold needs exactly one of --above, --below or --range")
    check_number(above, "--above")
    check_number(below, "--below")
    array = array_of(image)
    if above is not None:
        out = array >= above
    elif below is not None:
        out = array <= below
    else:
        if len(ranges) == 0 or len(ranges) % 2:
            raise ImgSuiteError(f"--range needs pairs lo,hi; got {list(ranges)}")
        out = np.zeros(array.shape, bool)
        for lo, hi in zip(ranges[0::2], ranges[1::2]):
            if lo > hi:  # an empty range: a swapped pair, which selected nothing without a word
                raise ImgSuiteError(f"--range {lo:g},{hi:g} is empty: give each range as lo,hi with lo <= hi")
            out |= (array >= lo) & (array <= hi)
    if not out.any():
        warnings.warn(f"no voxel selected: the image's values lie from {float(array.min()):g} to "
                      f"{float(array.max()):g}; the mask is all 0", stacklevel=2)  # fmt: skip
    return to_image(out.astype(np.uint8), image)


def union(masks: Sequence[sitk.Image], names: Sequence[str] | None = None) -> sitk.Image:
    """A uint8 mask that is 1 wherever any input is non-zero (plastimatch ``union``); grids must match."""
    if not masks:
        raise ImgSuiteError("union needs at least one input")
    names = list(names or [f"input {i + 1}" for i in range(len(masks))])
    out = np.zeros(sitk.GetArrayViewFromImage(masks[0]).shape, bool)
    for mask, name in zip(masks, names):
        out |= mask_array(mask, masks[0], name, names[0])
    return to_image(out.astype(np.uint8), masks[0])
