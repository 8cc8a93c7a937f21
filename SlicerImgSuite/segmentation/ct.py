"""CT threshold segmentation: patient body (with couch removal), lungs and bone.

All functions take a CT in HU as a ``SimpleITK.Image`` and return a ``uint8`` mask (0/1) on the same
grid, so the geometry travels with the result.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..choices import CT_PRESETS
from ..errors import ImgSuiteError, check_number
from ..io.images import require_hu
from ..progress import ProgressCallback, no_progress

PRESETS = CT_PRESETS
AIR_HU = -950.0  # air outside the patient reads below this; lung parenchyma above it
log = logging.getLogger("SlicerImgSuite.segmentation")


def _require_ct(ct: sitk.Image) -> None:
    if ct.GetDimension() != 3:
        raise ImgSuiteError(f"CT segmentation needs a 3D image, got {ct.GetDimension()}D")
    if ct.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError("CT segmentation needs a scalar image (one value per voxel)")
    require_hu(ct, "CT segmentation")  # a dose or an MR would come out as a body filling the grid


def _as_mask(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    mask = sitk.GetImageFromArray(array.astype(np.uint8))
    mask.CopyInformation(like)
    return mask


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Fill holes in each axial slice (lungs, bowel gas) and then in 3D (closed cavities)."""
    out = np.empty_like(mask)
    for k in range(mask.shape[0]):
        out[k] = ndi.binary_fill_holes(mask[k])
    return ndi.binary_fill_holes(out)


def _border_frame(shape) -> np.ndarray:
    """True on the in-plane edges (first/last row and column) of every slice of a (k, j, i) volume."""
    frame = np.zeros(shape, bool)
    frame[:, [0, -1], :] = True
    frame[:, :, [0, -1]] = True
    return frame


def _with_cut_corners(mask: np.ndarray) -> np.ndarray:
    """A slice with each image corner set where the mask reaches both edges that meet there (the patient
    goes on past the corner), so that the outline's convex hull reaches into it."""
    out = mask.copy()
    edges = {"top": mask[0].any(), "bottom": mask[-1].any(), "left": mask[:, 0].any(), "right": mask[:, -1].any()}
    for (row, vertical), (col, horizontal) in [
        ((0, "top"), (0, "left")),
        ((0, "top"), (-1, "right")),
        ((-1, "bottom"), (0, "left")),
        ((-1, "bottom"), (-1, "right")),
    ]:
        out[row, col] |= bool(edges[vertical] and edges[horizontal])
    return out


def _restore_truncated(
    body: np.ndarray, hu: np.ndarray, voxel_cc: float, air_hu: float = AIR_HU, min_cc: float = 1.0
) -> np.ndarray:
    """Where the field of view cuts through the patient, the lungs (and any cavity) reach the image edge
    and are no holes to fill. Each region outside ``body`` that touches the in-plane edge is part of the
    patient when it lies inside the body's outline, slice by slice (90 % of it within the convex hull of
    the body: the room is outside it), is denser than air (median above ``air_hu``) and holds at least
    ``min_cc``; it is added, and the truncation is logged.
    """
    from skimage.morphology import convex_hull_image

    frame = _border_frame(body.shape)
    cut = body & frame
    if not cut.any():
        return body
    labels, _ = ndi.label(~body)
    touching = np.unique(labels[frame & ~body])
    hull = np.zeros_like(body)
    for k in np.flatnonzero(body.any(axis=(1, 2))):
        hull[k] = convex_hull_image(_with_cut_corners(body[k]))
    inside = []
    for t in touching[touching > 0]:
        region = labels == t
        big = region.sum() * voxel_cc >= min_cc
        if big and hull[region].mean() >= 0.9 and np.median(hu[region]) > air_hu:
            inside.append(t)
    added = np.isin(labels, inside)
    message = (
        f"field of view truncated: the body reaches the image edge on {int(cut.any(axis=(1, 2)).sum())} of "
        f"{body.shape[0]} slices ({100 * cut.sum() / frame.sum():.0f} % of the edge)"
    )
    if inside:
        message += f"; {int(added.sum())} voxels inside the body's outline reaching the edge (lung) kept in the body"
    log.warning(message)
    return body | added


def _warn_if_not_air_dark(hu: np.ndarray) -> None:
    """Warn when more voxels read above +900 HU than below -900 HU (air) and they are not a few: values inverted
    (air bright, MONOCHROME1-like) or not in HU. The air around the patient then passes the threshold and the body
    fills the grid. The IBSI STS and OpenTPS CTs: at most 1.1 % above +900, 13-59 % below -900."""
    bright, dark = np.count_nonzero(hu > 900), np.count_nonzero(hu < -900)
    if bright > max(dark, 0.05 * hu.size):
        warnings.warn(
            f"{100 * bright / hu.size:.0f} % of the voxels are above +900 HU and {100 * dark / hu.size:.0f} % below "
            "-900 HU (air): inverted values (air bright) or not HU? The body would take in the air around the patient",
            stacklevel=3,
        )


def _posterior_index(ct: sitk.Image, bottom_mm: float) -> tuple[int, int]:
    """Array axis (1 = rows, 2 = columns) that runs along patient y, and the first index behind ``bottom_mm``."""
    direction = np.array(ct.GetDirection()).reshape(3, 3)
    axis = int(np.argmax(np.abs(direction[1])))  # image axis (x=0, y=1, z=2) most aligned with LPS y
    if axis == 2:
        raise ImgSuiteError("--bottom needs an axial CT (patient y must lie in the slice plane)")
    n = ct.GetSize()[axis]
    ys = [ct.TransformContinuousIndexToPhysicalPoint([i if a == axis else 0 for a in range(3)])[1] for i in range(n)]
    behind = [i for i, y in enumerate(ys) if y > bottom_mm]  # LPS: larger y = more posterior = lower on the couch
    return 2 - axis, behind


def segment_body(
    ct: sitk.Image,
    lower_threshold: float = -300.0,
    bottom: float | None = None,
    remove_couch: bool = True,
    couch_radius_mm: float = 6.0,
    fill_holes: bool = True,
    progress: ProgressCallback | None = None,
    *,
    fill_options: tuple[int, int, int, int, int, int] | None = None,
) -> sitk.Image:
    """The patient's body outline: threshold, remove the couch, keep the largest component, fill holes.

    Parameters
    ----------
    ct : SimpleITK.Image
        3D CT in HU.
    lower_threshold : float
        Voxels above this value are tissue (plastimatch ``--lower-threshold``, default -300 HU).
    bottom : float, optional
        Patient y (LPS, mm) of the couch top: everything posterior to it is removed (plastimatch ``--bottom``).
    remove_couch : bool
        Detach thin structures (couch, immobilisation, cables) with an in-plane opening of
        ``couch_radius_mm`` before picking the largest component; the outline is then restored to
        full resolution inside the threshold mask, so the skin surface is not eroded.
    fill_holes : bool
        Fill internal air (lungs, bowel gas) slice by slice, then closed cavities in 3D. Where the field of
        view cuts through the patient (the body reaches the image edge: logged), regions denser than air
        that reach the edge (a lung cut by the field of view) are kept in the body too.
    fill_options : six ints, optional
        plastimatch ``--fill-options r1 r2 r3 i1 i2 i3``: afterwards, :func:`voting_fill`'s three passes, which also
        close concavities open to the outside.

    Returns
    -------
    SimpleITK.Image
        ``uint8`` mask (1 = body) on the CT grid.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.full((4, 40, 40), -1000, np.int16); a[:, 10:30, 10:30] = 0; a[:, 14:18, 14:18] = -900
    >>> m = sitk.GetArrayFromImage(segment_body(sitk.GetImageFromArray(a)))
    >>> int(m.sum()) == 4 * 20 * 20
    True
    """
    _require_ct(ct)
    check_number(lower_threshold, "--lower-threshold")
    check_number(bottom, "--bottom")
    progress = progress or no_progress
    hu = sitk.GetArrayViewFromImage(ct)
    low = float(hu.min())
    if low >= 0 > lower_threshold:  # no air nor fat: every voxel would be body, silently
        raise ImgSuiteError(
            f"no value below 0 (values {low:g} to {float(hu.max()):g}): not a CT in HU (an MR, or a CT stored "
            f"without its rescale, air 0 instead of -1000)? Convert it to HU, or give --lower-threshold on its scale"
        )
    if low < 0:  # (an image without negative values: refused above, or segmented on the user's own scale)
        _warn_if_not_air_dark(hu)
    mask = hu > lower_threshold
    if bottom is not None:
        axis, behind = _posterior_index(ct, bottom)
        index = [slice(None)] * 3
        index[axis] = behind
        mask[tuple(index)] = False
    progress(0.2, "body: threshold")
    if not mask.any():
        raise ImgSuiteError(f"no voxel above the lower threshold {lower_threshold:g} HU: is this a CT in HU?")
    if remove_couch:
        spacing = ct.GetSpacing()
        extent = max(n * sp for n, sp in zip(ct.GetSize()[:2], spacing[:2]))
        if not (np.isfinite(couch_radius_mm) and 0 < couch_radius_mm <= extent):
            raise ImgSuiteError(
                f"--couch-radius must be > 0 mm and within the image ({extent:g} mm), got {couch_radius_mm:g}"
            )
        radius = [max(1, int(round(couch_radius_mm / s))) for s in spacing[:2]]
        yy, xx = np.ogrid[-radius[1] : radius[1] + 1, -radius[0] : radius[0] + 1]
        disk = ((yy / radius[1]) ** 2 + (xx / radius[0]) ** 2) <= 1.0
        opened = ndi.binary_opening(mask, structure=disk[None])
        core = _largest_component(opened) if opened.any() else _largest_component(mask)
        progress(0.6, "body: couch removed")
        # grow the core back to the threshold surface: geodesic dilation limited to twice the radius
        # (2 r city-block steps reach every point within r in-plane), so the skin is not eroded
        cross = ndi.generate_binary_structure(3, 1)[1:2]
        grown = ndi.binary_dilation(core, structure=cross, iterations=2 * max(radius) + 1, mask=mask)
        body = _largest_component(grown | core)
    else:
        body = _largest_component(mask)
    progress(0.8, "body: largest component")
    if fill_holes:
        voxel_cc = float(np.prod(ct.GetSpacing())) / 1000.0
        body = _restore_truncated(_fill_holes_per_slice(body), hu, voxel_cc)
    progress(1.0, "body: done")
    if fill_options is not None:
        return voting_fill(_as_mask(body, ct), fill_options)
    return _as_mask(body, ct)


FILL_OPTIONS = (7, 5, 2, 2, 10, 50)  # plastimatch 1.9.4's defaults for --fill-holes


def voting_fill(mask: sitk.Image, options=FILL_OPTIONS) -> sitk.Image:
    """plastimatch's ``segment --fill-holes --fill-options r1 r2 r3 i1 i2 i3``: three passes of ITK's iterative
    voting hole filling on a 0/1 mask, pass n with a box radius of ``(rn, rn, rn // 2)`` voxels and at most
    ``in`` iterations; a background voxel joins the mask when more than half of its neighbours are in it.

    Examples
    --------
    >>> a = np.zeros((3, 9, 9), np.uint8); a[:, 2:7, 2:7] = 1; a[:, 4, 2:5] = 0  # a slot open to the left
    >>> m = sitk.GetArrayFromImage(voting_fill(sitk.GetImageFromArray(a), (1, 1, 1, 5, 5, 5)))
    >>> int(m[1, 4, 2:5].sum())
    3
    """
    options = [int(v) for v in options]
    if len(options) != 6 or min(options) < 0:
        raise ImgSuiteError(f"--fill-options takes six non-negative integers r1 r2 r3 i1 i2 i3, got {options}")
    if min(options[3:]) < 1 or max(options[:3]) > max(mask.GetSize()) or max(options[3:]) > 10_000:
        raise ImgSuiteError(
            f"--fill-options: radii r1 r2 r3 at most the image size ({max(mask.GetSize())} voxels) and "
            f"iterations i1 i2 i3 from 1 to 10000, got {options}"
        )
    out = sitk.Cast(mask > 0, sitk.sitkUInt8)
    for radius, iterations in zip(options[:3], options[3:]):
        out = sitk.VotingBinaryIterativeHoleFilling(
            out, [radius, radius, radius // 2], iterations, majorityThreshold=0, foregroundValue=1, backgroundValue=0
        )
    return out


def segment_lungs(
    ct: sitk.Image,
    body: sitk.Image | None = None,
    upper_threshold: float = -400.0,
    min_volume_cc: float = 5.0,
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """Both lungs: air (below ``upper_threshold`` HU) inside the body, small pockets removed.

    Parameters
    ----------
    body : SimpleITK.Image, optional
        Body mask from :func:`segment_body` (computed when not given).
    upper_threshold : float
        Lung parenchyma lies below this (default -400 HU).
    min_volume_cc : float
        Air components smaller than this (bowel gas, noise) are dropped.
    """
    _require_ct(ct)
    if body is None:
        body = segment_body(ct)
    inside = sitk.GetArrayViewFromImage(body) > 0
    all_air = (sitk.GetArrayViewFromImage(ct) < upper_threshold) & inside
    # an eroded body and an opening cut the lungs loose from the skin and the airways' thin links
    air = ndi.binary_opening(all_air & ndi.binary_erosion(inside, iterations=2), ndi.generate_binary_structure(3, 1))
    labels, n = ndi.label(air)
    voxel_cc = float(np.prod(ct.GetSpacing())) / 1000.0
    sizes = np.bincount(labels.ravel()) * voxel_cc
    sizes[0] = 0
    keep = np.flatnonzero(sizes >= min_volume_cc)
    lungs = ndi.binary_dilation(np.isin(labels, keep), iterations=2, mask=all_air)  # undo the erosion
    lungs = _fill_holes_per_slice(lungs)  # vessels inside the lung belong to it
    if progress:
        progress(1.0, "lungs: done")
    return _as_mask(lungs, ct)


def segment_bone(
    ct: sitk.Image,
    body: sitk.Image | None = None,
    lower_threshold: float = 200.0,
    min_volume_cc: float = 0.5,
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """Bone: voxels above ``lower_threshold`` HU inside the body, small specks removed."""
    _require_ct(ct)
    if body is None:
        body = segment_body(ct)
    bone = (sitk.GetArrayViewFromImage(ct) > lower_threshold) & (sitk.GetArrayViewFromImage(body) > 0)
    labels, n = ndi.label(bone)
    voxel_cc = float(np.prod(ct.GetSpacing())) / 1000.0
    sizes = np.bincount(labels.ravel()) * voxel_cc
    sizes[0] = 0
    bone = np.isin(labels, np.flatnonzero(sizes >= min_volume_cc))
    if progress:
        progress(1.0, "bone: done")
    return _as_mask(bone, ct)


def segment_preset(ct: sitk.Image, preset: str = "body", progress: ProgressCallback | None = None, **options):
    """Run one preset (``body``, ``lung`` or ``bone``); ``options`` go to :func:`segment_body`.

    Parameters
    ----------
    ct : SimpleITK.Image
        3D CT in HU.
    preset : {"body", "lung", "bone"}
        What to segment; lungs and bone are looked for inside the body.
    progress : callable, optional
        ``(fraction, message)``.
    **options :
        :func:`segment_body`'s options (``lower_threshold``, ``bottom``, ``remove_couch`` ...).

    Returns
    -------
    SimpleITK.Image
        The 0/1 mask (uint8) on the CT's grid.

    Examples
    --------
    >>> a = np.full((4, 40, 40), -1000, np.int16); a[:, 10:30, 10:30] = 0
    >>> body = segment_preset(sitk.GetImageFromArray(a), "body")
    >>> int(sitk.GetArrayFromImage(body).sum()) == 4 * 20 * 20
    True
    """
    if preset not in PRESETS:
        raise ImgSuiteError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    body = segment_body(ct, progress=progress if preset == "body" else None, **options)
    if preset == "body":
        return body
    if preset == "lung":
        return segment_lungs(ct, body, progress=progress)
    return segment_bone(ct, body, progress=progress)


def fast_grid(ct: sitk.Image, spacing_mm: float = 5.0) -> sitk.Image:
    """plastimatch ``segment --fast``: the CT resampled (linear, -1000 outside) to voxels of at least 5 mm.

    An axis finer than ``spacing_mm`` gets ``floor(size * spacing / 5)`` voxels of 5 mm, its first centre moved
    by ``(5 - spacing) / 2`` mm; coarser axes are kept. The segmentation is then on that grid (as plastimatch).

    Examples
    --------
    >>> ct = sitk.Image([100, 100, 10], sitk.sitkInt16)
    >>> ct.SetSpacing((1.0, 1.0, 6.0))
    >>> g = fast_grid(ct)
    >>> g.GetSize(), g.GetSpacing(), g.GetOrigin()
    ((20, 20, 10), (5.0, 5.0, 6.0), (2.0, 2.0, 0.0))
    """
    size, spacing, origin = list(ct.GetSize()), list(ct.GetSpacing()), list(ct.GetOrigin())
    if ct.GetDimension() != 3:
        raise ImgSuiteError("--fast needs a 3D CT")
    _require_ct(ct)  # before resampling drops the metadata that says what the image is
    direction = np.array(ct.GetDirection()).reshape(3, 3)
    for d in range(3):
        if spacing[d] < spacing_mm:
            size[d] = max(1, int(np.floor(size[d] * spacing[d] / spacing_mm)))
            origin = list(np.asarray(origin) + direction[:, d] * (spacing_mm - spacing[d]) / 2)
            spacing[d] = spacing_mm
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing(spacing)
    grid.SetOrigin([float(v) for v in origin])
    grid.SetDirection(ct.GetDirection())
    return sitk.Resample(sitk.Cast(ct, sitk.sitkFloat32), grid, sitk.Transform(), sitk.sitkLinear, -1000.0)
