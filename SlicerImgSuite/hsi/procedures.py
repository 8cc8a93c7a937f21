"""Read procedures: steps applied in order to a cube before it is shown.

The header field ``read procedures = {step, step, ...}`` lists them; each step is one of

- ``resample:{s, l, b}``   new size in samples, lines and bands (linear, pixel-area grid)
- ``crop:{a:b, c:d, e:f}``  keep samples a..b, lines c..d, bands e..f (0-based, inclusive)
- ``rotate:clockwise | counterclockwise | 180 | swap-left-right | swap-up-down``
- ``merge:{id:x:y, ...}``   a mosaic: ENVI member ``id`` (``data`` = this cube) with its top-left
  corner at sample ``x``, line ``y``; later tiles overwrite earlier ones; the rest is 0
- ``microservice:NAME``     a Python callable registered with :func:`register_microservice`, or
  published by an installed package under the entry-point group ``slicerimgsuite.hsi_microservices``
  (so the CLI and Slicer find it too). A callable with a third parameter gets the container's
  members: ``members("Reference/flat") -> (cube, header)``, ``members.names()`` (every member, the
  ``Reference/`` calibration files included) and ``members.read_bytes(name)``

Each step maps ``(cube, header) -> (cube, header)`` and keeps ``samples``, ``lines``, ``bands``,
``wavelength``, ``fwhm`` and ``band names`` true to the new cube.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress
from .envi_header import EnviHeader, split_list

Step = tuple[str, str]
Resolver = Callable[[str], tuple[np.ndarray, EnviHeader]]
MICROSERVICES: dict[str, Callable[[np.ndarray, EnviHeader], tuple[np.ndarray, EnviHeader]]] = {}
ROTATIONS = ("clockwise", "counterclockwise", "180", "swap-left-right", "swap-up-down")
BAND_FIELDS = ("wavelength", "fwhm", "band names", "data gain values", "data offset values")


def register_microservice(name: str, func: Callable | None = None):
    """Register ``func(cube, header) -> (cube, header)`` under ``name`` (usable as a decorator).

    Examples
    --------
    >>> @register_microservice("negate")
    ... def negate(cube, header):
    ...     return -cube, header
    >>> "negate" in MICROSERVICES
    True
    """
    if func is None:
        return lambda f: register_microservice(name, f)
    MICROSERVICES[name] = func
    return func


def parse_procedures(value: str | list[str] | None) -> list[Step]:
    """``read procedures`` (header list or text) -> ``[(name, argument), ...]``.

    Examples
    --------
    >>> parse_procedures("{crop:{0:9, 0:4, 2:5}, rotate:clockwise}")
    [('crop', '{0:9, 0:4, 2:5}'), ('rotate', 'clockwise')]
    """
    if not value:
        return []
    if isinstance(value, str):
        text = value.strip()
        value = split_list(text[1:-1] if text.startswith("{") and text.endswith("}") else text)
    steps = []
    for item in value:
        name, _, argument = item.partition(":")
        name = name.strip().lower()
        if name not in STEPS:
            raise ImgSuiteError(f"unknown read procedure {name!r} (known: {', '.join(STEPS)})")
        steps.append((name, argument.strip()))
    return steps


def apply_procedures(
    cube: np.ndarray,
    header: EnviHeader,
    procedures: str | list[str] | list[Step] | None = None,
    resolver: Resolver | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, EnviHeader]:
    """Apply read procedures in order (the header's own ``read procedures`` when none are given).

    Parameters
    ----------
    cube : numpy.ndarray
        ``(lines, samples, bands)``.
    header : EnviHeader
        Its header; a copy is updated and returned (without ``read procedures``, now applied).
    procedures : optional
        Steps as header text, a list of items, or ``[(name, argument)]``.
    resolver : callable, optional
        ``id -> (cube, header)`` for ``merge`` (an open ``.hsi`` provides its members).

    Returns
    -------
    (numpy.ndarray, EnviHeader)
    """
    progress = progress or no_progress
    if procedures is None:
        procedures = header.get("read procedures")
    steps = procedures if procedures and isinstance(procedures[0], tuple) else parse_procedures(procedures)
    header = header.copy()
    header.pop("read procedures", None)
    for i, (name, argument) in enumerate(steps):
        progress(i / max(1, len(steps)), f"{name} {argument}")
        cube, header = STEPS[name](cube, header, argument, resolver)
        header.set("lines", cube.shape[0])
        header.set("samples", cube.shape[1])
        header.set("bands", cube.shape[2])
    progress(1.0, "read procedures applied")
    return cube, header


def resample(cube, header, argument, resolver=None):
    from scipy import ndimage

    samples, lines, bands = _ints(argument, 3, "resample")
    if min(samples, lines, bands) < 1:
        raise ImgSuiteError(f"resample:{argument}: sizes must be positive")
    factors = (lines / cube.shape[0], samples / cube.shape[1], bands / cube.shape[2])
    out = ndimage.zoom(np.asarray(cube, np.float32), factors, order=1, mode="nearest", grid_mode=True)
    header = header.copy()
    for key in ("wavelength", "fwhm"):
        values = header.numbers(key)
        if values is not None and len(values) == cube.shape[2]:
            resampled = ndimage.zoom(np.array(values, float), factors[2], order=1, mode="nearest", grid_mode=True)
            header.set(key, [round(float(v), 6) for v in resampled])
    if bands != cube.shape[2]:
        header.pop("band names", None)
        header.pop("default bands", None)
    return out, _pixel_size(header, cube.shape[1] / samples, cube.shape[0] / lines)


def crop(cube, header, argument, resolver=None):
    ranges = [p.strip() for p in _braces(argument, "crop").split(",")]
    if len(ranges) != 3:
        raise ImgSuiteError(f"crop:{argument}: needs three ranges samples a:b, lines c:d, bands e:f")
    size = (cube.shape[1], cube.shape[0], cube.shape[2])
    bounds = []
    for text, n, what in zip(ranges, size, ("samples", "lines", "bands")):
        match = re.fullmatch(r"(\d+)\s*:\s*(\d+)", text)
        if not match:
            raise ImgSuiteError(f"crop:{argument}: {what} range {text!r} is not a:b")
        a, b = int(match[1]), int(match[2])
        if not 0 <= a <= b < n:
            raise ImgSuiteError(f"crop:{argument}: {what} {a}:{b} outside 0:{n - 1}")
        bounds.append(slice(a, b + 1))
    s, ln, b = bounds
    header = _select_bands(header, b, cube.shape[2])
    return cube[ln, s, b], header


def rotate(cube, header, argument, resolver=None):
    how = argument.strip().lower()
    if how not in ROTATIONS:
        raise ImgSuiteError(f"rotate:{argument}: use one of {', '.join(ROTATIONS)}")
    if how == "swap-left-right":
        return cube[:, ::-1], header
    if how == "swap-up-down":
        return cube[::-1], header
    k = {"clockwise": -1, "counterclockwise": 1, "180": 2}[how]
    return np.rot90(cube, k=k, axes=(0, 1)), _pixel_size(header, swap=k % 2 == 1)


def _pixel_size(header: EnviHeader, x_factor: float = 1.0, y_factor: float = 1.0, swap: bool = False) -> EnviHeader:
    """``pixel size = {x, y, units=...}`` after a resampling (factors) or a quarter turn (x and y swap)."""
    value = header.get("pixel size")
    try:
        x, y = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        return header  # absent or unreadable: nothing to keep in step
    x, y = x * x_factor, y * y_factor
    if swap:
        x, y = y, x
    header = header.copy()
    header.set("pixel size", [round(x, 9), round(y, 9), *value[2:]])
    return header


def merge(cube, header, argument, resolver=None):
    tiles = []
    for item in _braces(argument, "merge").split(","):
        match = re.fullmatch(r"\s*([^:\s]+)\s*:\s*(\d+)\s*:\s*(\d+)\s*", item)
        if not match:
            raise ImgSuiteError(f"merge:{argument}: item {item.strip()!r} is not id:x:y")
        name, x, y = match[1], int(match[2]), int(match[3])
        if name == "data":
            tile = cube
        elif resolver is None:
            raise ImgSuiteError(f"merge:{argument}: tile {name!r} needs a container to read it from")
        else:
            tile = resolver(name)[0]
        if tile.shape[2] != cube.shape[2]:
            raise ImgSuiteError(f"merge: tile {name!r} has {tile.shape[2]} bands, the cube {cube.shape[2]}")
        tiles.append((tile, x, y))
    lines = max(y + t.shape[0] for t, x, y in tiles)
    samples = max(x + t.shape[1] for t, x, y in tiles)
    out = np.zeros((lines, samples, cube.shape[2]), np.result_type(*[t.dtype for t, _, _ in tiles]))
    for tile, x, y in tiles:
        out[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return out, header


ENTRY_POINT_GROUP = "slicerimgsuite.hsi_microservices"


def _installed_microservices() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def microservice(cube, header, argument, resolver=None):
    name = argument.strip()
    if name not in MICROSERVICES:
        installed = _installed_microservices()
        if name not in installed:
            known = ", ".join(sorted({*MICROSERVICES, *installed})) or "none registered"
            raise ImgSuiteError(f"unknown microservice {name!r} (registered: {known})")
        register_microservice(name, installed[name].load())
    func = MICROSERVICES[name]
    if _takes_members(func):
        out, new_header = func(cube, header.copy(), resolver if resolver is not None else NO_MEMBERS)
    else:
        out, new_header = func(cube, header.copy())
    out = np.asarray(out)
    if out.ndim != 3:
        raise ImgSuiteError(f"microservice {name!r} returned a {out.ndim}D array, not (lines, samples, bands)")
    return out, new_header


def _takes_members(func) -> bool:
    import inspect

    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


class Members:
    """What a microservice sees of the container: ``members(stem)`` reads an ENVI member, ``names()`` lists
    the members, ``read_bytes(name)`` reads any one (a plain ENVI cube has none)."""

    def __init__(self, hsi=None):
        self._hsi = hsi

    def __call__(self, stem: str) -> tuple[np.ndarray, EnviHeader]:
        if self._hsi is None:
            raise ImgSuiteError(f"no member {stem!r}: a plain ENVI cube has no container members")
        return self._hsi.read_envi_member(stem, wavelengths=False)

    def names(self) -> list[str]:
        return list(self._hsi.names) if self._hsi is not None else []

    def read_bytes(self, name: str) -> bytes:
        if self._hsi is None:
            raise ImgSuiteError(f"no member {name!r}: a plain ENVI cube has no container members")
        return self._hsi.read_bytes(name)


NO_MEMBERS = Members()


STEPS = {"resample": resample, "crop": crop, "rotate": rotate, "merge": merge, "microservice": microservice}


def _braces(argument: str, name: str) -> str:
    text = argument.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ImgSuiteError(f"{name}:{argument}: the argument must be in braces")
    return text[1:-1]


def _ints(argument: str, count: int, name: str) -> list[int]:
    parts = [p.strip() for p in _braces(argument, name).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ImgSuiteError(f"{name}:{argument}: needs {count} integers") from None
    if len(values) != count:
        raise ImgSuiteError(f"{name}:{argument}: needs {count} integers, got {len(values)}")
    return values


def _select_bands(header: EnviHeader, bands: slice, count: int) -> EnviHeader:
    header = header.copy()
    for key in BAND_FIELDS:
        value = header.get(key)
        if isinstance(value, list) and len(value) == count:
            header[key] = value[bands]
    if bands != slice(0, count) and "default bands" in header:
        header.pop("default bands")
    return header
