"""The measurement plane and the resampling of each shot onto it.

The plane is parallel to the first shot's panel, ``distance`` mm from its source along the panel normal.
A point ``P`` of the plane is seen by a shot at the panel pixel where the ray from the shot's source through
``P`` meets the panel (the shot's projection matrix), so perspective, magnification and the tube's tilt in
angled mode are undone in one step, and lengths measured on the result are lengths in that plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import ImgSuiteError
from ..tomo.geometry import Geometry

FEATHER_PX = 24.0  # width of the blending ramp at a panel's edge, in panel pixels


@dataclass
class Plane:
    """An output grid on the measurement plane: pixel (row, col) sits at ``origin + col*sa*eu + row*sb*ev``."""

    origin: np.ndarray
    eu: np.ndarray
    ev: np.ndarray
    spacing: tuple[float, float]  # (column pitch, row pitch) in mm
    shape: tuple[int, int]  # (rows, columns)
    distance: float  # source to plane (first shot), mm
    magnification: float  # panel size / plane size of an object in the plane (first shot)
    normal: np.ndarray  # unit normal, from the sources towards the panels

    def points(self, rows: np.ndarray, cols: np.ndarray, offset=(0.0, 0.0)) -> np.ndarray:
        """LPS points of plane pixels (broadcast ``rows``, ``cols``), shifted back by ``offset`` (mm along eu, ev)."""
        a = cols * self.spacing[0] - offset[0]
        b = rows * self.spacing[1] - offset[1]
        return self.origin + a[..., None] * self.eu + b[..., None] * self.ev


def measurement_plane(views: list[Geometry], distance: float | None, spacing: float | None = None) -> Plane:
    """The plane ``distance`` mm from the first view's source, covering every view's footprint.

    ``distance`` defaults to 90 % of the first view's source-to-panel distance (a patient close to the
    panel); ``spacing`` (mm) to the panel pitch divided by the magnification, so no detail is lost.

    Examples
    --------
    >>> from SlicerImgSuite.stitch.shots import panel_view
    >>> views = [panel_view((100, 100), (1.0, 1.0), 1800.0, p, p) for p in (0.0, 80.0)]
    >>> plane = measurement_plane(views, 1500.0)
    >>> round(plane.magnification, 3), plane.shape
    (1.2, (197, 101))
    """
    first = views[0]
    sid = float(first.sid[0])
    distance = 0.9 * sid if distance is None else float(distance)
    if not (np.isfinite(distance) and 0 < distance <= sid):
        raise ImgSuiteError(f"the measurement plane must lie between source and panel (0 < distance <= {sid:g} mm)")
    n = first.normals[0]
    point = first.sources[0] + distance * n
    eu = _orthogonal(first.u_axes[0], n)
    ev = _orthogonal(first.v_axes[0], n)
    magnification = sid / distance
    if spacing is None:
        spacing = min(first.pixel_size) / magnification
    if not (np.isfinite(spacing) and spacing > 0):
        raise ImgSuiteError(f"output spacing must be positive, got {spacing}")
    corners = np.concatenate([_footprint(v, point, n) for v in views])
    a = (corners - point) @ eu
    b = (corners - point) @ ev
    a0, b0 = np.floor(a.min() / spacing) * spacing, np.floor(b.min() / spacing) * spacing
    cols = int(np.ceil((a.max() - a0) / spacing)) + 1
    rows = int(np.ceil((b.max() - b0) / spacing)) + 1
    if rows * cols > 400e6:
        raise ImgSuiteError(f"the stitched image would be {rows} x {cols} pixels: check the shots' positions")
    origin = point + a0 * eu + b0 * ev
    return Plane(
        origin=origin, eu=eu, ev=ev, spacing=(float(spacing), float(spacing)), shape=(rows, cols),
        distance=distance, magnification=magnification, normal=n,
    )  # fmt: skip


def _orthogonal(axis: np.ndarray, n: np.ndarray) -> np.ndarray:
    v = axis - np.dot(axis, n) * n
    return v / np.linalg.norm(v)


def _footprint(view: Geometry, point: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Where the rays through the panel's four corners meet the plane (4, 3)."""
    nu, nv = view.dims
    corners = view.pixel_positions(
        0, np.array([-0.5, nu - 0.5, -0.5, nu - 0.5]), np.array([-0.5, -0.5, nv - 0.5, nv - 0.5])
    )
    s = view.sources[0]
    t = np.dot(point - s, n) / ((corners - s) @ n)
    if np.any(t <= 0):
        raise ImgSuiteError("a panel corner is not in front of its source: check the geometry")
    return s + t[:, None] * (corners - s)


def panel_coordinates(view: Geometry, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Panel (column, row) where each LPS point (..., 3) projects in ``view``."""
    m = view.matrix(0)
    x = points @ m[:, :3].T + m[:, 3]
    w = x[..., 2]
    ic = view.image_center[0]
    return ic[0] + x[..., 0] / w, ic[1] + x[..., 1] / w


def footprint_box(view: Geometry, plane: Plane, offset=(0.0, 0.0)) -> tuple[int, int, int, int]:
    """Output rows r0:r1 and columns c0:c1 that the shot can cover (clipped to the plane)."""
    corners = _footprint(view, plane.origin, plane.normal)
    a = ((corners - plane.origin) @ plane.eu + offset[0]) / plane.spacing[0]
    b = ((corners - plane.origin) @ plane.ev + offset[1]) / plane.spacing[1]
    r0, r1 = max(int(np.floor(b.min())), 0), min(int(np.ceil(b.max())) + 1, plane.shape[0])
    c0, c1 = max(int(np.floor(a.min())), 0), min(int(np.ceil(a.max())) + 1, plane.shape[1])
    return r0, r1, c0, c1


def resample(image: np.ndarray, view: Geometry, plane: Plane, box, offset=(0.0, 0.0), order: int = 1):
    """The shot's values on plane pixels ``box`` and their blending weights (0 outside the panel).

    ``offset`` (mm along the plane's column and row directions) moves the shot on the plane: the value at
    plane position ``x`` is read where ``x - offset`` projects. A panel parallel to the plane (both modes
    as built here) maps by an affine transform, resampled without coordinate arrays.
    """
    r0, r1, c0, c1 = box
    linear = _affine(view, plane, box, offset)
    if linear is None:
        rows, cols = np.mgrid[r0:r1, c0:c1].astype(float)
        u, v = panel_coordinates(view, plane.points(rows, cols, offset))
        values = ndimage.map_coordinates(image, [v, u], order=order, mode="nearest").astype(np.float32)
        return values, np.minimum(_ramp(u, view.dims[0]), _ramp(v, view.dims[1]))
    matrix, start = linear
    if order == 1 and np.allclose(matrix, np.eye(2), atol=1e-9):  # plane pixels = panel pixels, shifted
        values = _translate(image, start, (r1 - r0, c1 - c0))
    else:
        values = ndimage.affine_transform(
            image, matrix, offset=start, output_shape=(r1 - r0, c1 - c0), order=order, mode="nearest", output=np.float32
        )
    if abs(matrix[0, 1]) < 1e-12 and abs(matrix[1, 0]) < 1e-12:  # axis-aligned: separable weights
        v = start[0] + matrix[0, 0] * np.arange(r1 - r0)
        u = start[1] + matrix[1, 1] * np.arange(c1 - c0)
        return values, np.minimum(_ramp(v, view.dims[1])[:, None], _ramp(u, view.dims[0])[None, :])
    rows, cols = np.mgrid[0 : r1 - r0, 0 : c1 - c0].astype(float)
    v = start[0] + matrix[0, 0] * rows + matrix[0, 1] * cols
    u = start[1] + matrix[1, 0] * rows + matrix[1, 1] * cols
    return values, np.minimum(_ramp(u, view.dims[0]), _ramp(v, view.dims[1]))


def _translate(image: np.ndarray, start, shape) -> np.ndarray:
    """Bilinear samples ``image[start[0] + i, start[1] + j]`` for an output ``shape`` (edges repeated): the
    default output grid has the panel's own pitch in the plane, so each shot is only shifted."""
    out = np.asarray(image, np.float32)
    for axis in (0, 1):
        whole = int(np.floor(start[axis]))
        frac = np.float32(start[axis] - whole)
        idx = np.clip(np.arange(whole, whole + shape[axis] + 1), 0, image.shape[axis] - 1)
        taken = np.take(out, idx, axis=axis)
        lo = taken[:-1] if axis == 0 else taken[:, :-1]
        hi = taken[1:] if axis == 0 else taken[:, 1:]
        out = lo + frac * (hi - lo) if frac else np.ascontiguousarray(lo)
    return out


def _ramp(x: np.ndarray, size: int) -> np.ndarray:
    """Blending weight across a panel coordinate: 0 outside, rising over FEATHER_PX from each edge."""
    edge = np.minimum(x, size - 1 - x)
    weights = np.clip((edge + 0.5) / FEATHER_PX, 0.0, 1.0).astype(np.float32)
    weights[edge < 0] = 0.0
    return weights


def _affine(view: Geometry, plane: Plane, box, offset):
    """``(matrix, offset)`` with panel (row, col) = matrix @ (box row, box col) + offset, when the map is affine."""
    if abs(abs(float(np.dot(view.normals[0], plane.normal))) - 1.0) > 1e-9:
        return None  # a tilted panel: a true perspective map
    r0, _, c0, _ = box
    rows = np.array([r0, r0 + 1.0, r0], float)
    cols = np.array([c0, c0, c0 + 1.0], float)
    u, v = panel_coordinates(view, plane.points(rows, cols, offset))
    matrix = np.array([[v[1] - v[0], v[2] - v[0]], [u[1] - u[0], u[2] - u[0]]])
    return matrix, np.array([v[0], u[0]])
