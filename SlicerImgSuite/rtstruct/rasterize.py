"""Rasterize closed planar contours onto an image grid: vectorised even-odd scan conversion.

Rule: a voxel is inside when its centre is inside the polygon. Several contours of one ROI on one
slice combine by even-odd (XOR), so holes and rings come out right; ``rule="union"`` ORs them
instead. Contours within PLANE_TOLERANCE_MM of each other along the normal share a plane. Each
grid slice takes the nearest contour plane within half the plane spacing, so a contour between
slices goes to the nearest slice and a grid finer than the contours is filled slab by slab
(half-slice end caps). Contours lost to the grid (beyond it, cut in-plane, or on planes finer than
its slices) are counted per ROI in warnings. ``oversample`` > 1 rasterizes onto a grid that much finer in
every axis and returns the covered fraction of each voxel (accurate volumes and DVHs).

Each ROI is rasterized inside its own bounding box only: memory follows the structures, not
the grid (100 ROIs on 512x512x300 hold only their boxes).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress

if TYPE_CHECKING:  # pydicom (and PIL behind it) is not needed to rasterize
    from .structure_set import Roi, StructureSet

PLANE_TOLERANCE_MM = 0.05  # a "planar" contour may wobble this much along the slice normal
CHUNK_VOXELS = 1 << 23  # scan-conversion work array per step (bounded memory)


@dataclass(frozen=True)
class Grid:
    """An image grid: ``origin`` (centre of voxel 0), ``spacing``, ``direction`` (3x3, columns = axes), ``size`` (i, j, k)."""

    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    size: tuple[int, int, int]

    @classmethod
    def of(cls, image: sitk.Image) -> Grid:
        if image.GetDimension() != 3:
            raise ImgSuiteError(f"the reference grid must be 3D, got {image.GetDimension()}D")
        return cls(
            np.array(image.GetOrigin(), float),
            np.array(image.GetSpacing(), float),
            np.array(image.GetDirection(), float).reshape(3, 3),
            tuple(int(v) for v in image.GetSize()),
        )

    def to_index(self, points: np.ndarray) -> np.ndarray:
        """Continuous (i, j, k) indices of LPS points (N, 3)."""
        return ((np.asarray(points, float) - self.origin) @ self.direction) / self.spacing

    def to_physical(self, index: np.ndarray) -> np.ndarray:
        return self.origin + (np.asarray(index, float) * self.spacing) @ self.direction.T

    def sub_grid(self, start: Sequence[int], size: Sequence[int], factor: Sequence[int] = (1, 1, 1)) -> Grid:
        """The box ``[start, start + size)`` of this grid, each voxel split ``factor`` times per axis."""
        factor = np.asarray(factor, float)
        spacing = self.spacing / factor
        first = np.asarray(start, float) - 0.5 + 0.5 / factor  # centre of the first sub-voxel, in our index
        return Grid(self.to_physical(first), spacing, self.direction, tuple(int(s * f) for s, f in zip(size, factor)))

    def image(self, array: np.ndarray) -> sitk.Image:
        """A SimpleITK image of ``array`` (z, y, x) on this grid."""
        image = sitk.GetImageFromArray(array)
        image.SetOrigin(self.origin.tolist())
        image.SetSpacing(self.spacing.tolist())
        image.SetDirection(self.direction.ravel().tolist())
        return image


@dataclass
class RoiMask:
    """One rasterized ROI: ``array`` (z, y, x; bool, or float32 coverage fraction) placed at ``offset`` (i, j, k)."""

    roi: Roi
    offset: tuple[int, int, int]
    array: np.ndarray

    def full(self, grid: Grid, dtype=np.uint8) -> np.ndarray:
        """The mask on the whole grid, (z, y, x)."""
        out = np.zeros(grid.size[::-1], dtype=dtype)
        self.paste(out)
        return out

    def image(self, grid: Grid, dtype=np.uint8) -> sitk.Image:
        """The mask on its own box of the grid (same spacing and axes, origin at ``offset``)."""
        array = self.array if self.array.size else np.zeros((1, 1, 1), bool)
        image = grid.image(np.ascontiguousarray(array, dtype=dtype))
        image.SetOrigin(grid.to_physical(self.offset).tolist())
        return image

    def paste(self, out: np.ndarray) -> None:
        i, j, k = self.offset
        nz, ny, nx = self.array.shape
        out[k : k + nz, j : j + ny, i : i + nx] = self.array

    def voxels(self) -> float:
        return float(self.array.sum())


def rasterize(
    structure_set: StructureSet,
    reference: sitk.Image,
    *,
    rule: str = "xor",
    oversample: int | Sequence[int] = 1,
    names: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> list[RoiMask]:
    """Rasterize every ROI (or those in ``names``) of a structure set onto ``reference``'s grid.

    Parameters
    ----------
    structure_set : StructureSet
        From :func:`~SlicerImgSuite.rtstruct.read_rtstruct`.
    reference : SimpleITK.Image
        Any image on the wanted grid (only its geometry is used). Contour planes must be
        perpendicular to its third axis.
    rule : {"xor", "union"}
        How several contours of one ROI on one slice combine: even-odd (holes, rings) or union.
    oversample : int or (int, int, int)
        1: voxel centre inside polygon, boolean masks. n > 1: each voxel is split n times per axis
        and the result is the covered fraction (float32), for accurate volumes.
    names : list of str, optional
        Rasterize only these ROIs (all by default).
    progress : callable, optional
        ``(fraction, message)`` per ROI.

    Returns
    -------
    list of RoiMask
        In structure-set order. ROIs without closed contours give empty masks.


    Examples
    --------
    >>> import tempfile
    >>> from SlicerImgSuite.demo.phantom import make_phantom
    >>> from SlicerImgSuite.rtstruct.structure_set import read_rtstruct
    >>> p = make_phantom(tempfile.mkdtemp(), shape=(32, 32, 8), spacing=(12.0, 12.0, 3.0))
    >>> masks = rasterize(read_rtstruct(p.rtstruct), p.ct, names=["BODY"])
    >>> masks[0].roi.name, masks[0].voxels() > 0
    ('BODY', True)
    """
    if rule not in ("xor", "union"):
        raise ImgSuiteError(f"unknown rasterization rule {rule!r}; use 'xor' or 'union'")
    factor = (int(oversample),) * 3 if np.isscalar(oversample) else tuple(int(v) for v in oversample)
    if min(factor) < 1:
        raise ImgSuiteError(f"oversample must be >= 1, got {oversample}")
    progress = progress or no_progress
    grid = Grid.of(reference)
    rois = structure_set.rois if names is None else [structure_set.roi(n) for n in names]
    thickness = plane_spacing(structure_set, grid)
    out, losses = [], []
    for n, roi in enumerate(rois):
        progress(n / max(len(rois), 1), f"rasterizing {roi.name}")
        planes, bad = _planes(roi, grid, structure_set.path)
        mask, lost = rasterize_roi_planes(roi, planes, bad, grid, thickness, rule, factor)
        losses.append(lost)
        out.append(mask)
    warn_losses(losses, grid, structure_set.path)
    progress(1.0, "rasterized")
    return out


def rasterize_roi_planes(roi: Roi, planes, bad: int, grid: Grid, thickness: float, rule: str = "xor", factor=(1, 1, 1)):
    """One ROI's mask from its planes (:func:`_planes`) and what its contours lost to the grid (for
    :func:`warn_losses`; ``bad``: the degenerate contours :func:`_planes` skipped)."""
    mask, lost = _rasterize_roi(roi, planes, grid, thickness, rule, factor)
    lost.degenerate = bad
    lost.open = sum(c.kind not in ("CLOSED_PLANAR", "POINT") for c in roi.contours)
    return mask, lost


def warn_losses(losses, grid: Grid, path=None) -> None:
    """One warning per kind of loss (contours beyond the grid, clipped, degenerate, open, unused), naming the file
    and the ROIs: a structure measured on a CT that does not hold all of it must not look whole."""
    for message in _loss_messages([lost for lost in losses if lost is not None], grid):
        warnings.warn(f"{path}: {message}" if path else message, stacklevel=3)


@dataclass
class _Lost:
    """What one ROI's contours lost to the grid, for the warnings."""

    name: str
    degenerate: int = 0  # fewer than 3 points or no area
    outside: int = 0  # contours on planes beyond the grid along the slice normal
    unused: int = 0  # contours on planes whose slices went to a nearer plane (planes finer than the slices)
    clipped: int = 0  # contours reaching outside the grid in-plane
    clipped_points: int = 0
    open: int = 0  # OPEN_PLANAR / OPEN_NONPLANAR contours: lines, no area


def _loss_messages(losses: Sequence[_Lost], grid: Grid) -> list[str]:
    """One warning per kind of loss: its total, then the ROIs that had it."""
    kinds = {
        "degenerate": "degenerate contour(s) (fewer than 3 points or no area) skipped",
        "open": "open contour(s) (ContourGeometricType OPEN_PLANAR or OPEN_NONPLANAR: lines, no area) not rasterized",
        "outside": "contour(s) lie outside the reference grid along the slice axis and were dropped",
        "clipped": "contour(s) reach outside the reference grid in-plane; only their part inside the grid is rasterized",
        "unused": f"contour(s) not used: their planes are closer together than the grid's {grid.spacing[2]:g} mm "
        "slices and each slice takes its nearest plane (a finer grid, or oversampling along the slice axis, uses them)",
    }
    messages = []
    for key, text in kinds.items():
        hit = [lost for lost in losses if getattr(lost, key)]
        if hit:
            messages.append(f"{sum(getattr(lost, key) for lost in hit)} {text}: {_per_roi(hit, key)}")
    return messages


def _per_roi(hit: Sequence[_Lost], key: str) -> str:
    """``'GTV' 3, 'PTV' 1`` (``'BODY' 2 (40 points)`` for clipped contours); at most 8 ROIs are named."""
    parts = [
        f"{lost.name!r} {getattr(lost, key)}" + (f" ({lost.clipped_points} points)" if key == "clipped" else "")
        for lost in hit[:8]
    ]
    if len(hit) > 8:
        parts.append(f"and {len(hit) - 8} more ROIs")
    return ", ".join(parts)


def plane_spacing(structure_set: StructureSet, grid: Grid) -> float:
    """Typical distance between contour planes along the grid's third axis (mm); the grid's spacing if unknown."""
    gaps = []
    for roi in structure_set.rois:
        z = np.unique(np.round([grid.to_index(p[:1])[0, 2] * grid.spacing[2] for p in roi.closed], 3))
        if len(z) > 1:
            gaps.append(np.diff(z))
    if not gaps:
        return float(grid.spacing[2])
    gaps = np.concatenate(gaps)
    gaps = gaps[gaps > PLANE_TOLERANCE_MM]  # contours a rounding error apart share a plane
    return float(np.median(gaps)) if gaps.size else float(grid.spacing[2])


def guess_grid(
    structure_set: StructureSet, spacing: Sequence[float] | None = None, margin_mm: float = 0.0
) -> sitk.Image:
    """A grid that contains every contour: axial, in-plane ``spacing`` (1 mm by default), one slice per contour plane.

    Examples
    --------
    ::

        grid = guess_grid(read_rtstruct("RS.dcm"), spacing=(1, 1, 3))
    """
    points = [p for r in structure_set.rois for c in r.contours for p in [c.points]]
    if not points:
        raise ImgSuiteError("the structure set has no contours to guess a grid from", structure_set.path)
    allp = np.concatenate(points)
    identity = Grid(np.zeros(3), np.ones(3), np.eye(3), (1, 1, 1))
    dz = plane_spacing(structure_set, identity) if spacing is None else float(spacing[2])
    sx, sy = (1.0, 1.0) if spacing is None else (float(spacing[0]), float(spacing[1]))
    lo, hi = allp.min(axis=0) - margin_mm, allp.max(axis=0) + margin_mm
    z0 = float(np.min(allp[:, 2]))
    nz = int(math.floor((float(np.max(allp[:, 2])) - z0) / dz + 0.5)) + 1
    origin = [math.floor(lo[0] / sx) * sx, math.floor(lo[1] / sy) * sy, z0]
    size = [int(math.ceil((hi[0] - origin[0]) / sx)) + 1, int(math.ceil((hi[1] - origin[1]) / sy)) + 1, nz]
    image = sitk.Image(size, sitk.sitkUInt8)
    image.SetOrigin(origin)
    image.SetSpacing([sx, sy, dz])
    return image


def _planes(roi: Roi, grid: Grid, path) -> tuple[dict[float, list[np.ndarray]], int]:
    """Closed contours of ``roi`` in grid index coordinates, grouped by plane position k (see :func:`_group_planes`)."""
    found: list[tuple[float, np.ndarray]] = []
    bad = 0
    for points in roi.closed:
        if len(points) < 3:
            bad += 1
            continue
        idx = grid.to_index(points)
        if np.ptp(idx[:, 2]) * grid.spacing[2] > PLANE_TOLERANCE_MM:
            raise ImgSuiteError(
                f"ROI {roi.name!r} has a contour that is not in a plane of the reference grid (it spans "
                f"{np.ptp(idx[:, 2]) * grid.spacing[2]:.2f} mm along the slice normal); non-axial contours "
                "are refused: give a reference grid whose slices hold the contours",
                path,
            )
        x, y = idx[:, 0], idx[:, 1]
        if abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) < 1e-9:
            bad += 1
            continue
        found.append((float(idx[:, 2].mean()), idx[:, :2]))
    return _group_planes(found, grid), bad


def _group_planes(found: list[tuple[float, np.ndarray]], grid: Grid) -> dict[float, list[np.ndarray]]:
    """Group contours whose positions k lie within the plane tolerance of a group's first one.

    An inner contour written a rounding error off its outer contour's plane must still cut its
    hole (even-odd works per plane). The tolerance is PLANE_TOLERANCE_MM, at most a quarter of a
    slice, so real planes finer than the grid stay apart.
    """
    tolerance = min(PLANE_TOLERANCE_MM / grid.spacing[2], 0.25)
    groups: list[list[tuple[float, np.ndarray]]] = []
    for k, polygon in sorted(found, key=lambda item: item[0]):
        if groups and k - groups[-1][0][0] <= tolerance:
            groups[-1].append((k, polygon))
        else:
            groups.append([(k, polygon)])
    return {float(np.mean([k for k, _ in g])): [p for _, p in g] for g in groups}


def _rasterize_roi(roi, planes, grid: Grid, thickness_mm: float, rule: str, factor) -> tuple[RoiMask, _Lost]:
    empty = RoiMask(roi, (0, 0, 0), np.zeros((0, 0, 0), bool if factor == (1, 1, 1) else np.float32))
    lost = _Lost(roi.name)
    if not planes:
        return empty, lost
    ks = np.array(sorted(planes))
    t = float(np.median(np.diff(ks))) if len(ks) > 1 else thickness_mm / grid.spacing[2]
    half = max(t, 1.0) / 2
    fx, fy, fz = factor
    # slices of the coarse grid that some plane reaches, and which plane each (sub-)slice takes
    k_lo = max(0, int(math.ceil(ks[0] - half - 1e-6)))
    k_hi = min(grid.size[2], int(math.floor(ks[-1] + half + 1e-6)) + 1)
    nz = max(k_hi - k_lo, 0)
    sub = (k_lo + np.arange(nz)[:, None] - 0.5 + (np.arange(fz) + 0.5) / fz).ravel()
    take = _assign(ks, half, sub).reshape(nz, fz)
    used = np.unique(take[take >= 0])
    _count_lost(lost, planes, ks, used, grid)
    pts = np.concatenate([p for ps in planes.values() for p in ps])
    i0, j0 = max(0, int(math.floor(pts[:, 0].min()))), max(0, int(math.floor(pts[:, 1].min())))
    i1 = min(grid.size[0], int(math.ceil(pts[:, 0].max())) + 1)
    j1 = min(grid.size[1], int(math.ceil(pts[:, 1].max())) + 1)
    if i1 <= i0 or j1 <= j0 or not used.size:
        return empty, lost
    box = (i0, j0, k_lo)
    nx, ny = i1 - i0, j1 - j0
    # in-plane: each plane is scan-converted once, on a grid fx, fy times finer, then block-averaged
    shift = np.array([i0 - 0.5 + 0.5 / fx, j0 - 0.5 + 0.5 / fy])
    scale = np.array([fx, fy], float)
    coverage = {}
    # several planes per scan conversion call (bounded work array), one layer per plane (xor) or polygon (union)
    per_call = max(1, CHUNK_VOXELS // max(1, ny * fy * (nx * fx + 1)))
    for start in range(0, len(used), per_call):
        chunk = used[start : start + per_call]
        polys, owner = [], []
        for plane_index in chunk:
            for p in planes[ks[plane_index]]:
                polys.append((p - shift) * scale)
                owner.append(plane_index)
        owner = np.array(owner)
        if rule == "union":
            layer_ids = np.arange(len(polys))
        else:
            layer_ids = np.searchsorted(chunk, owner)
        fine = scan_convert_layers(polys, layer_ids, int(layer_ids.max()) + 1, nx * fx, ny * fy)
        if rule == "union":  # OR the polygons of each plane
            starts = np.searchsorted(owner, chunk)
            fine = np.logical_or.reduceat(fine, starts, axis=0)
        if (fx, fy) != (1, 1):
            fine = fine.reshape(len(chunk), ny, fy, nx, fx).mean(axis=(2, 4), dtype=np.float32)
        for n, plane_index in enumerate(chunk):
            coverage[plane_index] = fine[n]
    if factor == (1, 1, 1):
        out = np.zeros((nz, ny, nx), bool)
        for z, plane_index in enumerate(take[:, 0]):
            if plane_index >= 0:
                out[z] = coverage[plane_index]
        return RoiMask(roi, box, out), lost
    # along the normal: a slice's share of each plane is the fraction of its fz sub-slices nearest to it
    out = np.zeros((nz, ny, nx), np.float32)
    for z in range(nz):
        for plane_index in np.unique(take[z][take[z] >= 0]):
            out[z] += np.float32(np.count_nonzero(take[z] == plane_index) / fz) * coverage[plane_index]
    return RoiMask(roi, box, out), lost


def _count_lost(lost: _Lost, planes, ks: np.ndarray, used: np.ndarray, grid: Grid) -> None:
    """Count the contours no slice takes (beyond the grid, or displaced by a nearer plane) and those cut in-plane."""
    nk, used = grid.size[2], set(used.tolist())
    for n, k in enumerate(ks):
        if n in used:
            for polygon in planes[k]:
                off = _outside_in_plane(polygon, grid)
                lost.clipped += bool(off)
                lost.clipped_points += off
        elif k <= -0.5 + 1e-6 or k > nk - 0.5 + 1e-6:
            lost.outside += len(planes[k])
        else:  # inside the grid's slab, yet its slice went to a nearer plane
            lost.unused += len(planes[k])


def _outside_in_plane(polygon: np.ndarray, grid: Grid) -> int:
    """How many points of a polygon (i, j indices) lie beyond the grid's outer voxel faces."""
    size = np.asarray(grid.size[:2], float)
    return int(np.count_nonzero(np.any((polygon < -0.5 - 1e-6) | (polygon > size - 0.5 + 1e-6), axis=1)))


def _assign(ks: np.ndarray, half: float, z: np.ndarray) -> np.ndarray:
    """For each slice position ``z``, the index of the nearest plane in ``ks`` within ``[-half, half)``, else -1."""
    pos = np.clip(np.searchsorted(ks, z), 1, max(len(ks) - 1, 1))
    if len(ks) == 1:
        nearest = np.zeros(len(z), int)
    else:
        left, right = ks[pos - 1], ks[pos]
        # a tie goes to the upper plane, matching the half-open interval [-half, half) below
        nearest = np.where(np.abs(z - left) < np.abs(right - z) - 1e-9, pos - 1, pos)
    d = z - ks[nearest]
    ok = (d >= -half - 1e-6) & (d < half - 1e-6)
    return np.where(ok, nearest, -1)


def scan_convert(polygons: Sequence[np.ndarray], nx: int, ny: int) -> np.ndarray:
    """Even-odd fill of polygons given in pixel index coordinates (x = column, y = row).

    A pixel is inside when its centre (integer coordinates) is inside an odd number of polygons.
    Vectorised: every edge's crossings of every pixel row are computed at once, then a running
    XOR along each row fills the spans.

    Examples
    --------
    >>> square = np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]])
    >>> scan_convert([square], 4, 4).astype(int)
    array([[0, 0, 0, 0],
           [0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    return scan_convert_layers(polygons, np.zeros(len(polygons), np.int64), 1, nx, ny)[0]


def scan_convert_layers(polygons, layers: np.ndarray, n_layers: int, nx: int, ny: int) -> np.ndarray:
    """Even-odd fill of polygons into ``n_layers`` images at once (polygon ``n`` goes to ``layers[n]``): (n_layers, ny, nx) bool."""
    xy = np.concatenate(polygons)
    lengths = np.array([len(p) for p in polygons])
    nxt = np.arange(1, len(xy) + 1)
    nxt[np.cumsum(lengths) - 1] = np.cumsum(lengths) - lengths  # each polygon closes on its first vertex
    x0, y0, x1, y1 = xy[:, 0], xy[:, 1], xy[nxt, 0], xy[nxt, 1]
    # rows j with min(y) <= j < max(y) are crossed (half-open: a vertex on a row counts once)
    lo = np.clip(np.ceil(np.minimum(y0, y1)), 0, ny).astype(np.int64)
    hi = np.clip(np.ceil(np.maximum(y0, y1)), 0, ny).astype(np.int64)
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros((n_layers, ny, nx), bool)
    edge_layer = np.repeat(np.asarray(layers, np.int64), lengths)
    edge = np.repeat(np.arange(len(x0)), counts)
    start = np.cumsum(counts) - counts
    rows = lo[edge] + (np.arange(total) - start[edge])
    e_y0, e_y1, e_x0 = y0[edge], y1[edge], x0[edge]
    xs = e_x0 + (rows - e_y0) * (x1[edge] - e_x0) / (e_y1 - e_y0)
    # pixels with centre x > crossing are toggled
    cols = np.clip(np.floor(xs).astype(np.int64) + 1, 0, nx)
    flat = (edge_layer[edge] * ny + rows) * (nx + 1) + cols
    size = n_layers * ny * (nx + 1)
    toggles = np.zeros(size, np.uint8)  # crossings are few: touch only them, not every cell
    np.bitwise_xor.at(toggles, flat, 1)
    toggles = toggles.reshape(n_layers, ny, nx + 1)
    out = np.bitwise_xor.accumulate(toggles, axis=2)
    return out[:, :, :nx].view(bool)
