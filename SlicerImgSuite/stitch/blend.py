"""Exposure matching between shots and the feathered blend of their overlaps."""

from __future__ import annotations

import numpy as np

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
    """Weighted sum of shots on the plane; :meth:`image` divides by the summed weights."""

    def __init__(self, shape: tuple[int, int]):
        self.total = np.zeros(shape, np.float32)
        self.weight = np.zeros(shape, np.float32)

    def add(self, values, weights, box) -> None:
        r0, r1, c0, c1 = box
        self.total[r0:r1, c0:c1] += np.multiply(values, weights, dtype=np.float32)
        self.weight[r0:r1, c0:c1] += weights

    def image(self) -> tuple[np.ndarray, np.ndarray]:
        """The blended image (float32) and where any shot covers it (bool); uncovered pixels take the minimum."""
        covered = self.weight > 0
        out = np.divide(self.total, self.weight, out=np.zeros_like(self.total), where=covered)
        if not covered.all() and covered.any():
            np.copyto(out, out.min(initial=np.inf, where=covered), where=~covered)
        return out, covered
