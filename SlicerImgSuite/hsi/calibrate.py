"""Reflectance calibration: ``(raw - black) / (white - black)``.

References shaped ``(1, samples, bands)`` (a push-broom scanner's single line) are broadcast over
all lines; references with as many lines as the cube (a snapshot camera) are used as they are; a
reference with any other number of lines (a push-broom scan of the tile) is averaged to one line.
"""

from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress


def calibrate(
    raw: np.ndarray,
    white: np.ndarray,
    black: np.ndarray | None = None,
    *,
    white_end: np.ndarray | None = None,
    line_fractions: np.ndarray | None = None,
    min_denominator: float = 1e-6,
    chunk_lines: int = 256,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Reflectance of a raw cube.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(lines, samples, bands)`` raw counts (a memory map is read chunk by chunk).
    white, black : numpy.ndarray
        ``(1 | lines, samples, bands)`` references (``(samples, bands)`` counts as one line; another
        line count is averaged to one line, with a warning). ``black`` defaults to zero.
    white_end, line_fractions : optional
        A second white (taken after the scan) and, per line, where the line lies between the two
        (0 = ``white``, 1 = ``white_end``): the white of each line is interpolated linearly.
    min_denominator : float
        Where ``white - black`` is at most this (dead or saturated pixels), the reflectance is 0
        instead of a division by zero; a warning says how many such pixel-bands there are.
    chunk_lines : int
        Lines processed at a time (memory stays bounded for large cubes).

    Returns
    -------
    numpy.ndarray
        float32 ``(lines, samples, bands)``.

    Examples
    --------
    >>> raw = np.full((2, 1, 1), 60.0); white = np.full((1, 1, 1), 110.0); black = np.full((1, 1, 1), 10.0)
    >>> calibrate(raw, white, black).ravel().tolist()
    [0.5, 0.5]
    """
    progress = progress or no_progress
    lines = raw.shape[0]
    white = _reference(white, raw, "white")
    black = np.zeros((1,) + raw.shape[1:], np.float32) if black is None else _reference(black, raw, "black")
    if white_end is not None:
        white_end = _reference(white_end, raw, "white (after)")
        fractions = np.asarray(line_fractions, np.float32).reshape(-1)
        if fractions.shape != (lines,):
            raise ImgSuiteError(f"line_fractions needs one value per line ({lines}), not {fractions.shape}")
    out = np.empty(raw.shape, np.float32)
    bad_count = 0
    for start in range(0, lines, chunk_lines):
        stop = min(start + chunk_lines, lines)
        w = white if white.shape[0] == 1 else white[start:stop]
        b = black if black.shape[0] == 1 else black[start:stop]
        if white_end is not None:
            w_end = white_end if white_end.shape[0] == 1 else white_end[start:stop]
            w = w + fractions[start:stop, None, None] * (w_end - w)
        denominator = w - b
        bad = denominator <= min_denominator
        if bad.any():
            bad_count += int(bad.sum()) * (stop - start if bad.shape[0] == 1 else 1)
        chunk = (np.asarray(raw[start:stop], np.float32) - b) / np.where(bad, np.float32(1), denominator)
        out[start:stop] = np.where(bad, np.float32(0), chunk)
        progress(stop / lines, "calibrating")
    if bad_count:
        warnings.warn(
            f"white - black <= {min_denominator} at {bad_count} pixel-bands: reflectance set to 0", stacklevel=2
        )
    return out


def interpolate_white(
    white_before: np.ndarray,
    white_after: np.ndarray,
    time_before: datetime | str,
    time_after: datetime | str,
    time: datetime | str,
) -> np.ndarray:
    """The white reference at ``time``, linear between one taken before and one taken after the scan.

    Times are ``datetime`` or ISO 8601 text (the ``acquisition time`` header field); a time outside
    ``[time_before, time_after]`` is clamped to the nearer reference.

    Examples
    --------
    >>> w = interpolate_white(np.full((1, 1, 1), 100.0), np.full((1, 1, 1), 80.0),
    ...                       "2024-01-01T10:00:00", "2024-01-01T10:10:00", "2024-01-01T10:05:00")
    >>> float(w[0, 0, 0])
    90.0
    """
    t0, t1, t = (_time(v) for v in (time_before, time_after, time))
    if white_before.shape != white_after.shape:
        raise ImgSuiteError(f"white references differ in shape: {white_before.shape} and {white_after.shape}")
    span = (t1 - t0).total_seconds()
    fraction = 0.0 if span <= 0 else min(max((t - t0).total_seconds() / span, 0.0), 1.0)
    return (
        (1 - fraction) * np.asarray(white_before, np.float32) + fraction * np.asarray(white_after, np.float32)
    ).astype(np.float32)


def calibrate_hsi(
    hsi, progress: ProgressCallback | None = None, cube: np.ndarray | None = None, bands: slice | None = None
) -> np.ndarray:
    """Reflectance of an open ``.hsi`` from its own ``Reference/`` frames.

    With ``Reference/white_after`` and ``acquisition time`` in the three headers, the white is
    interpolated over time: to the cube's ``acquisition time`` when it is one time, and line by
    line when it is ``{start, end}`` of the scan (lines taken at an even pace).
    """
    white, white_header = hsi.optional_envi("Reference/white")
    if white is None:
        raise ImgSuiteError("no Reference/white in the container: cannot calibrate", hsi.path)
    black = hsi.black
    after, after_header = hsi.optional_envi("Reference/white_after")
    cube = hsi.cube if cube is None else cube
    if bands is not None:
        cube, white = cube[:, :, bands], white[:, :, bands]
        black = None if black is None else black[:, :, bands]
        after = None if after is None else after[:, :, bands]
    if after is not None:
        times = [h.get("acquisition time") for h in (white_header, after_header, hsi.header)]
        if all(times) and isinstance(times[2], list) and len(times[2]) == 2:
            lines = cube.shape[0]
            t0, t1, start, end = (_time(v) for v in (times[0], times[1], *times[2]))
            line_times = np.linspace(0.0, (end - start).total_seconds(), lines) + (start - t0).total_seconds()
            span = max((t1 - t0).total_seconds(), 1e-9)
            fractions = np.clip(line_times / span, 0.0, 1.0)
            return calibrate(
                hsi.cube if cube is None else cube,
                white,
                black,
                white_end=after,
                line_fractions=fractions,
                progress=progress,
            )
        if all(times):
            white = interpolate_white(white, after, *times)
        else:
            warnings.warn(
                f"{hsi.path}: Reference/white_after without acquisition times: using the first white", stacklevel=2
            )
    return calibrate(cube, white, black, progress=progress)


def _reference(frame: np.ndarray, raw: np.ndarray, name: str) -> np.ndarray:
    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim == 2:
        frame = frame[None]
    if frame.ndim != 3 or frame.shape[1:] != raw.shape[1:]:
        raise ImgSuiteError(
            f"{name} reference {frame.shape} does not fit the cube {raw.shape}: it needs the same samples and bands"
        )
    if frame.shape[0] not in (1, raw.shape[0]):
        # a push-broom reference scan (many lines of the same tile): its mean line, with less noise
        warnings.warn(
            f"{name} reference has {frame.shape[0]} lines, the cube {raw.shape[0]}: using the mean of its lines",
            stacklevel=3,
        )
        frame = frame.mean(axis=0, keepdims=True)
    return frame


def _time(value) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ImgSuiteError(f"acquisition time {value!r} is not ISO 8601 (YYYY-MM-DDThh:mm:ss)") from None


SCALING_FIELDS = ("data gain values", "data offset values", "reflectance scale factor")


def apply_scaling(cube: np.ndarray, header, path=None, chunk_lines: int = 256) -> tuple[np.ndarray, object]:
    """ENVI's stored-value scaling, applied on request: ``(gain * value + offset) / reflectance scale factor``.

    ``data gain values`` and ``data offset values`` hold one number per band (gain 1, offset 0 when
    absent); ``reflectance scale factor`` is the number that, divided into the data, gives 0-1
    reflectance. The result is float32; the applied fields leave the returned header. A header with
    none of them is returned as it is.

    Examples
    --------
    >>> from .envi_header import parse_header
    >>> h = parse_header("ENVI\\nbands = 2\\ndata offset values = {-100, 0}\\nreflectance scale factor = 10000")
    >>> cube, out = apply_scaling(np.full((1, 1, 2), 5100, np.uint16), h)
    >>> cube.ravel().tolist(), "reflectance scale factor" in out
    ([0.5, 0.5099999904632568], False)
    """
    if not any(key in header for key in SCALING_FIELDS):
        return cube, header
    bands = cube.shape[2]

    def per_band(key: str, default: float) -> np.ndarray:
        try:
            values = header.numbers(key)
        except ValueError:
            raise ImgSuiteError(f"'{key}' holds non-numbers", path) from None
        if values is None:
            return np.full(bands, default)
        if len(values) != bands or not np.all(np.isfinite(values)):
            raise ImgSuiteError(f"'{key}' needs {bands} finite numbers (one per band), got {len(values)}", path)
        return np.array(values, float)

    gain, offset = per_band("data gain values", 1.0), per_band("data offset values", 0.0)
    try:
        factor = float(header.get("reflectance scale factor", 1.0))
    except (TypeError, ValueError):
        raise ImgSuiteError(
            f"'reflectance scale factor' is not a number ({header.get('reflectance scale factor')!r})", path
        ) from None
    if not np.isfinite(factor) or factor == 0:
        raise ImgSuiteError(f"'reflectance scale factor' must be a finite non-zero number, not {factor:g}", path)
    out = np.empty(cube.shape, np.float32)
    for start in range(0, cube.shape[0], chunk_lines):
        chunk = np.asarray(cube[start : start + chunk_lines], np.float64)
        out[start : start + chunk_lines] = (chunk * gain + offset) / factor
    header = header.copy()
    for key in SCALING_FIELDS:
        header.pop(key, None)
    return out, header
