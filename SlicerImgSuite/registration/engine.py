"""Multi-stage registration: each stage starts from the previous stage's transform.

Linear stages and non-MSE B-spline stages run on SimpleITK's ``ImageRegistrationMethod``; MSE B-spline
stages on the fast tensor-product engine (:mod:`.bspline`); ``vf`` stages on SimpleITK's symmetric
forces demons. The result maps fixed points to moving points (ITK convention), as
``CompositeTransform([stage 1, stage 2, ...])`` = stage1(stage2(...(x))). Consecutive linear stages fold
into one affine, and a B-spline stage (either engine) right after a B-spline stage refines that B-spline on
its own grid instead of adding a second one, as plastimatch does.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import coarse_grid, reaches, resample_like
from ..progress import Cancelled, ProgressCallback, no_progress, sub_progress
from .bspline import ControlGrid, bspline_stage, refit
from .cmdfile import engine_of, validate_stage

log = logging.getLogger("SlicerImgSuite.registration")

LINEAR = {"translation", "rigid", "affine", "align_center", "align_center_of_gravity"}
DEFAULTS = {
    "max_its": 50,
    "convergence_tol": 1e-5,
    "grad_tol": 1e-6,
    "res": [1, 1, 1],
    "grid_spac": [20.0, 20.0, 20.0],
    "regularization_lambda": 0.0,
    "landmark_penalty": 0.0,
    "demons_std": 1.5,
    "mi_histogram_bins": 32,
    "sampling": 0.2,
}


@dataclass
class StageReport:
    """What one stage did: metric before/after, iterations and why it stopped."""

    index: int
    xform: str
    metric: str
    initial_metric: float
    final_metric: float
    iterations: int
    stop_reason: str
    seconds: float
    warnings: list[str] = field(default_factory=list)
    history: list[float] = field(default_factory=list)  # metric per evaluation
    hit_limit: bool = False  # stopped at max_its
    jacobian_range: tuple[float, float] | None = None  # deformable stages: min and max Jacobian determinant

    def line(self) -> str:
        return (
            f"stage {self.index + 1} ({self.xform}, {self.metric}): metric {self.initial_metric:.6g} -> "
            f"{self.final_metric:.6g} in {self.iterations} iterations, {self.seconds:.1f} s ({self.stop_reason})"
        )


@dataclass
class RegistrationResult:
    """``transform`` maps fixed points to moving points; ``stages`` and ``warnings`` say how it went."""

    transform: sitk.Transform
    stages: list[StageReport]
    warnings: list[str]
    parts: list[sitk.Transform] = field(default_factory=list)
    similarity: str = ""  # MSE before -> after over the fixed voxels the moving image covers

    @property
    def log(self) -> str:
        lines = [s.line() for s in self.stages] + ([self.similarity] if self.similarity else [])
        return "\n".join(lines + [f"WARNING: {w}" for w in self.warnings])


def register_images(
    fixed: sitk.Image,
    moving: sitk.Image,
    stages: list[dict],
    progress: ProgressCallback | None = None,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    initial_transform: sitk.Transform | None = None,
    fixed_landmarks=None,
    moving_landmarks=None,
) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` through the stages of a plastimatch command file.

    Parameters
    ----------
    fixed, moving : sitk.Image
        3D scalar images in LPS.
    stages : list of dict
        One dict per ``[STAGE]`` with the command file's keys, e.g.
        ``{"xform": "bspline", "res": [2, 2, 1], "grid_spac": [20, 20, 20], "max_its": 50}``.
    fixed_mask, moving_mask : sitk.Image, optional
        Only voxels where the mask is non-zero count in the metric.
    initial_transform : sitk.Transform, optional
        Where the first stage starts (plastimatch ``xform_in``).
    fixed_landmarks, moving_landmarks : (N, 3) arrays, optional
        Corresponding points (LPS mm) for ``landmark_penalty`` (B-spline stages).

    Returns
    -------
    RegistrationResult
        ``.transform`` maps fixed points to moving points; ``.warnings`` lists stages that did not improve,
        stopped at their iteration limit while still improving, or folded.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> f = sitk.GaussianSource(sitk.sitkFloat32, [32] * 3, [4] * 3, [16] * 3)
    >>> m = sitk.GaussianSource(sitk.sitkFloat32, [32] * 3, [4] * 3, [18, 16, 16])
    >>> r = register_images(f, m, [{"xform": "translation", "max_its": 100}])
    >>> round(r.transform.TransformPoint([16, 16, 16])[0])
    18
    """
    progress = progress or no_progress
    if fixed.GetDimension() != 3 or moving.GetDimension() != 3:
        raise ImgSuiteError(f"registration needs 3D images, got {fixed.GetDimension()}D and {moving.GetDimension()}D")
    for name, image in (("fixed", fixed), ("moving", moving)):
        if min(image.GetSize()) < MIN_LEVEL_VOXELS:
            raise ImgSuiteError(f"the {name} image is {' x '.join(map(str, image.GetSize()))} voxels; registration "
                                f"needs at least {MIN_LEVEL_VOXELS} along each axis")
    if not stages:
        raise ImgSuiteError("no registration stage given")
    for name, mask in (("fixed", fixed_mask), ("moving", moving_mask)):
        if mask is not None and not np.any(sitk.GetArrayViewFromImage(mask)):  # ITK: an error or nothing done
            raise ImgSuiteError(f"the {name} mask ({name}_roi) has no non-zero voxel, so no point would be compared")
    stages = [validate_stage(s, i) for i, s in enumerate(stages)]
    fixed_f = sitk.Cast(fixed, sitk.sitkFloat32)
    moving_f = sitk.Cast(moving, sitk.sitkFloat32)
    parts: list[sitk.Transform] = [initial_transform] if initial_transform is not None else []
    reports: list[StageReport] = []
    warnings: list[str] = []
    if fixed_landmarks is None and any(s.get("landmark_penalty", 0) > 0 for s in stages):
        # the penalty weighed nothing and the landmarks the user meant were never read, unsaid
        warnings.append("landmark_penalty is set but no landmarks were given (fixed_landmarks and moving_landmarks): "
                        "no landmark term was used")  # fmt: skip
        log.warning(warnings[-1])
    weights = [_stage_weight(s) for s in stages]
    done = 0.0
    for i, stage in enumerate(stages):
        params = {**DEFAULTS, **stage}
        params["res"], too_coarse = _fitting_res(params["res"], fixed_f, moving_f, i)
        step = sub_progress(progress, done / sum(weights), (done + weights[i]) / sum(weights))
        done += weights[i]
        step(0.0, f"stage {i + 1}/{len(stages)}: {params['xform']}")
        t0 = time.monotonic()
        masks, landmarks = (fixed_mask, moving_mask), (fixed_landmarks, moving_landmarks)
        if not params["xform"].startswith("align_center"):  # the align stages are what brings images together
            _check_overlap(fixed_f, moving_f, parts, i, params["xform"])
        report, parts = _run_stage(fixed_f, moving_f, parts, params, i=i, masks=masks, landmarks=landmarks, step=step)
        report.seconds = time.monotonic() - t0
        report.warnings = too_coarse + report.warnings
        _judge(report, params, parts, fixed)
        for w in report.warnings:
            log.warning(w)
        log.info(report.line())
        warnings += report.warnings
        reports.append(report)
        step(1.0, report.line())
    result = RegistrationResult(compose(parts), reports, warnings, parts)
    before = covered_mse(fixed_f, moving_f, initial_transform)
    after = covered_mse(fixed_f, moving_f, result.transform)
    result.similarity = (
        f"MSE over the fixed voxels the moving image covers (points it does not cover left out): "
        f"{before[0]:.6g} ({100 * before[1]:.1f} % covered) -> {after[0]:.6g} ({100 * after[1]:.1f} % covered)"
    )
    log.info(result.similarity)
    return result


def _run_stage(fixed_f, moving_f, parts, params, *, i, masks, landmarks, step):
    """One stage of :func:`register_images` by its ``xform``: its report and the transforms so far."""
    xform = params["xform"]
    if xform in ("align_center", "align_center_of_gravity"):
        return _align_center(fixed_f, moving_f, parts, xform, i)
    if xform in LINEAR:
        return _linear_stage(
            fixed_f, moving_f, parts, params, index=i, fixed_mask=masks[0], moving_mask=masks[1], progress=step
        )
    if xform == "bspline":
        return _bspline_stage(
            fixed_f,
            moving_f,
            parts,
            params,
            index=i,
            fixed_mask=masks[0],
            moving_mask=masks[1],
            f_lm=landmarks[0],
            m_lm=landmarks[1],
            progress=step,
        )
    if xform == "vf":
        report, parts = _demons_stage(fixed_f, moving_f, parts, params, i, step)
        # ITK's demons filter takes no mask: the field came out the same with or without fixed_roi, unsaid
        roles = [name for name, mask in zip(("fixed_roi", "moving_roi"), masks) if mask is not None]
        if roles:
            report.warnings.append(
                f"stage {i + 1} (vf): {' and '.join(roles)} ignored; demons compares every voxel (only linear "
                "and B-spline stages use a mask)"
            )
        return report, parts
    raise ImgSuiteError(f"stage {i + 1}: xform {xform!r} is not supported")  # validate_stage rejects others


def _check_overlap(fixed: sitk.Image, moving: sitk.Image, parts, index: int, xform: str) -> None:
    """Refuse a stage that starts with no fixed voxel inside the moving image.

    ITK would only print "No valid points" and stop at once, so the start transform came back as the
    result and the command succeeded with an image of fill values.
    """
    if reaches(moving, fixed, compose(parts)):
        return

    def centre(image):
        return ", ".join(f"{c:.0f}" for c in image.TransformContinuousIndexToPhysicalPoint(
            [(n - 1) / 2 for n in image.GetSize()]))  # fmt: skip

    raise ImgSuiteError(
        f"stage {index + 1} ({xform}): the moving image does not overlap the fixed image where the stage starts "
        f"(no fixed voxel maps inside it; centres LPS ({centre(fixed)}) and ({centre(moving)}) mm): check the "
        "images' origins, or start with an xform=align_center stage"
    )


def compose(parts: list[sitk.Transform]) -> sitk.Transform:
    """One transform applying ``parts[-1]`` first and ``parts[0]`` last (stage order)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return sitk.Transform(3, sitk.sitkIdentity)
    if len(parts) == 1:
        return parts[0]
    composite = sitk.CompositeTransform(3)
    for p in parts:
        composite.AddTransform(p)
    return composite


def _stage_weight(stage: dict) -> float:
    res = stage.get("res", [1, 1, 1])
    its = stage.get("max_its", DEFAULTS["max_its"])
    heavy = 4.0 if stage.get("xform") in ("bspline", "vf") else 1.0
    return heavy * its / float(np.prod(res)) + 1.0


# voxels a shrunk level keeps along each axis at least: ITK's recursive Gaussian (smoothing, gradients) needs 4
MIN_LEVEL_VOXELS = 4


def _fitting_res(res, fixed: sitk.Image, moving: sitk.Image, index: int) -> tuple[list[int], list[str]]:
    """``res`` lowered where it would leave fewer than :data:`MIN_LEVEL_VOXELS` voxels along an axis of either
    image (ITK fails there), with a warning saying so."""
    smallest = np.minimum(fixed.GetSize(), moving.GetSize())
    fitting = [int(max(1, min(int(r), n // MIN_LEVEL_VOXELS))) for r, n in zip(res, smallest)]
    if fitting == [int(r) for r in res]:
        return fitting, []
    return fitting, [f"stage {index + 1}: res {' '.join(str(int(r)) for r in res)} would leave fewer than "
                     f"{MIN_LEVEL_VOXELS} voxels along an axis of the {' x '.join(map(str, smallest))} images; "
                     f"using res {' '.join(map(str, fitting))}"]


def _shrink(image: sitk.Image, res) -> sitk.Image:
    return image if all(r == 1 for r in res) else sitk.BinShrink(image, [int(r) for r in res])


def _is_linear(t: sitk.Transform) -> bool:
    return t.IsLinear() if hasattr(t, "IsLinear") else False


def _merge_linear(parts: list[sitk.Transform], new: sitk.Transform) -> list[sitk.Transform]:
    """Append ``new``; fold it into the previous part when both are linear (one affine, as plastimatch)."""
    if parts and _is_linear(parts[-1]) and _is_linear(new):
        return parts[:-1] + [_as_affine(compose([parts[-1], new]))]
    return parts + [new]


def _as_affine(t: sitk.Transform) -> sitk.AffineTransform:
    pts = np.array([[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100]], float)
    mapped = np.array([t.TransformPoint(p.tolist()) for p in pts])
    a = (mapped[1:] - mapped[0]).T / 100.0
    out = sitk.AffineTransform(3)
    out.SetMatrix(a.ravel().tolist())
    out.SetTranslation(mapped[0].tolist())
    return out


def _metric_name(params) -> str:
    return params.get("metric", "mse")


def _set_metric(method: sitk.ImageRegistrationMethod, params: dict, index: int) -> None:
    metric = _metric_name(params)
    if metric == "mse":
        method.SetMetricAsMeanSquares()
    elif metric == "mi":
        method.SetMetricAsMattesMutualInformation(int(params["mi_histogram_bins"]))
    elif metric == "nmi":
        method.SetMetricAsJointHistogramMutualInformation(int(params["mi_histogram_bins"]))
    elif metric == "ncc":
        method.SetMetricAsCorrelation()
    else:
        raise ImgSuiteError(f"stage {index + 1}: metric {metric!r} is not available; use mse, mi, nmi or ncc")
    fraction = float(params["sampling"])
    if 0 < fraction < 1:
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(fraction, 20261121)
    # background_val: handled through the fixed mask built by the caller


def _masks(method, fixed_mask, moving_mask, fixed_lvl, moving_lvl, params):
    fm = fixed_mask
    if params.get("background_val") is not None:
        bg = sitk.Cast(fixed_lvl > float(params["background_val"]), sitk.sitkUInt8)
        fm = bg if fm is None else sitk.And(bg, _on(fm, fixed_lvl))
    if fm is not None:
        method.SetMetricFixedMask(_on(fm, fixed_lvl))
    if moving_mask is not None:
        method.SetMetricMovingMask(_on(moving_mask, moving_lvl))


def _on(mask: sitk.Image, grid: sitk.Image) -> sitk.Image:
    return sitk.Resample(sitk.Cast(mask != 0, sitk.sitkUInt8), grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0)


def _new_linear(xform: str, fixed: sitk.Image) -> sitk.Transform:
    center = fixed.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in fixed.GetSize()])
    if xform == "translation":
        return sitk.TranslationTransform(3)
    if xform == "rigid":
        t = sitk.VersorRigid3DTransform()
    else:
        t = sitk.AffineTransform(3)
    t.SetCenter(center)
    return t


class _CancelWatch:
    """Runs ``report`` as ``process``'s iteration command; a Cancelled raised in it comes out of
    :meth:`execute` as Cancelled, not as a failed stage.

    An exception cannot cross SimpleITK's C++ callback intact (it prints a traceback and becomes a
    RuntimeError), so a cancel is remembered and the process asked to stop: gradient descent and demons stop
    after this iteration. LBFGS2 ignores the request, so its next iteration event throws out of Execute,
    with stderr muted while SimpleITK prints that traceback.
    """

    def __init__(self, process, report):
        self.process, self.report = process, report
        self.cancelled = False
        self._stderr = None
        process.AddCommand(sitk.sitkIterationEvent, self._command)

    def _command(self):
        if not self.cancelled:
            try:
                self.report()
            except Cancelled:
                self.cancelled = True
                self.process.StopRegistration()
            return
        if self._stderr is None:
            self._stderr, sys.stderr = sys.stderr, io.StringIO()
        raise Cancelled()

    def execute(self, what: str, *inputs):
        try:
            out = self.process.Execute(*inputs)
        except RuntimeError as exc:
            if self.cancelled:
                raise Cancelled() from None
            raise ImgSuiteError(f"{what} failed: {str(exc).strip().splitlines()[-1]}") from None
        finally:
            if self._stderr is not None:
                sys.stderr, self._stderr = self._stderr, None
        if self.cancelled:
            raise Cancelled()
        return out


def _linear_stage(fixed, moving, parts, params, index, fixed_mask, moving_mask, progress):
    xform = params["xform"]
    res = params["res"]
    f_lvl = sitk.SmoothingRecursiveGaussian(fixed, [0.5 * r * s for r, s in zip(res, fixed.GetSpacing())])
    m_lvl = sitk.SmoothingRecursiveGaussian(moving, [0.5 * r * s for r, s in zip(res, moving.GetSpacing())])
    f_lvl, m_lvl = _shrink(f_lvl, res), _shrink(m_lvl, res)
    method = sitk.ImageRegistrationMethod()
    _set_metric(method, params, index)
    _masks(method, fixed_mask, moving_mask, f_lvl, m_lvl, params)
    max_its = int(params["max_its"])
    max_step = float(params.get("max_step", 4.0 * max(np.array(f_lvl.GetSpacing()))))
    min_step = float(params.get("min_step", 0.01))
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=max_step,
        minStep=min_step,
        numberOfIterations=max_its,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=float(params["grad_tol"]),
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInterpolator(sitk.sitkLinear)
    prior = compose(parts) if parts else None
    if prior is not None:
        method.SetMovingInitialTransform(prior)
    new = _new_linear(xform, fixed)
    method.SetInitialTransform(new, inPlace=True)
    history: list[float] = []

    def on_iteration():
        history.append(method.GetMetricValue())
        progress(min(len(history) / max_its, 0.99), f"{xform}: metric {history[-1]:.5g}")

    watch = _CancelWatch(method, on_iteration)
    initial = method.MetricEvaluate(f_lvl, m_lvl)
    watch.execute(f"stage {index + 1} ({xform})", f_lvl, m_lvl)
    final = method.MetricEvaluate(f_lvl, m_lvl)
    iterations = method.GetOptimizerIteration()
    stop = method.GetOptimizerStopConditionDescription()
    if np.isfinite(initial) and not final <= initial:
        # regular steps leave an optimum by a whole max_step first: a stage never returns a worse place than
        # its start (a CT against its own half, aligned, came out 13 mm off: MSE 0 -> 1880, plastimatch kept 0)
        new, final, stop = _new_linear(xform, fixed), initial, "the metric got worse: the start is kept"
    report = StageReport(
        index=index,
        xform=xform,
        metric=_metric_name(params),
        initial_metric=initial,
        final_metric=final,
        iterations=iterations,
        stop_reason=_short(stop),
        seconds=0.0,
        history=history,
        hit_limit=iterations >= max_its,
    )
    return report, _merge_linear(parts, new)


def _short(text: str) -> str:
    text = text.strip().split(".")[0]
    return text.split(":", 1)[-1].strip() if ":" in text else text


def _align_center(fixed, moving, parts, xform, index):
    how = sitk.CenteredTransformInitializerFilter.GEOMETRY
    if xform == "align_center_of_gravity":
        how = sitk.CenteredTransformInitializerFilter.MOMENTS
    if parts:  # after a start (mabs pre-alignment) or earlier stages: the moving image as they place it
        prior = compose(parts)
        fill = float(np.min(sitk.GetArrayViewFromImage(moving)))
        moving = sitk.Resample(moving, fixed, prior, sitk.sitkLinear, fill)
    # first stage: the images themselves, as plastimatch (resampled onto the fixed grid first, the moving image
    # had the fixed grid's centre: align_center moved nothing where plastimatch moves by the centres' difference)
    init = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(), how)
    shift = sitk.TranslationTransform(3, list(init.GetTranslation()))
    report = StageReport(
        index=index,
        xform=xform,
        metric="-",
        initial_metric=float("nan"),
        final_metric=float("nan"),
        iterations=0,
        stop_reason="centres aligned",
        seconds=0.0,
    )
    return report, _merge_linear(parts, shift)


def _bspline_stage(fixed, moving, parts, params, index, fixed_mask, moving_mask, f_lm, m_lm, progress):
    if engine_of(params) == "itk_bspline":
        return _itk_bspline_stage(
            fixed, moving, parts, params, index=index, fixed_mask=fixed_mask, moving_mask=moving_mask, progress=progress
        )
    linear, initial = _split_for_bspline(parts, index)
    out = bspline_stage(
        fixed,
        moving,
        params["grid_spac"],
        linear=linear,
        initial=initial,
        res=params["res"],
        max_its=int(params["max_its"]),
        convergence_tol=float(params["convergence_tol"]),
        grad_tol=float(params["grad_tol"]),
        regularization_lambda=float(params["regularization_lambda"]),
        landmark_penalty=float(params["landmark_penalty"]),
        fixed_landmarks=f_lm,
        moving_landmarks=m_lm,
        fixed_mask=fixed_mask,
        moving_mask=moving_mask,
        background_val=params.get("background_val"),
        progress=progress,
    )
    report = StageReport(
        index=index,
        xform="bspline",
        metric="mse",
        initial_metric=out.initial_metric,
        final_metric=out.final_metric,
        iterations=out.iterations,
        stop_reason=out.stop_reason,
        seconds=0.0,
        history=out.history,
        hit_limit=out.hit_limit,
    )
    new_parts = ([linear] if linear is not None else []) + [out.transform]
    return report, new_parts


def _pop_bspline(parts):
    """(the parts before it, the B-spline that ends ``parts`` or None)."""
    rest = list(parts)
    if rest and isinstance(rest[-1], sitk.BSplineTransform):
        return rest[:-1], rest[-1]
    if rest and rest[-1].GetName() == "BSplineTransform":
        return rest[:-1], sitk.BSplineTransform(rest[-1])
    return rest, None


def _as_field(t: sitk.Transform, grid: sitk.Image) -> sitk.DisplacementFieldTransform:
    from .vf import field_transform, transform_to_field

    return field_transform(transform_to_field(t, grid))


def _split_for_bspline(parts, index):
    """(linear part, earlier B-spline or None): the fast engine optimises L(x + u(x))."""
    rest, initial = _pop_bspline(parts)
    if any(not _is_linear(p) for p in rest):
        raise ImgSuiteError(
            f"stage {index + 1}: a B-spline stage can follow linear stages and one B-spline stage only "
            "(use impl=itk after a vf stage)"
        )
    linear = _as_affine(compose(rest)) if rest else None
    return linear, initial


def _itk_bspline_stage(fixed, moving, parts, params, index, fixed_mask, moving_mask, progress):
    res = params["res"]
    f_lvl = _shrink(fixed, res)
    m_lvl = _shrink(moving, res)
    # ITK optimises through the moving initial transform only where every part of it has a Jacobian with
    # respect to position; a BSplineTransform has none. So, as the fast engine and plastimatch do, an
    # earlier B-spline that ends the chain is refitted onto this stage's grid and optimised further
    # (T = before(x + u(x)), one B-spline, exact for nested grids); any other B-spline in the chain (say,
    # before a vf stage) becomes a displacement field on the fixed grid.
    before, earlier = _pop_bspline(parts)
    prior = [p if _is_linear(p) or p.GetName() == "DisplacementFieldTransform" else _as_field(p, f_lvl) for p in before]
    method = sitk.ImageRegistrationMethod()
    _set_metric(method, params, index)
    _masks(method, fixed_mask, moving_mask, f_lvl, m_lvl, params)
    mesh = [
        max(1, int(np.ceil((n - 1) * s / g)))
        for n, s, g in zip(fixed.GetSize(), fixed.GetSpacing(), params["grid_spac"])
    ]
    new = sitk.BSplineTransformInitializer(fixed, mesh, 3)
    if earlier is not None:
        grid, _ = ControlGrid.from_sitk(new)
        new.SetParameters(refit(earlier, grid).ravel().tolist())
    max_its = int(params["max_its"])
    method.SetOptimizerAsLBFGS2(solutionAccuracy=float(params["convergence_tol"]), numberOfIterations=max_its)
    method.SetInterpolator(sitk.sitkLinear)
    if prior:
        method.SetMovingInitialTransform(compose(prior))
    method.SetInitialTransform(new, inPlace=True)
    history: list[float] = []

    def on_iteration():
        history.append(method.GetMetricValue())
        progress(min(len(history) / max_its, 0.99), f"B-spline (ITK): metric {history[-1]:.5g}")

    watch = _CancelWatch(method, on_iteration)
    initial = method.MetricEvaluate(f_lvl, m_lvl)
    watch.execute(f"stage {index + 1} (bspline, ITK)", f_lvl, m_lvl)
    final = method.MetricEvaluate(f_lvl, m_lvl)
    iterations = method.GetOptimizerIteration()
    report = StageReport(
        index=index, xform="bspline", metric=_metric_name(params), initial_metric=initial, final_metric=final,
        iterations=iterations, stop_reason=_short(method.GetOptimizerStopConditionDescription()), seconds=0.0,
        history=history, hit_limit=iterations >= max_its,
    )  # fmt: skip
    return report, before + [new]


def _demons_stage(fixed, moving, parts, params, index, progress):
    res = params["res"]
    f_lvl = _shrink(fixed, res)
    prior = compose(parts) if parts else sitk.Transform(3, sitk.sitkIdentity)
    m_warp = sitk.Resample(moving, f_lvl, prior, sitk.sitkLinear, 0.0)
    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    max_its = int(params["max_its"])
    demons.SetNumberOfIterations(max_its)
    demons.SetStandardDeviations(float(params["demons_std"]))
    history: list[float] = []

    def on_iteration():
        # demons' own metric: its MSE where the images overlap, as each iteration starts
        history.append(demons.GetMetric())
        progress(min(len(history) / max_its, 0.99), f"demons: metric {history[-1]:.5g}")

    watch = _CancelWatch(demons, on_iteration)
    initial = covered_mse(f_lvl, moving, prior)[0]
    field = watch.execute(f"stage {index + 1} (vf)", f_lvl, m_warp)
    if not all(r == 1 for r in res):
        field = sitk.Resample(field, fixed, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkVectorFloat64)
    field = sitk.Cast(field, sitk.sitkVectorFloat64)
    vf = sitk.DisplacementFieldTransform(sitk.Image(field))
    # on the grid the start was measured on (f_lvl), so the two numbers compare
    final = covered_mse(f_lvl, moving, compose(parts + [vf]))[0]
    its = demons.GetElapsedIterations()
    stop = "iteration limit" if its >= max_its else f"RMS field change below {demons.GetMaximumRMSError():g}"
    report = StageReport(
        index=index,
        xform="vf",
        metric="mse",
        initial_metric=initial,
        final_metric=final,
        iterations=its,
        stop_reason=stop,
        seconds=0.0,
        history=history,
        hit_limit=its >= max_its,
    )
    return report, parts + [vf]


def covered_mse(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform | None = None) -> tuple[float, float]:
    """Mean squared difference of ``fixed`` and ``moving`` seen through ``transform`` (fixed -> moving), over
    the fixed voxels whose mapped point lies inside the moving image, and the fraction of voxels that do.

    Points the moving image does not cover are left out (no fill value enters the figure).

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> a = sitk.Image([10, 10, 10], sitk.sitkFloat32) + 1
    >>> covered_mse(a, a * 3, sitk.TranslationTransform(3, [5, 0, 0]))
    (4.0, 0.5)
    """
    transform = transform or sitk.Transform(3, sitk.sitkIdentity)
    warped = sitk.Resample(sitk.Cast(moving, sitk.sitkFloat32), fixed, transform, sitk.sitkLinear, float("nan"))
    w = sitk.GetArrayViewFromImage(warped)
    inside = np.isfinite(w)
    if not inside.any():
        return float("nan"), 0.0
    d = w[inside] - sitk.GetArrayFromImage(fixed)[inside].astype(np.float32)  # a copy: no view of a temporary
    return float(np.mean(d.astype(np.float64) ** 2)), float(inside.mean())


def _judge(report: StageReport, params: dict, parts, fixed: sitk.Image) -> None:
    """Warn when a stage did not improve its metric, stopped at its limit still improving, or folded."""
    where = f"stage {report.index + 1} ({report.xform})"
    a, b = report.initial_metric, report.final_metric
    if np.isfinite(a) and np.isfinite(b) and not b < a - 1e-6 * abs(a):
        report.warnings.append(f"{where}: the metric did not improve ({a:.6g} -> {b:.6g})")
    hist = report.history
    if report.hit_limit and len(hist) >= 4:
        # still improving: the last tenth of the evaluations (at least two) gained more than 0.5 % of the
        # value and of the stage's whole gain (a metric near zero, as demons' on a clean match, is not news)
        tail = hist[-max(2, len(hist) // 10) - 1] - hist[-1]
        if tail > 0.005 * abs(hist[-1]) and tail > 0.005 * (hist[0] - hist[-1]):
            report.warnings.append(
                f"{where}: stopped at its iteration limit ({params['max_its']}) while still improving "
                f"({100 * tail / abs(hist[-1]):.1f}% in its last iterations); raise max_its"
            )
    if report.xform in ("bspline", "vf"):
        from .vf import jacobian_determinant

        coarse = coarse_grid(fixed)
        jac = sitk.GetArrayFromImage(jacobian_determinant(compose(parts[-1:]), coarse))
        folded = int(np.sum(jac <= 0))
        report.jacobian_range = (float(jac.min()), float(jac.max()))
        if folded:
            report.warnings.append(
                f"{where}: the field folds ({folded} voxels with Jacobian determinant <= 0, min {jac.min():.3f}); "
                "raise regularization_lambda or grid_spac"
            )


def fill_value(image: sitk.Image) -> float:
    """What a warp writes where the moving image has no data: air (-1000 HU) for a CT, else its minimum.

    A CT is recognised by values at or below -500 (HU); a CT padded below air (e.g. -3024) is still filled
    with air, so the padding does not spread into the patient.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> fill_value(sitk.Image([4, 4, 4], sitk.sitkInt16) - 3024), fill_value(sitk.Image([4, 4, 4], sitk.sitkUInt8))
    (-1000.0, 0.0)
    """
    low = float(np.min(sitk.GetArrayViewFromImage(image)))
    return -1000.0 if low <= -500 else low


def warp_image(
    image: sitk.Image,
    transform: sitk.Transform | None,
    reference: sitk.Image,
    interpolation: str = "linear",
    default_value: float = 0,
) -> sitk.Image:
    """Resample ``image`` (the moving) onto ``reference``'s grid through ``transform`` (fixed -> moving).

    ``interpolation`` is ``"linear"``, ``"bspline"`` or ``"nn"``/``"nearest"`` (labelmaps: bit-exact values).
    The pixel type of ``image`` is kept.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> img = sitk.Image([8, 8, 8], sitk.sitkUInt8) + 3
    >>> warp_image(img, sitk.TranslationTransform(3, [1, 0, 0]), img, "nn")[0, 0, 0]
    3
    """
    if image.GetDimension() != reference.GetDimension():
        raise ImgSuiteError(f"cannot warp a {image.GetDimension()}D image onto a {reference.GetDimension()}D grid")
    if transform is not None and transform.GetDimension() != image.GetDimension():  # SimpleITK: a traceback
        raise ImgSuiteError(f"cannot warp a {image.GetDimension()}D image with a {transform.GetDimension()}D transform")
    return resample_like(image, reference, interpolation, default_value, transform)
