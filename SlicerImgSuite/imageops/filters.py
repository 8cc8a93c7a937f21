"""Smoothing and texture filters (plastimatch ``filter``): Gaussian of a width in mm, Gabor, a kernel image.

All filters are separable or direct correlations in voxel space, float32 out. At the image edge the kernel is
renormalised over the voxels inside the image (as plastimatch does), so a constant image stays constant.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import ImgSuiteError
from ._util import array_of, to_image


def gauss_kernel(sigma_mm: float, spacing_mm: float) -> np.ndarray:
    """The 1D Gaussian taps plastimatch uses: ``sigma`` in mm, half-width ``round(2 sigma / spacing)`` taps, sum 1."""
    half = int(np.floor(2.0 * sigma_mm / spacing_mm + 0.5))
    x = np.arange(-half, half + 1) * spacing_mm
    w = np.exp(-(x**2) / (2.0 * sigma_mm**2))
    return w / w.sum()


def gauss_filter(image: sitk.Image, width: float) -> sitk.Image:
    """Gaussian smoothing with standard deviation ``width`` mm on every axis (plastimatch ``--gauss-width``).

    Examples
    --------
    >>> img = sitk.Image(9, 9, 9, sitk.sitkFloat32) + 7
    >>> float(sitk.GetArrayFromImage(gauss_filter(img, 2.0)).max())
    7.0
    """
    if not (np.isfinite(width) and width > 0):
        raise ImgSuiteError(f"--gauss-width must be a finite number > 0 mm, got {width}")
    if 2.0 * width / min(image.GetSpacing()) > 1e6:
        raise ImgSuiteError(f"--gauss-width {width:g} mm is over a million voxels wide: is it in mm?")
    values = array_of(image).astype(np.float64)
    ones = np.ones_like(values)
    for axis, spacing in zip(reversed(range(values.ndim)), image.GetSpacing()):
        k = gauss_kernel(width, spacing)
        values = ndi.correlate1d(values, k, axis=axis, mode="constant")
        ones = ndi.correlate1d(ones, k, axis=axis, mode="constant")
    return to_image((values / ones).astype(np.float32), image)


def gradient_magnitude(image: sitk.Image) -> sitk.Image:
    """|grad| per mm (central differences in physical units), float32: plastimatch ``--pattern gm``.

    Examples
    --------
    >>> ramp = sitk.GetImageFromArray(np.tile(np.arange(8, dtype=np.float32) * 3, (4, 4, 1)))
    >>> ramp.SetSpacing((1.5, 1.0, 1.0))
    >>> float(sitk.GetArrayFromImage(gradient_magnitude(ramp))[2, 2, 3])
    2.0
    """
    return sitk.GradientMagnitude(sitk.Cast(image, sitk.sitkFloat32), useImageSpacing=True)


def kernel_filter(image: sitk.Image, kernel: sitk.Image) -> sitk.Image:
    """Correlate with a kernel image (its centre voxel on the output voxel), renormalised at the image edge.

    The kernel's own sum is kept (a kernel summing to 1 smooths, a derivative kernel differentiates).
    """
    if kernel.GetDimension() != image.GetDimension():
        raise ImgSuiteError(f"the kernel is {kernel.GetDimension()}D, the image {image.GetDimension()}D")
    k = array_of(kernel, "kernel").astype(np.float64)
    values = array_of(image).astype(np.float64)
    out = ndi.correlate(values, k, mode="constant")
    weight = ndi.correlate(np.ones_like(values), np.abs(k), mode="constant")
    full = np.abs(k).sum()
    return to_image((out * np.where(weight > 0, full / np.maximum(weight, 1e-300), 0.0)).astype(np.float32), image)


def fibonacci_direction(i: int, n: int) -> np.ndarray:
    """The ``i``-th of ``n`` directions spread evenly over a hemisphere (a Fibonacci spiral), unit vector (x, y, z)."""
    if not (0 <= i < n):
        raise ImgSuiteError(f"--gabor-k-fib needs 0 <= i < n, got i={i}, n={n}")
    golden = np.pi * (3.0 - np.sqrt(5.0))
    z = 1.0 - (i + 0.5) / n  # hemisphere z in (0, 1]
    r = np.sqrt(max(0.0, 1.0 - z * z))
    return np.array([r * np.cos(golden * i), r * np.sin(golden * i), z])


def gabor_kernel(spacing, direction, sigma_mm: float = 5.0, wavelength_mm: float = 10.0) -> np.ndarray:
    """A real (cosine) Gabor kernel in voxel space, numpy axis order, zero mean, unit L1 norm."""
    ndim = len(spacing)
    half = [int(np.ceil(2.0 * sigma_mm / s)) for s in spacing]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing)], indexing="ij")  # x, y, z
    proj = sum(g * d for g, d in zip(grids, direction[:ndim]))
    r2 = sum(g * g for g in grids)
    k = np.exp(-r2 / (2 * sigma_mm**2)) * np.cos(2 * np.pi * proj / wavelength_mm)
    k -= k.mean()
    k /= np.abs(k).sum()
    return np.transpose(k)  # (x, y, z) -> numpy (z, y, x)


def gabor_filter(
    image: sitk.Image, k_fib: tuple[int, int] = (0, 1), sigma_mm: float = 5.0, wavelength_mm: float = 10.0
):
    """Gabor response along the ``k_fib = (i, n)`` Fibonacci direction (plastimatch ``--gabor-k-fib``)."""
    direction = fibonacci_direction(*k_fib)
    k = gabor_kernel(image.GetSpacing(), direction, sigma_mm, wavelength_mm)
    values = array_of(image).astype(np.float64)
    return to_image(ndi.correlate(values, k, mode="nearest").astype(np.float32), image)
