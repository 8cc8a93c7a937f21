"""Projection geometry: one model for linear sweeps, isocentric arcs and circular cone-beam CT.

Every view is a point source ``S`` and a flat detector: the point ``C`` that pixel ``image_center`` sits
on, and unit vectors ``u`` (along a row, growing column index) and ``v`` (down a column, growing row
index). All positions are LPS millimetres. A projection image is an array ``(rows, columns) = (nv, nu)``.
Each view reduces to plastimatch's 3x4 projection matrix ``P`` with ``u = ic_u + (P0.X)/(P2.X)``,
``v = ic_v + (P1.X)/(P2.X)`` and ``P2.X`` = depth from the source over the source-detector distance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..errors import ImgSuiteError, check_memory

PIXEL_PITCH_MM = (1e-4, 1e4)  # a detector pixel outside this range is damage, not a panel


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(n < 1e-12):
        raise ImgSuiteError(f"a direction vector is zero (item {int(np.flatnonzero(n.ravel() < 1e-12)[0])})")
    return v / n


@dataclass
class Geometry:
    """A set of cone-beam views.

    Parameters
    ----------
    sources, centers, u_axes, v_axes : (n, 3) arrays
        Source position, detector point at ``image_center``, detector row and column directions (LPS).
    pixel_size : (du, dv)
        Detector pixel pitch in mm.
    dims : (nu, nv)
        Detector columns and rows.
    image_center : (n, 2) array, optional
        Pixel coordinates (column, row) of ``centers``; the middle of the panel by default.

    Examples
    --------
    >>> g = circular(2, sad=1000, sid=1500, dims=(16, 24), pixel_size=(12.5, 12.5), angle_step=90)
    >>> np.round(g.matrix(0)[2], 6).tolist()
    [-0.000667, 0.0, 0.0, 0.666667]
    """

    sources: np.ndarray
    centers: np.ndarray
    u_axes: np.ndarray
    v_axes: np.ndarray
    pixel_size: tuple[float, float]
    dims: tuple[int, int]
    image_center: np.ndarray | None = None

    def __post_init__(self):
        self.sources = np.atleast_2d(np.asarray(self.sources, float))
        n = len(self.sources)
        self.centers = np.broadcast_to(np.asarray(self.centers, float), (n, 3)).copy()
        self.u_axes = _unit(np.broadcast_to(np.asarray(self.u_axes, float), (n, 3)))
        self.v_axes = _unit(np.broadcast_to(np.asarray(self.v_axes, float), (n, 3)))
        self.pixel_size = (float(self.pixel_size[0]), float(self.pixel_size[1]))
        self.dims = (int(self.dims[0]), int(self.dims[1]))
        if self.image_center is None:
            self.image_center = [(self.dims[0] - 1) / 2.0, (self.dims[1] - 1) / 2.0]
        self.image_center = np.broadcast_to(np.asarray(self.image_center, float), (n, 2)).copy()
        if not (np.isfinite(self.pixel_size).all() and min(self.pixel_size) > 0) or min(self.dims) < 1:
            raise ImgSuiteError(f"detector needs positive pixel size and dims, got {self.pixel_size}, {self.dims}")
        flat = np.flatnonzero(np.linalg.norm(np.cross(self.u_axes, self.v_axes), axis=1) < 1e-6)
        if flat.size:  # no panel plane: its normal was a zero vector, refused later without the file
            raise ImgSuiteError(f"view {flat[0]}: the detector's u and v axes are parallel")
        if not all(np.isfinite(a).all() for a in (self.sources, self.centers, self.image_center)):
            raise ImgSuiteError("source, detector or principal point positions are not finite numbers (--sad, --sid?)")
        if np.any(np.linalg.norm(self.centers - self.sources, axis=1) == 0):
            raise ImgSuiteError("a source lies on its detector centre (--sad equal to --sid?)")
        check_memory(
            4 * n * self.dims[0] * self.dims[1], f"{n} views of {self.dims[0]} x {self.dims[1]} pixels (--dim)"
        )
        if not PIXEL_PITCH_MM[0] <= min(self.pixel_size) <= max(self.pixel_size) <= PIXEL_PITCH_MM[1]:
            # 1e-300 mm passed the positive check and divided by zero in the ramp filter (a traceback)
            raise ImgSuiteError(
                f"detector pixel_size {self.pixel_size} mm is outside {PIXEL_PITCH_MM} mm (--detector-size/--dim)"
            )

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def normals(self) -> np.ndarray:
        """Unit detector normals pointing from the source side to the detector, (n, 3)."""
        nrm = np.cross(self.u_axes, self.v_axes)
        side = np.sign(np.einsum("ij,ij->i", nrm, self.centers - self.sources))
        return _unit(nrm * side[:, None])

    @property
    def sid(self) -> np.ndarray:
        """Source to detector-plane distance per view (mm)."""
        return np.einsum("ij,ij->i", self.centers - self.sources, self.normals)

    def subset(self, index) -> Geometry:
        """The views ``index`` (a slice, list or boolean mask)."""
        return Geometry(
            sources=self.sources[index],
            centers=self.centers[index],
            u_axes=self.u_axes[index],
            v_axes=self.v_axes[index],
            pixel_size=self.pixel_size,
            dims=self.dims,
            image_center=self.image_center[index],
        )

    def matrix(self, i: int) -> np.ndarray:
        """plastimatch's 3x4 projection matrix of view ``i`` (see the module docstring)."""
        s, c, eu, ev = self.sources[i], self.centers[i], self.u_axes[i], self.v_axes[i]
        n = self.normals[i]
        h = float(np.dot(c - s, n))
        row_w = np.append(n / h, -np.dot(n, s) / h)
        du, dv = self.pixel_size
        row_u = np.append(eu / du, -np.dot(eu, s) / du) + np.dot(s - c, eu) / du * row_w
        row_v = np.append(ev / dv, -np.dot(ev, s) / dv) + np.dot(s - c, ev) / dv * row_w
        return np.stack([row_u, row_v, row_w])

    def pixel_positions(self, i: int, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """LPS positions of detector pixels (broadcast ``cols``, ``rows``) of view ``i``, shape (..., 3)."""
        du, dv = self.pixel_size
        cu, cv = self.image_center[i]
        cols, rows = np.broadcast_arrays(np.asarray(cols, float), np.asarray(rows, float))
        return (
            self.centers[i]
            + ((cols - cu) * du)[..., None] * self.u_axes[i]
            + ((rows - cv) * dv)[..., None] * self.v_axes[i]
        )

    def principal(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The foot of the perpendicular from the source on the detector: its position and pixel (col, row)."""
        s, c = self.sources[i], self.centers[i]
        n = self.normals[i]
        foot = s + np.dot(c - s, n) * n
        du, dv = self.pixel_size
        ic = self.image_center[i] + [np.dot(foot - c, self.u_axes[i]) / du, np.dot(foot - c, self.v_axes[i]) / dv]
        return foot, ic

    def to_dict(self) -> dict:
        return {
            "kind": "SlicerImgSuite cone-beam geometry",
            "version": 1,
            "coordinates": "LPS mm",
            "dims": list(self.dims),
            "pixel_size": list(self.pixel_size),
            "views": [
                {
                    "source": self.sources[i].tolist(),
                    "center": self.centers[i].tolist(),
                    "u": self.u_axes[i].tolist(),
                    "v": self.v_axes[i].tolist(),
                    "image_center": self.image_center[i].tolist(),
                }
                for i in range(len(self))
            ],
        }

    @classmethod
    def from_dict(cls, d: dict, path=None) -> Geometry:
        try:
            views = d["views"]
            return cls(
                sources=[v["source"] for v in views],
                centers=[v["center"] for v in views],
                u_axes=[v["u"] for v in views],
                v_axes=[v["v"] for v in views],
                pixel_size=d["pixel_size"],
                dims=d["dims"],
                image_center=[v.get("image_center", [(d["dims"][0] - 1) / 2, (d["dims"][1] - 1) / 2]) for v in views],
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ImgSuiteError(f"not a geometry description ({type(exc).__name__}: {exc})", path) from None
        except ImgSuiteError as exc:  # a value that parses but is no geometry: name the file
            raise ImgSuiteError(exc.problem, path) from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def seen_by_all(geometry: Geometry, points: np.ndarray, max_views: int = 64) -> np.ndarray:
    """Whether each LPS point (..., 3) lies between the source and the panel of every view and projects
    onto that panel (at most ``max_views`` views, evenly picked with the first and last, are tested)."""
    pts = np.asarray(points, float)
    flat = np.concatenate([pts.reshape(-1, 3), np.ones((pts.size // 3, 1))], axis=1)
    nu, nv = geometry.dims
    keep = np.ones(len(flat), bool)
    for view in np.unique(np.linspace(0, len(geometry) - 1, min(len(geometry), max_views)).round().astype(int)):
        uvw = flat @ geometry.matrix(view).T
        w = uvw[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = geometry.image_center[view][0] + uvw[:, 0] / w
            v = geometry.image_center[view][1] + uvw[:, 1] / w
        keep &= (w > 0) & (w < 1) & (u >= -0.5) & (u <= nu - 0.5) & (v >= -0.5) & (v <= nv - 0.5)
    return keep.reshape(pts.shape[:-1])


def common_region(geometry: Geometry, samples: int = 48) -> np.ndarray:
    """LPS points (m, 3) filling the region every view sees between its source and its panel: the
    middle view's cone sampled ``samples`` x ``samples`` across and ``4 samples`` deep, kept where
    :func:`seen_by_all`. Empty when the views share no region.

    Examples
    --------
    >>> g = arc_sweep(5, 40, sad=1000, sid=1200, dims=(40, 40), pixel_size=(5, 5))
    >>> box = common_region(g)
    >>> bool(np.all(box.min(axis=0) < 0) and np.all(box.max(axis=0) > 0))  # holds the isocentre
    True
    """
    mid = len(geometry) // 2
    s = geometry.sources[mid]
    nu, nv = geometry.dims
    cols, rows = np.meshgrid(np.linspace(-0.5, nu - 0.5, samples), np.linspace(-0.5, nv - 0.5, samples))
    rays = geometry.pixel_positions(mid, cols, rows).reshape(-1, 3) - s
    fractions = (np.arange(4 * samples) + 0.5) / (4 * samples)
    points = s + fractions[:, None, None] * rays[None, :, :]
    return points[seen_by_all(geometry, points)]


def from_matrix(matrix, sid: float | None = None) -> tuple:
    """Source, detector centre, u, v and pixel size from a plastimatch 3x4 matrix whose ``image_center``
    is the principal point (as plastimatch writes them): the centre is the principal point, so neither the
    image centre nor the panel size is needed."""
    p = np.asarray(matrix, float).reshape(3, 4)
    m, t = p[:, :3], p[:, 3]
    if abs(np.linalg.det(m)) < 1e-18:
        raise ImgSuiteError("projection matrix is singular")
    source = -np.linalg.solve(m, t)
    scale = 1.0 / np.linalg.norm(p[2, :3])
    h = sid if sid else scale
    p = p * (scale / h) if sid else p
    n = _unit(p[2, :3])
    if np.dot(p[2, :3], n) < 0:
        n = -n
    center = source + h * n
    pu = p[0, :3] - np.dot(p[0, :3], n) * n
    pv = p[1, :3] - np.dot(p[1, :3], n) * n
    du, dv = 1.0 / np.linalg.norm(pu), 1.0 / np.linalg.norm(pv)
    return source, center, pu * du, pv * dv, (du, dv)


def circular(
    count: int,
    sad: float = 1000.0,
    sid: float = 1500.0,
    dims=(512, 512),
    pixel_size=(0.8, 0.8),
    start_angle: float = 0.0,
    angle_step: float | None = None,
    isocenter=(0.0, 0.0, 0.0),
    vup=(0.0, 0.0, 1.0),
    normal=None,
    image_center=None,
) -> Geometry:
    """Views on a circle about the patient's superior axis, with plastimatch ``drr``'s angle convention.

    Angle 0 puts the source at ``isocenter + sad * (1, 0, 0)`` (patient left); positive angles turn it to
    anterior (``-y``). ``normal`` (isocenter-to-source direction) replaces the angles for a single view.
    """
    if count < 1:
        raise ImgSuiteError(f"a circular geometry needs at least 1 view (--num-angles), got {count}")
    if angle_step is None:
        angle_step = 360.0 / max(count, 1)
    iso = np.asarray(isocenter, float)
    if normal is not None and not np.linalg.norm(normal) > 1e-12:
        raise ImgSuiteError(f"--nrm must not be a zero vector, got {list(normal)}")
    if not np.linalg.norm(vup) > 1e-12:
        raise ImgSuiteError(f"--vup must not be a zero vector, got {list(vup)}")
    if normal is not None:
        to_source = _unit(np.broadcast_to(np.asarray(normal, float), (count, 3)))
    else:
        a = np.radians(start_angle + angle_step * np.arange(count))
        to_source = np.stack([np.cos(a), -np.sin(a), np.zeros_like(a)], axis=1)
    up = _unit(vup)
    v = -(up - np.outer(to_source @ up, np.ones(3)) * to_source)
    if np.any(np.linalg.norm(v, axis=1) < 1e-9):
        raise ImgSuiteError(f"--vup {list(vup)} is parallel to a view's source direction (--nrm or the gantry angle)")
    v = _unit(v)
    u = np.cross(v, -to_source)
    sources = iso + sad * to_source
    centers = iso - (sid - sad) * to_source
    return Geometry(
        sources=sources,
        centers=centers,
        u_axes=u,
        v_axes=v,
        pixel_size=pixel_size,
        dims=dims,
        image_center=image_center,
    )


def _check_sweep(views: int, sweep_angle: float, most: float) -> None:
    """At least one view, and a sweep angle below ``most`` degrees (180 for a linear sweep, whose tube reaches
    infinity there; 360 for an arc)."""
    if views < 1:
        raise ImgSuiteError(f"a sweep needs at least 1 view (--views), got {views}")
    if not (np.isfinite(sweep_angle) and abs(sweep_angle) < most):
        raise ImgSuiteError(f"--sweep-angle must be below {most:g} degrees, got {sweep_angle:g}")


def linear_sweep(
    views: int,
    sweep_angle: float,
    sid: float = 1800.0,
    dims=(400, 288),
    pixel_size=(0.8, 0.8),
    detector_center=(0.0, 0.0, 0.0),
    u_axis=(1.0, 0.0, 0.0),
    v_axis=(0.0, 0.0, -1.0),
    sweep_axis=None,
) -> Geometry:
    """A tube moving on a line parallel to a static detector (clinical "volume DR").

    The tube travels along ``sweep_axis`` (the detector's ``v`` by default, head-foot for a coronal panel)
    at distance ``sid`` from the detector plane; the central ray of view k makes the angle
    ``linspace(-sweep_angle/2, +sweep_angle/2, views)[k]`` with the detector normal at ``detector_center``.
    The default panel is coronal with the source anterior (``-y``).

    Examples
    --------
    >>> g = linear_sweep(3, 40, sid=1000, dims=(4, 4), pixel_size=(1, 1))
    >>> np.round(g.sources[:, 2], 1).tolist()
    [-364.0, 0.0, 364.0]
    """
    _check_sweep(views, sweep_angle, 180.0)
    u, v = _unit(u_axis), _unit(v_axis)
    n = np.cross(u, v)  # from source to detector
    axis = v if sweep_axis is None else _unit(sweep_axis)
    half = np.linspace(-sweep_angle / 2.0, sweep_angle / 2.0, views) if views > 1 else np.zeros(1)
    c = np.asarray(detector_center, float)
    sources = c - sid * n + np.outer(-sid * np.tan(np.radians(half)), axis)
    return Geometry(sources, c, u, v, pixel_size, dims)


def arc_sweep(
    views: int,
    sweep_angle: float,
    sad: float = 1000.0,
    sid: float = 1500.0,
    dims=(400, 288),
    pixel_size=(0.8, 0.8),
    isocenter=(0.0, 0.0, 0.0),
    start_direction=(0.0, -1.0, 0.0),
    rotation_axis=(1.0, 0.0, 0.0),
) -> Geometry:
    """An isocentric arc: source and detector turn together about ``rotation_axis`` through ``isocenter``,
    ``sweep_angle`` degrees in all, centred on ``start_direction`` (isocenter-to-source, anterior by default)."""
    d0, ax = _unit(start_direction), _unit(rotation_axis)
    iso = np.asarray(isocenter, float)
    _check_sweep(views, sweep_angle, 360.01)
    angles = np.radians(np.linspace(-sweep_angle / 2.0, sweep_angle / 2.0, views) if views > 1 else np.zeros(1))
    to_source = np.array(
        [d0 * np.cos(a) + np.cross(ax, d0) * np.sin(a) + ax * np.dot(ax, d0) * (1 - np.cos(a)) for a in angles]
    )
    # columns run along the rotation axis, rows across it
    v = _unit(np.cross(ax, to_source))
    u = np.cross(v, -to_source)
    return Geometry(iso + sad * to_source, iso - (sid - sad) * to_source, u, v, pixel_size, dims)


def subwindow(geometry: Geometry, c1: int, c2: int, r1: int, r2: int) -> Geometry:
    """Columns ``c1..c2`` and rows ``r1..r2`` (inclusive, clipped to the panel) of every view, as
    ``plastimatch drr -w "c1 c2 r1 r2"`` (its help says "r1 r2 c1 c2", but the first pair indexes the
    first ``-r`` number, the columns). The rays of the kept pixels do not move.

    Examples
    --------
    >>> g = subwindow(circular(1, dims=(8, 8), pixel_size=(1, 1)), 6, 20, -3, 2)
    >>> g.dims, g.image_center[0].tolist()
    ((2, 3), [-2.5, 3.5])
    """
    nu, nv = geometry.dims
    c1, c2, r1, r2 = max(0, c1), min(c2, nu - 1), max(0, r1), min(r2, nv - 1)
    if c2 < c1 or r2 < r1:
        raise ImgSuiteError(f"subwindow holds no pixel of the {nu}x{nv} panel: columns {c1}..{c2}, rows {r1}..{r2}")
    return Geometry(
        sources=geometry.sources,
        centers=geometry.centers,
        u_axes=geometry.u_axes,
        v_axes=geometry.v_axes,
        pixel_size=geometry.pixel_size,
        dims=(c2 - c1 + 1, r2 - r1 + 1),
        image_center=geometry.image_center - [c1, r1],
    )
