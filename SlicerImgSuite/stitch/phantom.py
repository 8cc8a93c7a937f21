"""A long phantom (a "leg": soft tissue, a curving bone, texture, steel beads at known positions and an
optional ruler) rendered with the project's DRR as overlapping shots, in either acquisition mode.

The beads and the ruler lie in the measurement plane, ``sod`` mm from the source, so their distances in a
stitched image can be checked against the truth. The shots can be given a wrong position (``errors_mm``, as
a real positioner's tolerance) and different exposures and noise, so registration has something to find.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..tomo.drr import drr
from ..tomo.geometry import Geometry
from .shots import Shot, panel_view

BEAD_HU = 8000.0  # steel-like
BONE_HU = 900.0
RULER_HU = 12000.0  # lead marks


def leg_phantom(length: float = 600.0, spacing: float = 1.0, center_y: float = 0.0, ruler: bool = False, seed: int = 7):
    """The phantom as a CT (HU, int16) and the LPS positions of its beads (n, 3), head at ``z = 0``.

    Examples
    --------
    >>> ct, beads = leg_phantom(length=120.0, spacing=2.0)
    >>> ct.GetSize()[2], len(beads) > 1
    (61, True)
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = int(140 / spacing) + 1, int(140 / spacing) + 1, int(length / spacing) + 1
    x = (np.arange(nx) * spacing - 70.0)[None, None, :]
    y = (np.arange(ny) * spacing - 70.0)[None, :, None]
    z = -(np.arange(nz) * spacing)[:, None, None]  # k = 0 at the head
    hu = np.full((nz, ny, nx), -1000.0, np.float32)
    hu[(x**2 + y**2) <= (52.0 + 6 * np.sin(z / 90.0)) ** 2] = 40.0
    bone_x = 8.0 * np.sin(z / 140.0)
    radius = 11.0 + 3.0 * np.cos(z / 55.0)
    hu[((x - bone_x) ** 2 + y**2) <= radius**2] = BONE_HU
    for cz in rng.uniform(-length, 0, int(length / 3)):  # texture: trabecular nodules in and near the bone
        cx = 8.0 * np.sin(cz / 140.0) + rng.uniform(-14, 14)
        cy, r = rng.uniform(-10, 10), rng.uniform(1.5, 4)
        k0, k1 = max(int((-cz - r) / spacing), 0), int((-cz + r) / spacing) + 2
        sub = ((x - cx) ** 2 + (y - cy) ** 2 + (z[k0:k1] - cz) ** 2) <= r**2
        hu[k0:k1][sub] += rng.uniform(150, 400)
    bead_z = -np.cumsum(rng.uniform(40, 60, int(length / 50) + 1)) + 10.0
    bead_z = bead_z[bead_z > -length + 10]
    beads = np.array([[-30.0 + 6 * (i % 2), 0.0, bz] for i, bz in enumerate(bead_z)])
    for bx, by, bz in beads:
        hu[((x - bx) ** 2 + (y - by) ** 2 + (z - bz) ** 2) <= 2.5**2] = BEAD_HU
    if ruler:  # a strip beside the leg with a 1 mm lead mark every 10 mm
        marks = (np.abs((z + 5.0) - 10.0 * np.round((z + 5.0) / 10.0)) < 0.5 * spacing + 1e-6) & (np.abs(y) <= 1.0)
        hu[marks & (np.abs(x - 62.0) <= 5.0)] = RULER_HU
    image = sitk.GetImageFromArray(np.clip(hu, -1024, 32000).astype(np.int16))
    image.SetSpacing((spacing, spacing, spacing))
    image.SetOrigin((-70.0, center_y - 70.0, 0.0))
    image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    beads[:, 1] += center_y
    return image, beads


def shot_positions(
    mode: str, shots: int, *, panel_rows: int, pixel: float, sid: float, sod: float, overlap_mm: float, top: float
):
    """Panel and focus positions (mm down the long axis) of ``shots`` shots covering the leg from ``top``."""
    m = sid / sod
    height_at_plane = panel_rows * pixel / m
    step_plane = height_at_plane - overlap_mm
    first = top + height_at_plane / 2.0  # footprint centre of the first shot, in the plane
    centers = first + step_plane * np.arange(shots)
    if mode == "parallel":
        return centers, centers
    focus = centers.mean()  # angled: one focus; the panel moves M times as far as the footprint
    return focus + m * (centers - focus), np.full(shots, focus)


def render_shots(
    *,
    mode: str = "parallel",
    panel=(200, 300),
    pixel: float = 1.0,
    shots: int = 3,
    overlap_mm: float = 50.0,
    sid: float = 1800.0,
    sod: float = 1500.0,
    errors_mm=None,
    exposures=None,
    noise: float = 0.0,
    ruler: bool = False,
    spacing: float = 1.0,
    seed: int = 3,
) -> tuple[list[Shot], dict]:
    """Render overlapping shots of :func:`leg_phantom`; returns the shots (with the geometry a positioner
    would report, off by ``errors_mm`` along the long axis) and the truth.

    ``truth``: ``beads`` (positions down the long axis and across, in the measurement plane, mm),
    ``errors_plane_mm`` (how far each shot's reported position puts its footprint off, in the plane).
    """
    rng = np.random.default_rng(seed)
    cols, rows = panel
    panel_pos, focus_pos = shot_positions(
        mode, shots, panel_rows=rows, pixel=pixel, sid=sid, sod=sod, overlap_mm=overlap_mm, top=5.0
    )
    length = float(panel_pos[-1] - panel_pos[0]) + rows * pixel + 80.0
    ct, beads = leg_phantom(length=length, spacing=spacing, center_y=-(sid - sod), ruler=ruler, seed=seed)
    errors = np.zeros(shots) if errors_mm is None else np.asarray(errors_mm, float)
    exposures = np.ones(shots) if exposures is None else np.asarray(exposures, float)
    true_views = [panel_view((cols, rows), (pixel, pixel), sid, p, f) for p, f in zip(panel_pos, focus_pos)]
    both = Geometry(
        np.concatenate([v.sources for v in true_views]),
        np.concatenate([v.centers for v in true_views]),
        true_views[0].u_axes[0],
        true_views[0].v_axes[0],
        (pixel, pixel),
        (cols, rows),
    )
    integrals = drr(ct, both).images / 0.1  # per mm again (drr writes plastimatch's cm units)
    out = []
    for i in range(shots):
        intensity = exposures[i] * 1000.0 * np.exp(-integrals[i] * 0.1)
        if noise:
            intensity = intensity + rng.normal(0.0, noise * intensity.mean(), intensity.shape)
        shift = errors[i] if mode == "parallel" else errors[i]  # the positioner reports the panel (and tube) off
        reported_focus = focus_pos[i] + (errors[i] if mode == "parallel" else 0.0)
        view = panel_view((cols, rows), (pixel, pixel), sid, panel_pos[i] + shift, reported_focus)
        out.append(
            Shot(intensity.astype(np.float32), (pixel, pixel), view, f"shot{i + 1}", sod, photometric="MONOCHROME1")
        )
    m = sid / sod
    errors_plane = errors if mode == "parallel" else errors / m
    down = -beads[:, 2]
    bottom = 5.0 + shots * rows * pixel / m - (shots - 1) * overlap_mm
    inside = (down > 5.0 + 10.0) & (down < bottom - 10.0)  # beads the stitched image shows whole
    truth = {"beads_mm": beads[inside][:, [0, 2]] * [1.0, -1.0], "errors_plane_mm": errors_plane, "magnification": m}
    return out, truth


def measured_beads(result, truth, window: int = 8) -> np.ndarray:
    """Sub-pixel (row, column) of each true bead in the stitched ``result`` (centroid of the local top-hat)."""
    from scipy import ndimage

    image = result.image.astype(float)
    dense = -np.log(np.clip(image, 1e-6, None)) if result.photometric == "MONOCHROME1" else image
    tophat = dense - ndimage.grey_opening(dense, size=(9, 9))
    plane = result.plane
    found = []
    for lateral, down in truth["beads_mm"]:
        point = np.array([lateral, plane.origin[1], -down])
        col = float(np.dot(point - plane.origin, plane.eu)) / plane.spacing[0]
        row = float(np.dot(point - plane.origin, plane.ev)) / plane.spacing[1]
        r0, c0 = max(int(round(row)) - window, 0), max(int(round(col)) - window, 0)
        win = tophat[r0 : int(round(row)) + window + 1, c0 : int(round(col)) + window + 1]
        w = np.clip(win - 0.3 * win.max(), 0, None)
        yy, xx = np.mgrid[: win.shape[0], : win.shape[1]]
        found.append(((yy * w).sum() / w.sum() + r0, (xx * w).sum() / w.sum() + c0))
    return np.array(found)


def bead_distance_errors(result, truth) -> np.ndarray:
    """Measured minus true distance (mm) between consecutive beads, in the stitched image."""
    found = measured_beads(result, truth)
    sx, sy = result.plane.spacing
    measured = np.hypot(np.diff(found[:, 0]) * sy, np.diff(found[:, 1]) * sx)
    true = np.hypot(*np.diff(truth["beads_mm"], axis=0).T)
    return measured - true
