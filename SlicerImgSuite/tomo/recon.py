"""Reconstruction: shift-and-add, filtered back-projection (DTS and FDK), OS-SART.

All take a :class:`~SlicerImgSuite.tomo.projset.ProjectionSet` and an output grid (a
``SimpleITK.Image`` whose origin/spacing/direction place the volume in LPS) and return a float32
``SimpleITK.Image`` on that grid, so the result overlays the CT the projections came from.
Swapping an algorithm is one word: ``reconstruct(projections, grid, algorithm="sart")``.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..choices import RECON_ALGORITHMS, RECON_FILTERS
from ..errors import ImgSuiteError
from ..geometry import grid_image
from ..progress import ProgressCallback, no_progress
from .geometry import Geometry, common_region
from .project import BATCH, back_project, forward_project
from .projset import ProjectionSet, warn_if_not_line_integrals

ALGORITHMS = RECON_ALGORITHMS
FILTERS = RECON_FILTERS


def tomo_grid(
    geometry: Geometry,
    depth_range: tuple[float, float] | None = None,
    slice_spacing: float = 5.0,
    pixel_size: float | None = None,
) -> sitk.Image:
    """A volume of planes parallel to the panel: by default the box around what every view sees between
    its source and its panel (which holds the isocentre of an arc); with ``depth_range``, the planes
    that many mm above the middle view's detector (towards the source).

    The grid keeps the patient's LPS axes (identity direction): its depth axis is the LPS axis closest to
    the panel normal, so a coronal panel gives coronal slices. With ``depth_range`` it covers in-plane
    the panel seen from the middle source, demagnified to the middle depth; ``pixel_size`` defaults to
    the panel pitch demagnified to the middle depth.

    Examples
    --------
    >>> from SlicerImgSuite.tomo.geometry import arc_sweep
    >>> g = arc_sweep(9, 40, sad=1000, sid=1200, dims=(60, 60), pixel_size=(4, 4))
    >>> grid = tomo_grid(g, slice_spacing=10)
    >>> lo = np.array(grid.GetOrigin()); hi = lo + np.array(grid.GetSpacing()) * (np.array(grid.GetSize()) - 1)
    >>> bool(np.all(lo < 0) and np.all(hi > 0)), bool(hi[1] < 200)  # the isocentre; the panel is at y = 200
    (True, True)
    """
    if slice_spacing <= 0:
        raise ImgSuiteError(f"slice spacing must be > 0, got {slice_spacing}")
    mid = len(geometry) // 2
    n = geometry.normals[mid]
    axis = int(np.argmax(np.abs(n)))
    c, s = geometry.centers[mid], geometry.sources[mid]
    sid = float(geometry.sid[mid])
    if depth_range is None:
        region = common_region(geometry)
        if not len(region):
            raise ImgSuiteError("no region is seen by every view: give --depth-range or an output grid")
        lo_xyz, hi_xyz = region.min(axis=0), region.max(axis=0)
        mag = float(np.dot((lo_xyz + hi_xyz) / 2.0 - s, n)) / sid
        depths = np.arange(lo_xyz[axis], hi_xyz[axis] + slice_spacing, slice_spacing)
        coords = depths + ((hi_xyz[axis] - lo_xyz[axis]) - (depths[-1] - depths[0])) / 2.0
    else:
        lo, hi = sorted(float(v) for v in depth_range)
        toward = np.sign(s[axis] - c[axis])
        mag = (sid - (lo + hi) / 2.0) / sid
        nu, nv = geometry.dims
        corners = [geometry.pixel_positions(mid, cu, cv) for cu in (-0.5, nu - 0.5) for cv in (-0.5, nv - 0.5)]
        corners = s + (np.array(corners) - s) * mag
        lo_xyz, hi_xyz = corners.min(axis=0), corners.max(axis=0)
        coords = c[axis] + toward * np.arange(lo, hi + 1e-6, slice_spacing)
    pixel = float(pixel_size or min(geometry.pixel_size) * mag)
    origin, dim, spacing = [0.0] * 3, [0] * 3, [0.0] * 3
    for k in range(3):
        if k == axis:
            origin[k], dim[k], spacing[k] = float(coords.min()), len(coords), float(slice_spacing)
        else:
            count = max(1, int(round((hi_xyz[k] - lo_xyz[k]) / pixel)))
            origin[k] = float((lo_xyz[k] + hi_xyz[k]) / 2.0 - (count - 1) * pixel / 2.0)
            dim[k], spacing[k] = count, pixel
    return grid_image(origin, dim, spacing)  # uint8: a grid carrier, a quarter of a float volume


# the options each algorithm takes (reconstruct's ``**options``)
ALGORITHM_OPTIONS = {
    "saa": (),
    "fbp": ("filter", "slice_thickness"),
    "sart": ("iterations", "subsets"),
    "fdk": ("filter",),
}


def algorithm_options(algorithm: str, **values) -> dict:
    """The ``values`` that ``algorithm`` takes (unset ones, ``None``, left out), for :func:`reconstruct`.

    Parameters
    ----------
    algorithm : str
        One of ``ALGORITHMS``.
    **values :
        Candidate options (the CLI's or the module's fields), named as the algorithms' parameters.

    Returns
    -------
    dict
        The options to pass to :func:`reconstruct` for ``algorithm``.

    Examples
    --------
    >>> algorithm_options("sart", iterations=3, subsets=None, filter="hann")
    {'iterations': 3}
    """
    return {k: values[k] for k in ALGORITHM_OPTIONS[algorithm] if values.get(k) is not None}


def reconstruct(
    projections: ProjectionSet,
    grid: sitk.Image,
    *,
    algorithm: str = "fbp",
    progress: ProgressCallback | None = None,
    **options,
) -> sitk.Image:
    """Reconstruct with ``algorithm`` in ``ALGORITHMS``; ``options`` go to that function.

    Parameters
    ----------
    projections : ProjectionSet
        Line integrals and their geometry.
    grid : SimpleITK.Image
        The volume's grid (only its geometry is used), e.g. from :func:`tomo_grid`.
    algorithm : {"saa", "fbp", "sart", "fdk"}
        :func:`shift_and_add`, :func:`fbp`, :func:`sart` or :func:`fdk`.
    progress : callable, optional
        ``(fraction, message)``.
    **options :
        That algorithm's options (``filter``, ``iterations`` ...).

    Returns
    -------
    SimpleITK.Image
        The volume (float32) on ``grid``.

    Examples
    --------
    >>> from SlicerImgSuite.tomo.geometry import linear_sweep
    >>> g = linear_sweep(3, 20, sid=1000, dims=(8, 8), pixel_size=(1, 1))
    >>> ps = ProjectionSet(np.ones((3, 8, 8), np.float32), g)
    >>> vol = reconstruct(ps, tomo_grid(g, (0, 10), 5), algorithm="saa")
    >>> vol.GetSize(), float(sitk.GetArrayViewFromImage(vol)[1, 1, 4])
    ((8, 3, 8), 1.0)
    """
    funcs = {"saa": shift_and_add, "fbp": fbp, "sart": sart, "fdk": fdk}
    if algorithm not in funcs:
        raise ImgSuiteError(f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    warn_if_not_line_integrals(projections)
    return funcs[algorithm](projections, grid, progress=progress, **options)


def _image(array: np.ndarray, grid: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.asarray(array, np.float32))
    image.CopyInformation(grid)
    return image


def shift_and_add(projections: ProjectionSet, grid: sitk.Image, progress: ProgressCallback | None = None) -> sitk.Image:
    """Shift-and-add: the mean over views of the panel value each voxel projects onto.

    Examples
    --------
    >>> from SlicerImgSuite.tomo.geometry import linear_sweep
    >>> g = linear_sweep(3, 20, sid=1000, dims=(8, 8), pixel_size=(1, 1))
    >>> ps = ProjectionSet(np.ones((3, 8, 8), np.float32), g)
    >>> vol = shift_and_add(ps, tomo_grid(g, (0, 10), 5))
    >>> vol.GetSize(), float(sitk.GetArrayViewFromImage(vol)[1, 1, 4])
    ((8, 3, 8), 1.0)
    """
    out = back_project(projections.images, projections.geometry, grid, progress=progress)
    out /= len(projections.geometry)  # in place: the volume can be the largest thing in memory
    return _image(out, grid)


def _view_angles(geometry: Geometry, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angle (rad) of each view's ray through ``center`` about the trajectory's axis, and that axis."""
    rays = center - geometry.sources
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    spread = geometry.sources - geometry.sources.mean(axis=0)
    _, sv, vt = np.linalg.svd(spread) if len(geometry) > 1 else (None, np.zeros(3), np.eye(3))
    if len(geometry) > 2 and sv[1] > 1e-6 * max(sv[0], 1e-12):
        axis = vt[2]  # a curved trajectory (circle, arc): the normal of its plane
    else:
        # a line (or one view): the normal of the plane holding the line and the centre
        motion = vt[0] if sv[0] > 1e-9 else geometry.u_axes[0]
        axis = np.cross(motion, center - geometry.sources.mean(axis=0))
        axis /= np.linalg.norm(axis)
    ref = rays[0] - np.dot(rays[0], axis) * axis
    ref /= np.linalg.norm(ref)
    other = np.cross(axis, ref)
    angles = np.arctan2(rays @ other, rays @ ref)
    # the files need not come in angle order (interleaved or shuffled acquisitions): make the angles
    # continuous by cutting the circle at its widest gap, not by unwrapping in file order
    order = np.argsort(angles)
    gaps = np.diff(np.r_[angles[order], angles[order[0]] + 2 * np.pi])
    angles[order[: (int(np.argmax(gaps)) + 1) % len(angles)]] += 2 * np.pi
    return angles, axis


def _angle_steps(angles: np.ndarray) -> np.ndarray:
    """Each view's share of the trajectory, from its neighbours in angle order (not in file order)."""
    if len(angles) == 1:
        return np.ones(1)
    order = np.argsort(angles, kind="stable")
    steps = np.empty_like(angles)
    steps[order] = np.abs(np.gradient(angles[order]))
    return steps


def filter_projection(
    image: np.ndarray,
    pixel_size: tuple[float, float],
    kind: str = "ramp",
    axis: int = 1,
    slice_thickness: float | None = None,
    half_angle: float | None = None,
) -> np.ndarray:
    """Filter panel rows (``axis=1``) or columns with ramp x apodization x slice-thickness window.

    ``kind``: ``none``, ``ramp`` (Ram-Lak), ``hann`` (ramp x Hann), ``slice-thickness`` (ramp x Hann x a
    Hann low-pass at ``1 / (2 slice_thickness tan(half_angle))``, after Mertelmeier et al. 2006, which sets
    the thinnest slice and removes the ripple a pure ramp leaves in limited-angle data).
    The filtered value is the discrete convolution times the pixel pitch (units 1/mm).
    """
    if kind not in FILTERS:
        raise ImgSuiteError(f"unknown filter {kind!r}; use one of {', '.join(FILTERS)}")
    if kind == "none":
        return np.asarray(image, np.float32)
    step = pixel_size[0] if axis == 1 else pixel_size[1]
    n = image.shape[axis]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    # Ram-Lak from its spatial kernel (no DC offset), as in Kak & Slaney
    k = np.arange(size)
    k = np.where(k > size // 2, k - size, k)
    h = np.zeros(size)
    h[0] = 1.0 / (4 * step * step)
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd] * step) ** 2
    response = np.real(np.fft.fft(h)) * step
    freq = np.abs(np.fft.fftfreq(size, d=step))
    nyquist = 0.5 / step
    if kind in ("hann", "slice-thickness"):
        response *= 0.5 * (1 + np.cos(np.pi * freq / nyquist))
    if kind == "slice-thickness" and slice_thickness and half_angle:
        cutoff = min(nyquist, 1.0 / (2 * slice_thickness * np.tan(half_angle)))
        response *= np.where(freq < cutoff, 0.5 * (1 + np.cos(np.pi * freq / cutoff)), 0.0)
    spectrum = np.fft.rfft(image, n=size, axis=axis)
    shape = [1, 1]
    shape[axis] = -1
    spectrum *= response[: size // 2 + 1].reshape(shape)
    out = np.fft.irfft(spectrum, n=size, axis=axis)
    return (out[:, :n] if axis == 1 else out[:n, :]).astype(np.float32)


def _cosine_weights(geometry: Geometry, view: int) -> np.ndarray:
    foot, ic = geometry.principal(view)
    nu, nv = geometry.dims
    a = (np.arange(nu) - ic[0]) * geometry.pixel_size[0]
    b = (np.arange(nv) - ic[1]) * geometry.pixel_size[1]
    h = float(geometry.sid[view])
    return (h / np.sqrt(h * h + a[None, :] ** 2 + b[:, None] ** 2)).astype(np.float32)


def _grid_center(grid: sitk.Image) -> np.ndarray:
    return np.array(grid.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2.0 for s in grid.GetSize()]))


def _filtered_back_projection(
    projections, grid, weights, kind, axis, progress, slice_thickness=None, half_angle=None
) -> np.ndarray:
    g = projections.geometry
    center = _grid_center(grid)
    out = None
    for first in range(0, len(g), BATCH):  # a few filtered panels at a time: memory stays bounded
        views = list(range(first, min(first + BATCH, len(g))))
        panels = []
        for view in views:
            sad = float(np.dot(center - g.sources[view], g.normals[view]))
            panel = np.asarray(projections.images[view], np.float32) * _cosine_weights(g, view)
            panel = filter_projection(panel, g.pixel_size, kind, axis, slice_thickness, half_angle)
            panels.append(panel * np.float32(weights[view] * sad / float(g.sid[view])))
        out = back_project(panels, g.subset(views), grid, weighting="fdk", out=out)
        progress(views[-1] / len(g), f"filtered back-projection {views[-1] + 1}/{len(g)}")
    return out


def fdk(
    projections: ProjectionSet,
    grid: sitk.Image,
    *,
    filter: str = "ramp",
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """Feldkamp-Davis-Kress for a circular (full or short) scan; values are attenuation per mm.

    Redundant rays are weighted so every line counts once: a ray measured twice (its conjugate at
    ``beta + pi + 2 gamma`` was also acquired) gets weights summing to one, smoothly tapered at the
    ends of the arc (Parker-like, but also right for arcs shorter than 180 degrees plus the fan, where
    a ray measured once keeps weight one; RTK's Parker weights wrap around there).

    Parameters
    ----------
    projections : ProjectionSet
        Line integrals of a circular scan.
    grid : SimpleITK.Image
        The volume's grid (only its geometry is used).
    filter : {"ramp", "none"}
        The ramp filter (plastimatch ``fdk``'s default) or none.
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    SimpleITK.Image
        Attenuation per mm (float32) on ``grid``.

    Examples
    --------
    >>> from SlicerImgSuite.tomo.drr import drr
    >>> from SlicerImgSuite.tomo.geometry import circular
    >>> ct = sitk.Image([16, 16, 16], sitk.sitkInt16) - 1000  # air, with a cube of water
    >>> ct[4:12, 4:12, 4:12] = 0
    >>> ct.SetOrigin((-7.5, -7.5, -7.5))
    >>> views = drr(ct, circular(36, sad=500, sid=1000, dims=(24, 24), pixel_size=(2, 2), angle_step=10))
    >>> mu = sitk.GetArrayFromImage(fdk(views, grid_image((-7.5, -7.5, -7.5), (16, 16, 16), (1, 1, 1))))
    >>> round(float(mu[8, 8, 8]), 4), round(float(mu[1, 1, 1]), 4)  # water (see drr's units), air
    (0.0022, 0.0)
    """
    progress = progress or no_progress
    g = projections.geometry
    center = _grid_center(grid)
    angles, axis = _view_angles(g, center)
    steps = _angle_steps(angles)
    redundancy = _redundancy_weights(g, angles, axis, center)
    out = None
    for first in range(0, len(g), BATCH):  # a few filtered panels at a time: memory stays bounded
        views = list(range(first, min(first + BATCH, len(g))))
        panels = []
        for view in views:
            sad = float(np.dot(center - g.sources[view], g.normals[view]))
            panel = np.asarray(projections.images[view], np.float32) * _cosine_weights(g, view) * redundancy[view]
            # rows are filtered along the panel axis perpendicular to the rotation axis
            row_axis = 1 if abs(np.dot(g.u_axes[view], axis)) < abs(np.dot(g.v_axes[view], axis)) else 0
            panel = filter_projection(panel, g.pixel_size, filter, row_axis)
            panels.append(panel * np.float32(steps[view] * sad / float(g.sid[view])))
        out = back_project(panels, g.subset(views), grid, weighting="fdk", out=out, outside="edge")
        progress(views[-1] / len(g), f"FDK {views[-1] + 1}/{len(g)}")
    return _image(out, grid)


def _redundancy_weights(g: Geometry, angles: np.ndarray, axis: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Per view, per column weights that make each line count once (see :func:`fdk`), (views, 1, columns)."""
    nu = g.dims[0]
    order = np.sort(angles)
    step = float(np.median(np.diff(order))) if len(angles) > 1 else 2 * np.pi
    start, stop = order[0] - step / 2.0, order[-1] + step / 2.0
    span = stop - start
    gammas = np.zeros((len(g), nu))
    for view in range(len(g)):
        d0 = center - g.sources[view]
        pos = g.pixel_positions(view, np.arange(nu), g.image_center[view][1])
        d = pos - g.sources[view]
        gammas[view] = np.arctan2(np.cross(d0, d) @ axis, d @ d0)
    if span >= 2 * np.pi - 1e-3:
        return np.full((len(g), 1, nu), 0.5 if len(g) > 1 else 1.0, np.float32)
    taper = min(max(2 * np.abs(gammas).max(), 2 * step), span / 4.0)

    def coverage(beta):
        beta = start + np.mod(beta - start, 2 * np.pi)  # into [start, start + 2 pi)
        x = np.clip(np.minimum(beta - start, stop - beta) / taper, 0.0, 1.0)
        return np.where(beta <= stop, np.sin(0.5 * np.pi * x) ** 2 + 1e-6, 0.0)

    own = coverage(angles[:, None] + 0 * gammas)
    conjugate = coverage(angles[:, None] + np.pi + 2 * gammas)
    w = own / (own + conjugate)
    return w[:, None, :].astype(np.float32)


def fbp(
    projections: ProjectionSet,
    grid: sitk.Image,
    filter: str = "slice-thickness",
    slice_thickness: float | None = None,
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """Filtered back-projection for tomosynthesis: panels filtered along the sweep direction.

    ``slice_thickness`` (mm, default: the grid's slice spacing) sets the slice-thickness filter.
    """
    progress = progress or no_progress
    g = projections.geometry
    center = _grid_center(grid)
    angles, _ = _view_angles(g, center)
    # the sweep shows on the panel along the axis that the sources move along
    motion = g.sources[np.argmax(angles)] - g.sources[np.argmin(angles)]
    axis = 1 if abs(np.dot(motion, g.u_axes[0])) >= abs(np.dot(motion, g.v_axes[0])) else 0
    half_angle = max((angles.max() - angles.min()) / 2.0, 1e-3)
    # default thinnest slice: the grid's spacing along its axis closest to the panel normal
    direction = np.array(grid.GetDirection()).reshape(3, 3)
    depth_axis = int(np.argmax(np.abs(direction.T @ g.normals[len(g) // 2])))
    thickness = slice_thickness or grid.GetSpacing()[depth_axis]
    weights = _angle_steps(angles) if len(g) > 1 else np.ones(1)
    # limited angle: scale as if the arc were a full half turn so flat regions keep their level
    weights = weights * (np.pi / max(weights.sum(), 1e-9))
    out = _filtered_back_projection(
        projections,
        grid,
        weights=weights,
        kind=filter,
        axis=axis,
        progress=progress,
        slice_thickness=thickness,
        half_angle=half_angle,
    )
    return _image(out, grid)


def sart(
    projections: ProjectionSet,
    grid: sitk.Image,
    iterations: int = 4,
    subsets: int | None = None,
    relaxation: float = 0.7,
    nonnegative: bool = True,
    initial: sitk.Image | None = None,
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """OS-SART (simultaneous algebraic reconstruction, ordered subsets) with a non-negativity clamp.

    ``x += relaxation * BP((p - A x) / A 1) / BP(1)`` over ``subsets`` interleaved subsets of views
    (about 5 views per subset by default), ``iterations`` times; values are attenuation per mm.
    """
    progress = progress or no_progress
    g = projections.geometry
    n = len(g)
    subsets = subsets or max(1, n // 5)
    groups = [np.arange(s, n, subsets) for s in range(subsets)]
    size = grid.GetSize()
    x = (
        np.zeros(size[::-1], np.float32)
        if initial is None
        else sitk.GetArrayFromImage(sitk.Cast(initial, sitk.sitkFloat32))
    )
    inv_rays = _inverse_ray_lengths(g, groups, grid, size, progress)
    voxel_norm = _voxel_normaliser(g, groups, grid)
    total = iterations * len(groups)
    for it in range(iterations):
        for gi, idx in enumerate(groups):
            sub = g.subset(idx)
            residual = (projections.images[idx] - forward_project(x, grid, sub)) * inv_rays[gi]
            update = back_project(residual, sub, grid)
            del residual
            update /= voxel_norm(gi)  # in place: memory stays a few volumes whatever the subset count
            update *= np.float32(relaxation)
            x += update
            del update
            if nonnegative:
                np.maximum(x, 0.0, out=x)
            done = it * len(groups) + gi + 1
            progress(0.1 + 0.9 * done / total, f"SART iteration {it + 1}/{iterations}, subset {gi + 1}")
    return _image(x, grid)


SART_CACHE_BYTES = 1 << 30  # keep every subset's BP(1) when they fit here; else recompute them


def _inverse_ray_lengths(g: Geometry, groups: list, grid: sitk.Image, size, progress) -> list:
    """``1 / A1`` per subset (0 for rays missing the volume): panel-sized, as much memory as the projections."""
    ones = np.ones(size[::-1], np.float32)
    out = []
    for gi, idx in enumerate(groups):
        ray = forward_project(ones, grid, g.subset(idx))
        out.append(np.where(ray > 1e-3, 1.0 / np.maximum(ray, 1e-3), 0.0).astype(np.float32))
        progress(0.1 * (gi + 1) / len(groups), "SART normalisation")
    return out


def _voxel_normaliser(g: Geometry, groups: list, grid: sitk.Image):
    """``gi -> max(BP_gi(1), 1e-6)``: cached for all subsets when they fit in :data:`SART_CACHE_BYTES`,
    else computed when needed, so a large volume costs one extra volume, not one per subset.

    (Where ``BP(1)`` is 0 the voxel sees no panel and its update is 0 too, so dividing by 1e-6 leaves 0.)
    """
    cache = {}
    keep = 4 * int(np.prod(grid.GetSize())) * len(groups) <= SART_CACHE_BYTES
    nu, nv = g.dims
    one = np.ones((1, nv, nu), np.float32)

    def norm(gi: int) -> np.ndarray:
        if gi in cache:
            return cache[gi]
        idx = groups[gi]
        vox = back_project(np.broadcast_to(one, (len(idx), nv, nu)), g.subset(idx), grid)
        np.maximum(vox, np.float32(1e-6), out=vox)
        if keep:
            cache[gi] = vox
        return vox

    return norm
