"""Gamma index (Low et al. 1998) with a sub-voxel interpolated search.

For every reference point above the low-dose threshold, gamma is the minimum over search points
r of sqrt(|r|^2 / DTA^2 + (De(r) - Dr)^2 / dD^2). The evaluated dose is interpolated (trilinear) at
search points on a lattice of step ``resolution_mm`` (DTA/10 by default) around the point, searched
by increasing distance; a point stops as soon as the distance term alone exceeds its best gamma,
so the pass rate does not depend on the dose grid's voxel size.
"""

from __future__ import annotations

import warnings

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError, check_number
from ..geometry import covered_by, resample_like, same_grid
from ..progress import ProgressCallback, no_progress
from .dose import FRAME_KEY, check_dose_values


def gamma_index(
    reference: sitk.Image,
    evaluation: sitk.Image,
    *,
    dose_percent: float = 3.0,
    dta_mm: float = 3.0,
    local: bool = False,
    threshold_percent: float = 10.0,
    reference_dose: float | None = None,
    max_gamma: float = 2.0,
    resolution_mm: float | None = None,
    progress: ProgressCallback | None = None,
    mask: sitk.Image | None = None,
    ref_only_threshold: bool = True,
    compute_full_region: bool = False,
    resample_nn: bool = False,
    sources: tuple = ("the reference dose", "the evaluated dose"),
) -> tuple[sitk.Image, float]:
    """Gamma image and pass rate (% of evaluated points with gamma <= 1).

    Parameters
    ----------
    reference, evaluation : SimpleITK.Image
        Doses (any units, the same for both). ``evaluation`` is resampled onto ``reference``'s
        grid when the grids differ.
    dose_percent : float
        Dose-difference criterion, % of ``reference_dose`` (global) or of the local reference dose.
    dta_mm : float
        Distance to agreement, mm.
    local : bool
        Local instead of global normalisation.
    threshold_percent : float
        Reference points below this % of ``reference_dose`` are not evaluated (gamma image = -1 there);
        with ``ref_only_threshold=False`` only points where both doses lie below it (plastimatch's default).
    reference_dose : float, optional
        Global normalisation dose; the reference maximum by default.
    max_gamma : float
        The search stops at ``max_gamma * dta_mm``; larger values are reported as ``max_gamma``.
    resolution_mm : float, optional
        Search lattice step; DTA / 10 by default. Use the voxel size to mimic a voxel-only search.
    mask : SimpleITK.Image, optional
        Only its non-zero voxels are evaluated (nearest voxel when its grid differs).
    ref_only_threshold : bool
        The threshold looks at the reference dose alone (the default here; plastimatch's
        ``--ref-only-threshold``). ``imgsuite gamma`` follows plastimatch: both doses unless the option is given.
    compute_full_region : bool
        Gamma also below the threshold (inside the mask) in the image; the pass rate is unchanged.
    resample_nn : bool
        Nearest-neighbour instead of linear resampling of ``evaluation`` onto the reference grid.
    progress : callable, optional
        ``(fraction, message)`` during the search.
    sources : tuple, optional
        How errors name ``reference`` and ``evaluation`` (their files on the command line).

    Returns
    -------
    gamma : SimpleITK.Image
        Gamma per reference voxel (float32; -1 where not evaluated).
    pass_rate : float
        Percentage of the evaluated voxels with gamma <= 1.

    Examples
    --------
    >>> planned = sitk.Image(8, 8, 4, sitk.sitkFloat32) + 2.0
    >>> measured = planned * 1.02  # 2 % higher everywhere: inside 3 %/3 mm
    >>> gamma, rate = gamma_index(planned, measured, dose_percent=3, dta_mm=3)
    >>> rate
    100.0
    """
    progress = progress or no_progress
    _check_criteria(dose_percent, dta_mm, threshold_percent, reference_dose, max_gamma, resolution_mm)
    _check_doses(reference, evaluation, sources)
    ref = sitk.GetArrayFromImage(sitk.Cast(reference, sitk.sitkFloat64))
    ev, uncovered = _on_reference_grid(evaluation, reference, resample_nn)
    norm = _normalisation(ref, reference_dose, sources[0])
    spacing_zyx = np.array(reference.GetSpacing()[::-1], float)
    analysed, evaluated = _analysis_region(
        ref,
        ev,
        reference=reference,
        threshold=threshold_percent / 100.0 * norm,
        mask=mask,
        ref_only=ref_only_threshold,
        full=compute_full_region,
        source=sources[0],
    )
    _warn_uncovered(analysed, uncovered)
    dr = ref[evaluated]
    tol = dose_percent / 100.0 * (np.abs(dr) if local else np.full_like(dr, norm))
    tol = np.maximum(tol, 1e-12)
    lattice = _search_offsets(float(resolution_mm or dta_mm / 10.0), dta_mm, max_gamma)
    best = _search(ev, evaluated, dr, tol=tol, spacing_zyx=spacing_zyx, lattice=lattice, progress=progress)
    gamma = np.full(ref.shape, -1.0, np.float32)
    gamma[evaluated] = np.minimum(np.sqrt(best), max_gamma)
    rate = 100.0 * float(np.mean(gamma[analysed] <= 1.0))  # analysed is never empty (_analysis_region)
    image = sitk.GetImageFromArray(gamma)
    image.CopyInformation(reference)
    progress(1.0, f"gamma pass rate {rate:.1f} %")
    return image, rate


def _check_doses(reference: sitk.Image, evaluation: sitk.Image, sources) -> None:
    """Refuse uncertainty grids, and doses of two Frames of Reference (both known): their coordinates do not
    match, so a pass rate would be noise (two exports of one plan in different frames passed at 100 %)."""
    check_dose_values(reference, sources[0])
    check_dose_values(evaluation, sources[1])
    frames = [d.GetMetaData(FRAME_KEY).strip() if d.HasMetaDataKey(FRAME_KEY) else "" for d in (reference, evaluation)]
    if all(frames) and frames[0] != frames[1]:
        raise ImgSuiteError(
            f"Frame of Reference mismatch: FrameOfReferenceUID (0020,0052) is {frames[0]} here and {frames[1]} in "
            f"{sources[1]}; register the doses first",
            sources[0],
        )


def _normalisation(ref: np.ndarray, reference_dose: float | None, source) -> float:
    """The global normalisation dose: ``reference_dose``, else the reference maximum, which a blank grid (a dose
    never computed) lacks: its tolerance would be 0 and a blank evaluated grid passed at 100 %."""
    norm = float(reference_dose if reference_dose is not None else ref.max())
    if not norm > 0:
        raise ImgSuiteError(
            f"the reference dose is {norm:g} Gy at most: no global normalisation dose (give --reference-dose)", source
        )
    return norm


def _on_reference_grid(evaluation: sitk.Image, reference: sitk.Image, nearest: bool) -> tuple[np.ndarray, np.ndarray]:
    """The evaluated dose on the reference grid (0 beyond its own grid) and where it had no value."""
    if same_grid(reference, evaluation):
        ev = sitk.GetArrayFromImage(sitk.Cast(evaluation, sitk.sitkFloat64))
        return ev, np.zeros(ev.shape, bool)
    on_ref = resample_like(sitk.Cast(evaluation, sitk.sitkFloat64), reference, "nearest" if nearest else "linear")
    return sitk.GetArrayFromImage(on_ref), ~covered_by(evaluation, reference)


def _warn_uncovered(analysed: np.ndarray, uncovered: np.ndarray) -> None:
    """Say how many analysed reference points lie beyond the evaluated dose grid (0 there: they fail)."""
    n = int(np.count_nonzero(analysed & uncovered))
    if n:
        warnings.warn(
            f"{n} of the {int(np.count_nonzero(analysed))} analysed reference voxels ({100 * n / analysed.sum():.1f} %) "
            "lie outside the evaluated dose grid; its dose there is 0, so most of them fail (as in plastimatch)",
            stacklevel=3,
        )


def _check_criteria(dose_percent, dta_mm, threshold_percent, reference_dose, max_gamma, resolution_mm) -> None:
    """Refuse criteria that would give a pass rate no one asked for (the options named as on the command line)."""
    if not (np.isfinite(dose_percent) and 0 < dose_percent <= 100):
        raise ImgSuiteError(f"--dose-tolerance must be a fraction in (0, 1] (0.03 is 3 %), got {dose_percent / 100:g}")
    for value, option in ((dta_mm, "--dta-tolerance"), (reference_dose, "--reference-dose"),
                          (max_gamma, "--gamma-max"), (resolution_mm, "--search-step")):  # fmt: skip
        check_number(value, option, positive=True)
    if not (np.isfinite(threshold_percent) and 0 <= threshold_percent < 100):
        raise ImgSuiteError(f"--analysis-threshold must be a fraction in [0, 1), got {threshold_percent / 100:g}")
    points = (2 * max_gamma * dta_mm / (resolution_mm or dta_mm / 10.0) + 1) ** 3
    if points > 1e7:
        raise ImgSuiteError(
            f"--gamma-max {max_gamma:g} x --dta-tolerance {dta_mm:g} mm searched in steps of "
            f"{resolution_mm or dta_mm / 10.0:g} mm: {points:.3g} search points; take a larger --search-step"
        )


def _search(ev, evaluated, dr, *, tol, spacing_zyx, lattice, progress) -> np.ndarray:
    """Squared gamma of each evaluated point: the evaluation dose searched over the ``lattice`` (offsets in mm,
    nearest first, and their squared distances in DTA units) until no point can improve."""
    from scipy.ndimage import map_coordinates

    offsets, dist2 = lattice
    points = np.array(np.nonzero(evaluated), float)  # (3, n) voxel indices z, y, x
    best = ((ev[evaluated] - dr) / tol) ** 2  # r = 0
    # search points outside the grid are clamped to the grid edge voxel (a DTA search cannot leave the data)
    active = np.nonzero(best > 0)[0]
    for n, (offset, d2) in enumerate(zip(offsets, dist2)):
        if n % 200 == 0:
            progress(n / len(offsets), f"gamma search, {active.size} points left")
        active = active[best[active] > d2]
        if active.size == 0:
            break
        coords = points[:, active] + (offset / spacing_zyx)[:, None]
        value = map_coordinates(ev, coords, order=1, mode="nearest")
        best[active] = np.minimum(best[active], d2 + ((value - dr[active]) / tol[active]) ** 2)
    return best


def _search_offsets(step: float, dta_mm: float, max_gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Lattice offsets (mm, z y x) within ``max_gamma * dta_mm``, nearest first, and their (distance / DTA)^2."""
    radius = int(np.ceil(max_gamma * dta_mm / step))
    grid = np.arange(-radius, radius + 1) * step
    oz, oy, ox = np.meshgrid(grid, grid, grid, indexing="ij")
    offsets = np.column_stack([oz.ravel(), oy.ravel(), ox.ravel()])
    dist2 = (offsets**2).sum(axis=1) / dta_mm**2
    keep = (dist2 > 0) & (dist2 <= max_gamma**2 + 1e-9)
    order = np.argsort(dist2[keep], kind="stable")
    return offsets[keep][order], dist2[keep][order]


def _analysis_region(ref, ev, reference, threshold, mask, ref_only, full, source) -> tuple[np.ndarray, np.ndarray]:
    """The points counted in the pass rate and the points whose gamma is computed (plastimatch's rules); none
    counted (a mask beside the dose, a threshold above it) is refused: the pass rate was NaN."""
    inside = np.ones(ref.shape, bool)
    if mask is not None:
        if not same_grid(mask, reference):
            mask = resample_like(mask, reference, "nearest")
        inside = sitk.GetArrayFromImage(mask) != 0
    analysed = ref >= threshold
    if not ref_only:
        analysed |= ev >= threshold
    analysed &= inside
    if not analysed.any():
        raise ImgSuiteError(
            f"no voxel is analysed: none at or above the --analysis-threshold ({threshold:g} Gy)"
            f"{' inside --mask' if mask is not None else ''}, so there is no pass rate",
            source,
        )
    return analysed, (inside if full else analysed)
