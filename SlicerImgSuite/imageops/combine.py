"""Voxel-wise combination of several images: ``maximum``, ``multiply``, ``intersect`` (plastimatch's commands)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ._util import array_of, array_view_of, cast_like, to_image


def _arrays(images: Sequence[sitk.Image], names: Sequence[str] | None, least: int, what: str, view: bool = False):
    if len(images) < least:
        raise ImgSuiteError(f"{what} needs at least {least} input image{'s' if least > 1 else ''}")
    names = list(names or [f"input {i + 1}" for i in range(len(images))])
    for image, name in zip(images[1:], names[1:]):
        require_same_grid(images[0], image, names[0], name)
    read = array_view_of if view else array_of
    return [read(image, name) for image, name in zip(images, names)]


def maximum(images: Sequence[sitk.Image], names: Sequence[str] | None = None) -> sitk.Image:
    """The voxel-wise maximum of images on one grid (plastimatch ``maximum``), in the first image's pixel type.

    The maximum is taken on the values as read, then cast to the first image's type (truncated toward zero and
    clamped, as plastimatch and ``--output-type`` do).

    Examples
    --------
    >>> a = sitk.GetImageFromArray(np.array([[1, -5, 3]], np.int16))
    >>> b = sitk.GetImageFromArray(np.array([[0.5, -2.5, 7.9]], np.float32))
    >>> sitk.GetArrayFromImage(maximum([a, b])).tolist()
    [[1, -2, 7]]
    """
    arrays = _arrays(images, names, 1, "maximum")
    out = arrays[0].astype(np.float64)
    for a in arrays[1:]:
        out = np.maximum(out, a)
    return to_image(cast_like(out, arrays[0].dtype), images[0])


def multiply(images: Sequence[sitk.Image], names: Sequence[str] | None = None) -> sitk.Image:
    """The voxel-wise product of images on one grid (plastimatch ``multiply``), in the first image's pixel type.

    As plastimatch: the running product is kept in float32 (so results equal plastimatch's to the bit), then cast
    to the first image's type (truncated toward zero and clamped: an int16 200 * 200 gives 32767, not a wrapped
    value).

    Examples
    --------
    >>> a = sitk.GetImageFromArray(np.array([[200, -3, 2]], np.int16))
    >>> sitk.GetArrayFromImage(multiply([a, a])).tolist()
    [[32767, 9, 4]]
    """
    arrays = _arrays(images, names, 1, "multiply")
    out = arrays[0].astype(np.float32)
    for a in arrays[1:]:
        out = out * a.astype(np.float32)
    return to_image(cast_like(out, arrays[0].dtype), images[0])


def intersect(images: Sequence[sitk.Image], names: Sequence[str] | None = None) -> sitk.Image:
    """1 where every input is non-zero, else 0 (uchar): the intersection of structures (plastimatch ``intersect``).

    plastimatch 1.9.4 casts each input to uchar (negatives to 0, above 255 to 255) and takes the BITWISE and,
    so a label 2 intersected with a label 1 is empty there; here any non-zero value is inside.

    Examples
    --------
    >>> a = sitk.GetImageFromArray(np.array([[1, 2, 0, 255]], np.uint8))
    >>> b = sitk.GetImageFromArray(np.array([[1, 1, 1, 0]], np.uint8))
    >>> sitk.GetArrayFromImage(intersect([a, b])).tolist()
    [[1, 1, 0, 0]]
    """
    arrays = _arrays(images, names, 2, "intersect", view=True)
    inside = np.not_equal(arrays[0], 0)
    for a in arrays[1:]:
        np.logical_and(inside, a, out=inside)  # a non-zero value is true: no comparison array per input
    return to_image(inside.view(np.uint8), images[0])
