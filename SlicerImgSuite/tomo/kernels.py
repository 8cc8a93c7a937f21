"""The two hot loops, compiled with numba: Joseph forward projection and voxel-driven back-projection.

Forward: one view per call, parallel over panel rows; samples outside the volume read zero without a
padded copy of the volume. Back: a batch of views per call (one pass over the volume), parallel over
volume rows; the panels carry a one-pixel zero border. Compiled on first use and cached on disk
(``cache=True``: next to this file, or in the user's cache folder when the package is read-only).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _value(planes, t, c, b, table):
    """A voxel value; through ``table`` (indexed by the value's 16 bits) when the table is not empty."""
    if table.shape[0]:
        return table[np.uint16(planes[t, c, b])]
    return planes[t, c, b]


@numba.njit(cache=True, inline="always")
def _sample(planes, t, c, b, table):
    """Bilinear sample of plane ``t`` of ``planes`` at float index (``c``, ``b``); zero outside."""
    nc, nb = planes.shape[1], planes.shape[2]
    c0 = int(math.floor(c))
    b0 = int(math.floor(b))
    fc = c - c0
    fb = b - b0
    if c0 >= 0 and b0 >= 0 and c0 + 1 < nc and b0 + 1 < nb:
        p00, p01 = _value(planes, t, c0, b0, table), _value(planes, t, c0, b0 + 1, table)
        p10, p11 = _value(planes, t, c0 + 1, b0, table), _value(planes, t, c0 + 1, b0 + 1, table)
        top = p00 + fb * (p01 - p00)
        bottom = p10 + fb * (p11 - p10)
        return top + fc * (bottom - top)
    total = 0.0  # on the border: the corners inside
    for dc in (0, 1):
        for db in (0, 1):
            cc, bb = c0 + dc, b0 + db
            if 0 <= cc < nc and 0 <= bb < nb:
                total += _value(planes, t, cc, bb, table) * (fc if dc else 1.0 - fc) * (fb if db else 1.0 - fb)
    return total


@numba.njit(parallel=True, cache=True, fastmath=True)
def joseph_view(planes, table, q0, base, qu, qv, pbase, pu, pv, target):
    """Line integrals for one view into ``target`` (rows, columns).

    ``planes`` (n, c, b): the volume cut across the axis closest to the rays (a view, any strides);
    with a non-empty ``table`` its (16-bit) values are looked up there (HU to attenuation on the fly).
    A ray through panel pixel (col, row) leaves index point ``q0`` (plane, c, b order) with index
    direction ``base + col qu + row qv`` and physical direction ``pbase + col pu + row pv`` (mm).
    """
    n_planes = planes.shape[0]
    nc, nb = planes.shape[1], planes.shape[2]
    nv, nu = target.shape
    for row in numba.prange(nv):
        for col in range(nu):
            da = base[0] + col * qu[0] + row * qv[0]
            if abs(da) < 1e-12:
                target[row, col] = 0.0
                continue
            sc = (base[1] + col * qu[1] + row * qv[1]) / da  # c per unit plane step
            sb = (base[2] + col * qu[2] + row * qv[2]) / da
            c0 = q0[1] - q0[0] * sc  # c at plane 0
            b0 = q0[2] - q0[0] * sb
            # planes where the ray is inside (-1, n) in both other axes (zero border)
            lo, hi = 0.0, n_planes - 1.0
            for start, slope, size in ((c0, sc, nc), (b0, sb, nb)):
                if abs(slope) < 1e-12:
                    if start <= -1.0 or start >= size:
                        hi = -1.0
                else:
                    t1 = (-1.0 - start) / slope
                    t2 = (size - start) / slope
                    lo = max(lo, min(t1, t2))
                    hi = min(hi, max(t1, t2))
            acc = 0.0
            for t in range(max(0, int(math.ceil(lo))), int(math.floor(hi)) + 1):
                acc += _sample(planes, t, c0 + t * sc, b0 + t * sb, table)
            px = pbase[0] + col * pu[0] + row * pv[0]
            py = pbase[1] + col * pu[1] + row * pv[1]
            pz = pbase[2] + col * pu[2] + row * pv[2]
            target[row, col] = acc * math.sqrt(px * px + py * py + pz * pz) / abs(da)


@numba.njit(parallel=True, cache=True, fastmath=True)
def back_views(out, panels, lin, const, centers, weights, fdk, edge):
    """Add ``weights[n]`` x the bilinear value of ``panels[n]`` where each voxel of ``out`` (k, j, i)
    projects, for a batch of views n (the volume is read and written once per batch, not per view).

    ``panels`` have a one-pixel zero border (``numpy.pad``): samples beyond the detector read zero with
    one bounds test. Panel coordinates of voxel (i, j, k) are affine before the perspective division:
    ``(u w, v w, w) = lin[n] @ (i, j, k) + const[n]``, then ``u + centers[n, 0]``, ``v + centers[n, 1]``
    (pixels); ``fdk`` multiplies by ``1 / w^2`` (inverse square); ``edge`` gives voxels beyond the
    detector the nearest edge pixel instead of zero (FDK: the cone's corners keep their level).
    """
    nk, nj, ni = out.shape
    nviews = panels.shape[0]
    umax, vmax = panels.shape[2] - 1.0, panels.shape[1] - 1.0
    vmax32, width, one = np.float32(vmax), np.uint64(panels.shape[2]), np.uint64(1)
    axial = True
    for n in range(nviews):
        axial = axial and lin[n, 0, 2] == 0.0 and lin[n, 2, 2] == 0.0
    if axial:
        # rotation about the k axis (circular CBCT): column and depth do not change along k, so they
        # are computed once per (view, j, i) and the inner loop only moves down the panel rows; one view
        # at a time over the column of rows out[:, j] (128 KB at 256^2 x 128: stays in cache)
        for j in numba.prange(nj):
            first = np.zeros(ni, np.int64)  # flat panel index of the sample's top-left pixel, less the row
            fus = np.zeros(ni, np.float32)
            scales = np.zeros(ni, np.float32)
            vbs = np.zeros(ni, np.float32)  # float32: 1e-4 pixel here, and half the cache footprint
            vss = np.zeros(ni, np.float32)
            for n in range(nviews):
                flat = panels[n].ravel()
                for i in range(ni):
                    w = const[n, 2] + lin[n, 2, 1] * j + lin[n, 2, 0] * i
                    inv = 1.0 / w
                    u = centers[n, 0] + 1.0 + (const[n, 0] + lin[n, 0, 1] * j + lin[n, 0, 0] * i) * inv
                    if edge:
                        u = min(max(u, 1.0), umax - 1.0)
                    first[i], fus[i], scales[i] = 0, 0.0, 0.0
                    if w > 0.0 and 0.0 <= u < umax:
                        first[i] = int(u)
                        fus[i] = u - int(u)
                        scales[i] = weights[n] * inv * inv if fdk else weights[n]
                    vbs[i] = centers[n, 1] + 1.0 + (const[n, 1] + lin[n, 1, 1] * j + lin[n, 1, 0] * i) * inv
                    vss[i] = lin[n, 1, 2] * inv
                for k in range(nk):
                    row = out[k, j]
                    for i in range(ni):
                        v = vbs[i] + np.float32(k) * vss[i]
                        if edge:
                            v = min(max(v, np.float32(1.0)), vmax32 - np.float32(1.0))
                        if np.float32(0.0) <= v < vmax32:
                            v0 = int(v)
                            fv = v - np.float32(v0)
                            # unsigned index: no negative-index wrap-around test on each load
                            at = np.uint64(v0 * width + first[i])
                            fu = fus[i]
                            top = flat[at] + fu * (flat[at + one] - flat[at])
                            bottom = flat[at + width] + fu * (flat[at + width + one] - flat[at + width])
                            row[i] += (top + fv * (bottom - top)) * scales[i]
        return
    for kj in numba.prange(nk * nj):
        k = kj // nj
        j = kj - k * nj
        row = out[k, j]
        for n in range(nviews):
            panel = panels[n]
            un = const[n, 0] + lin[n, 0, 2] * k + lin[n, 0, 1] * j
            vn = const[n, 1] + lin[n, 1, 2] * k + lin[n, 1, 1] * j
            wn = const[n, 2] + lin[n, 2, 2] * k + lin[n, 2, 1] * j
            # scalars in locals: numba cannot prove that writes to `out` leave `lin` alone
            l00, l10, l20 = lin[n, 0, 0], lin[n, 1, 0], lin[n, 2, 0]
            cu1, cv1, weight = centers[n, 0] + 1.0, centers[n, 1] + 1.0, weights[n]
            for i in range(ni):
                w = wn + l20 * i
                inv = 1.0 / w
                u = cu1 + (un + l00 * i) * inv
                v = cv1 + (vn + l10 * i) * inv
                if edge:
                    u = min(max(u, 1.0), umax - 1.0)
                    v = min(max(v, 1.0), vmax - 1.0)
                if w > 0.0 and u >= 0.0 and v >= 0.0 and u < umax and v < vmax:
                    u0, v0 = int(u), int(v)
                    fu, fv = np.float32(u - u0), np.float32(v - v0)
                    top = panel[v0, u0] + fu * (panel[v0, u0 + 1] - panel[v0, u0])
                    bottom = panel[v0 + 1, u0] + fu * (panel[v0 + 1, u0 + 1] - panel[v0 + 1, u0])
                    scale = np.float32(weight * inv * inv) if fdk else np.float32(weight)
                    row[i] += (top + fv * (bottom - top)) * scale


def as_f64(*arrays):
    """Contiguous float64 copies: one compiled signature for every caller."""
    return tuple(np.ascontiguousarray(a, np.float64) for a in arrays)
