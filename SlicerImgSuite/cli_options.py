"""Option helpers shared by ``imgsuite`` subcommands (plastimatch spellings).

plastimatch takes vectors as one quoted string (``--dim "512 512 100"``); we accept that, commas,
and separate words (``--dim 512 512 100``).
"""

from __future__ import annotations

import argparse
import math

import SimpleITK as sitk

from .errors import ImgSuiteError
from .geometry import check_grid_values, grid_image


def parse_numbers(values, count: int | None, name: str, kind=float, *, allow_inf: bool = False) -> list:
    """Split ``["1 2", "3"]`` or ``["1,2,3"]`` into numbers; ``count`` values (or one, repeated).

    NaN is refused, and so is an infinite value unless ``allow_inf`` (a slope or an open range end); whole
    numbers (``kind=int``) are truncated as before.

    Examples
    --------
    >>> parse_numbers("1 2", 2, "--x"), parse_numbers("-inf,0", None, "--r", allow_inf=True)
    ([1.0, 2.0], [-inf, 0.0])
    >>> parse_numbers("nan", 3, "--spacing")
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: --spacing expects finite numbers, got 'nan'
    """
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    words = [w for v in values for w in str(v).replace(",", " ").split()]
    try:
        floats = [float(w) for w in words]
    except ValueError:
        raise ImgSuiteError(f"{name} expects numbers, got {' '.join(words)!r}") from None
    if any(math.isnan(v) or (math.isinf(v) and (kind is int or not allow_inf)) for v in floats):
        raise ImgSuiteError(f"{name} expects finite numbers, got {' '.join(words)!r}")
    numbers = [int(v) if kind is int else kind(w) for v, w in zip(floats, words)]
    if count is not None:
        if len(numbers) == 1 and count > 1:
            numbers = numbers * count
        if len(numbers) != count:
            raise ImgSuiteError(f"{name} expects {count} numbers, got {len(numbers)}: {' '.join(words)!r}")
    return numbers


def direction_cosines(values, ndim: int) -> list | None:
    """``--direction-cosines``: ``ndim * ndim`` numbers (row-major), or ``identity``; ``None`` when not given.

    Examples
    --------
    >>> direction_cosines("identity", 2), direction_cosines(["0 1", "1 0"], 2), direction_cosines(None, 3)
    ([1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], None)
    """
    if not values:
        return None
    if (values if isinstance(values, str) else " ".join(values)).strip().lower() == "identity":
        return [float(i == j) for i in range(ndim) for j in range(ndim)]
    return parse_numbers(values, ndim * ndim, "--direction-cosines")


def add_grid_options(parser: argparse.ArgumentParser) -> None:
    """``--fixed IMG`` or ``--origin/--dim/--spacing`` (and ``--direction-cosines``) for an output grid."""
    g = parser.add_argument_group("output geometry")
    g.add_argument("--fixed", help="image (or DICOM folder) whose grid the output takes")
    g.add_argument("--origin", nargs="+", help='centre of the first voxel, mm: "x y z"')
    g.add_argument("--dim", nargs="+", help='voxels per axis: "i j k"')
    g.add_argument("--spacing", nargs="+", help='voxel size, mm: "x y z"')
    g.add_argument(
        "--direction-cosines",
        "--direction",
        dest="direction",
        nargs="+",
        help='9 direction cosines (row-major) or "identity" (the default)',
    )


def grid_from_args(args: argparse.Namespace, like: sitk.Image | None = None) -> sitk.Image | None:
    """The reference grid the options ask for, or ``None`` when none was given.

    Missing pieces of ``--origin/--dim/--spacing`` are taken from ``like`` when given.
    """
    if getattr(args, "fixed", None):
        from .io import read_image

        fixed = read_image(args.fixed)
        if like is not None and fixed.GetDimension() != like.GetDimension():  # SimpleITK's Resample: a traceback
            raise ImgSuiteError(
                f"--fixed is a {fixed.GetDimension()}D image; the input to resample onto it is {like.GetDimension()}D",
                args.fixed,
            )
        return fixed
    if not any(getattr(args, k, None) for k in ("origin", "dim", "spacing", "direction")):
        return None
    ndim = like.GetDimension() if like is not None else 3
    origin = parse_numbers(args.origin, ndim, "--origin") if args.origin else None
    dim = parse_numbers(args.dim, ndim, "--dim", int) if args.dim else None
    spacing = parse_numbers(args.spacing, ndim, "--spacing") if args.spacing else None
    direction = direction_cosines(args.direction, ndim)
    check_grid_values(origin, dim, spacing)
    if like is not None:
        origin = origin or list(like.GetOrigin())
        spacing = spacing or list(like.GetSpacing())
        direction = direction or list(like.GetDirection())
        if dim is None:
            # keep the physical extent when only the spacing changes
            dim = [max(1, round(n * s0 / s)) for n, s0, s in zip(like.GetSize(), like.GetSpacing(), spacing)]
    missing = [k for k, v in (("--origin", origin), ("--dim", dim), ("--spacing", spacing)) if v is None]
    if missing:
        raise ImgSuiteError(f"an output grid needs {', '.join(missing)} too (or --fixed IMG)")
    return grid_image(origin, dim, spacing, direction)
