"""Forward and back projectors (cone beam, flat detector), one view at a time.

- :func:`forward_project`: Joseph's ray-driven projector. For each view the volume is cut into planes
  across the axis closest to the central ray; along a ray the plane crossing is linear in the plane
  index, so each ray is one bilinear sample per plane, times the path length between planes. Only the
  planes the ray crosses inside the volume are visited.
- :func:`back_project`: voxel-driven (each voxel samples the panel bilinearly where it projects), for
  any geometry (linear sweeps, arcs, circles): the projection is affine in the voxel index up to one
  division per voxel.

Both loops are compiled (:mod:`.kernels`, numba) and run on all cores; a small forward projection runs the
same Joseph kernel compiled ahead of time (:mod:`.aot`) and does not load numba. Volumes are numpy arrays
``(k, j, i)`` on the grid of a ``SimpleITK.Image`` (origin, spacing, direction).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..progress import ProgressCallback, no_progress
from .aot import joseph_kernel
from .geometry import Geometry

BATCH = 8  # views back-projected per pass over the volume


def _grid_maps(grid: sitk.Image):
    """``A`` and ``O`` with continuous index ``(i, j, k) = A @ (X - O)``, and the sizes (i, j, k)."""
    d = np.array(grid.GetDirection(), float).reshape(3, 3)
    sp_ = np.array(grid.GetSpacing(), float)
    return d.T / sp_[:, None], np.array(grid.GetOrigin(), float), np.array(grid.GetSize())


def forward_project(
    volume: np.ndarray,
    grid: sitk.Image,
    geometry: Geometry,
    progress: ProgressCallback | None = None,
    table: np.ndarray | None = None,
) -> np.ndarray:
    """Line integrals through ``volume`` (values per mm) for every view: ``(views, rows, columns)`` float32.

    ``table``: 65536 float32 values per mm for a 16-bit integer ``volume`` (e.g. HU to attenuation),
    applied on the fly instead of converting the whole volume.

    Examples
    --------
    >>> from SlicerImgSuite.geometry import grid_image
    >>> from SlicerImgSuite.tomo.geometry import circular
    >>> grid = grid_image((-4.5, -4.5, -4.5), (10, 10, 10), (1, 1, 1))
    >>> g = circular(1, sad=1e6, sid=1e6 + 1, dims=(3, 3), pixel_size=(1, 1))
    >>> float(np.round(forward_project(np.ones((10, 10, 10), np.float32), grid, g)[0, 1, 1], 3))
    10.0
    """
    progress = progress or no_progress
    if table is None:
        vol, table = np.ascontiguousarray(volume, np.float32), np.zeros(0, np.float32)
    else:
        vol, table = np.ascontiguousarray(volume), np.ascontiguousarray(table, np.float32)
        if vol.dtype not in (np.int16, np.uint16) or table.shape != (65536,):
            raise ValueError("a lookup table needs a 16-bit integer volume and 65536 entries")
    a_mat, origin, _ = _grid_maps(grid)
    nu, nv = geometry.dims
    du, dv = geometry.pixel_size
    joseph = joseph_kernel(len(geometry) * nu * nv * max(vol.shape)) or _numba_kernels().joseph_view
    out = np.zeros((len(geometry), nv, nu), np.float32)
    for view in range(len(geometry)):
        progress(view / len(geometry), f"projecting view {view + 1}/{len(geometry)}")
        s = geometry.sources[view]
        cu, cv = geometry.image_center[view]
        # physical direction source -> pixel (col, row), affine in (col, row); its index-space image
        pu, pv = du * geometry.u_axes[view], dv * geometry.v_axes[view]
        pbase = geometry.centers[view] - s - cu * pu - cv * pv
        axis = int(np.argmax(np.abs(a_mat @ geometry.normals[view])))  # plane normal: i, j or k
        # planes across `axis`; their two array axes are the other index axes in (k, j, i) order
        order = [axis] + [x for x in (2, 1, 0) if x != axis]
        planes = np.moveaxis(vol, 2 - axis, 0)
        q0 = (a_mat @ (s - origin))[order]
        base, qu, qv = ((a_mat @ p)[order] for p in (pbase, pu, pv))
        joseph(planes, table, *(np.ascontiguousarray(a, np.float64) for a in (q0, base, qu, qv, pbase, pu, pv)), out[view])
    progress(1.0, "projected")
    return out


def back_project(
    projections: np.ndarray,
    geometry: Geometry,
    grid: sitk.Image,
    weighting: str = "none",
    view_weights: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    out: np.ndarray | None = None,
    outside: str = "zero",
) -> np.ndarray:
    """Sum over views of the panel value where each voxel projects: ``(k, j, i)`` float32.

    Parameters
    ----------
    projections : (views, rows, columns) array (or any sequence of 2-D panels: streamed one at a time)
    weighting : ``"none"`` or ``"fdk"`` (times ``(SID / depth)^2``, the inverse-square factor of FDK).
    view_weights : optional per-view factors.
    out : optional volume to add into.
    outside : what voxels projecting beyond the panel get: ``"zero"`` or ``"edge"`` (the nearest pixel).
    """
    progress = progress or no_progress
    _, origin, size = _grid_maps(grid)
    ni, nj, nk = (int(x) for x in size)
    if out is None:
        out = np.zeros((nk, nj, ni), np.float32)
    d = np.array(grid.GetDirection(), float).reshape(3, 3)
    steps = d * np.array(grid.GetSpacing(), float)[None, :]  # physical step per index along i, j, k
    nu, nv = geometry.dims
    for first in range(0, len(geometry), BATCH):
        progress(first / len(geometry), f"back-projecting view {first + 1}/{len(geometry)}")
        views = range(first, min(first + BATCH, len(geometry)))
        panels = np.zeros((len(views), nv + 2, nu + 2), np.float32)  # with the zero border
        lin = np.empty((len(views), 3, 3))
        const = np.empty((len(views), 3))
        for n, view in enumerate(views):
            panels[n, 1:-1, 1:-1] = projections[view]
            p = geometry.matrix(view)
            # u w, v w, w are affine in the index: p[:, :3] @ (O + steps @ idx) + p[:, 3]
            lin[n], const[n] = p[:, :3] @ steps, p[:, :3] @ origin + p[:, 3]
        weights = np.ones(len(views)) if view_weights is None else np.asarray(view_weights, float)[views]
        centers = np.ascontiguousarray(geometry.image_center[views], float)
        _numba_kernels().back_views(
            out,
            panels,
            lin=lin,
            const=const,
            centers=centers,
            weights=weights,
            fdk=weighting == "fdk",
            edge=outside == "edge",
        )
    progress(1.0, "back-projected")
    return out


def _numba_kernels():
    """:mod:`.kernels`, imported on first use: numba's start-up is paid only by the jobs that run on it."""
    from . import kernels

    return kernels
