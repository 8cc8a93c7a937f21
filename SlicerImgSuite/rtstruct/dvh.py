"""Dose-volume histograms and dose statistics per structure.

The dose is resampled (trilinear) onto the structure grid, not the reverse: the structure grid is
normally the finer one, and in accurate mode it carries each voxel's covered fraction, which is
the voxel's weight. Dx and Vx are read from the exact weighted dose distribution, not from bins.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import covered_by, resample_like
from .rasterize import Grid, RoiMask


def dose_samples(mask: RoiMask, dose: sitk.Image, reference: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Dose (Gy) at each voxel of a structure and the voxel's volume in cc (weighted by coverage).

    ``mask`` lives on ``reference``'s grid; ``dose`` may have any grid (resampled linearly,
    0 outside the dose grid, as plastimatch counts it; a warning names the structure and the volume
    that lies outside).
    """
    from .dose import check_dose_values

    check_dose_values(dose)
    if not mask.array.size:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    grid = Grid.of(reference)
    i, j, k = mask.offset
    nz, ny, nx = mask.array.shape
    box = grid.sub_grid((i, j, k), (nx, ny, nz))
    box_image = box.image(np.zeros((nz, ny, nx), np.uint8))
    on_box = sitk.GetArrayFromImage(resample_like(sitk.Cast(dose, sitk.sitkFloat32), box_image))
    weight = mask.array.astype(np.float32)
    inside = weight > 0
    voxel_cc = float(np.prod(grid.spacing)) / 1000.0
    _warn_outside_dose(mask, weight[~covered_by(dose, box_image)], weight, voxel_cc)
    return on_box[inside].astype(np.float32), weight[inside] * np.float32(voxel_cc)


def _warn_outside_dose(mask: RoiMask, weight_outside: np.ndarray, weight: np.ndarray, voxel_cc: float) -> None:
    """Warn when part of a structure lies beyond the dose grid (its dose there is unknown, counted as 0 Gy)."""
    outside = float(weight_outside.sum()) * voxel_cc
    total = float(weight.sum()) * voxel_cc
    if outside > 0:
        warnings.warn(
            f"{outside:.3g} cc of structure {mask.roi.name!r} ({100 * outside / total:.1f} % of its {total:.3g} cc) "
            "lies outside the dose grid; the DVH counts it at 0 Gy",
            stacklevel=3,
        )


def dose_at_volume(doses: np.ndarray, volumes: np.ndarray, percent: float) -> float:
    """Dx: the highest dose that ``percent`` % of the structure's volume receives."""
    if doses.size == 0:
        return float("nan")
    order = np.argsort(doses)[::-1]
    d, cum = doses[order], np.cumsum(volumes[order])
    target = percent / 100.0 * cum[-1]
    n = int(np.searchsorted(cum, target - 1e-12 * cum[-1]))
    return float(d[min(n, len(d) - 1)])


def volume_at_dose(doses: np.ndarray, volumes: np.ndarray, dose_gy: float, relative: bool = True) -> float:
    """Vx: the volume receiving at least ``dose_gy`` (percent of the structure, or cc)."""
    v = float(volumes[doses >= dose_gy].sum())
    total = float(volumes.sum())
    return 100.0 * v / total if relative and total > 0 else v


def dose_statistics(
    doses: np.ndarray,
    volumes: np.ndarray,
    d_percents: Sequence[float] = (99, 98, 95, 50, 5, 2, 1),
    v_doses: Sequence[float] = (5, 10, 20, 30),
) -> dict[str, float]:
    """Volume (cc), min/mean/max dose (Gy), Dx (Gy) and Vx (%) of one structure.

    Examples
    --------
    >>> s = dose_statistics(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4))
    >>> s["mean"], s["D50"], s["V20Gy"]
    (2.5, 3.0, 0.0)
    """
    total = float(volumes.sum())
    stats = {"volume_cc": total}
    if doses.size == 0:
        return stats | {"min": np.nan, "mean": np.nan, "max": np.nan}
    stats.update({"min": float(doses.min()), "mean": float(np.sum(doses * volumes) / total), "max": float(doses.max())})
    for p in d_percents:
        stats[f"D{p:g}"] = dose_at_volume(doses, volumes, p)
    for g in v_doses:
        stats[f"V{g:g}Gy"] = volume_at_dose(doses, volumes, g)
    return stats


_MOST_BINS = 10_000_000  # 0.1 Gy bins up to 1 MGy: more only comes from a mistaken dose scale or bin width


def dvh(
    doses: np.ndarray,
    volumes: np.ndarray,
    bin_width: float = 0.1,
    num_bins: int | None = None,
    cumulative: bool = True,
    max_dose: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A DVH: bin lower edges (Gy) and the volume (cc) per bin (differential) or at or above it (cumulative).

    Examples
    --------
    >>> edges, v = dvh(np.array([0.5, 1.5]), np.array([1.0, 1.0]), bin_width=1.0, num_bins=3)
    >>> edges.tolist(), v.tolist()
    ([0.0, 1.0, 2.0], [2.0, 1.0, 0.0])
    """
    if not (np.isfinite(bin_width) and bin_width > 0):
        raise ImgSuiteError(f"--bin-width must be a finite number of Gy > 0, got {bin_width:g}")
    if num_bins is None:
        top = max_dose if max_dose is not None else (float(doses.max()) if doses.size else 0.0)
        if not np.isfinite(top / bin_width) or top / bin_width > _MOST_BINS:
            raise ImgSuiteError(
                f"a dose up to {top:g} Gy in bins of --bin-width {bin_width:g} Gy needs more than {_MOST_BINS:.0e} bins "
                "(check --dose-scale and the dose units)"
            )
        num_bins = int(np.floor(top / bin_width)) + 2
    if not 1 <= num_bins <= _MOST_BINS:
        raise ImgSuiteError(f"--num-bins must be between 1 and {_MOST_BINS:.0e}, got {num_bins}")
    edges = np.arange(num_bins) * bin_width
    index = np.clip(np.floor(doses / bin_width).astype(np.int64), 0, num_bins - 1)
    diff = np.bincount(index, weights=volumes, minlength=num_bins)[:num_bins].astype(float)  # float even when empty
    if cumulative:
        return edges, np.cumsum(diff[::-1])[::-1]
    return edges, diff


# what a DVH curve holds: fraction of the structure (plastimatch's "pct"), cc, or voxels
NORMALIZATIONS = ("pct", "cc", "vox")


@dataclass
class DvhTable:
    """DVHs of several structures on one dose axis, and their statistics (:func:`dose_statistics`)."""

    names: list[str]
    edges: np.ndarray  # bin lower edges, Gy
    curves: list[np.ndarray]  # one per structure, in the table's normalization
    stats: list[dict[str, float]]
    normalization: str


def dvh_table(
    masks: Sequence[RoiMask],
    dose: sitk.Image,
    reference: sitk.Image,
    *,
    bin_width: float = 0.1,
    num_bins: int | None = None,
    cumulative: bool = True,
    normalization: str = "cc",
) -> DvhTable:
    """The DVH of every structure under a dose, with one bin axis up to the highest dose in any of them.

    The one DVH computation behind ``imgsuite dvh`` and the RT Structures module's DVH table.

    Parameters
    ----------
    masks : sequence of RoiMask
        The structures, on ``reference``'s grid (coverage weights allowed).
    dose : SimpleITK.Image
        Dose in Gy, on any grid (resampled linearly onto the structures).
    reference : SimpleITK.Image
        The grid of ``masks``.
    bin_width, num_bins : float, int, optional
        Bin width (Gy) and count (default: up to the highest dose).
    cumulative : bool, optional
        Volume at or above each bin (default), or per bin.
    normalization : {"pct", "cc", "vox"}, optional
        Curves as a fraction of the structure, in cc (default), or in voxels.

    Examples
    --------
    >>> from SlicerImgSuite.rtstruct.structure_set import Roi
    >>> grid = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    >>> dose = sitk.Image([4, 4, 4], sitk.sitkFloat32) + 2.0
    >>> mask = RoiMask(Roi(1, "cube"), (0, 0, 0), np.ones((2, 2, 2), bool))
    >>> table = dvh_table([mask], dose, grid, bin_width=1.0, normalization="vox")
    >>> table.edges.tolist(), np.round(table.curves[0], 3).tolist(), table.stats[0]["mean"]
    ([0.0, 1.0, 2.0, 3.0], [8.0, 8.0, 8.0, 0.0], 2.0)
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {normalization!r}")
    samples = [dose_samples(m, dose, reference) for m in masks]
    top = max((float(d.max()) for d, _ in samples if d.size), default=0.0)
    columns = [dvh(d, v, bin_width, num_bins, cumulative, max_dose=top) for d, v in samples]
    voxel_cc = float(np.prod(reference.GetSpacing())) / 1000.0
    curves = []
    for (_, volumes), (_, curve) in zip(samples, columns):
        if normalization == "pct":
            curve = curve / max(float(volumes.sum()), 1e-12)
        elif normalization == "vox":
            curve = curve / voxel_cc
        curves.append(curve)
    edges = columns[0][0] if columns else np.zeros(0)
    stats = [dose_statistics(d, v) for d, v in samples]
    return DvhTable([m.roi.name for m in masks], edges, curves, stats, normalization)


def refined_grid(reference: sitk.Image, factor: Sequence[int] = (1, 1, 4)) -> sitk.Image:
    """``reference``'s grid with each voxel split ``factor`` times per axis (same extent).

    Rasterizing onto it and sampling the dose there gives each sub-slice its own dose, which
    matters for dose gradients along the slice normal (the Nelms superior-inferior cases).

    Examples
    --------
    >>> g = refined_grid(sitk.Image(4, 4, 2, sitk.sitkUInt8), (1, 1, 4))
    >>> g.GetSize(), g.GetSpacing()[2], g.GetOrigin()[2]
    ((4, 4, 8), 0.25, -0.375)
    """
    grid = Grid.of(reference).sub_grid((0, 0, 0), reference.GetSize(), factor)
    return grid.image(np.zeros(grid.size[::-1], np.uint8))
