"""An analytic test object for tomosynthesis: ellipsoids whose line integrals are exact.

Projections come from chord lengths, not from a voxel projector, so reconstructions are not judged
by the projector that made their data (no "inverse crime").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..progress import ProgressCallback, no_progress
from .geometry import Geometry
from .projset import ProjectionSet


@dataclass
class Ellipsoid:
    center: tuple[float, float, float]  # LPS mm
    semi_axes: tuple[float, float, float]  # mm along x, y, z
    value: float  # attenuation per mm, added to what lies beneath
    kind: str = "background"  # background, bead or sphere


@dataclass
class AnalyticPhantom:
    """A sum of axis-aligned ellipsoids."""

    ellipsoids: list[Ellipsoid] = field(default_factory=list)

    def voxelize(self, grid: sitk.Image, supersample: int = 2) -> sitk.Image:
        """Mean attenuation in each voxel of ``grid`` (``supersample``^3 points per voxel)."""
        size = grid.GetSize()
        out = np.zeros(size[::-1], np.float32)
        offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
        d = np.array(grid.GetDirection()).reshape(3, 3) * np.array(grid.GetSpacing())[None, :]
        origin = np.array(grid.GetOrigin())
        kk, jj, ii = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in size[::-1]), indexing="ij")
        for dz in offsets:
            for dy in offsets:
                for dx in offsets:
                    idx = np.stack([ii + dx, jj + dy, kk + dz], axis=-1)
                    pts = origin + idx @ d.T
                    for e in self.ellipsoids:
                        q = (pts - e.center) / np.asarray(e.semi_axes)
                        out += e.value * (np.einsum("...i,...i->...", q, q) <= 1.0)
        image = sitk.GetImageFromArray(out / supersample**3)
        image.CopyInformation(grid)
        return image

    def project(self, geometry: Geometry, progress: ProgressCallback | None = None) -> ProjectionSet:
        """Exact line integrals (chord length x value) for every pixel centre ray."""
        progress = progress or no_progress
        nu, nv = geometry.dims
        images = np.zeros((len(geometry), nv, nu), np.float32)
        cols, rows = np.meshgrid(np.arange(nu), np.arange(nv))
        for view in range(len(geometry)):
            s = geometry.sources[view]
            d = geometry.pixel_positions(view, cols, rows) - s
            d /= np.linalg.norm(d, axis=-1, keepdims=True)
            for e in self.ellipsoids:
                a = np.asarray(e.semi_axes)
                s1, d1 = (s - e.center) / a, d / a
                qa = np.einsum("...i,...i->...", d1, d1)
                qb = 2 * d1 @ s1
                qc = s1 @ s1 - 1.0
                disc = qb * qb - 4 * qa * qc
                images[view] += e.value * np.sqrt(np.maximum(disc, 0.0)) / qa
            progress((view + 1) / len(geometry), f"analytic projection {view + 1}/{len(geometry)}")
        return ProjectionSet(images, geometry)


def bead_phantom(
    center=(0.0, 80.0, 0.0),
    depth_axis: int = 1,
    bead_depths=(-50.0, 0.0, 50.0),
    sphere_depths=(-40.0, 0.0, 40.0),
    contrast: float = 0.03,
) -> AnalyticPhantom:
    """A water slab (an ellipsoid 240 x 140 x 240 mm) with 1.5 mm beads and 12 mm low-contrast spheres.

    Depths are offsets from ``center`` along ``depth_axis``; beads and spheres sit at different places in
    the plane so that their out-of-plane blur can be measured separately.
    """
    water = 0.02
    c = np.asarray(center, float)
    axes = [120.0, 120.0, 120.0]
    axes[depth_axis] = 70.0
    out = AnalyticPhantom([Ellipsoid(tuple(c), tuple(axes), water)])
    plane = [k for k in range(3) if k != depth_axis]
    for n, depth in enumerate(bead_depths):
        p = c.copy()
        p[depth_axis] += depth
        p[plane[0]] += -60.0 + 30.0 * n
        p[plane[1]] += 50.0
        out.ellipsoids.append(Ellipsoid(tuple(p), (0.75, 0.75, 0.75), 0.2, "bead"))
    for n, depth in enumerate(sphere_depths):
        p = c.copy()
        p[depth_axis] += depth
        p[plane[0]] += -50.0 + 50.0 * n
        p[plane[1]] += -30.0
        out.ellipsoids.append(Ellipsoid(tuple(p), (6.0, 6.0, 6.0), water * contrast, "sphere"))
    return out


def add_poisson_noise(projections: ProjectionSet, photons: float, seed: int = 0) -> ProjectionSet:
    """Line integrals re-measured with ``photons`` incident quanta per pixel (Poisson), as ``-log(N/N0)``."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(photons * np.exp(-projections.images.astype(np.float64)))
    noisy = -np.log(np.maximum(counts, 0.5) / photons)
    return ProjectionSet(noisy.astype(np.float32), projections.geometry)


def focus_depths(volume: sitk.Image, points, direction, search: float = 80.0, step: float = 0.5) -> np.ndarray:
    """Where each bead comes into focus along ``direction`` (mm from its ``points`` position; nan when the
    search line leaves the volume everywhere).

    Focus is the bead's contrast: the value at a point less the mean on a 5 mm ring around it across
    ``direction`` (a straight edge cancels there, a point does not), best of a +-2 mm lateral patch, at
    each depth within +-``search`` mm; the depth is the centroid of that curve within 4 mm of its peak
    (sub-voxel: not snapped to the grid's planes).

    Examples
    --------
    >>> from SlicerImgSuite.geometry import grid_image
    >>> grid = grid_image((-20.0, -20.0, -20.0), (41, 41, 41), (1.0, 1.0, 1.0), pixel_type=sitk.sitkFloat32)
    >>> vol = AnalyticPhantom([Ellipsoid((0.0, 3.0, 0.0), (2.0, 2.0, 2.0), 1.0, "bead")]).voxelize(grid)
    >>> np.round(focus_depths(vol, [(0.0, 0.0, 0.0)], (0, 1, 0), search=10), 1).tolist()
    [3.0]
    """
    from scipy.ndimage import map_coordinates

    n = np.asarray(direction, float) / np.linalg.norm(direction)
    e1 = np.cross(n, [0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.cross(n, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    ts = np.arange(-search, search + step / 2, step)
    patch = np.array([a * e1 + b * e2 for a in np.arange(-2.0, 2.5) for b in np.arange(-2.0, 2.5)])
    angles = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
    ring = 5.0 * (np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2)
    array = sitk.GetArrayViewFromImage(volume)
    origin, spacing = np.array(volume.GetOrigin()), np.array(volume.GetSpacing())
    to_index = np.linalg.inv(np.array(volume.GetDirection()).reshape(3, 3) * spacing[None, :])

    def sample(pts):
        idx = (pts.reshape(-1, 3) - origin) @ to_index.T
        return map_coordinates(array, idx[:, ::-1].T, order=1, mode="constant", cval=np.nan).reshape(pts.shape[:-1])

    out = []
    for p in np.atleast_2d(np.asarray(points, float)):
        centres = p + ts[:, None, None] * n + patch[None]
        contrast = sample(centres) - sample(centres[:, :, None, :] + ring[None, None]).mean(axis=2)
        curve = np.where(np.isnan(contrast), -np.inf, contrast).max(axis=1)  # -inf: off the volume
        if not np.isfinite(curve).any():
            out.append(np.nan)
            continue
        k = int(np.argmax(curve))
        window = slice(max(k - int(4.0 / step), 0), k + int(4.0 / step) + 1)
        c, t = curve[window], ts[window]
        w = c[np.isfinite(c)] - np.min(c[np.isfinite(c)])
        out.append(float((w * t[np.isfinite(c)]).sum() / w.sum()) if w.sum() > 0 else float(ts[k]))
    return np.array(out)
