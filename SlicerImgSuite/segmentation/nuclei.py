"""Nuclei in fluorescence images: a nuclear mask, then one label per nucleus (2D planes or 3D stacks).

The pipeline a physicist can reason about, each step tied to one number, the expected nucleus
diameter (estimated from the image when not given):

1. smooth (Gaussian, sigma ~ diameter / 24) to suppress shot noise;
2. foreground: ``adaptive`` (default) = above the local mean in a window of two diameters AND above
   a fraction of the global Otsu level, so dim nuclei next to bright ones are kept and dark
   background never is; ``otsu`` = global Otsu; ``threshold`` = a value you give; ``model`` = a
   U-Net probability map (optional, :mod:`.unet`);
3. split touching nuclei: watershed on the distance transform (weighted by local brightness), with
   one marker per peak at least a quarter diameter from the next;
4. area filter and optional removal of nuclei cut by the image border.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import feature, filters, measure, morphology, segmentation

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress

METHODS = ("adaptive", "otsu", "threshold", "model")


def _odd(n: float) -> int:
    n = max(3, int(round(n)))
    return n if n % 2 else n + 1


def estimate_diameter(image: np.ndarray, smoothing: float = 1.0) -> float:
    """Typical nucleus diameter in pixels: median equivalent diameter of convex Otsu objects.

    Objects that are not convex (touching nuclei) are left out, so clumps do not inflate the estimate.

    Examples
    --------
    >>> from skimage.draw import disk
    >>> a = np.zeros((100, 100)); a[disk((30, 30), 10)] = 100; a[disk((70, 70), 10)] = 100
    >>> round(estimate_diameter(a))
    20
    """
    smooth = filters.gaussian(np.asarray(image, np.float32), smoothing, preserve_range=True)
    if np.ptp(smooth) == 0:
        return 0.0
    labels = measure.label(smooth > filters.threshold_otsu(smooth))
    props = measure.regionprops(labels)
    sizes = [p.area for p in props if p.area >= 9 and p.solidity > 0.9]
    if not sizes:
        sizes = [p.area for p in props] or [0]
    area = float(np.median(sizes))
    if image.ndim == 3:
        return float((6 * area / np.pi) ** (1 / 3))
    return float(2 * np.sqrt(area / np.pi))


def nuclear_mask(
    image: np.ndarray,
    method: str = "adaptive",
    threshold: float | None = None,
    diameter: float | None = None,
    probability: np.ndarray | None = None,
) -> np.ndarray:
    """Foreground (nucleus) mask of a 2D or 3D nuclear-channel image.

    Parameters
    ----------
    image : ndarray
        Nuclear channel, 2D (Y, X) or 3D (Z, Y, X).
    method : {'adaptive', 'otsu', 'threshold', 'model'}
        See the module docstring.
    threshold : float, optional
        The intensity level for ``threshold`` (required) and the probability level for ``model`` (0.5).
    diameter : float, optional
        Expected nucleus diameter in pixels (estimated when not given).
    probability : ndarray, optional
        Foreground probability from a model, for ``method='model'``.

    Examples
    --------
    >>> a = np.zeros((40, 40)); a[10:20, 10:20] = 50
    >>> int(nuclear_mask(a, "threshold", threshold=25).sum())
    100
    """
    if method not in METHODS:
        raise ImgSuiteError(f"unknown nuclear-mask method {method!r}; use one of {', '.join(METHODS)}")
    image = np.asarray(image, np.float32)
    if method == "model":
        if probability is None:
            raise ImgSuiteError("method 'model' needs a probability map (give --model FILE)")
        fg = probability > (0.5 if threshold is None else threshold)
    else:
        if diameter is None:
            diameter = estimate_diameter(image)
        diameter = max(float(diameter), 4.0)
        smooth = filters.gaussian(image, max(0.5, diameter / 24), preserve_range=True)
        if method == "threshold":
            if threshold is None:
                raise ImgSuiteError("method 'threshold' needs --threshold V")
            fg = smooth > threshold
        else:
            if np.ptp(smooth) == 0:
                return np.zeros(image.shape, bool)
            otsu = filters.threshold_otsu(smooth)
            fg = smooth > otsu
            if method == "adaptive":
                window = _odd(2 * diameter)
                local = ndi.uniform_filter(smooth, size=window, mode="reflect")
                fg = (smooth > local + 0.04 * otsu) & (smooth > 0.7 * otsu)
    fill = ndi.binary_fill_holes if fg.ndim == 2 else _fill_holes_slices
    return fill(fg)


def _fill_holes_slices(mask: np.ndarray) -> np.ndarray:
    return np.stack([ndi.binary_fill_holes(m) for m in mask])


def split_nuclei(
    mask: np.ndarray,
    diameter: float,
    image: np.ndarray | None = None,
    spacing: tuple[float, ...] | None = None,
) -> np.ndarray:
    """Split touching nuclei: watershed on the distance transform, markers a quarter diameter apart.

    Parameters
    ----------
    mask : ndarray of bool
        Nuclear foreground.
    diameter : float
        Expected nucleus diameter (pixels): sets the marker spacing and the smoothing.
    image : ndarray, optional
        The nuclear channel; when given, the distance is weighted by local relative brightness so
        that a dim gap between two nuclei becomes a border even where the mask has no neck
        (helps dense 3D stacks; off by default for planes).
    spacing : tuple of float, optional
        Voxel size per axis (for anisotropic z-stacks).

    Returns
    -------
    ndarray of int32
        Instance labels, 0 = background.
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    dist = ndi.distance_transform_edt(mask, sampling=spacing)
    relief = filters.gaussian(dist, max(0.5, diameter / 12))
    if image is not None:
        smooth = filters.gaussian(np.asarray(image, np.float32), max(0.5, diameter / 24), preserve_range=True)
        brightest = ndi.maximum_filter(np.where(mask, smooth, 0), size=_odd(diameter))
        relief = relief * (0.5 + 0.5 * np.clip(smooth / np.maximum(brightest, 1e-6), 0, 1))
    components = measure.label(mask)
    peaks = feature.peak_local_max(
        relief, min_distance=max(1, int(round(diameter / 4))), labels=components, exclude_border=False
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # components with no peak (flat plateaus) still get one marker
    missing = np.setdiff1d(np.unique(components[mask]), np.unique(components[tuple(peaks.T)]))
    if missing.size:
        centres = ndi.maximum_position(dist, components, missing)
        for i, c in enumerate(centres):
            markers[c] = len(peaks) + 1 + i
    return segmentation.watershed(-relief, markers, mask=mask).astype(np.int32)


def label_nuclei(
    image: np.ndarray,
    method: str = "adaptive",
    threshold: float | None = None,
    diameter: float | None = None,
    min_area: float | None = None,
    max_area: float | None = None,
    split_touching: bool = True,
    exclude_border: bool = False,
    spacing: tuple[float, ...] | None = None,
    probability: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Instance labels of the nuclei in a 2D plane or a 3D stack.

    Parameters
    ----------
    image : ndarray
        Nuclear channel (Y, X) or (Z, Y, X).
    method, threshold, diameter, probability :
        See :func:`nuclear_mask`.
    min_area, max_area : float, optional
        Nuclei with fewer (more) pixels/voxels are dropped; ``min_area`` defaults to 1/8 of the
        expected nucleus area (debris), ``max_area`` to no limit.
    split_touching : bool
        Separate touching nuclei with :func:`split_nuclei`; otherwise one label per connected blob.
    exclude_border : bool
        Drop nuclei that touch the image edge (cut nuclei bias intensity and area statistics).

    Returns
    -------
    ndarray of int32
        0 = background, 1..N = nuclei, numbered consecutively.

    Examples
    --------
    >>> from skimage.draw import disk
    >>> a = np.zeros((80, 80)); a[disk((40, 30), 10)] = 100; a[disk((40, 48), 10)] = 100
    >>> int(label_nuclei(a, diameter=20).max())
    2
    """
    progress = progress or no_progress
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ImgSuiteError(f"nuclei need a 2D plane or a 3D stack, got {image.ndim} dimensions")
    if method == "model" and probability is None:
        raise ImgSuiteError("method 'model' needs a probability map (give --model FILE)")
    if diameter is None:
        diameter = estimate_diameter(image if method != "model" else probability)
    diameter = max(float(diameter), 4.0)
    mask = nuclear_mask(image, method, threshold, diameter, probability)
    progress(0.4, "nuclear mask")
    if split_touching:
        labels = split_nuclei(mask, diameter, image if image.ndim == 3 and method != "model" else None, spacing)
    else:
        labels = measure.label(mask).astype(np.int32)
    progress(0.8, "nuclei split")
    if min_area is None:
        unit = np.pi * diameter**2 / 4 if image.ndim == 2 else np.pi * diameter**3 / 6
        min_area = unit / 8
    areas = np.bincount(labels.ravel())
    drop = areas < min_area
    if max_area:
        drop |= areas > max_area
    drop[0] = False
    if exclude_border:
        edge = np.zeros(labels.shape, bool)
        for axis in range(labels.ndim):
            index = [slice(None)] * labels.ndim
            for end in (0, -1):
                index[axis] = end
                edge[tuple(index)] = True
        drop[np.unique(labels[edge])] = True
        drop[0] = False
    labels[drop[labels]] = 0
    labels = segmentation.relabel_sequential(labels)[0].astype(np.int32)
    progress(1.0, f"{labels.max()} nuclei")
    return labels


def remove_small(labels: np.ndarray, min_area: float) -> np.ndarray:
    """Drop labels smaller than ``min_area`` and renumber (a thin wrapper kept for the CLI)."""
    return segmentation.relabel_sequential(morphology.remove_small_objects(labels, max_size=int(min_area) - 1))[0]
