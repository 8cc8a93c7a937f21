"""Synthetic test images (plastimatch ``synth``): rect, sphere, x/y/z ramps, gauss, grid, plastimatch's lung and a thorax CT.

Geometry follows plastimatch: ``dim`` voxels (default 100) over ``volume_size`` mm (default 500) per axis, centred
on 0; an explicit ``spacing`` replaces the voxel size without moving the origin or changing ``dim``. Intensities default to foreground 0 and background -1000 (HU), float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError, check_number
from ..geometry import grid_image
from ..io.images import cast_image
from .synth_patterns import EXTRA_PATTERNS

PATTERNS = ("rect", "sphere", "xramp", "yramp", "zramp", "gauss", "grid", "lung", "thorax", *EXTRA_PATTERNS)


@dataclass
class Synthetic:
    """A synthetic image and, for patterns with anatomy, its structures (name -> uint8 mask on the image grid)."""

    image: sitk.Image
    structures: dict[str, sitk.Image] = field(default_factory=dict)
    colors: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def synth_grid(
    dim: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    origin: Sequence[float] | None = None,
    volume_size: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
    ndim: int = 3,
) -> sitk.Image:
    """plastimatch synth's output grid from partial options (see the module docstring)."""
    size_mm = np.array(volume_size if volume_size is not None else [500.0] * ndim, float)
    dim = np.array(dim if dim is not None else [100] * ndim, int)
    # as plastimatch: spacing and origin follow from volume size and dim; an explicit spacing replaces the
    # spacing but does not move the origin (so --dim 10 --spacing 10 starts at -225 mm, as plastimatch does)
    if origin is None:
        origin = -size_mm / 2 + size_mm / dim / 2
    if spacing is None:
        spacing = size_mm / dim
    return grid_image(origin, dim, spacing, direction)


def synth(
    pattern: str = "gauss",
    reference: sitk.Image | None = None,
    *,
    foreground: float = 0.0,
    background: float = -1000.0,
    rect_size: Sequence[float] | None = None,
    center: Sequence[float] | None = None,
    radius: Sequence[float] | None = None,
    gauss_center: Sequence[float] | None = None,
    gauss_std: Sequence[float] | None = None,
    grid_pattern: Sequence[int] | None = None,
    lung_tumor_pos: Sequence[float] | None = None,
    output_type: str = "float",
    **more,
) -> Synthetic:
    """Make a synthetic image on ``reference``'s grid (default: :func:`synth_grid`).

    Parameters
    ----------
    pattern : str
        ``rect`` (box: ``rect_size`` widths centred on 0, or corners ``x1 x2 y1 y2 z1 z2``; whole image by
        default), ``sphere`` (``center``, ``radius`` per axis, default 50 mm), ``xramp|yramp|zramp`` (the x, y or z
        coordinate minus the origin's, mm), ``gauss`` (``background + (foreground - background) *
        exp(-|x - c|^2 / 2 std^2)``, default centre 0 and std 100 mm), ``grid`` (lines every ``grid_pattern``
        voxels, default 10), ``lung`` (plastimatch's: a cylindrical chest wall 130-150 mm from the z axis in the
        foreground value, lung -700 HU inside, a 20 mm-radius tumour in the foreground value at
        ``lung_tumor_pos``, default 0 0 0 or 0 0 z; structures Body, Tumor, Lung), ``thorax`` (ours, not
        plastimatch's: an elliptic body 0 HU, two lungs -800 HU, a tumour in the left lung; structures Body,
        Lung_L, Lung_R, Tumor),
        ``cylinder``, ``donut``, ``dose``, ``noise``, ``gabor`` (see :mod:`.synth_patterns`; their options ``donut_center``,
        ``donut_radius``, ``donut_rings``, ``dose_center``, ``dose_size``, ``penumbra``, ``noise_mean``,
        ``noise_std``, ``seed``, ``gabor_k_fib`` come in ``more``; a "Foreground" structure with them).

    Examples
    --------
    >>> s = synth("sphere", synth_grid(dim=(10, 10, 10), spacing=(10, 10, 10), origin=(-45, -45, -45)))
    >>> int((sitk.GetArrayFromImage(s.image) == 0).sum())
    552
    """
    if pattern not in PATTERNS:
        raise ImgSuiteError(f"unknown --pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
    grid = reference if reference is not None else synth_grid()
    ndim = grid.GetDimension()
    # LPS mm of every voxel centre, shape (ndim, *numpy shape); the dose pattern on an axis-aligned grid needs
    # only one broadcastable line per axis
    xyz = _axes(grid) if pattern == "dose" and _axis_aligned(grid) else _physical(grid)
    fg, bg = float(foreground), float(background)
    for value, option in ((fg, "--foreground"), (bg, "--background")):
        check_number(value, option)
    structures = {}
    colors = {}
    if pattern == "rect":
        box = _box(rect_size, ndim)
        inside = np.ones(xyz.shape[1:], bool)
        for d in range(ndim):
            inside &= (xyz[d] >= box[2 * d]) & (xyz[d] <= box[2 * d + 1])
        values = np.where(inside, fg, bg)
    elif pattern == "sphere":
        c = _per_axis(center, ndim, 0.0, "--center")
        r = _per_axis(radius, ndim, 50.0, "--radius")
        values = np.where(sum(((xyz[d] - c[d]) / r[d]) ** 2 for d in range(ndim)) <= 1.0, fg, bg)
    elif pattern in ("xramp", "yramp", "zramp"):
        axis = "xyz".index(pattern[0])
        if axis >= ndim:
            raise ImgSuiteError(f"--pattern {pattern} needs a {axis + 1}D image")
        values = xyz[axis] - grid.GetOrigin()[axis]
    elif pattern == "gauss":
        c = _per_axis(gauss_center, ndim, 0.0, "--gauss-center")
        s = _per_axis(gauss_std, ndim, 100.0, "--gauss-std")
        f = np.exp(-0.5 * sum(((xyz[d] - c[d]) / s[d]) ** 2 for d in range(ndim)))
        values = (1 - f) * bg + f * fg
    elif pattern == "grid":
        g = [int(v) for v in _per_axis(grid_pattern, ndim, 10, "--grid-pattern")]
        # plastimatch numbers grid voxels from the physical position as if the grid were centred on 0
        size, spacing = grid.GetSize(), grid.GetSpacing()
        ijk = [np.trunc(xyz[d] / spacing[d] + size[d] // 2) for d in range(ndim)]
        on = sum((np.fmod(ijk[d], g[d]) == 0).astype(int) for d in range(ndim))
        values = np.where(on >= min(2, ndim), fg, bg)
    elif pattern == "lung":
        values, structures, colors = _plastimatch_lung(xyz, grid, lung_tumor_pos, fg=fg, bg=bg)
    elif pattern == "thorax":
        values, structures, colors = _thorax(xyz, grid, lung_tumor_pos)
    else:
        if pattern == "gabor":
            more = {**more, "gauss_center": gauss_center, "gauss_std": gauss_std}
        values, structures, colors = _extra(pattern, xyz, grid, fg=fg, bg=bg, center=center, radius=radius, more=more)
    image = sitk.GetImageFromArray(np.asarray(values, np.float32))
    image.CopyInformation(grid)
    return Synthetic(cast_image(image, output_type), structures, colors)


def _extra(pattern, xyz, grid, fg, bg, center, radius, more):
    """cylinder, donut, dose, noise (3D only) and their "Foreground" structure."""
    from . import synth_patterns as sp

    if grid.GetDimension() != 3:
        raise ImgSuiteError(f"--pattern {pattern} needs a 3D image")
    unknown = set(more) - {"donut_center", "donut_radius", "donut_rings", "dose_center", "dose_size", "penumbra",
                           "noise_mean", "noise_std", "seed", "gabor_k_fib", "gauss_center", "gauss_std"}  # fmt: skip
    if unknown:
        raise ImgSuiteError(f"synth: unknown option(s) {', '.join(sorted(unknown))}")
    for key in ("penumbra", "noise_mean", "noise_std"):
        check_number(more.get(key), "--" + key.replace("_", "-"))
    if pattern == "cylinder":
        values, inside = sp.cylinder(xyz, fg, bg, center, radius)
    elif pattern == "donut":
        values, inside = sp.donut(
            xyz, fg, bg, more.get("donut_center"), more.get("donut_radius"), more.get("donut_rings", 2)
        )
    elif pattern == "dose":
        values, inside = sp.dose(xyz, fg, bg, more.get("dose_center"), more.get("dose_size"), more.get("penumbra", 5.0))
    elif pattern == "gabor":
        values, inside = sp.gabor(xyz, fg, bg, more.get("gauss_center"), more.get("gauss_std"), more.get("gabor_k_fib"))
    else:
        values, inside = sp.noise(
            xyz.shape[1:], more.get("noise_mean", 0.0), more.get("noise_std", 1.0), more.get("seed")
        )
    return values, _masks(grid, {"Foreground": inside}), {"Foreground": (255, 0, 0)}


def _physical(grid: sitk.Image) -> np.ndarray:
    ndim = grid.GetDimension()
    shape = grid.GetSize()[::-1]
    d = np.array(grid.GetDirection()).reshape(ndim, ndim)
    m = d * np.array(grid.GetSpacing())  # columns scaled by spacing
    out = np.empty((ndim, *shape))
    for r in range(ndim):
        out[r] = grid.GetOrigin()[r]
        for c in range(ndim):
            if m[r, c] != 0:  # one broadcast line per index axis, added in place
                out[r] += m[r, c] * _line(grid, c)
    return out


def _line(grid: sitk.Image, axis: int) -> np.ndarray:
    """Voxel indices along ``axis`` (x = 0) shaped to broadcast over the (z, y, x) array."""
    ndim = grid.GetDimension()
    shape = [1] * ndim
    shape[ndim - 1 - axis] = grid.GetSize()[axis]
    return np.arange(grid.GetSize()[axis], dtype=np.float64).reshape(shape)


def _axis_aligned(grid: sitk.Image) -> bool:
    return bool(np.allclose(grid.GetDirection(), np.eye(grid.GetDimension()).ravel(), atol=0))


def _axes(grid: sitk.Image) -> list[np.ndarray]:
    """Like :func:`_physical` for an identity-direction grid, as broadcastable lines (no full arrays)."""
    return [grid.GetOrigin()[d] + grid.GetSpacing()[d] * _line(grid, d) for d in range(grid.GetDimension())]


def _per_axis(values, ndim: int, default: float, option: str) -> list[float]:
    if values is None:
        return [default] * ndim
    values = [float(v) for v in values]
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim:
        raise ImgSuiteError(f"{option} expects 1 or {ndim} numbers, got {values}")
    return values


def _box(rect_size, ndim: int) -> list[float]:
    if rect_size is None:
        return [-np.inf, np.inf] * ndim
    values = [float(v) for v in rect_size]
    if len(values) == 2 * ndim:
        return values
    widths = _per_axis(values, ndim, 0.0, "--rect-size")
    return [v for w in widths for v in (-w / 2, w / 2)]


LUNG_COLORS = {"Body": (177, 122, 101), "Lung_L": (197, 165, 145), "Lung_R": (197, 165, 145), "Tumor": (255, 0, 0),
               "Lung": (197, 165, 145)}  # fmt: skip


def _masks(grid: sitk.Image, masks: dict[str, np.ndarray]) -> dict[str, sitk.Image]:
    structures = {}
    for name, m in masks.items():
        image = sitk.GetImageFromArray(m.astype(np.uint8))
        image.CopyInformation(grid)
        structures[name] = image
    return structures


def _plastimatch_lung(xyz: np.ndarray, grid: sitk.Image, tumor_pos, *, fg: float, bg: float):
    """plastimatch's lung pattern: a cylinder about the z axis (chest wall 130-150 mm out, in the foreground
    value), lung -700 HU inside it, a tumour sphere of 20 mm radius (foreground value) at ``tumor_pos``."""
    if grid.GetDimension() != 3:
        raise ImgSuiteError("--pattern lung needs a 3D image")
    x, y, z = xyz
    tumor_pos = [0.0] if tumor_pos is None else [float(v) for v in tumor_pos]
    tx, ty, tz = [0.0, 0.0, *tumor_pos] if len(tumor_pos) == 1 else tumor_pos  # "z" or "x y z"
    axis_distance = np.sqrt(x * x + y * y)
    body = axis_distance <= 150.0
    inner = axis_distance <= 130.0
    tumor = inner & (np.sqrt((x - tx) ** 2 + (y - ty) ** 2 + (z - tz) ** 2) < 20.0)
    values = np.where(body, fg, bg)
    values[inner & ~tumor] = -700.0
    structures = _masks(grid, {"Body": body, "Tumor": tumor, "Lung": inner & ~tumor})
    return values, structures, {name: LUNG_COLORS[name] for name in structures}


def _thorax(xyz: np.ndarray, grid: sitk.Image, tumor_pos):
    """A simple thorax in air: elliptic body, two elliptic lungs, a spherical tumour in the left lung."""
    if grid.GetDimension() != 3:
        raise ImgSuiteError("--pattern thorax needs a 3D image")
    x, y, z = xyz
    body = (x / 150.0) ** 2 + (y / 100.0) ** 2 <= 1.0
    lung_l = ((x - 65.0) / 50.0) ** 2 + (y / 65.0) ** 2 + (z / 140.0) ** 2 <= 1.0  # patient left = +x (LPS)
    lung_r = ((x + 65.0) / 50.0) ** 2 + (y / 65.0) ** 2 + (z / 140.0) ** 2 <= 1.0
    if tumor_pos is None:
        tumor_pos = [65.0, 0.0, 0.0]
    elif len(tumor_pos) == 1:
        tumor_pos = [65.0, 0.0, float(tumor_pos[0])]
    tx, ty, tz = (float(v) for v in tumor_pos)
    tumor = (x - tx) ** 2 + (y - ty) ** 2 + (z - tz) ** 2 <= 15.0**2
    values = np.full(x.shape, -1000.0)
    values[body] = 0.0
    values[lung_l | lung_r] = -800.0
    values[tumor & body] = 0.0
    structures = _masks(
        grid, {"Body": body, "Lung_L": lung_l & ~tumor, "Lung_R": lung_r & ~tumor, "Tumor": tumor & body}
    )
    return values, structures, {name: LUNG_COLORS[name] for name in structures}
