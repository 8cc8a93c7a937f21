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
import SimpleITK as sitk
from scipy import ndimage as ndi
from skimage import filters, segmentation

from ..choices import NUCLEI_MASK_METHODS
from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress

METHODS = NUCLEI_MASK_METHODS


def _odd(n: float) -> int:
    n = max(3, int(round(n)))
    return n if n % 2 else n + 1


def estimate_diameter(image: np.ndarray, smoothing: float = 1.0) -> float:
    """Typical nucleus diameter in pixels: median equivalent diameter of the single Otsu objects.

    An object counts as single when its area is close to that of the disc (ball) inscribed in it
    (largest distance-transform value): clumps of touching nuclei are much larger than their
    inscribed disc, so they do not inflate the estimate.

    Examples
    --------
    >>> from skimage.draw import disk
    >>> a = np.zeros((100, 100)); a[disk((30, 30), 10)] = 100; a[disk((70, 70), 10)] = 100
    >>> round(estimate_diameter(a))
    20
    """
    return _estimate_diameter(_smooth(image, smoothing))


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndi.gaussian_filter(np.asarray(image, np.float32), sigma, truncate=3.0)


def _distance(mask: np.ndarray, spacing=None) -> np.ndarray:
    """Euclidean distance to the background (SimpleITK's multi-threaded Maurer transform)."""
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    if spacing is not None:
        image.SetSpacing([float(v) for v in reversed(spacing)])
    dist = sitk.SignedMaurerDistanceMap(image, insideIsPositive=True, squaredDistance=False, useImageSpacing=True)
    # Maurer measures to the last inside pixel; +1 (one step) gives the usual distance to the background
    return np.maximum(sitk.GetArrayFromImage(dist).astype(np.float32) + min(spacing or (1.0,)), 0) * mask


def _estimate_diameter(smooth: np.ndarray) -> float:
    if np.ptp(smooth) == 0:
        return 0.0
    fg = smooth > filters.threshold_otsu(smooth)
    labels, n = ndi.label(fg)
    if n == 0:
        return 0.0
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(float)
    radius = np.zeros(n + 1)
    np.maximum.at(radius, labels[fg], _distance(fg)[fg])  # largest inscribed radius per object
    radius = radius[1:]
    disc = np.pi * radius**2 if smooth.ndim == 2 else 4 / 3 * np.pi * radius**3
    single = (area >= 9) & (area < 1.6 * disc)
    area = np.median(area[single] if single.any() else area)
    if smooth.ndim == 3:
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
    if method == "model":
        if probability is None:
            raise ImgSuiteError("method 'model' needs a probability map (give --model FILE)")
        return _fill_holes(probability > (0.5 if threshold is None else threshold))
    if diameter is None:
        diameter = estimate_diameter(image)
    diameter = max(float(diameter), 4.0)
    return _foreground(_smooth(image, max(0.5, diameter / 24)), method, threshold, diameter)


def _foreground(smooth: np.ndarray, method: str, threshold: float | None, diameter: float) -> np.ndarray:
    if method == "threshold":
        if threshold is None:
            raise ImgSuiteError("method 'threshold' needs --threshold V")
        return _fill_holes(smooth > threshold)
    if np.ptp(smooth) == 0:
        return np.zeros(smooth.shape, bool)
    otsu = filters.threshold_otsu(smooth)
    if method == "otsu":
        return _fill_holes(smooth > otsu)
    # adaptive: brighter than the neighbourhood (window of two diameters) and than a floor at 0.7 Otsu
    local = ndi.uniform_filter(smooth, size=_odd(2 * diameter), mode="reflect")
    return _fill_holes((smooth > local + 0.04 * otsu) & (smooth > 0.7 * otsu))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes per plane (a 3D fill would leave holes open at the stack's top and bottom)."""
    if mask.ndim == 3:
        return np.stack([_fill_holes(m) for m in mask])
    # a hole is a background component that does not touch the border (faster than binary_fill_holes)
    background, _ = ndi.label(~mask)
    outside = np.unique(np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]]))
    return mask | ~np.isin(background, outside)


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

    Examples
    --------
    >>> from skimage.draw import disk
    >>> m = np.zeros((40, 60), bool); m[disk((20, 20), 10)] = True; m[disk((20, 36), 10)] = True
    >>> int(split_nuclei(m, 20).max())
    2
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    relief = ndi.gaussian_filter(_distance(mask, spacing), max(0.5, diameter / 12), truncate=3.0)
    if image is not None:
        smooth = _smooth(image, max(0.5, diameter / 24))
        brightest = ndi.maximum_filter(np.where(mask, smooth, 0), size=_odd(diameter))
        relief = relief * (0.5 + 0.5 * np.clip(smooth / np.maximum(brightest, 1e-6), 0, 1))
    # markers: local maxima of the relief within a quarter diameter (one per plateau)
    reach = _odd(2 * max(1, round(diameter / 4)) + 1)
    peaks = mask & (relief > 0) & (relief == ndi.maximum_filter(relief, size=reach))
    markers, n_markers = ndi.label(peaks, structure=np.ones((3,) * mask.ndim))
    components, n = ndi.label(mask)
    labels = np.zeros(mask.shape, np.int32)
    # most nuclei have one marker: only clumps go through the (slow) watershed, each in its own box
    pairs = np.unique(np.stack([components[peaks], markers[peaks]]), axis=1)  # (component, marker) pairs
    per_component = np.bincount(pairs[0], minlength=n + 1)[1:]
    next_label = 1
    for i, box in enumerate(ndi.find_objects(components)):
        inside = components[box] == i + 1
        if per_component[i] <= 1:
            labels[box][inside] = next_label
            next_label += 1
            continue
        ids = np.unique(markers[box][inside])
        ids = ids[ids > 0]
        local = np.where(inside, np.searchsorted(ids, markers[box]) + 1, 0) * (markers[box] > 0)
        split = segmentation.watershed(-relief[box], local, mask=inside)
        labels[box][inside] = split[inside] + next_label - 1
        next_label += len(ids)
    return labels


def _filter_labels(labels, diameter, min_area, max_area, exclude_border) -> np.ndarray:
    """Drop debris (below ``min_area``; default 1/8 of a nucleus of ``diameter``), giants and, with
    ``exclude_border``, nuclei touching the edge; renumber the rest 1..N."""
    if min_area is None:
        unit = np.pi * diameter**2 / 4 if labels.ndim == 2 else np.pi * diameter**3 / 6
        min_area = unit / 8
    areas = np.bincount(labels.ravel())
    drop = areas < min_area
    if max_area:
        drop |= areas > max_area
    if exclude_border:
        edge = np.zeros(labels.shape, bool)
        for axis in range(labels.ndim):
            index = [slice(None)] * labels.ndim
            for end in (0, -1):
                index[axis] = end
                edge[tuple(index)] = True
        drop[np.unique(labels[edge])] = True
    drop[0] = False
    keep = np.flatnonzero(~drop)[1:]  # label 0 (background) is never dropped
    lut = np.zeros(len(areas), np.int32)
    lut[keep] = np.arange(1, len(keep) + 1)  # renumber consecutively
    return lut[labels]


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
    spacing : tuple of float, optional
        Relative voxel size per axis for anisotropic stacks.

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
    if method not in METHODS:
        raise ImgSuiteError(f"unknown nuclear-mask method {method!r}; use one of {', '.join(METHODS)}")
    labels = None
    if method == "model":
        if probability is None:
            raise ImgSuiteError("method 'model' needs a probability map (give --model FILE)")
        if probability.ndim == image.ndim + 1:  # background / interior / boundary maps of the U-Net
            from .unet import labels_from_probabilities

            labels = labels_from_probabilities(probability)
            areas = np.bincount(labels.ravel())[1:]
            if diameter is None:
                diameter = 2 * np.sqrt(np.median(areas[areas > 0]) / np.pi) if areas.any() else 4.0
        else:
            diameter = diameter or _estimate_diameter(probability)
            mask = nuclear_mask(image, method, threshold, diameter, probability)
    else:
        smooth = None
        if diameter is None:
            smooth = _smooth(image, 1.0)
            diameter = _estimate_diameter(smooth)
        diameter = max(float(diameter), 4.0)
        if smooth is None or abs(diameter / 24 - 1.0) > 0.25:
            smooth = _smooth(image, max(0.5, diameter / 24))
        mask = _foreground(smooth, method, threshold, diameter)
    diameter = max(float(diameter), 4.0)
    progress(0.4, "nuclear mask")
    if labels is None and split_touching:
        labels = split_nuclei(mask, diameter, image if image.ndim == 3 and method != "model" else None, spacing)
    elif labels is None:
        labels = ndi.label(mask)[0].astype(np.int32)
    progress(0.8, "nuclei split")
    labels = _filter_labels(labels, diameter, min_area, max_area, exclude_border)
    progress(1.0, f"{labels.max()} nuclei")
    return labels
