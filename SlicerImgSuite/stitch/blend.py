"""Exposure matching between shots and the blend of their overlaps: a linear feather, or multi-band (Burt and
Adelson: fine detail switches from one shot to the next over a few pixels, the broad intensity over the
whole overlap, so neither a seam line nor a doubled edge shows)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import ImgSuiteError


def match_exposure(reference, ref_weights, values, weights, where: str = "") -> tuple[float, float]:
    """Gain and offset that map ``values`` onto ``reference`` where both shots are fully inside (least squares).

    Examples
    --------
    >>> r = np.linspace(0, 1, 50).reshape(5, 10); w = np.ones_like(r)
    >>> [round(x, 6) for x in match_exposure(r, w, 2 * r + 1, w)]
    [0.5, -0.5]
    """
    both = (ref_weights >= 1.0) & (weights >= 1.0)
    if both.sum() < 16:
        both = (ref_weights > 0) & (weights > 0)
    if both.sum() < 16:
        raise ImgSuiteError(f"{where}the shots do not overlap: nothing to match exposures on")
    x, y = values[both].astype(float), reference[both].astype(float)
    design = np.stack([x, np.ones_like(x)], axis=1)
    (gain, offset), *_ = np.linalg.lstsq(design, y, rcond=None)
    if not (np.isfinite(gain) and gain > 0):
        return 1.0, float(np.median(y) - np.median(x))
    return float(gain), float(offset)


class Canvas:
    """Weighted sum of shots on the plane; :meth:`image` divides by the summed weights.

    ``blend="multiband"`` keeps each shot and joins them band by band in :meth:`image`.

    Examples
    --------
    >>> c = Canvas((4, 6), "multiband")
    >>> c.add(np.full((4, 4), 2.0, np.float32), np.ones((4, 4), np.float32), (0, 4, 0, 4))
    >>> c.add(np.full((4, 4), 2.0, np.float32), np.ones((4, 4), np.float32), (0, 4, 2, 6))
    >>> float(abs(c.image()[0] - 2.0).max()) < 1e-5
    True
    """

    def __init__(self, shape: tuple[int, int], blend: str = "linear"):
        self.total = np.zeros(shape, np.float32)
        self.weight = np.zeros(shape, np.float32)
        self.blend = blend
        self.layers: list[tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]] = []

    def add(self, values, weights, box) -> None:
        r0, r1, c0, c1 = box
        self.total[r0:r1, c0:c1] += np.multiply(values, weights, dtype=np.float32)
        self.weight[r0:r1, c0:c1] += weights
        if self.blend == "multiband":
            self.layers.append((np.asarray(values, np.float32), np.asarray(weights, np.float32), box))

    def image(self) -> tuple[np.ndarray, np.ndarray]:
        """The blended image (float32) and where any shot covers it (bool); uncovered pixels take the minimum."""
        covered = self.weight > 0
        if self.blend == "multiband" and len(self.layers) > 1:
            out = multiband(self.layers, self.total.shape)
        else:
            out = np.divide(self.total, self.weight, out=np.zeros_like(self.total), where=covered)
        if not covered.all() and covered.any():
            np.copyto(out, out.min(initial=np.inf, where=covered), where=~covered)
        return out, covered


def multiband(layers, shape, levels: int | None = None) -> np.ndarray:
    """Join shots ``(values, weights, box)`` band by band: band ``k`` (a difference of Gaussians of width
    2^k pixels) of each shot is weighted by its "winner" mask (where its feather weight is the largest)
    smoothed to the same width, within the pixels the shot covers; the last band is the low-pass rest."""
    if levels is None:  # the widest band must fit in half the narrowest overlap (rows), 2 sigma each side
        overlap = min(_shared_rows(a[2], b[2]) for a, b in zip(layers, layers[1:]))
        levels = int(np.clip(np.floor(np.log2(max(overlap, 2) / 8.0)), 1, 6))
    winner = _winners(layers, shape)
    sigmas = [0.0] + [2.0**k for k in range(1, levels + 1)]
    out = np.zeros(shape, np.float32)
    for k in range(levels + 1):
        num = np.zeros(shape, np.float32)
        den = np.zeros(shape, np.float32)
        for i, (values, weights, (r0, r1, c0, c1)) in enumerate(layers):
            inside = weights > 0
            fine = values if k == 0 else ndimage.gaussian_filter(values, sigmas[k], mode="nearest")
            band = fine if k == levels else fine - ndimage.gaussian_filter(values, sigmas[k + 1], mode="nearest")
            mask = (winner[r0:r1, c0:c1] == i).astype(np.float32)
            if k:
                mask = ndimage.gaussian_filter(mask, sigmas[k], mode="nearest")
            mask *= inside
            num[r0:r1, c0:c1] += mask * band
            den[r0:r1, c0:c1] += mask
        out += np.divide(num, den, out=np.zeros_like(num), where=den > 1e-6)
    return out


def _winners(layers, shape) -> np.ndarray:
    """Index of the shot with the largest feather weight at each pixel (-1 where none covers it)."""
    best = np.zeros(shape, np.float32)
    winner = np.full(shape, -1, np.int16)
    for i, (_, weights, (r0, r1, c0, c1)) in enumerate(layers):
        sub = winner[r0:r1, c0:c1]
        better = weights > best[r0:r1, c0:c1]
        sub[better] = i
        best[r0:r1, c0:c1] = np.where(better, weights, best[r0:r1, c0:c1])
    return winner


def _shared_rows(a, b) -> int:
    return max(min(a[1], b[1]) - max(a[0], b[0]), 0)
