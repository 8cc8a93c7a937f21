"""More ``synth`` patterns of plastimatch: cylinder, donut, dose (a flat field with linear penumbrae), noise, gabor.

Each function takes the voxel centres ``xyz`` (LPS mm, shape ``(3, z, y, x)``) and returns the values and the
foreground mask (plastimatch's label, the "Foreground" structure). Used by :func:`.synthetic.synth`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ImgSuiteError

EXTRA_PATTERNS = ("cylinder", "donut", "dose", "noise", "gabor")


def _three(values, default: Sequence[float], option: str) -> np.ndarray:
    if values is None:
        return np.array(default, float)
    values = [float(v) for v in values]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ImgSuiteError(f"{option} expects 1 or 3 numbers, got {values}")
    return np.array(values)


def cylinder(xyz, fg: float, bg: float, center=None, radius=None):
    """An elliptic cylinder along z: ``((x - cx) / rx)^2 + ((y - cy) / ry)^2 <= 1`` (default centre 0, radius 50)."""
    c, r = _three(center, (0, 0, 0), "--center"), _three(radius, (50, 50, 50), "--radius")
    inside = ((xyz[0] - c[0]) / r[0]) ** 2 + ((xyz[1] - c[1]) / r[1]) ** 2 <= 1.0
    return np.where(inside, fg, bg), inside


def donut(xyz, fg: float, bg: float, center=None, radius=None, rings: int = 2):
    """Concentric tori around the z axis through ``center``: plastimatch's donut.

    In units of ``radius`` (x, y, z), the in-plane distance is cut into ``rings`` rings; counting from the outside,
    the 1st, 3rd, ... hold a torus whose tube is an ellipse half a ring wide and one radius high.
    """
    c, r = _three(center, (0, 0, 0), "--donut-center"), _three(radius, (50, 50, 20), "--donut-radius")
    if int(rings) < 1:
        raise ImgSuiteError(f"--donut-rings must be at least 1, got {rings}")
    rings = int(rings)
    p = [(xyz[d] - c[d]) / r[d] for d in range(3)]
    dist = np.sqrt(p[0] ** 2 + p[1] ** 2)
    width = 1.0 / rings
    ring = np.floor(dist / width)
    offset = (0.5 * width - np.minimum(dist - ring * width, (ring + 1) * width - dist)) / width
    inside = (ring < rings) & ((rings - ring) % 2 == 1) & (offset**2 + p[2] ** 2 < 1.0)
    return np.where(inside, fg, bg), inside


def dose(xyz, fg: float, bg: float, center=None, size=None, penumbra: float = 5.0):
    """A field: ``fg`` in a box, ``bg`` outside, linear penumbrae of ``penumbra`` mm inside the box's x and y faces.

    ``size`` is ``"x y z"`` widths centred on ``center`` or corners ``"x1 x2 y1 y2 z1 z2"`` relative to it
    (default 100 mm). Along z the field stops sharply; in the four x-y corners of the penumbra the value is the
    bilinear blend (as plastimatch). The foreground mask is the flat region.
    """
    c = _three(center, (0, 0, 0), "--dose-center")
    values = [float(v) for v in size] if size is not None else [100.0]
    if len(values) != 6:
        w = _three(values, (100, 100, 100), "--dose-size")
        values = [v for half in w / 2 for v in (-half, half)]
    if penumbra < 0 or any(values[2 * d] + 2 * penumbra > values[2 * d + 1] for d in range(2)):
        raise ImgSuiteError(f"--penumbra {penumbra:g} mm does not fit in --dose-size {values}")
    p = [xyz[d] - c[d] for d in range(3)]
    in_z = (p[2] >= values[4]) & (p[2] <= values[5])
    ramps = []  # 0 outside, 1 in the flat part, linear in between, per axis
    for d in range(2):
        lo, hi = values[2 * d], values[2 * d + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            up = np.clip((p[d] - lo) / penumbra, 0, 1) if penumbra > 0 else (p[d] >= lo).astype(float)
            down = np.clip((hi - p[d]) / penumbra, 0, 1) if penumbra > 0 else (p[d] <= hi).astype(float)
        ramps.append(np.minimum(up, down).astype(np.float32))  # float32 like plastimatch; half the memory
    values = np.where(in_z, ramps[0] * ramps[1], np.float32(0))  # the weight, then in place bg + weight (fg - bg)
    flat = in_z & (ramps[0] >= 1) & (ramps[1] >= 1)
    values *= fg - bg
    values += bg
    return values, flat


def noise(shape, mean: float = 0.0, std: float = 1.0, seed: int | None = None):
    """Gaussian noise of ``mean`` and ``std`` (plastimatch ``--noise-mean/--noise-std``); no foreground."""
    if std < 0:
        raise ImgSuiteError(f"--noise-std must not be negative, got {std:g}")
    values = np.random.default_rng(seed).normal(mean, std, shape)
    return values, np.zeros(shape, bool)


def dose_image(values: np.ndarray, fg: float, bg: float) -> np.ndarray:
    """plastimatch's test dose (``--output-dose-img``): 15 Gy where the image is more than half-way from the
    background to the foreground, 0 elsewhere (and 0 everywhere when they are equal)."""
    half = bg + 0.5 * (fg - bg)
    out = np.zeros(values.shape, np.float32)
    if fg != bg:
        np.multiply(values > half if fg > bg else values < half, np.float32(15), out=out)
    return out


def gabor_direction(k_fib=None) -> np.ndarray:
    """The unit wave vector of plastimatch's gabor: x, or point ``i`` of an ``n``-point Fibonacci spiral on the
    sphere (``k_fib = (i, n)``, plastimatch's ``--gabor-k-fib``; longitude ``i`` times the golden section of pi).

    Examples
    --------
    >>> gabor_direction().tolist(), (np.round(gabor_direction((0, 2)), 6) + 0.0).tolist()
    ([1.0, 0.0, 0.0], [0.0, 0.0, -1.0])
    """
    if k_fib is None:
        return np.array([1.0, 0.0, 0.0])
    i, n = (int(v) for v in k_fib)
    if not 0 <= i < n:
        raise ImgSuiteError(f'--gabor-k-fib expects "i n" with 0 <= i < n, got {i} {n}')
    phi = np.float32(((np.sqrt(5.0) + 1.0) / 2.0 - 1.0) * np.pi)
    longitude = np.fmod(np.float32(phi * i), np.float32(2 * np.pi))
    sin_lat = np.float32(-1.0 + 2.0 * i / n)
    cos_lat = np.cos(np.arcsin(sin_lat))
    return np.array([cos_lat * np.cos(longitude), cos_lat * np.sin(longitude), sin_lat], float)


def gabor(xyz, fg: float, bg: float, center=None, std=None, k_fib=None):
    """plastimatch's gabor: its gauss pattern (``center``, ``std``, default 0 and 100 mm) times
    ``cos(1.5 pi (x - c) . k / |std|)``, then each sign's part scaled as plastimatch does (the positive and
    negative lobes to equal sums, the larger one's root sum of squares to sqrt(2)). Foreground: gauss > 0.2."""
    c, s = _three(center, (0, 0, 0), "--gauss-center"), _three(std, (100, 100, 100), "--gauss-std")
    rel = [xyz[d] - c[d] for d in range(3)]
    f = np.exp(-0.5 * sum((rel[d] / s[d]) ** 2 for d in range(3)))
    k = gabor_direction(k_fib)
    values = ((1 - f) * bg + f * fg) * np.cos(1.5 * np.pi * sum(rel[d] * k[d] for d in range(3)) / np.sqrt((s * s).sum()))
    return _gabor_normalised(values), f > 0.2


def _gabor_normalised(values: np.ndarray) -> np.ndarray:
    low, high = values < 0, values > 0
    sum_low, sum_high = values[low].sum(), values[high].sum()
    rss_low, rss_high = np.sqrt(0.5) * np.sqrt((values[low] ** 2).sum()), np.sqrt(0.5) * np.sqrt((values[high] ** 2).sum())
    if rss_low <= 1e-10 or rss_high <= 1e-10:
        return values
    if rss_low < rss_high:
        rss_low = rss_high * -sum_low / sum_high
    else:
        rss_high = rss_low * -sum_high / sum_low
    return np.where(low, values / rss_low, np.where(high, values / rss_high, values))
