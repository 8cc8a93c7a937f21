"""Numbers from images: ``stats``, ``compare``, ``diff`` and ``probe`` (plastimatch's commands)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ._util import array_of, mask_array, to_image


def image_stats(image: sitk.Image, mask: sitk.Image | None = None, outside: bool = False) -> dict:
    """Intensity statistics, optionally inside (or ``outside``) a mask (plastimatch ``stats``).

    Returns
    -------
    dict
        ``min, max, mean, sigma`` (population standard deviation), ``nonzero`` (voxels != 0) and
        ``numvox`` (voxels counted). With an empty selection the values are ``nan`` and the counts 0.

    Examples
    --------
    >>> s = image_stats(sitk.GetImageFromArray(np.array([[0.0, 1.0, 2.0, 5.0]])))
    >>> s["mean"], s["max"], s["nonzero"]
    (2.0, 5.0, 3)
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError("stats needs a scalar image")
    values = sitk.GetArrayViewFromImage(image)  # no copy: a CT can be large
    if mask is not None:
        require_same_grid(image, mask, "image", "mask")
        inside = sitk.GetArrayViewFromImage(mask) != 0
        values = values[~inside if outside else inside]
    values = values.ravel()
    if values.size == 0:
        if mask is not None:  # plastimatch prints nan too, without a word
            warnings.warn(f"no voxel {'outside' if outside else 'inside'} the mask, so the statistics are undefined "
                          "(nan)", stacklevel=2)  # fmt: skip
        nan = float("nan")
        return {"min": nan, "max": nan, "mean": nan, "sigma": nan, "nonzero": 0, "numvox": 0}
    mean = float(values.mean(dtype=np.float64))
    return {
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": mean,
        "sigma": float(np.sqrt(np.mean(np.square(values - mean, dtype=np.float64)))),
        "nonzero": int(np.count_nonzero(values)),
        "numvox": int(values.size),
    }


def vector_stats(image: sitk.Image, mask: sitk.Image | None = None, outside: bool = False) -> dict:
    """Per-component statistics of a vector image (a vector field), as plastimatch ``stats`` prints them.

    Returns
    -------
    dict
        ``min, mean, max, mean_abs`` (one number per component), ``mean_length`` (mean vector magnitude)
        and ``numvox``.

    Examples
    --------
    >>> vf = sitk.Compose([sitk.Image([2, 2, 2], sitk.sitkFloat32) + v for v in (1.0, -2.0, 3.0)])
    >>> s = vector_stats(vf)
    >>> s["mean"], s["mean_abs"], round(s["mean_length"], 3)
    ([1.0, -2.0, 3.0], [1.0, 2.0, 3.0], 3.742)
    """
    values = sitk.GetArrayViewFromImage(image)
    components = image.GetNumberOfComponentsPerPixel()
    values = values.reshape(-1, components)
    if mask is not None:
        require_same_grid(image, mask, "image", "mask")
        inside = (sitk.GetArrayViewFromImage(mask) != 0).ravel()
        values = values[~inside if outside else inside]
    if len(values) == 0:
        nan = [float("nan")] * components
        return {"min": nan, "mean": nan, "max": nan, "mean_abs": nan, "mean_length": float("nan"), "numvox": 0}
    values = values.astype(np.float64)
    return {
        "min": values.min(axis=0).tolist(),
        "mean": values.mean(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
        "mean_abs": np.abs(values).mean(axis=0).tolist(),
        "mean_length": float(np.linalg.norm(values, axis=1).mean()),
        "numvox": len(values),
    }


def structure_voxel_counts(image: sitk.Image) -> list[int]:
    """Voxels in each structure of a structure-set image (``stats --structure``): bit ``j`` of component ``i``
    is structure ``8 i + j`` for a uchar vector image (plastimatch's ss-img), bit ``j`` of the value for an
    unsigned integer image (our uint32 ss-img; a uchar 0/1 mask is structure 0).

    Examples
    --------
    >>> a = sitk.GetImageFromArray(np.array([[[1, 3, 4, 0]]], np.uint8))
    >>> structure_voxel_counts(a)
    [2, 1, 1, 0, 0, 0, 0, 0]
    """
    values = sitk.GetArrayViewFromImage(image)
    components = image.GetNumberOfComponentsPerPixel()
    if values.dtype.kind != "u" or (components > 1 and values.dtype != np.uint8):
        raise ImgSuiteError(
            f"--structure needs a structure-set image (unsigned bits), not {image.GetPixelIDTypeAsString()}"
        )
    flat = values.reshape(-1, components) if components > 1 else values.reshape(-1, 1)
    bits = 8 * flat.dtype.itemsize
    return [int(np.count_nonzero(flat[:, i] & (1 << j))) for i in range(flat.shape[1]) for j in range(bits)]


def diff(a: sitk.Image, b: sitk.Image, names: Sequence[str] = ("image 1", "image 2")) -> sitk.Image:
    """``a - b`` voxel by voxel, float32 (plastimatch ``diff``); the grids must match."""
    require_same_grid(a, b, names[0], names[1])
    return to_image((array_of(a, names[0]).astype(np.float64) - array_of(b, names[1])).astype(np.float32), a)


def compare(
    a: sitk.Image, b: sitk.Image, mask: sitk.Image | None = None, names: Sequence[str] = ("image 1", "image 2")
) -> dict:
    """Statistics of the difference ``a - b`` (plastimatch ``compare``), optionally inside a mask.

    Returns
    -------
    dict
        ``min, mean, max`` of the difference, ``mae`` (mean absolute), ``mse`` (mean squared), ``rmse``,
        ``dif`` (voxels that differ) and ``num`` (voxels compared).

    Examples
    --------
    >>> a = sitk.GetImageFromArray(np.array([[1.0, 2.0, 3.0]]))
    >>> b = sitk.GetImageFromArray(np.array([[1.0, 0.0, 4.0]]))
    >>> r = compare(a, b)
    >>> r["max"], r["mae"], r["dif"]
    (2.0, 1.0, 2)
    """
    require_same_grid(a, b, names[0], names[1])
    d = array_of(a, names[0]).astype(np.float64) - array_of(b, names[1])
    if mask is not None:
        d = d[mask_array(mask, a)]
    d = d.ravel()
    if d.size == 0:
        nan = float("nan")
        return {"min": nan, "mean": nan, "max": nan, "mae": nan, "mse": nan, "rmse": nan, "dif": 0, "num": 0}
    mse = float(np.mean(d * d))
    return {
        "min": float(d.min()),
        "mean": float(d.mean()),
        "max": float(d.max()),
        "mae": float(np.mean(np.abs(d))),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "dif": int(np.count_nonzero(d)),
        "num": int(d.size),
    }


def probe(
    image: sitk.Image,
    indices: Sequence[Sequence[float]] | None = None,
    locations: Sequence[Sequence[float]] | None = None,
) -> list[tuple[tuple[float, ...], tuple[float, ...], float]]:
    """Values at voxel indices or at LPS positions (mm), linearly interpolated (plastimatch ``probe``).

    Returns
    -------
    list of (continuous index, position, value)
        Indices first, then locations, in the order given; the value is ``nan`` outside the image
        (beyond the first or last voxel centre). For a vector image (a vector field) the value is a
        tuple with one interpolated number per component (all ``nan`` outside).

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.array([[0.0, 10.0, 20.0]]))
    >>> [round(float(v), 3) for _, _, v in probe(img, locations=[(0.25, 0.0), (5.0, 0.0)])]
    [2.5, nan]
    """
    ndim = image.GetDimension()
    points = []
    for index in indices or []:
        index = _vector(index, ndim, "--index")
        points.append((tuple(index), image.TransformContinuousIndexToPhysicalPoint(index)))
    for location in locations or []:
        location = _vector(location, ndim, "--location")
        points.append((image.TransformPhysicalPointToContinuousIndex(location), tuple(location)))
    if not points:
        raise ImgSuiteError("probe needs --index or --location")
    volume = sitk.GetArrayViewFromImage(image)
    components = image.GetNumberOfComponentsPerPixel()
    size = np.array(image.GetSize())
    out = []
    for index, location in points:
        idx = np.array(index, float)
        value = np.full(components, np.nan)
        if np.all(idx >= -1e-6) and np.all(idx <= size - 1 + 1e-6):
            value = _interpolate(volume, np.clip(idx, 0, size - 1))
        shown = float(value[0]) if components == 1 else tuple(float(v) for v in value)
        out.append((tuple(float(v) for v in index), tuple(float(v) for v in location), shown))
    return out


def _interpolate(volume: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Multilinear interpolation at an (x, y, z) continuous index inside the grid: one value per component."""
    ndim = len(index)
    lo = np.floor(index).astype(int)
    hi = np.minimum(lo + 1, np.array(volume.shape[:ndim][::-1]) - 1)
    frac = index - lo
    total = np.zeros(volume.shape[ndim:] or (1,), np.float64)
    for corner in range(2**ndim):
        bits = [(corner >> d) & 1 for d in range(ndim)]
        weight = np.prod([f if b else 1 - f for f, b in zip(frac, bits)])
        if weight:
            at = tuple(int(h if b else lo_) for lo_, h, b in zip(lo, hi, bits))
            total += weight * np.asarray(volume[at[::-1]], np.float64).reshape(total.shape)
    return total


def _vector(values, ndim: int, option: str) -> list[float]:
    values = [float(v) for v in values]
    if len(values) != ndim:
        raise ImgSuiteError(f"{option} expects {ndim} numbers per point, got {values}")
    return values
