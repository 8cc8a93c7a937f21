"""Per-structure agreement metrics on contours and surfaces at sub-voxel precision.

A structure is a :class:`Shape`: its voxel mask on the comparison grid (what Dice, Jaccard and volumes
count, as plastimatch and SlicerRT do) plus its planar contours per slice, in grid index coordinates (the
RTSTRUCT's own polygons, or the marching-squares outline of a mask at level 0.5).

The surface is never made of voxel faces. Each slice holding contours gets its exact in-plane signed
distance to them (negative inside); between slices that distance is interpolated linearly (shape-based
interpolation: the surface lofts from one contour to the next, branching included), and the zero level is
triangulated by marching cubes. **End caps**: beyond its last (and before its first) contour a structure
closes as a dome ``h`` high over the last contour (a half-ellipsoid: its height above a point is
``h sqrt(1 - (1 - depth/deepest)²)``, ``depth`` the point's in-plane distance inside the contour, ``deepest``
the largest on that slice, at most ten pixels). ``h`` is what the slices imply (:func:`cap_height`): the pole
of the sphere whose sections at the last two contour planes have those contours' areas (even-odd), at most one
slice (the next plane holds no contour); a one-slice stack reaches half a slice each way. A small last contour
after a large one is thus an end just beyond it, a large one after a smaller or equal one an end up to a slice
away, and both structures of a pair are capped by the same rule. Exact for spheres at any slice phase; the
linear loft between the last two contours still cuts inside a round end, so at 3 mm slices surface Dice of
spheres 1.5 mm apart is 1 at some phases and down to 0.92 at others (docs/review.md has the sweep).

Surface distances are from each surface vertex (weighted by a third of the area of its triangles) to the
other triangulated surface, exactly (closest point on a triangle). From them:

- ``hd``: the largest distance either way (symmetric Hausdorff, mm);
- ``hd95``: the larger of the two directed area-weighted 95th percentiles (as DeepMind's surface-distance
  package; plastimatch's "percent Hausdorff" averages the two instead);
- ``msd``: area-weighted mean over both surfaces together (mean symmetric surface distance);
- ``surface_dice``: area of both surfaces within the tolerance of the other, over both areas (Nikolov 2021);
- ``apl``: added path length (Vaassen 2020) as the issue defines it: the length of the test's contours, per
  slice, farther than the tolerance from the reference contours of the same slice, summed (mm);
- ``centroid_shift_mm``: distance between the centroids of the two closed surfaces (volume centroids).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PIECE_MM = 1.0  # contour edges are split into pieces this long (at most) for the distance queries
NEAREST = 4  # candidate pieces / triangles per exact distance query
BIN_MM, MAX_BINS = 3.0, 4_000_000  # nearest-vertex search: bin side (mm) and most bins
METRICS = (
    "dice", "jaccard", "volume_ref_cc", "volume_test_cc", "volume_diff_pct", "hd", "hd95", "msd", "surface_dice",
    "apl", "centroid_shift_mm",
)  # fmt: skip


@dataclass
class Shape:
    """One structure on the comparison grid.

    ``mask`` (z, y, x bool) sits at ``offset`` (i, j, k); ``slices`` maps a grid slice k to its closed
    contours, each an (N, 2) array of (i, j) grid indices (the contour a slice takes, even-odd).
    """

    name: str
    offset: tuple[int, int, int]
    mask: np.ndarray
    slices: dict[int, list[np.ndarray]] = field(default_factory=dict)
    color: tuple[int, int, int] = (255, 0, 0)
    lost: object = None  # what an RTSTRUCT ROI's contours lost to the grid (rasterize.warn_losses says it)

    @property
    def empty(self) -> bool:
        return not self.mask.any()

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """First and one-past-last (i, j, k) of the mask's true voxels (empty box when empty)."""
        if self.empty:
            return np.zeros(3, int), np.zeros(3, int)
        lo, hi = [], []
        for axis in (2, 1, 0):  # numpy z, y, x -> i, j, k order reversed below
            other = tuple(a for a in range(3) if a != axis)
            hit = np.nonzero(self.mask.any(axis=other))[0]
            lo.append(hit[0])
            hi.append(hit[-1] + 1)
        return np.asarray(self.offset) + lo, np.asarray(self.offset) + hi


@dataclass
class Surface:
    """A triangulated closed surface in millimetres of the grid's axes (index x spacing): ``vertices`` (N, 3) xyz."""

    vertices: np.ndarray
    faces: np.ndarray

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """A third of the area of each vertex's triangles (its share of the surface, mm²) and the centroid of the
        enclosed volume (signed tetrahedra from the origin)."""
        from .kernels import surface_moments

        areas, volume, moment = surface_moments(self.vertices, self.faces)
        if abs(volume) < 1e-12:
            return areas, self.vertices[self.faces].reshape(-1, 3).mean(axis=0)
        return areas, moment / volume

    def vertex_areas(self) -> np.ndarray:
        """A third of the area of each vertex's triangles (the vertex's share of the surface, mm²)."""
        return self.moments()[0]

    def centroid(self) -> np.ndarray:
        """Centroid of the enclosed volume (signed tetrahedra from the origin)."""
        return self.moments()[1]


def union_box(shapes, margin: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The (i, j, k) box holding every non-empty shape, grown by ``margin`` voxels each way."""
    boxes = [s.box() for s in shapes if not s.empty]
    lo = np.min([b[0] for b in boxes], axis=0) - margin
    hi = np.max([b[1] for b in boxes], axis=0) + margin
    return lo, hi


def inside_on_box(shape: Shape, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The shape's mask on the box ``[lo, hi)`` (z, y, x bool)."""
    out = np.zeros(tuple((hi - lo)[::-1]), bool)
    src_lo = np.maximum(np.asarray(shape.offset), lo)
    src_hi = np.minimum(np.asarray(shape.offset) + shape.mask.shape[::-1], hi)
    if np.any(src_hi <= src_lo):
        return out
    a = src_lo - shape.offset
    b = src_lo - lo
    n = src_hi - src_lo
    out[b[2] : b[2] + n[2], b[1] : b[1] + n[1], b[0] : b[0] + n[0]] = shape.mask[
        a[2] : a[2] + n[2], a[1] : a[1] + n[1], a[0] : a[0] + n[0]
    ]
    return out


def contour_edges(slices: dict[int, list[np.ndarray]], lo: int = -(2**62), hi: int = 2**62):
    """Every polygon edge of the slices ``lo <= k < hi``: start and end points (i, j) and the slice k of each."""
    polygons, ks = [], []
    for k, found in slices.items():
        if lo <= k < hi:
            polygons += [np.asarray(p, float)[:, :2] for p in found]
            ks += [k] * len(found)
    if not polygons:
        return np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, np.int64)
    sizes = np.array([len(p) for p in polygons])
    start = np.concatenate(polygons)
    after = np.arange(1, len(start) + 1)
    after[np.cumsum(sizes) - 1] = np.cumsum(sizes) - sizes  # the last point of a polygon closes it
    return start, start[after], np.repeat(np.asarray(ks, np.int64), sizes)


def contour_pieces(
    slices: dict[int, list[np.ndarray]], spacing: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split every contour edge into pieces of at most PIECE_MM: (start, end) in mm (x, y) and the slice k of each."""
    p, q, k = contour_edges(slices)
    if not len(k):
        return np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, int)
    p, q = p * spacing[:2], q * spacing[:2]
    n = np.maximum(1, np.ceil(np.linalg.norm(q - p, axis=1) / PIECE_MM)).astype(int)
    edge = np.repeat(np.arange(len(p)), n)
    t0 = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n, n)
    t1 = t0 + 1.0 / np.repeat(n, n)
    d = q[edge] - p[edge]
    return p[edge] + t0[:, None] * d, p[edge] + t1[:, None] * d, k[edge]


class PlanarDistance:
    """Exact in-plane distance from points to the contours of the same slice (KD-tree on contour pieces)."""

    def __init__(self, slices: dict[int, list[np.ndarray]], spacing: np.ndarray):
        from scipy.spatial import cKDTree

        self.a, self.b, self.k = contour_pieces(slices, spacing)
        self.k = self.k.astype(np.int64)
        self.far = 1e6  # slices are kept apart by this much in the tree
        centres = 0.5 * (self.a + self.b)
        self.tree = cKDTree(np.column_stack([centres, self.k * self.far])) if len(self.k) else None

    def __call__(self, xy_mm: np.ndarray, k: np.ndarray, limit: float = np.inf) -> np.ndarray:
        """Distance (mm) from each (x, y) mm point on slice ``k`` to that slice's contours.

        inf when the slice has none, or when the distance exceeds ``limit`` (a bound makes far points cheap).
        """
        from .kernels import min_segment_distance

        if self.tree is None or not len(k):
            return np.full(len(k), np.inf)
        k = np.asarray(k, np.int64)
        nearest = min(NEAREST, len(self.k))
        query = np.column_stack([xy_mm, k * self.far])
        _, idx = self.tree.query(query, k=nearest, distance_upper_bound=limit, workers=-1)
        idx = np.asarray(idx, np.int64).reshape(len(k), nearest)
        idx[idx >= len(self.k)] = -1
        return min_segment_distance(np.ascontiguousarray(xy_mm, float), k, self.a, self.b, self.k, idx)


def signed_distance(shape: Shape, lo: np.ndarray, hi: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shape's signed distance (mm, negative inside) on the box ``[lo, hi)``, exact where the surface passes.

    In-plane distances to the slice's contours where a cube of the box changes sign, up to ``far`` (ten pixels,
    at least two slices);
    elsewhere only the sign matters (±far). A slice without contours beyond one with them closes it as a dome
    (``kernels._cap``). Returns the distances and the grid points where the surface passes (corners of a cube
    whose corners are not all inside or all outside).
    """
    from .kernels import fill_signed_distance, needed_points, splat_segment_distances

    inside = inside_on_box(shape, lo, hi)
    far = max(10.0 * float(spacing[:2].max()), 2.0 * float(spacing[2]))
    need = needed_points(inside)
    dist = np.full(inside.shape, far, np.float32)
    seg, seg_k = _box_segments(shape.slices, lo, hi)
    splat_segment_distances(dist, need, seg=seg, seg_k=seg_k, sx=float(spacing[0]), sy=float(spacing[1]), limit=far)
    has = np.isin(np.arange(lo[2], hi[2]), np.fromiter(shape.slices.keys(), int, len(shape.slices)))
    caps = cap_fractions(shape.slices, lo, hi, spacing)
    # inside points on a contour stay negative (the sign is the mask's)
    return fill_signed_distance(inside, need, dist, has, caps, np.float32(far)), need


def slice_radius(polygons: list[np.ndarray], spacing: np.ndarray) -> float:
    """Radius (mm) of the disc whose area the slice's polygons enclose (even-odd: a polygon inside an odd number
    of the others is a hole)."""
    areas = []
    for n, p in enumerate(polygons):
        x, y = p[:, 0] * spacing[0], p[:, 1] * spacing[1]
        area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        depth = sum(_contains(q, p[0]) for m, q in enumerate(polygons) if m != n)
        areas.append(-area if depth % 2 else area)
    return math.sqrt(max(sum(areas), 0.0) / math.pi)


def _contains(polygon: np.ndarray, point: np.ndarray) -> bool:
    """Whether ``point`` lies inside ``polygon`` (crossing number)."""
    xi, yi = polygon[:, 0], polygon[:, 1]
    xj, yj = np.roll(xi, 1), np.roll(yi, 1)
    crosses = (yi > point[1]) != (yj > point[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = xi + (point[1] - yi) * (xj - xi) / (yj - yi)
    return bool(np.count_nonzero(crosses & (point[0] < x_cross)) % 2)


def cap_height(inner_mm: float, last_mm: float, slice_mm: float) -> float:
    """How far (mm) a structure reaches beyond its last contour: the pole of the sphere through its last two.

    ``inner_mm`` and ``last_mm`` are the radii (:func:`slice_radius`) of the contours one slice in from the end
    and at the end. The sphere whose sections at those two planes have those radii has its pole ``h`` beyond the
    last plane; ``h`` is at most one slice (the next plane holds no contour).

    Examples
    --------
    >>> round(cap_height(12.88, 8.07, 3.0), 2)  # a 20 mm sphere, last contours 15.3 and 18.3 mm from its centre
    1.7
    >>> cap_height(30.0, 30.0, 3.0)  # a cylinder: the end is a whole slice away
    3.0
    """
    centre = -0.5 * slice_mm - (inner_mm**2 - last_mm**2) / (2.0 * slice_mm)  # from the last plane, outward +
    return float(min(centre + math.hypot(last_mm, centre), slice_mm))


def cap_fractions(slices: dict[int, list[np.ndarray]], lo: np.ndarray, hi: np.ndarray, spacing: np.ndarray):
    """Per box slice (z, 2): the cap height beyond that slice's contours toward lower / higher k, in slices.

    Only ends have caps (the next slice holds no contours); a one-slice stack reaches half a slice each way.
    """
    out = np.zeros((int(hi[2] - lo[2]), 2), np.float32)
    radius: dict[int, float] = {}

    def r(k: int) -> float:
        if k not in radius:
            radius[k] = slice_radius(slices[k], spacing)
        return radius[k]

    for k in slices:
        if not lo[2] <= k < hi[2]:
            continue
        for side, step in ((0, -1), (1, 1)):
            if k + step in slices:
                continue
            inner = k - step
            h = cap_height(r(inner), r(k), float(spacing[2])) if inner in slices else 0.5 * float(spacing[2])
            out[k - lo[2], side] = min(max(h / float(spacing[2]), 1e-3), 0.999)
    return out


def _box_segments(slices: dict[int, list[np.ndarray]], lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every contour edge of the slices inside the box: (x0, y0, x1, y1) in box index units, and its box slice."""
    p, q, k = contour_edges(slices, lo[2], hi[2])
    if not len(k):
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    return np.column_stack([p - lo[:2], q - lo[:2]]), k - lo[2]


def surface_of(shape: Shape, lo: np.ndarray, hi: np.ndarray, spacing: np.ndarray) -> Surface:
    """The shape's closed surface (marching cubes of :func:`signed_distance` at 0), in mm of the grid's axes."""
    from skimage.measure import marching_cubes

    spacing = np.asarray(spacing, float)
    if shape.empty:
        return Surface(np.zeros((0, 3)), np.zeros((0, 3), int))
    sdf, need = signed_distance(shape, lo, hi, spacing)
    verts, faces, _, _ = marching_cubes(sdf, 0.0, spacing=tuple(spacing[::-1]), allow_degenerate=False, mask=need)
    verts = verts[:, ::-1] + lo * spacing  # (z, y, x) -> (x, y, z), box -> grid
    return Surface(np.ascontiguousarray(verts), faces[:, ::-1].astype(np.int64))  # keep outward orientation


def distances_to_surface(points: np.ndarray, surface: Surface) -> np.ndarray:
    """Exact distance (mm) from points to a triangulated surface.

    The closest point is searched on the triangles around the surface vertex nearest to each point (its
    1-ring), which holds it on a marching-cubes mesh except where a point faces a sliver's long edge. The
    nearest vertex is found exactly over a grid of bins (cubes of ``BIN_MM``, larger for a large surface).
    """
    from .kernels import min_distance_near_vertex, nearest_vertices, vertex_rings

    if not len(surface.faces):
        return np.full(len(points), np.inf)
    extent = np.ptp(surface.vertices, axis=0) + BIN_MM
    side = max(BIN_MM, float(np.prod(extent) / MAX_BINS) ** (1 / 3))
    nearest = nearest_vertices(np.ascontiguousarray(points, float), surface.vertices, np.full(3, side))
    ring_start, ring_faces = vertex_rings(surface.faces, len(surface.vertices))
    return min_distance_near_vertex(
        np.ascontiguousarray(points, float), nearest, surface.vertices, surface.faces, ring_start, ring_faces
    )


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` (0-100) percentile of ``values`` weighted by ``weights`` (lower value at the step)."""
    if not len(values):
        return math.nan
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][min(np.searchsorted(cum, q / 100.0 * cum[-1]), len(values) - 1)])


def surface_metrics(ref: Surface, test: Surface, tolerance_mm: float = 2.0) -> dict:
    """``hd``, ``hd95``, ``msd``, ``surface_dice`` and ``centroid_shift_mm`` between two closed surfaces.

    Examples
    --------
    >>> cube = Surface(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float),
    ...                np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))
    >>> surface_metrics(cube, cube)["hd"]
    0.0
    """
    if not len(ref.faces) or not len(test.faces):
        return dict.fromkeys(("hd", "hd95", "msd", "surface_dice", "centroid_shift_mm"), math.nan)
    d_rt = distances_to_surface(ref.vertices, test)
    d_tr = distances_to_surface(test.vertices, ref)
    (w_r, c_r), (w_t, c_t) = ref.moments(), test.moments()
    total = w_r.sum() + w_t.sum()
    return {
        "hd": float(max(d_rt.max(), d_tr.max())),
        "hd95": max(weighted_percentile(d_rt, w_r, 95), weighted_percentile(d_tr, w_t, 95)),
        "msd": float(((d_rt * w_r).sum() + (d_tr * w_t).sum()) / total),
        "surface_dice": float((w_r[d_rt <= tolerance_mm].sum() + w_t[d_tr <= tolerance_mm].sum()) / total),
        "centroid_shift_mm": float(np.linalg.norm(c_r - c_t)),
    }


def added_path_length(ref: Shape, test: Shape, spacing: np.ndarray, tolerance_mm: float = 2.0) -> float:
    """Length (mm) of the test's contours farther than ``tolerance_mm`` from the reference's, slice by slice."""
    spacing = np.asarray(spacing, float)
    a, b, ks = contour_pieces(test.slices, spacing)
    if not len(ks):
        return 0.0
    mid = 0.5 * (a + b)
    # only "farther than the tolerance" matters: candidate pieces beyond it plus half a piece cannot be nearer
    d = PlanarDistance(ref.slices, spacing)(mid, ks, limit=tolerance_mm + 0.5 * PIECE_MM)
    return float(np.linalg.norm(b - a, axis=1)[d > tolerance_mm].sum())


def overlap_metrics(ref: Shape, test: Shape, spacing: np.ndarray) -> dict:
    """Dice, Jaccard and volumes (cc) counted on the voxel masks (plastimatch's and SlicerRT's definition)."""
    voxel_cc = float(np.prod(spacing)) / 1000.0
    n_ref, n_test = int(ref.mask.sum()), int(test.mask.sum())
    both = 0
    if n_ref and n_test:
        lo, hi = union_box([ref, test], margin=0)
        both = int(np.count_nonzero(inside_on_box(ref, lo, hi) & inside_on_box(test, lo, hi)))
    union = n_ref + n_test - both
    v_ref, v_test = n_ref * voxel_cc, n_test * voxel_cc
    return {
        "dice": 2.0 * both / (n_ref + n_test) if n_ref + n_test else math.nan,
        "jaccard": both / union if union else math.nan,
        "volume_ref_cc": v_ref,
        "volume_test_cc": v_test,
        "volume_diff_pct": 100.0 * (v_test - v_ref) / v_ref if v_ref else math.nan,
    }


def structure_metrics(ref: Shape, test: Shape, spacing, tolerance_mm: float = 2.0) -> dict:
    """Every metric of :data:`METRICS` for one matched pair (shapes on the same grid).

    Examples
    --------
    >>> m = np.zeros((3, 6, 6), bool); m[1, 2:4, 2:4] = True
    >>> square = [np.array([[1.5, 1.5], [3.5, 1.5], [3.5, 3.5], [1.5, 3.5]])]
    >>> s = Shape("A", (0, 0, 0), m, {1: square})
    >>> r = structure_metrics(s, s, (1.0, 1.0, 1.0))
    >>> r["dice"], r["hd"], r["apl"]
    (1.0, 0.0, 0.0)
    """
    spacing = np.asarray(spacing, float)
    out = overlap_metrics(ref, test, spacing)
    if ref.empty or test.empty:
        out.update(dict.fromkeys(("hd", "hd95", "msd", "surface_dice", "centroid_shift_mm"), math.nan))
    else:
        lo, hi = union_box([ref, test])
        out.update(surface_metrics(surface_of(ref, lo, hi, spacing), surface_of(test, lo, hi, spacing), tolerance_mm))
    out["apl"] = added_path_length(ref, test, spacing, tolerance_mm)
    return {key: out[key] for key in METRICS}
