"""Compiled inner loops of the surface metrics (numba): exact point-to-segment and point-to-triangle distances.

Each point is measured against its candidate segments / triangles (from a KD-tree on their centres) and the
smallest exact distance is kept. Ericson's closest-point-on-triangle region tests ("Real-Time Collision
Detection", 5.1.5).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def min_segment_distance(points, k_points, a, b, k_pieces, candidates):
    """For each 2D point, the smallest distance to its candidate segments a->b on the same slice (inf if none)."""
    n, m = candidates.shape
    out = np.empty(n)
    for i in range(n):
        best = np.inf
        px, py = points[i, 0], points[i, 1]
        for c in range(m):
            s = candidates[i, c]
            if s < 0 or k_pieces[s] != k_points[i]:
                continue
            ax, ay = a[s, 0], a[s, 1]
            dx, dy = b[s, 0] - ax, b[s, 1] - ay
            length2 = dx * dx + dy * dy
            t = 0.0
            if length2 > 0.0:
                t = ((px - ax) * dx + (py - ay) * dy) / length2
                t = min(max(t, 0.0), 1.0)
            ex, ey = ax + t * dx - px, ay + t * dy - py
            d = math.sqrt(ex * ex + ey * ey)
            if d < best:
                best = d
        out[i] = best
    return out


@numba.njit(cache=True, inline="always")
def _triangle_distance2(p, a, b, c):
    ab0, ab1, ab2 = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    ac0, ac1, ac2 = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    ap0, ap1, ap2 = p[0] - a[0], p[1] - a[1], p[2] - a[2]
    d1 = ab0 * ap0 + ab1 * ap1 + ab2 * ap2
    d2 = ac0 * ap0 + ac1 * ap1 + ac2 * ap2
    if d1 <= 0.0 and d2 <= 0.0:
        return ap0 * ap0 + ap1 * ap1 + ap2 * ap2
    bp0, bp1, bp2 = p[0] - b[0], p[1] - b[1], p[2] - b[2]
    d3 = ab0 * bp0 + ab1 * bp1 + ab2 * bp2
    d4 = ac0 * bp0 + ac1 * bp1 + ac2 * bp2
    if d3 >= 0.0 and d4 <= d3:
        return bp0 * bp0 + bp1 * bp1 + bp2 * bp2
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        v = d1 / (d1 - d3)
        q0, q1, q2 = a[0] + v * ab0, a[1] + v * ab1, a[2] + v * ab2
        return (p[0] - q0) ** 2 + (p[1] - q1) ** 2 + (p[2] - q2) ** 2
    cp0, cp1, cp2 = p[0] - c[0], p[1] - c[1], p[2] - c[2]
    d5 = ab0 * cp0 + ab1 * cp1 + ab2 * cp2
    d6 = ac0 * cp0 + ac1 * cp1 + ac2 * cp2
    if d6 >= 0.0 and d5 <= d6:
        return cp0 * cp0 + cp1 * cp1 + cp2 * cp2
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        w = d2 / (d2 - d6)
        q0, q1, q2 = a[0] + w * ac0, a[1] + w * ac1, a[2] + w * ac2
        return (p[0] - q0) ** 2 + (p[1] - q1) ** 2 + (p[2] - q2) ** 2
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        q0, q1, q2 = b[0] + w * (c[0] - b[0]), b[1] + w * (c[1] - b[1]), b[2] + w * (c[2] - b[2])
        return (p[0] - q0) ** 2 + (p[1] - q1) ** 2 + (p[2] - q2) ** 2
    denom = 1.0 / (va + vb + vc)
    v = vb * denom
    w = vc * denom
    q0 = a[0] + ab0 * v + ac0 * w
    q1 = a[1] + ab1 * v + ac1 * w
    q2 = a[2] + ab2 * v + ac2 * w
    return (p[0] - q0) ** 2 + (p[1] - q1) ** 2 + (p[2] - q2) ** 2


@numba.njit(cache=True)
def min_triangle_distance(points, vertices, faces, candidates):
    """For each 3D point, the smallest exact distance to its candidate triangles."""
    n, m = candidates.shape
    out = np.empty(n)
    for i in range(n):
        best = np.inf
        for c in range(m):
            f = candidates[i, c]
            if f < 0:
                continue
            d2 = _triangle_distance2(points[i], vertices[faces[f, 0]], vertices[faces[f, 1]], vertices[faces[f, 2]])
            if d2 < best:
                best = d2
        out[i] = math.sqrt(best)
    return out


@numba.njit(cache=True)
def splat_segment_distances(out, need, seg, seg_k, sx, sy, limit):
    """In-plane distance (mm) from needed grid points to nearby contour segments, kept as the minimum in ``out``.

    ``seg`` (n, 4): x0, y0, x1, y1 in box index units; ``seg_k``: the box slice of each; ``out`` (z, y, x) starts
    at ``limit`` (or more) and only points within ``limit`` mm of a segment of their slice are lowered.
    """
    nz, ny, nx = out.shape
    rx, ry = limit / sx, limit / sy
    for s in range(seg.shape[0]):
        k = seg_k[s]
        if k < 0 or k >= nz:
            continue
        x0, y0, x1, y1 = seg[s, 0], seg[s, 1], seg[s, 2], seg[s, 3]
        i0 = max(0, int(math.floor(min(x0, x1) - rx)))
        i1 = min(nx - 1, int(math.ceil(max(x0, x1) + rx)))
        j0 = max(0, int(math.floor(min(y0, y1) - ry)))
        j1 = min(ny - 1, int(math.ceil(max(y0, y1) + ry)))
        ax, ay = x0 * sx, y0 * sy
        dx, dy = (x1 - x0) * sx, (y1 - y0) * sy
        length2 = dx * dx + dy * dy
        for j in range(j0, j1 + 1):
            py = j * sy
            for i in range(i0, i1 + 1):
                if not need[k, j, i]:
                    continue
                px = i * sx
                t = 0.0
                if length2 > 0.0:
                    t = ((px - ax) * dx + (py - ay) * dy) / length2
                    t = min(max(t, 0.0), 1.0)
                ex, ey = ax + t * dx - px, ay + t * dy - py
                d = math.sqrt(ex * ex + ey * ey)
                if d < out[k, j, i]:
                    out[k, j, i] = d


@numba.njit(cache=True)
def min_distance_near_vertex(points, nearest_vertex, vertices, faces, ring_start, ring_faces):
    """For each point, the smallest exact distance to the triangles around its nearest vertex (its 1-ring)."""
    out = np.empty(points.shape[0])
    for i in range(points.shape[0]):
        v = nearest_vertex[i]
        best = np.inf
        for r in range(ring_start[v], ring_start[v + 1]):
            f = ring_faces[r]
            d2 = _triangle_distance2(points[i], vertices[faces[f, 0]], vertices[faces[f, 1]], vertices[faces[f, 2]])
            if d2 < best:
                best = d2
        out[i] = math.sqrt(best)
    return out


@numba.njit(cache=True)
def needed_points(inside):
    """Grid points that are corners of a cube whose eight corners are not all inside or all outside."""
    nz, ny, nx = inside.shape
    need = np.zeros(inside.shape, np.bool_)
    for k in range(nz - 1):
        for j in range(ny - 1):
            for i in range(nx - 1):
                n = 0
                for a in range(2):
                    for b in range(2):
                        for c in range(2):
                            if inside[k + a, j + b, i + c]:
                                n += 1
                if 0 < n < 8:
                    for a in range(2):
                        for b in range(2):
                            for c in range(2):
                                need[k + a, j + b, i + c] = True
    return need


@numba.njit(cache=True, inline="always")
def _cap(depth, deepest, height):
    """Value of a slice beyond the last contour above a point ``depth`` mm inside it (``deepest``: its deepest point).

    The zero level then lies at ``f`` slice above the contour, ``f = height sqrt(1 - (1 - depth/deepest)²)``: a
    half-ellipsoid dome ``height`` slices high at the deepest point, meeting the contour at its rim.
    """
    if depth <= 0.0:
        return 0.0
    u = min(max(depth / max(deepest, 1e-6), 0.0), 1.0)
    f = height * math.sqrt(max(1.0 - (1.0 - u) ** 2, 1e-12))
    return depth / max(f, 1e-6) - depth


@numba.njit(cache=True)
def fill_signed_distance(inside, need, dist, has_slice, caps, far):
    """The signed distance box of ``metrics.signed_distance`` from the in-plane distances ``dist`` (mm).

    ±far away from the surface; at needed points of slices with contours the in-plane distance (negative
    inside, at least 1e-4 in size); at needed outside points of slices without contours the end cap value
    from the deeper inside neighbour slice (``_cap``, ``caps[k]``: the cap heights of slice k toward lower and
    higher k, in slices), or far.
    """
    nz, ny, nx = inside.shape
    sdf = np.empty(inside.shape, np.float32)
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                if need[k, j, i] and has_slice[k]:
                    d = dist[k, j, i]
                    sdf[k, j, i] = -max(d, np.float32(1e-4)) if inside[k, j, i] else d
                else:
                    sdf[k, j, i] = -far if inside[k, j, i] else far
    deepest = np.zeros(nz, np.float32)
    for k in range(nz):
        low = sdf[k].min()
        deepest[k] = max(-low, np.float32(0.0))
    for k in range(nz):  # only outside points change: the inside depths read below stay as they are
        if has_slice[k]:
            continue
        for j in range(ny):
            for i in range(nx):
                if not need[k, j, i] or inside[k, j, i]:
                    continue
                mirror = 0.0
                for step in (-1, 1):
                    nb = k + step
                    if nb < 0 or nb >= nz or not inside[nb, j, i]:
                        continue
                    depth = min(-sdf[nb, j, i], far)
                    mirror = max(mirror, _cap(depth, deepest[nb], caps[nb, 1 if step < 0 else 0]))
                sdf[k, j, i] = mirror if mirror > 0 else far
    return sdf


@numba.njit(cache=True)
def vertex_rings(faces, n_vertices):
    """The faces around each vertex, in face order: ``ring_faces[ring_start[v]:ring_start[v + 1]]``."""
    counts = np.zeros(n_vertices + 1, np.int64)
    for f in range(faces.shape[0]):
        for c in range(3):
            counts[faces[f, c] + 1] += 1
    ring_start = np.cumsum(counts)
    fill = ring_start[:-1].copy()
    ring_faces = np.empty(faces.shape[0] * 3, np.int64)
    for f in range(faces.shape[0]):
        for c in range(3):
            v = faces[f, c]
            ring_faces[fill[v]] = f
            fill[v] += 1
    return ring_start, ring_faces


@numba.njit(cache=True)
def surface_moments(vertices, faces):
    """A third of the area of each vertex's triangles (mm²), the enclosed volume and its first moment.

    Volume and moment are sums of signed tetrahedra from the origin: centroid = moment / volume.
    """
    areas = np.zeros(vertices.shape[0])
    volume = 0.0
    moment = np.zeros(3)
    for f in range(faces.shape[0]):
        a, b, c = vertices[faces[f, 0]], vertices[faces[f, 1]], vertices[faces[f, 2]]
        u0, u1, u2 = b[0] - a[0], b[1] - a[1], b[2] - a[2]
        w0, w1, w2 = c[0] - a[0], c[1] - a[1], c[2] - a[2]
        x, y, z = u1 * w2 - u2 * w1, u2 * w0 - u0 * w2, u0 * w1 - u1 * w0
        third = 0.5 * math.sqrt(x * x + y * y + z * z) / 3.0
        for n in range(3):
            areas[faces[f, n]] += third
        vol = (a[0] * (b[1] * c[2] - b[2] * c[1]) + a[1] * (b[2] * c[0] - b[0] * c[2])
               + a[2] * (b[0] * c[1] - b[1] * c[0])) / 6.0  # fmt: skip
        volume += vol
        for n in range(3):
            moment[n] += vol * (a[n] + b[n] + c[n]) / 4.0
    return areas, volume, moment


@numba.njit(cache=True)
def nearest_vertices(points, vertices, cell):
    """Index of the nearest of ``vertices`` to each point (exact), by a search over a grid of ``cell``-sized bins.

    Bins are visited in shells of growing Chebyshev radius r around the point's bin; after shell r every vertex
    not yet seen is at least ``r * min(cell)`` away, so the search stops once the best distance is that small.
    """
    lo = np.empty(3)
    dims = np.empty(3, np.int64)
    for a in range(3):
        lo[a] = vertices[:, a].min()
        dims[a] = int((vertices[:, a].max() - lo[a]) / cell[a]) + 1
    n = vertices.shape[0]
    bins = np.empty(n, np.int64)
    for v in range(n):
        i = int((vertices[v, 0] - lo[0]) / cell[0])
        j = int((vertices[v, 1] - lo[1]) / cell[1])
        k = int((vertices[v, 2] - lo[2]) / cell[2])
        bins[v] = (k * dims[1] + j) * dims[0] + i
    start = np.zeros(dims[0] * dims[1] * dims[2] + 1, np.int64)
    for v in range(n):
        start[bins[v] + 1] += 1
    for b in range(1, start.shape[0]):
        start[b] += start[b - 1]
    fill = start[:-1].copy()
    items = np.empty(n, np.int64)
    for v in range(n):
        items[fill[bins[v]]] = v
        fill[bins[v]] += 1
    step = min(cell[0], min(cell[1], cell[2]))
    out = np.empty(points.shape[0], np.int64)
    for p in range(points.shape[0]):
        x, y, z = points[p, 0], points[p, 1], points[p, 2]
        ci = int(math.floor((x - lo[0]) / cell[0]))
        cj = int(math.floor((y - lo[1]) / cell[1]))
        ck = int(math.floor((z - lo[2]) / cell[2]))
        best, arg, r = np.inf, -1, 0
        # shells: until the best is within the radius no unseen bin can beat (and every bin was reached)
        while True:
            for k in range(max(ck - r, 0), min(ck + r, dims[2] - 1) + 1):
                for j in range(max(cj - r, 0), min(cj + r, dims[1] - 1) + 1):
                    edge_kj = abs(k - ck) == r or abs(j - cj) == r
                    i = max(ci - r, 0)
                    while i <= min(ci + r, dims[0] - 1):
                        if edge_kj or abs(i - ci) == r:
                            b = (k * dims[1] + j) * dims[0] + i
                            for s in range(start[b], start[b + 1]):
                                v = items[s]
                                dx, dy, dz = vertices[v, 0] - x, vertices[v, 1] - y, vertices[v, 2] - z
                                d2 = dx * dx + dy * dy + dz * dz
                                if d2 < best:
                                    best, arg = d2, v
                            i += 1
                        else:
                            i = ci + r  # skip the shell's inside
            if arg >= 0 and math.sqrt(best) <= r * step:
                break
            if min(ci, cj, ck) - r <= 0 and ci + r >= dims[0] - 1 and cj + r >= dims[1] - 1 and ck + r >= dims[2] - 1:
                break
            r += 1
        out[p] = arg
    return out
