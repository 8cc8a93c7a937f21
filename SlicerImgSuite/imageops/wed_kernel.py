"""The water-equivalent-depth loop, compiled with numba (imported on first use, cached on disk): for every voxel,
an exact voxel walk (Amanatides & Woo) from where its ray enters the volume to its centre."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, parallel=True)
def depths(rsp, source, scaled, out):
    """``out[k, j, i]`` = sum over crossed voxels of (path length in mm) x ``rsp`` for the ray from ``source``
    (continuous index x, y, z) to voxel centre (i, j, k); ``scaled`` maps index steps to mm (3 x 3)."""
    nz, ny, nx = rsp.shape
    size = np.array([nx, ny, nz], np.float64)
    for k in numba.prange(nz):
        d = np.empty(3)
        vox = np.empty(3, np.int64)
        t_max = np.empty(3)
        t_delta = np.empty(3)
        step = np.empty(3, np.int64)
        for j in range(ny):
            for i in range(nx):
                d[0], d[1], d[2] = i - source[0], j - source[1], k - source[2]
                length = math.sqrt(
                    (scaled[0, 0] * d[0] + scaled[0, 1] * d[1] + scaled[0, 2] * d[2]) ** 2
                    + (scaled[1, 0] * d[0] + scaled[1, 1] * d[1] + scaled[1, 2] * d[2]) ** 2
                    + (scaled[2, 0] * d[0] + scaled[2, 1] * d[1] + scaled[2, 2] * d[2]) ** 2
                )
                t = 0.0
                for a in range(3):  # entry into the box [-0.5, n - 0.5] (slab method)
                    if d[a] != 0.0:
                        t1 = (-0.5 - source[a]) / d[a]
                        t2 = (size[a] - 0.5 - source[a]) / d[a]
                        t = max(t, min(t1, t2))
                t = min(t, 1.0)
                for a in range(3):
                    p = source[a] + t * d[a]
                    vox[a] = min(max(int(math.floor(p + 0.5)), 0), int(size[a]) - 1)
                    if d[a] > 0:
                        step[a] = 1
                        t_max[a] = (vox[a] + 0.5 - source[a]) / d[a]
                        t_delta[a] = 1.0 / d[a]
                    elif d[a] < 0:
                        step[a] = -1
                        t_max[a] = (vox[a] - 0.5 - source[a]) / d[a]
                        t_delta[a] = -1.0 / d[a]
                    else:
                        step[a] = 0
                        t_max[a] = np.inf
                        t_delta[a] = np.inf
                total = 0.0
                while t < 1.0:
                    a = 0
                    if t_max[1] < t_max[a]:
                        a = 1
                    if t_max[2] < t_max[a]:
                        a = 2
                    t_next = min(t_max[a], 1.0)
                    total += (t_next - t) * rsp[vox[2], vox[1], vox[0]]
                    t = t_next
                    vox[a] += step[a]
                    t_max[a] += t_delta[a]
                    if vox[a] < 0 or vox[a] >= size[a]:
                        break
                out[k, j, i] = total * length
