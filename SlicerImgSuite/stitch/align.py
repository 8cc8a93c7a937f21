"""Registration of two overlapping shots already resampled onto the measurement plane.

Both images cover the same plane pixels; ``b`` is the shot being placed, ``a`` the one already placed. The
result ``e`` (pixels, (row, column)) says where ``b`` shows ``a``'s content: ``b(x + e) = a(x)``.

- :func:`register_on_image`: a masked normalised cross-correlation map over the search window at a coarse
  scale (Padfield's FFT form, so every shift costs the same), checked for ambiguity (a second peak nearly as
  high), then Gauss–Newton refinement of the shift with a gain and offset (exposure differences) on a pyramid
  down to the full resolution (sub-pixel, cubic interpolation).
- :func:`register_on_ruler`: the graduation marks of a radiopaque ruler found in both shots (the band of
  columns with the strongest periodic signal at the stated mark spacing), matched mark to mark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from ..errors import ImgSuiteError

MIN_NCC = 0.3  # below this the overlap does not show the same structure
MIN_MARGIN = 0.01  # the best shift must beat any other peak by this much (ambiguity)
COARSE_SIZE = 48.0
SEARCH_SIGMA_MM = 4.2  # smoothing of the features the search compares (tolerates parallax between depths)
FINE_SIGMA_MM = 0.8  # smoothing of the images the sub-pixel refinement fits (gain and offset included)
LOCAL_RADIUS = 5  # whole-pixel search around the coarse peak when the coarse map is at full resolution
FINE_ITERATIONS = 15
MAX_SEAM_ERROR = 0.5  # px: refuse a seam whose expected error (2 SD: local bound and repeated searches) is larger
RESAMPLE_ABOVE = 0.15  # px (2 SD): above this local bound the seam's search is repeated on noise draws
RESAMPLE_DRAWS = 8


@dataclass
class SeamFit:
    shift: tuple[float, float]  # (rows, columns) in plane pixels: b(x + shift) = a(x)
    score: float  # normalised cross-correlation after alignment (1 = identical up to gain/offset)
    runner_up: float  # the best score of any other peak (ambiguity)
    overlap_px: int  # rows the two shots share
    method: str
    precision: float = 0.0  # expected error of the row shift (1 SD, pixels) from the overlap's structure and noise


def masked_ncc_map(a, ma, b, mb, max_shift: tuple[int, int], min_overlap: float = 0.3) -> np.ndarray:
    """NCC of ``a`` and ``b`` shifted by every (dy, dx) within ``max_shift``: array (2 my + 1, 2 mx + 1).

    Entry ``[my + dy, mx + dx]`` compares ``a(x)`` with ``b(x + (dy, dx))``, over pixels valid in both masks;
    shifts whose common area is under ``min_overlap`` of the smaller mask are ``-1``.
    """
    a, b = np.where(ma, a, 0.0), np.where(mb, b, 0.0)
    ma, mb = ma.astype(float), mb.astype(float)

    def corr(x, y):  # sum over p of x(p) y(p + s), for every s
        return signal.fftconvolve(y, x[::-1, ::-1], mode="full")

    n = corr(ma, mb)
    sa, sb = corr(a * ma, mb), corr(ma, b * mb)
    saa, sbb, sab = corr(a * a * ma, mb), corr(ma, b * b * mb), corr(a * ma, b * mb)
    with np.errstate(invalid="ignore", divide="ignore"):
        num = sab - sa * sb / n
        den = np.sqrt(np.clip(saa - sa * sa / n, 0, None) * np.clip(sbb - sb * sb / n, 0, None))
        ncc = np.where((den > 1e-9) & (n >= min_overlap * min(ma.sum(), mb.sum())), num / den, -1.0)
    cy, cx = a.shape[0] - 1, a.shape[1] - 1  # zero shift in 'full' mode
    my, mx = max_shift
    window = np.full((2 * my + 1, 2 * mx + 1), -1.0)
    ys, xs = slice(max(cy - my, 0), cy + my + 1), slice(max(cx - mx, 0), cx + mx + 1)
    part = ncc[ys, xs]
    window[
        ys.start - (cy - my) : ys.start - (cy - my) + part.shape[0],
        xs.start - (cx - mx) : xs.start - (cx - mx) + part.shape[1],
    ] = part
    return window


def _peaks(ncc: np.ndarray, exclusion: int = 3) -> tuple[tuple[int, int], float, float]:
    """The best shift, its score, and the best other local maximum farther than ``exclusion`` from it."""
    best = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    local = (ncc == ndimage.maximum_filter(ncc, size=3)) & (ncc > -1)
    yy, xx = np.nonzero(local)
    far = np.maximum(np.abs(yy - best[0]), np.abs(xx - best[1])) > exclusion
    runner = float(ncc[yy[far], xx[far]].max()) if far.any() else -1.0
    return best, float(ncc[best]), runner


def _shifted(coefficients: np.ndarray, shift) -> np.ndarray:
    """``b(x + shift)`` from ``b``'s cubic spline coefficients (prefiltered once per level)."""
    return ndimage.shift(coefficients, -np.asarray(shift, float), order=3, mode="nearest", prefilter=False)


def _moved_mask(mask: np.ndarray, shift) -> np.ndarray:
    """Where ``mask(x + shift)`` holds for both neighbouring whole-pixel shifts (a fractional shift's support)."""
    out = np.ones_like(mask)
    for dy in {int(np.floor(shift[0])), int(np.ceil(shift[0]))}:
        for dx in {int(np.floor(shift[1])), int(np.ceil(shift[1]))}:
            moved = np.zeros_like(mask)
            h, w = mask.shape
            ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
            moved[ys, xs] = mask[ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx]
            out &= moved
    return out


def _gauss_newton(a, ma, b, mb, shift, iterations: int = 6) -> tuple[np.ndarray, float, np.ndarray]:
    """Refine ``shift`` minimising |a - (g b(x + shift) + o)|² where ``a`` and the shifted ``b`` are both valid;
    returns (shift, ncc, ``b`` moved by the shift)."""
    shift = np.asarray(shift, float)
    coefficients = ndimage.spline_filter(np.asarray(b, np.float32), order=3, mode="nearest", output=np.float32)
    inner_a = ndimage.binary_erosion(ma, iterations=2)
    inner_b = ndimage.binary_erosion(mb, iterations=2)
    converged = False
    for it in range(iterations + 1):
        sel = inner_a & _moved_mask(inner_b, shift)
        bs = _shifted(coefficients, shift)
        if sel.sum() < 16:
            return shift, -1.0, bs
        av, bv = a[sel].astype(np.float64), bs[sel]
        if converged or it == iterations:
            break
        gy, gx = np.gradient(bs)
        # a ≈ g (b + gy dy + gx dx) + o, linear in (g dy, g dx, g, o): the 4 x 4 normal equations
        x = np.stack([gy[sel], gx[sel], bv]).astype(np.float64)  # (3, n)
        sums = x.sum(axis=1)
        normal = np.block([[x @ x.T, sums[:, None]], [sums[None, :], np.array([[float(av.size)]])]])
        rhs = np.append(x @ av, av.sum())
        sol = np.linalg.lstsq(normal, rhs, rcond=None)[0]
        g = sol[2] if abs(sol[2]) > 1e-12 else 1e-12
        step = np.clip(np.array([sol[0], sol[1]]) / g, -1.0, 1.0)
        shift = shift + step
        converged = np.abs(step).max() < 1e-3
    return shift, float(np.corrcoef(av, bv)[0, 1]), bs


def register_on_image(
    a,
    ma,
    b,
    mb,
    max_shift: tuple[int, int],
    where: str = "",
    min_overlap: float = 0.3,
    spacing: float = 1.0,
    max_error: float = MAX_SEAM_ERROR,
) -> SeamFit:
    """Shift of ``b`` against ``a`` (pixels of ``spacing`` mm) on the anatomy; refuses an ambiguous or empty overlap,
    and one whose expected error (2 SD, :func:`shift_precision`) exceeds ``max_error`` pixels.

    The coarse map proposes candidates (its best peak and any other within ``MIN_MARGIN``); each is refined at
    full resolution and the refined fits decide, so noise in the smoothed coarse map neither refuses a seam that
    the fine data settle nor picks a wrong peak."""
    overlap = int((ma & mb).any(axis=1).sum())
    given = (ma, mb)
    ma, mb = ndimage.binary_erosion(ma, iterations=2), ndimage.binary_erosion(mb, iterations=2)
    factor = max(1, int(min(a.shape) / COARSE_SIZE))
    sigma = SEARCH_SIGMA_MM / (spacing * factor)
    small = [band_pass(_reduce(x, factor), sigma) for x in (a, b)]
    smask = [_reduce(m.astype(np.float32), factor) > 0.99 for m in (ma, mb)]
    my, mx = (int(np.ceil(s / factor)) for s in max_shift)
    ncc = masked_ncc_map(small[0], smask[0], small[1], smask[1], (my, mx), min_overlap)
    candidates, best, runner = _candidates(ncc, max(3, int(np.ceil(2 * sigma))))
    if best < MIN_NCC:
        raise ImgSuiteError(
            f"{where}the overlap does not show the same structure (NCC {best:.2f}): too small or no common anatomy"
        )
    fits = [
        _refine(a, ma, b, mb, np.array([py - my, px - mx], float) * factor, factor=factor, spacing=spacing)
        for py, px in candidates
    ]
    shift, score, residual, smooth_a, moved_b = min(fits, key=lambda f: f[2])
    rivals = [f for f in fits if np.abs(f[0] - shift).max() > 1.0]
    if rivals:  # coarse peaks nearly as high that refine to another place: the overlap cannot settle it
        other = min(rivals, key=lambda f: f[2])
        raise ImgSuiteError(
            f"{where}the overlap is ambiguous (two shifts match nearly equally: {shift[0]:.1f} and {other[0][0]:.1f}"
            f" rows, coarse NCC {best:.3f} vs {runner:.3f})"
        )
    if score < MIN_NCC:
        raise ImgSuiteError(f"{where}the overlap does not show the same structure once aligned (NCC {score:.2f})")
    sd = shift_precision(smooth_a, moved_b, given[0], given[1], shift, max(FINE_SIGMA_MM / spacing, 0.5))
    if 2.0 * sd > RESAMPLE_ABOVE:  # a weak seam: the local bound misses the search's own ambiguity
        spread = resampled_spread(
            a, ma, b, mb, shift, smoothed=(smooth_a, moved_b), given=given, spacing=spacing, band=2.0 * sd
        )
        sd = float(np.hypot(sd, spread))
    if not 2.0 * sd <= max_error:
        raise ImgSuiteError(
            f"{where}the overlap holds too little structure above its noise to place the seam: expected error "
            f"{2.0 * sd:.2f} px (2 SD) over the limit {max_error:g} px; use a ruler (--method ruler), a larger "
            "overlap or a higher dose"
        )
    return SeamFit((float(shift[0]), float(shift[1])), score, runner, overlap, "image", sd)


def shift_precision(aa, bs, ma, mb, shift, sigma: float) -> float:
    """Expected error (1 SD, pixels) of the row shift that aligns ``b`` on ``a``, from the overlap itself:
    ``aa`` is ``a`` and ``bs`` is ``b(x + shift)``, both smoothed by a Gaussian of ``sigma`` pixels; ``ma`` and
    ``mb`` are the masks of ``a`` and of ``b`` (unshifted).

    The bound of an unbiased shift estimate is ``noise² / Σ (∂a/∂row)²`` (noise of both shots, the signal's
    gradient). Both come from the aligned pair: their residual is the noise of both shots, their mean the
    signal; the part of the mean's gradient energy that the noise alone explains (a quarter of the residual's)
    is subtracted, so an overlap of noise and edges along the long axis scores no information and an infinite
    error."""
    _, _, residual, sel, inner = _aligned_residual(aa, bs, ma, mb, shift)
    if residual is None:
        return float("inf")
    signal_rows = np.gradient(np.where(sel, aa + residual * np.float32(-0.5), np.float32(0.0)), axis=0)
    noise_rows = np.gradient(residual, axis=0)

    def energy(rows, smooth):  # the signal's gradient energy less what its noise (a quarter of the residual's) explains
        x, n = (np.where(inner, r, np.float32(0.0)) for r in rows)
        x, n = (ndimage.gaussian_filter(v, sigma) if smooth else v for v in (x, n))
        return float((x[inner].astype(np.float64) ** 2).sum() - 0.25 * n[inner].size * _robust_variance(n[inner]))

    # the least-squares shift of the smoothed pair: variance noise * sum (G * grad)² / (sum grad²)², the
    # gradient seen through the smoothing G once more (sharp edges carry more than their smoothed energy says)
    information, seen = energy((signal_rows, noise_rows), False), energy((signal_rows, noise_rows), True)
    # white noise per pixel, both shots: the residual of the smoothed pair has 2 s² |G|², |G|² = 1 / (4 pi sigma²)
    noise = _robust_variance(residual[inner]) * 4.0 * np.pi * sigma**2
    if information <= 0:
        return float("inf")
    # the smoothing can at most halve the bound: where noise swamps the smoothed energy, its estimate is noise
    return float(np.sqrt(noise / information * float(np.clip(seen / information, 0.25, 1.0))))


def resampled_spread(a, ma, b, mb, shift, *, smoothed, given, spacing: float, band: float = 0.0) -> float:
    """Spread (RMS, pixels) of the row shift when the full-resolution search (whole-pixel NCC within
    ``LOCAL_RADIUS``, then Gauss–Newton) is repeated on the shots with fresh noise of the level the aligned
    pair shows (``RESAMPLE_DRAWS`` draws, a fixed seed). Where the NCC curve is flat, noise moves its peak
    to another whole pixel; the local bound (:func:`shift_precision`) cannot see that, this does.

    ``a``, ``b``: the shots; ``ma``, ``mb``: their eroded masks; ``smoothed``: the smoothed pair (``a`` and
    ``b`` moved by ``shift``); ``given``: the masks as given."""
    sigma = max(FINE_SIGMA_MM / spacing, 0.5)
    smooth_a, moved_b = smoothed
    residual, gain = _aligned_residual(smooth_a, moved_b, given[0], given[1], shift)[:2]
    if residual.size < 16:
        return float("inf")
    # white noise per pixel (both shots alike) whose smoothed difference matches the residual's variance
    per_pixel = float(np.sqrt(_robust_variance(residual) * 4.0 * np.pi * sigma**2 / 2.0))
    rng = np.random.default_rng(0)
    found = []
    for _ in range(RESAMPLE_DRAWS):
        aa, bb = (
            ndimage.gaussian_filter((x + rng.normal(0.0, level, x.shape)).astype(np.float32), sigma)
            for x, level in ((a, per_pixel), (b, per_pixel / max(abs(gain), 1e-6)))
        )
        start = _best_whole_shift(aa, ma, bb, mb, shift, LOCAL_RADIUS)
        found.append(_gauss_newton(aa, ma, bb, mb, start, FINE_ITERATIONS)[0][0] - shift[0])
    return float(np.sqrt(np.mean(np.square(np.clip(np.abs(found) - band, 0.0, None)))))


def _robust_variance(x: np.ndarray) -> float:
    """Variance of the noise in ``x`` from its median absolute deviation: a misfit confined to a few edges
    (parallax of a bead off the measurement plane) does not count as noise."""
    x = x[:: max(1, x.size // 65536)].astype(np.float64)  # a regular subsample settles it to a few per cent
    return float((1.4826 * np.median(np.abs(x - np.median(x)))) ** 2)


def _aligned_residual(aa, bs, ma, mb, shift):
    """The residual ``aa - (gain bs + bias)`` on the pixels the refinement compares (4 in from either shot's
    edge), the gain, the residual image (zero elsewhere), those pixels and the ones 1 further in."""
    both = (ma & _moved_mask(mb, shift)).view(np.uint8)
    sel = ndimage.minimum_filter(both, size=9, mode="constant", cval=0).view(bool)
    inner = ndimage.minimum_filter(both, size=11, mode="constant", cval=0).view(bool)
    if inner.sum() < 16:
        return np.zeros(0, np.float32), 1.0, None, sel, inner
    x, y = bs[sel].astype(np.float64), aa[sel].astype(np.float64)
    x0, y0 = x - x.mean(), y - y.mean()
    gain = np.float32(float(x0 @ y0) / max(float(x0 @ x0), 1e-30))
    bias = np.float32(y.mean() - gain * x.mean())
    residual = np.where(sel, aa - (gain * bs + bias), np.float32(0.0))
    return residual[inner], float(gain), residual, sel, inner


def _candidates(ncc: np.ndarray, exclusion: int):
    """The best peak of the coarse map and every other local maximum (beyond ``exclusion``) within ``MIN_MARGIN``
    of it; also the best score and the best other score."""
    (py, px), best, runner = _peaks(ncc, exclusion)
    local = (ncc == ndimage.maximum_filter(ncc, size=3)) & (ncc >= best - MIN_MARGIN)
    yy, xx = np.nonzero(local)
    far = np.maximum(np.abs(yy - py), np.abs(xx - px)) > exclusion
    return [(py, px)] + list(zip(yy[far], xx[far])), best, runner


def _refine(a, ma, b, mb, shift, *, factor: int, spacing: float):
    """Coarse ``shift`` -> (shift, ncc, residual, smoothed ``a``, smoothed ``b`` moved by the shift): down the pyramid by Gauss–Newton with gain and offset; at full
    resolution it first moves to the best whole-pixel shift near the coarse one (the coarse map is smooth and
    noisy, and Gauss–Newton only finds the minimum of the basin it starts in)."""
    level = 0
    while True:
        am, bm = (m if factor == 1 else (_reduce(m.astype(np.float32), factor) > 0.99) for m in (ma, mb))
        sigma = max(FINE_SIGMA_MM / (spacing * factor), 0.5)
        aa, bb = (ndimage.gaussian_filter(x if factor == 1 else _reduce(x, factor), sigma) for x in (a, b))
        start = shift / factor
        if factor == 1 and level == 0:  # no pyramid below the coarse map: its peak may be a few pixels off
            start = _best_whole_shift(aa, am, bb, bm, start, LOCAL_RADIUS)
        refined, score, moved = _gauss_newton(
            aa, am, bb, bm, start, FINE_ITERATIONS if level == 0 else 6 if factor > 1 else 3
        )
        level += 1
        shift = refined * factor
        if factor == 1:
            return shift, score, 1.0 - score * score, aa, moved
        factor = 1 if factor <= 3 else factor // 3


def _best_whole_shift(a, ma, b, mb, shift, radius: int) -> np.ndarray:
    """The whole-pixel shift within ``radius`` of ``shift`` where the masked NCC of ``a`` and ``b`` peaks."""
    c = np.round(shift).astype(int)
    h, w = b.shape
    moved = np.zeros_like(b)
    ys, xs = slice(max(0, -c[0]), min(h, h - c[0])), slice(max(0, -c[1]), min(w, w - c[1]))
    moved[ys, xs] = b[ys.start + c[0] : ys.stop + c[0], xs.start + c[1] : xs.stop + c[1]]
    local = masked_ncc_map(a, ma, moved, _moved_mask(mb, c), (radius, radius))
    iy, ix = np.unravel_index(int(np.argmax(local)), local.shape)
    return c + np.array([iy - radius, ix - radius], float)


def band_pass(x: np.ndarray, sigma: float) -> np.ndarray:
    """The smoothed derivative along the long axis: what changes from one height to the next. Edges that
    run along the leg or spine (skin, cortices) look alike at every height and would make every vertical
    shift match; they drop out here, and exposure offsets with them."""
    return ndimage.gaussian_filter(np.asarray(x, np.float32), sigma, order=(1, 0))


def _reduce(x: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return np.asarray(x, np.float32)
    h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
    return x[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def ruler_band(image: np.ndarray, mask: np.ndarray, period_px: float, width: int = 9) -> slice:
    """The columns where a ruler with marks every ``period_px`` rows shows the strongest periodic signal."""
    rows = mask.sum(axis=1) >= 0.5 * mask.sum(axis=1).max()
    cols = mask[rows].all(axis=0)
    if rows.sum() < 2 * period_px or not cols.any():
        raise ImgSuiteError("the overlap is shorter than two ruler marks")
    block = image[rows][:, cols]
    block = block - ndimage.uniform_filter1d(block, max(3, int(round(period_px))), axis=0)
    spectrum = np.abs(np.fft.rfft(block, axis=0)) ** 2
    freqs = np.fft.rfftfreq(block.shape[0])
    near = np.abs(freqs - 1.0 / period_px) <= 1.5 / block.shape[0]
    power = np.zeros(image.shape[1])
    power[cols] = spectrum[near].sum(axis=0)
    power = ndimage.uniform_filter1d(power, width)
    c = int(np.argmax(power))
    return slice(max(c - width // 2, 0), c + width // 2 + 1)


def mark_positions(profile: np.ndarray, period_px: float) -> np.ndarray:
    """Sub-pixel rows of the ruler's marks along ``profile`` (marks are the minima or maxima, whichever stand out)."""
    detrended = profile - ndimage.uniform_filter1d(profile, max(3, int(round(period_px))), mode="nearest")
    sign = 1.0 if detrended.max() >= -detrended.min() else -1.0
    p = sign * detrended
    found, _ = signal.find_peaks(p, distance=max(1, int(0.6 * period_px)), prominence=0.5 * p.std())
    found = found[(found > 0) & (found < len(p) - 1)]
    left, mid, right = p[found - 1], p[found], p[found + 1]
    denom = left - 2 * mid + right
    return found + np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)


def register_on_ruler(a, ma, b, mb, *, period_px: float, coarse: tuple[float, float], where: str = "") -> SeamFit:
    """Row shift of ``b`` against ``a`` from the ruler's marks (column shift kept from ``coarse``)."""
    both = ma & mb
    band = ruler_band(a, both, period_px)
    rows = np.flatnonzero(both[:, band].all(axis=1))
    if rows.size < 2 * period_px:
        raise ImgSuiteError(f"{where}the overlap shows fewer than two ruler marks")
    sl = slice(rows[0], rows[-1] + 1)
    cols = np.arange(b.shape[1])[band] + coarse[1]
    rr, cc = np.meshgrid(np.arange(b.shape[0], dtype=float), cols, indexing="ij")
    b_band = ndimage.map_coordinates(b, [rr, cc], order=1, mode="nearest").mean(axis=1)
    marks_a = mark_positions(a[sl, band].mean(axis=1), period_px) + rows[0]
    marks_b = mark_positions(b_band, period_px)
    if marks_a.size < 2 or marks_b.size < 2:
        raise ImgSuiteError(f"{where}fewer than two ruler marks found in the overlap")
    # each mark of a has its twin in b near a + coarse; the period's ambiguity is settled by the coarse shift
    diffs = marks_b[None, :] - marks_a[:, None]
    nearest = np.take_along_axis(diffs, np.argmin(np.abs(diffs - coarse[0]), axis=1)[:, None], axis=1)[:, 0]
    good = np.abs(nearest - coarse[0]) < 0.5 * period_px
    if good.sum() < 2:
        raise ImgSuiteError(f"{where}the ruler marks of the two shots do not pair up: the overlap is ambiguous")
    dy = float(np.median(nearest[good]))
    spread = float(np.std(nearest[good]))
    return SeamFit((dy, float(coarse[1])), 1.0 - spread / period_px, 0.0, int(both.any(axis=1).sum()), "ruler")
