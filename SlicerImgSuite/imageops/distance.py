"""Structure surfaces and distances: ``boundary``, ``dmap`` and ``dice`` (plastimatch's commands).

Distances are in mm between voxel centres (exact Euclidean, SimpleITK's Maurer transform), and follow
plastimatch: a structure's surface is its set of *boundary voxels* (foreground voxels with a background face
neighbour), and a distance map measures the distance to the nearest boundary voxel centre.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ._util import array_of, run_filter, to_image

BOUNDARY_BEHAVIORS = ("adaptive", "zero-pad", "edge-pad")
BOUNDARY_TYPES = ("interior-edge", "interior-face")


def boundary_faces(mask: np.ndarray, behavior: str = "adaptive") -> np.ndarray:
    """Per voxel of the mask, a bit for each of its faces that borders the background (uint8).

    Bits follow plastimatch's ``interior-face`` code: -x 1, -y 2, -z 4, +x 8, +y 16, +z 32 (x, y, z =
    image i, j, k). ``behavior`` says what lies outside the image: ``zero-pad`` (background),
    ``edge-pad`` (the edge voxel repeated) or ``adaptive`` (zero-pad, except along axes one voxel
    thick, so a single slice behaves as 2D).

    Examples
    --------
    >>> m = np.zeros((1, 3, 3), bool); m[0, 1, 1] = True  # one voxel of a single slice
    >>> int(boundary_faces(m)[0, 1, 1])  # its four in-plane faces; z is edge-padded (adaptive)
    27
    """
    if behavior not in BOUNDARY_BEHAVIORS:
        raise ImgSuiteError(f"--boundary-behavior must be one of {', '.join(BOUNDARY_BEHAVIORS)}, got {behavior!r}")
    mask = np.asarray(mask, bool)
    faces = np.zeros(mask.shape, np.uint8)
    for axis in range(mask.ndim):
        edge = behavior == "edge-pad" or (behavior == "adaptive" and mask.shape[axis] == 1)
        xyz = mask.ndim - 1 - axis  # numpy axis 0 is the image's last (z)
        for step, bit in ((1, 1 << xyz), (-1, 8 << xyz)):  # step 1: the neighbour on the minus side
            neighbour = np.roll(mask, step, axis=axis)
            # the slab rolled in from the other side is what lies outside the image
            first = [slice(None)] * mask.ndim
            first[axis] = slice(0, 1) if step == 1 else slice(-1, None)
            first = tuple(first)
            neighbour[first] = mask[first] if edge else False
            faces[mask & ~neighbour] |= bit
    return faces


def boundary_array(mask: np.ndarray, behavior: str = "adaptive") -> np.ndarray:
    """Boolean array of the mask's boundary voxels (interior-edge: a face neighbour is background).

    ``behavior`` as in :func:`boundary_faces`.
    """
    return boundary_faces(mask, behavior) != 0


def boundary(mask: sitk.Image, behavior: str = "adaptive", boundary_type: str = "interior-edge") -> sitk.Image:
    """A uint8 image of the structure's boundary voxels (plastimatch ``boundary``).

    ``interior-edge``: 1 on boundary voxels; ``interior-face``: the bits of :func:`boundary_faces`.

    Examples
    --------
    >>> m = sitk.Image(5, 5, 5, sitk.sitkUInt8); m[1:4, 1:4, 1:4] = 1
    >>> int(sitk.GetArrayFromImage(boundary(m)).sum())  # a 3x3x3 cube: all but its centre
    26
    """
    if boundary_type not in BOUNDARY_TYPES:
        raise ImgSuiteError(f"--boundary-type must be one of {', '.join(BOUNDARY_TYPES)}, got {boundary_type!r}")
    faces = boundary_faces(array_of(mask, "mask") != 0, behavior)
    return to_image(faces if boundary_type == "interior-face" else (faces != 0).astype(np.uint8), mask)


def _distance_to(points: np.ndarray, spacing, progress=None) -> np.ndarray:
    """Distance (mm) from every voxel to the nearest ``True`` voxel centre of ``points`` (numpy-order spacing)."""
    if points.ndim not in (2, 3):  # SimpleITK's Maurer filter has no 4D: refuse before it raises a traceback
        raise ImgSuiteError(f"distances need a 2D or 3D structure; this one is {points.ndim}D")
    if not points.any():
        return np.full(points.shape, np.inf)
    image = sitk.GetImageFromArray(points.astype(np.uint8))
    image.SetSpacing([float(s) for s in spacing[::-1]])  # spacing comes in numpy (z, y, x) order
    f = sitk.SignedMaurerDistanceMapImageFilter()
    f.SetInsideIsPositive(False)
    f.SetSquaredDistance(True)
    f.SetUseImageSpacing(True)
    d = run_filter(f, image, progress=progress, message="distance transform")
    # the points themselves sit at 0; inside a thick blob Maurer counts to its contour: clamp to 0 there
    return np.sqrt(np.maximum(sitk.GetArrayFromImage(d), 0.0))


def distance_map(
    mask: sitk.Image,
    *,
    inside_positive: bool = False,
    absolute: bool = False,
    squared: bool = False,
    maximum_distance: float | None = None,
    behavior: str = "adaptive",
    progress=None,
) -> sitk.Image:
    """Signed distance (mm) from each voxel to the structure's surface, float32 (plastimatch ``dmap``).

    Parameters
    ----------
    mask : SimpleITK.Image
        Non-zero voxels are the structure.
    inside_positive : bool
        Positive inside and negative outside (by default negative inside, as plastimatch).
    absolute : bool
        All distances positive.
    squared : bool
        Squared distances (mm², the sign kept).
    maximum_distance : float, optional
        Distances farther than this are truncated to it (sign kept).
    behavior : str
        Boundary behaviour at the image edge, see :func:`boundary_array`.
    progress : callable, optional
        ``progress(fraction, message)``; may raise ``Cancelled``.

    Returns
    -------
    SimpleITK.Image
        The distances in mm (float32) on the structure's grid.

    Examples
    --------
    >>> m = sitk.Image(7, 1, 1, sitk.sitkUInt8); m[2:5, 0, 0] = 1
    >>> (sitk.GetArrayFromImage(distance_map(m))[0, 0] + 0.0).tolist()  # boundary voxels are -0.0 inside
    [2.0, 1.0, 0.0, -1.0, 0.0, 1.0, 2.0]
    """
    if maximum_distance is not None and maximum_distance != maximum_distance:
        raise ImgSuiteError("--maximum-distance must be a number, got nan")
    inside = array_of(mask, "mask") != 0
    edge = boundary_array(inside, behavior)
    if not edge.any():
        raise ImgSuiteError("the structure is empty: no distance map can be computed")
    spacing = mask.GetSpacing()[::-1]
    d = _distance_to(edge, spacing, progress)
    if squared:
        d = d * d
    if maximum_distance is not None:
        d = np.minimum(d, maximum_distance)
    if not absolute:
        d = np.where(inside != inside_positive, -d, d)
    return to_image(d.astype(np.float32), mask)


def dice_stats(reference: sitk.Image, test: sitk.Image, percent: float = 0.95, behavior: str = "adaptive") -> dict:
    """Overlap and surface-distance scores of two structures on the same grid (plastimatch ``dice --all``).

    Parameters
    ----------
    reference, test : SimpleITK.Image
        Masks on one grid; non-zero voxels are the structure.
    percent : float
        The fraction for the percentile Hausdorff distance (0.95 = HD95).

    Returns
    -------
    dict
        ``tp, tn, fp, fn`` (voxel counts), ``dice``, ``sensitivity``, ``specificity``,
        ``reference_volume_cc``, ``test_volume_cc``, ``reference_com``/``test_com`` (centre of mass, LPS mm),
        and, in mm, plastimatch's Hausdorff family: ``hausdorff`` (max over both directions of the distance
        from a voxel of one structure to the other structure, 0 inside it), ``avg_hausdorff`` (mean of the
        two directed mean distances), ``max_avg_hausdorff`` (the larger one), ``percent_hausdorff`` (mean of the
        two directed ``percent`` quantiles), and the same four over the boundary voxels only:
        ``boundary_hausdorff``, ``avg_boundary_hausdorff`` (= mean surface distance),
        ``max_avg_boundary_hausdorff``, ``percent_boundary_hausdorff`` (= HD95 between the surfaces).
        Distances are ``nan`` when a structure is empty.

    Examples
    --------
    >>> a = sitk.Image(10, 10, 10, sitk.sitkUInt8); a[2:6, 2:6, 2:6] = 1
    >>> b = sitk.Image(10, 10, 10, sitk.sitkUInt8); b[3:7, 2:6, 2:6] = 1
    >>> s = dice_stats(a, b)
    >>> round(s["dice"], 3), s["hausdorff"], s["boundary_hausdorff"]
    (0.75, 1.0, 1.0)
    """
    require_same_grid(reference, test, "reference", "test")
    ref = array_of(reference, "reference") != 0
    cmp = array_of(test, "test") != 0
    tp = int(np.count_nonzero(ref & cmp))
    fp = int(np.count_nonzero(~ref & cmp))
    fn = int(np.count_nonzero(ref & ~cmp))
    tn = int(ref.size - tp - fp - fn)
    voxel_cc = float(np.prod(reference.GetSpacing())) / 1000.0
    out = {
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "dice": 2.0 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan"),
        "sensitivity": tp / (tp + fn) if (tp + fn) else float("nan"),
        "specificity": tn / (tn + fp) if (tn + fp) else float("nan"),
        "reference_volume_cc": np.count_nonzero(ref) * voxel_cc,
        "test_volume_cc": np.count_nonzero(cmp) * voxel_cc,
        "reference_com": _center_of_mass(ref, reference),
        "test_com": _center_of_mass(cmp, test),
    }
    out.update(_hausdorff(ref, cmp, reference.GetSpacing()[::-1], percent, behavior))
    return out


def _center_of_mass(mask: np.ndarray, image: sitk.Image) -> tuple[float, ...]:
    if not mask.any():
        return tuple([float("nan")] * image.GetDimension())
    index = [float(np.mean(i)) for i in np.nonzero(mask)][::-1]
    return tuple(image.TransformContinuousIndexToPhysicalPoint(index))


def _hausdorff(ref: np.ndarray, cmp: np.ndarray, spacing, percent: float, behavior: str) -> dict:
    keys = ("hausdorff", "avg_hausdorff", "max_avg_hausdorff", "percent_hausdorff")
    bkeys = tuple(k.replace("hausdorff", "boundary_hausdorff") for k in keys)
    if not ref.any() or not cmp.any():
        return dict.fromkeys(keys + bkeys, float("nan"))
    # like plastimatch, work inside the bounding box of both structures (it decides the "adaptive" padding)
    union = ref | cmp
    box = tuple(
        slice(int(idx[0]), int(idx[-1]) + 1)
        for idx in (
            np.flatnonzero(union.any(axis=tuple(a for a in range(union.ndim) if a != ax))) for ax in range(union.ndim)
        )
    )
    ref, cmp = ref[box], cmp[box]
    directed = [_directed(a, b, spacing, percent, behavior) for a, b in ((ref, cmp), (cmp, ref))]
    result = {}
    for i, names in enumerate((keys, bkeys)):
        (max1, mean1, pct1), (max2, mean2, pct2) = directed[0][i], directed[1][i]
        result[names[0]] = max(max1, max2)
        result[names[1]] = 0.5 * (mean1 + mean2)
        result[names[2]] = max(mean1, mean2)
        result[names[3]] = 0.5 * (pct1 + pct2)
    return result


def _directed(a: np.ndarray, b: np.ndarray, spacing, percent: float, behavior: str):
    """(max, mean, quantile) of distances from the voxels of ``a`` to ``b``, then from ``a``'s boundary."""
    d = _distance_to(boundary_array(b, behavior), spacing)
    set_d = np.where(b, 0.0, d)[a]  # inside b counts as 0
    surf_d = d[boundary_array(a, behavior)]
    return _summary(set_d, percent), _summary(surf_d, percent)


def _summary(values: np.ndarray, percent: float):
    if values.size == 0:
        return 0.0, 0.0, 0.0
    # plastimatch's order statistic: the floor(percent * n - 1)-th smallest (0-based)
    k = min(max(int(np.floor(percent * values.size - 1)), 0), values.size - 1)
    return float(values.max()), float(values.mean()), float(np.partition(values, k)[k])
