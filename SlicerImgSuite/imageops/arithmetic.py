"""Voxel arithmetic: ``add``, ``average``, ``scale`` and ``adjust`` (plastimatch's commands)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError, check_number
from ..geometry import require_same_grid
from ._util import array_of, cast_like, to_image


def add(
    images: Sequence[sitk.Image],
    weights: Sequence[float] | None = None,
    average: bool = False,
    names: Sequence[str] | None = None,
) -> sitk.Image:
    """Sum images voxel by voxel (plastimatch ``add``).

    Parameters
    ----------
    images : sequence of SimpleITK.Image
        Same grid for all.
    weights : sequence of float, optional
        One weight per image.
    average : bool
        Divide by the number of images (the weights, when given, are multiplied by ``1/n``).

    Returns
    -------
    SimpleITK.Image
        Without weights or averaging, the first image's pixel type: the sum is taken in double precision
        and then clamped to the type's range (an int16 30000 + 30000 gives 32767, not a wrapped value).
        With weights or averaging, float32.

    Examples
    --------
    >>> a = sitk.Image(2, 2, sitk.sitkInt16) + 30000
    >>> sitk.GetArrayFromImage(add([a, a]))[0, 0]
    np.int16(32767)
    """
    if not images:
        raise ImgSuiteError("add needs at least one input image")
    names = list(names or [f"input {i + 1}" for i in range(len(images))])
    if weights is not None and len(weights) != len(images):
        raise ImgSuiteError(f"--weight has {len(weights)} values for {len(images)} images")
    w = np.ones(len(images)) if weights is None else np.asarray(weights, float)
    if average:
        w = w / len(images)
    total = np.zeros(sitk.GetArrayViewFromImage(images[0]).shape, np.float64)
    for image, weight, name in zip(images, w, names):
        require_same_grid(images[0], image, names[0], name)
        total += weight * array_of(image, name)
    if weights is None and not average:
        return to_image(cast_like(total, sitk.GetArrayViewFromImage(images[0]).dtype), images[0])
    return to_image(total.astype(np.float32), images[0])


def average(images: Sequence[sitk.Image], names: Sequence[str] | None = None) -> sitk.Image:
    """The voxel-wise mean of images, float32 (plastimatch ``average``)."""
    return add(images, average=True, names=names)


def scale(image: sitk.Image, weight: float) -> sitk.Image:
    """Multiply every voxel by ``weight``; float32 output so integers never overflow (plastimatch ``scale``).

    A vector image (a vector field) has every component scaled, as plastimatch does.

    Examples
    --------
    >>> vf = sitk.Compose([sitk.Image([2, 2, 2], sitk.sitkFloat32) + v for v in (1.0, -2.0, 3.0)])
    >>> sitk.GetArrayFromImage(scale(vf, 2.5))[0, 0, 0].tolist()
    [2.5, -5.0, 7.5]
    """
    check_number(weight, "--weight")
    if image.GetNumberOfComponentsPerPixel() > 1:
        values = (sitk.GetArrayViewFromImage(image).astype(np.float64) * float(weight)).astype(np.float32)
        out = sitk.GetImageFromArray(values, isVector=True)
        out.CopyInformation(image)
        return out
    return to_image((array_of(image).astype(np.float64) * float(weight)).astype(np.float32), image)


def pw_linear(values: np.ndarray, points: Sequence[float]) -> np.ndarray:
    """Map values through a piecewise linear curve ``"in1,out1,in2,out2,..."`` as plastimatch does.

    Between the points the map is linear. Beyond the first and last finite point it continues with slope 1,
    unless a pair ``-inf,s`` (below) or ``inf,s`` (above) gives the slope ``s`` to use there
    (``-inf,0`` ... ``inf,0`` clamps).

    Examples
    --------
    >>> pw_linear(np.array([-200.0, 0.0, 300.0]), [-float("inf"), 0, -100, 0, 100, 1000, float("inf"), 0]).tolist()
    [0.0, 500.0, 1000.0]
    >>> pw_linear(np.array([-200.0, 300.0]), [-100, 0, 100, 1000]).tolist()
    [-100.0, 1200.0]
    """
    points = [float(p) for p in points]
    if len(points) < 2 or len(points) % 2:
        raise ImgSuiteError(f"--pw-linear needs pairs in,out; got {len(points)} numbers")
    pairs = list(zip(points[0::2], points[1::2]))
    slope_below = slope_above = 1.0
    if pairs and pairs[0][0] == -math.inf:
        slope_below = pairs.pop(0)[1]
    if pairs and pairs[-1][0] == math.inf:
        slope_above = pairs.pop()[1]
    if not pairs:
        raise ImgSuiteError("--pw-linear needs at least one finite in,out pair")
    xs = np.array([p[0] for p in pairs])
    ys = np.array([p[1] for p in pairs])
    if not np.all(np.isfinite(xs)) or not np.all(np.isfinite(ys)) or np.any(np.diff(xs) <= 0):
        raise ImgSuiteError(
            f"--pw-linear inputs must increase, with -inf/inf only first/last: got {', '.join(f'{p:g}' for p in points)}"
        )
    v = np.asarray(values, np.float64)
    out = np.interp(v, xs, ys)
    out = np.where(v < xs[0], ys[0] + (v - xs[0]) * slope_below, out)
    return np.where(v > xs[-1], ys[-1] + (v - xs[-1]) * slope_above, out)


def adjust(
    image: sitk.Image,
    pw_linear_points: Sequence[float] | None = None,
    truncate_above: float | None = None,
    truncate_below: float | None = None,
    scale: float | None = None,
    linear: Sequence[float] | None = None,
) -> sitk.Image:
    """Adjust intensities (plastimatch ``adjust``); float32 output.

    Applied in this order: ``truncate_below``/``truncate_above`` clamp the input, ``pw_linear_points`` maps it
    (see :func:`pw_linear`), ``linear = (shift, scale)`` gives ``(v + shift) * scale``, ``scale`` multiplies.

    Examples
    --------
    >>> img = sitk.GetImageFromArray([[-2000.0, 0.0, 3000.0]])
    >>> sitk.GetArrayFromImage(adjust(img, truncate_below=-1000, truncate_above=2000)).tolist()
    [[-1000.0, 0.0, 2000.0]]
    """
    for value, option in (
        (truncate_above, "--truncate-above"),
        (truncate_below, "--truncate-below"),
        (scale, "--scale"),
    ):
        check_number(value, option)
    v = array_of(image).astype(np.float64)
    if truncate_below is not None:
        v = np.maximum(v, truncate_below)
    if truncate_above is not None:
        v = np.minimum(v, truncate_above)
    if pw_linear_points is not None:
        v = pw_linear(v, pw_linear_points)
    if linear is not None:
        if len(linear) != 2:
            raise ImgSuiteError(f'--linear needs "shift scale", got {list(linear)}')
        v = (v + linear[0]) * linear[1]
    if scale is not None:
        v = v * scale
    return to_image(v.astype(np.float32), image)
