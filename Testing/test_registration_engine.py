"""The registration engine on real CTs: known deformations, 4D lung phases, warnings, transforms."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.progress import Cancelled
from SlicerImgSuite.registration import (
    field_transform,
    register_images,
    synth_vf,
    transform_to_field,
    vf_stats,
    warp_image,
)
from SlicerImgSuite.registration.bspline import ControlGrid, tensor_apply


@pytest.fixture(scope="session")
def lung(shared_data):
    from SlicerImgSuite.io import read_image

    folder = shared_data / "opentps-4dct-light-lung"
    return read_image(folder / "00"), read_image(folder / "50")


@pytest.fixture(scope="session")
def sts_ct(shared_data):
    path = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "nifti" / "CT_image.nii.gz"
    return sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32)[:, :, 10:46]  # 36 slices: CI time


def known_field(reference: sitk.Image) -> sitk.Image:
    """A smooth field, |u| <= 10 mm: two Gaussian bumps and a small shift."""
    c = np.array(reference.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in reference.GetSize()]))
    a = synth_vf(reference, "gaussian", center=c + [20, 10, 0], magnitude=(6, -4, 3), std=(35, 35, 50))
    b = synth_vf(reference, "gaussian", center=c - [30, 20, 20], magnitude=(-3, 4, -3), std=(30, 30, 40))
    arr = sitk.GetArrayFromImage(a) + sitk.GetArrayFromImage(b) + np.array([1.5, -1.0, 0.5])
    out = sitk.GetImageFromArray(arr, isVector=True)
    out.CopyInformation(reference)
    return out


def test_bspline_layout_matches_itk():
    """Our tensor-product evaluation and ITK's BSplineTransform agree point by point (coefficient layout)."""
    ref = sitk.Image([30, 25, 12], sitk.sitkFloat32)
    ref.SetSpacing([2.0, 2.5, 4.0])
    ref.SetOrigin([-10.0, 5.0, 100.0])
    grid = ControlGrid.covering(ref, [15.0, 20.0, 18.0])
    rng = np.random.default_rng(1)
    coef = rng.normal(0, 2, (3, *grid.shape_zyx))
    t = grid.to_sitk(coef)
    rel0 = np.array(ref.GetOrigin()) - grid.origin
    axes = [rel0[d] + np.arange(ref.GetSize()[d]) * ref.GetSpacing()[d] for d in range(3)]
    b = [grid.basis(d, axes[d]) for d in range(3)]
    ours = np.stack([tensor_apply(coef[c].astype(np.float32), b[2], b[1], b[0]) for c in range(3)], -1)
    itk = sitk.GetArrayFromImage(transform_to_field(t, ref))
    assert np.abs(ours - itk).max() < 1e-3 * np.abs(itk).max()


def test_known_deformation_of_a_real_ct_is_recovered(sts_ct):
    """Acceptance: <= 0.5 mm mean and <= 2 mm max error inside the body for a <= 10 mm smooth field."""
    # the fixed CT is the moving one deformed, on a slightly smaller field of view (all of it maps inside)
    inner = sitk.RegionOfInterest(
        sts_ct, [s - 24 for s in sts_ct.GetSize()[:2]] + [sts_ct.GetSize()[2] - 4], [12, 12, 2]
    )
    truth = known_field(inner)
    fixed = warp_image(sts_ct, field_transform(truth), inner, "bspline", -1000)  # fixed(x) = ct(x + u(x))
    stages = [
        {"xform": "translation", "res": [4, 4, 1], "max_its": 50},
        {"xform": "bspline", "res": [4, 4, 1], "grid_spac": [40, 40, 40], "max_its": 50},
        {"xform": "bspline", "res": [2, 2, 1], "grid_spac": [20, 20, 20], "max_its": 60, "regularization_lambda": 10},
        {"xform": "bspline", "res": [1, 1, 1], "grid_spac": [20, 20, 20], "max_its": 40, "regularization_lambda": 10},
    ]
    result = register_images(fixed, sts_ct, stages)
    assert np.linalg.norm(sitk.GetArrayViewFromImage(truth), axis=-1).max() <= 10
    got = sitk.GetArrayFromImage(transform_to_field(result.transform, fixed))
    body = sitk.GetArrayViewFromImage(fixed) > -500
    err = np.linalg.norm(got - sitk.GetArrayViewFromImage(truth), axis=-1)[body]
    assert err.mean() <= 0.5, err.mean()
    assert err.max() <= 2.0, err.max()
    assert [s.xform for s in result.stages] == ["translation", "bspline", "bspline", "bspline"]
    assert all(s.final_metric < s.initial_metric for s in result.stages)
    assert vf_stats(transform_to_field(result.transform, fixed))["folded_voxels"] == 0


def _lung_mask(ct: sitk.Image) -> sitk.Image:
    """Lungs: air inside the body (not connected to the outside air)."""
    air = sitk.Cast(ct < -400, sitk.sitkUInt8)
    labels = sitk.ConnectedComponent(air)
    arr = sitk.GetArrayFromImage(labels)
    border = set(np.unique(np.concatenate([arr[:, 0].ravel(), arr[:, -1].ravel(), arr[:, :, 0].ravel(),
                                           arr[:, :, -1].ravel()])))  # fmt: skip
    inside = np.isin(arr, [v for v in np.unique(arr) if v not in border]) & (arr > 0)
    out = sitk.GetImageFromArray(inside.astype(np.uint8))
    out.CopyInformation(ct)
    return out


def _dice(a, b) -> float:
    a, b = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    return 2 * np.sum(a & b) / (a.sum() + b.sum())


def _ncc(a, b) -> float:
    a, b = sitk.GetArrayViewFromImage(a).ravel(), sitk.GetArrayViewFromImage(b).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_4dct_phase_0_to_50_improves_over_rigid(lung):
    """Acceptance: NCC and lung Dice improve over rigid, no folding (real breathing motion)."""
    fixed, moving = (sitk.Cast(i, sitk.sitkFloat32) for i in lung)
    rigid = [{"xform": "rigid", "res": [2, 2, 1], "max_its": 100}]
    deformable = rigid + [
        {"xform": "bspline", "res": [2, 2, 1], "grid_spac": [40, 40, 40], "max_its": 50},
        {"xform": "bspline", "res": [1, 1, 1], "grid_spac": [20, 20, 24], "max_its": 50, "regularization_lambda": 0.01},
    ]
    r_rigid = register_images(fixed, moving, rigid)
    r_def = register_images(fixed, moving, deformable)
    f_lung, m_lung = _lung_mask(fixed), _lung_mask(moving)
    w_rigid = warp_image(moving, r_rigid.transform, fixed, "linear", -1024)
    w_def = warp_image(moving, r_def.transform, fixed, "linear", -1024)
    lung_rigid = warp_image(m_lung, r_rigid.transform, fixed, "nn")
    lung_def = warp_image(m_lung, r_def.transform, fixed, "nn")
    assert _ncc(fixed, w_def) > _ncc(fixed, w_rigid) + 0.005
    assert _dice(f_lung, lung_def) > _dice(f_lung, lung_rigid) + 0.01
    stats = vf_stats(transform_to_field(r_def.parts[-1], fixed))
    assert stats["folded_voxels"] == 0 and stats["jacobian_min"] > 0.2


def test_rigid_recovers_a_5mm_shift_of_a_real_ct(sts_ct):
    """plastimatch's rigid stage stalled at 1.7 mm of a 5 mm shift; ours must get there."""
    shift = sitk.TranslationTransform(3, [4.0, -2.5, 1.5])  # |s| = 5 mm, sub-voxel in every axis
    moving = warp_image(sts_ct, shift.GetInverse(), sts_ct, "linear", -1000)  # moving(x + s) = ct(x)
    fixed = sts_ct[12:-12, 12:-12, 3:-3]  # a smaller field of view, all of it inside the moving one
    result = register_images(fixed, moving, [{"xform": "rigid", "res": [2, 2, 1], "max_its": 200}])
    p = np.array(sts_ct.TransformContinuousIndexToPhysicalPoint([99, 101, 18]))
    moved = np.array(result.transform.TransformPoint(p.tolist())) - p
    assert np.abs(moved - [4.0, -2.5, 1.5]).max() < 0.15, moved


def test_direction_fixed_to_moving_and_merged_linear_stages():
    f = sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [5] * 3, [20] * 3, 100)
    m = sitk.GaussianSource(sitk.sitkFloat32, [40] * 3, [5] * 3, [23, 20, 18], 100)
    r = register_images(f, m, [{"xform": "align_center_of_gravity"}, {"xform": "translation", "max_its": 50}])
    assert np.allclose(r.transform.TransformPoint([20, 20, 20]), [23, 20, 18], atol=0.2)
    assert len(r.parts) == 1 and r.transform.IsLinear()  # linear stages fold into one affine


def test_warnings_for_no_improvement_and_iteration_limit(lung):
    fixed = sitk.Cast(lung[0], sitk.sitkFloat32)
    same = register_images(fixed, fixed, [{"xform": "translation", "max_its": 20}])
    assert any("did not improve" in w for w in same.warnings)
    moving = sitk.Cast(lung[1], sitk.sitkFloat32)
    short = register_images(fixed, moving, [{"xform": "bspline", "grid_spac": [30] * 3, "max_its": 10}])
    assert any("iteration limit (10)" in w for w in short.warnings), short.warnings
    assert "WARNING" in short.log


def test_folding_is_reported():
    from SlicerImgSuite.registration.engine import StageReport, _judge

    ref = sitk.Image([30, 30, 30], sitk.sitkFloat32)
    ref.SetSpacing([2, 2, 2])
    folding = synth_vf(ref, "radial", radius=(20, 20, 20), magnitude=(-40, -40, -40))
    report = StageReport(
        index=0,
        xform="vf",
        metric="mse",
        initial_metric=2.0,
        final_metric=1.0,
        iterations=5,
        stop_reason="",
        seconds=0.0,
    )
    _judge(report, {"max_its": 5}, [field_transform(folding)], ref)
    assert any("folds" in w for w in report.warnings)
    assert vf_stats(folding)["folded_voxels"] > 0


def test_masks_landmarks_itk_and_demons_paths():
    f = sitk.GaussianSource(sitk.sitkFloat32, [32] * 3, [6] * 3, [16] * 3, 100)
    m = sitk.GaussianSource(sitk.sitkFloat32, [32] * 3, [6] * 3, [18, 16, 16], 100)
    mask = sitk.Image([32] * 3, sitk.sitkUInt8) + 1
    lm_f, lm_m = np.array([[16.0, 16.0, 16.0]]), np.array([[18.0, 16.0, 16.0]])
    stages = [{"xform": "bspline", "grid_spac": [10] * 3, "max_its": 30, "landmark_penalty": 10.0}]
    r = register_images(f, m, stages, fixed_mask=mask, fixed_landmarks=lm_f, moving_landmarks=lm_m)
    assert np.allclose(r.transform.TransformPoint([16, 16, 16]), [18, 16, 16], atol=0.3)
    itk = register_images(f, m, [{"xform": "bspline", "impl": "itk", "metric": "mi", "grid_spac": [16] * 3,
                                  "max_its": 20}])  # fmt: skip
    assert itk.stages[0].final_metric < itk.stages[0].initial_metric
    demons = register_images(f, m, [{"xform": "vf", "max_its": 30, "demons_std": 1.0}])
    assert demons.transform.GetName() == "CompositeTransform" or demons.parts[-1].GetName().startswith("Displacement")
    assert demons.stages[0].final_metric < demons.stages[0].initial_metric
    with pytest.raises(ImgSuiteError, match="bad value 'gm' for metric"):
        register_images(f, m, [{"xform": "rigid", "metric": "gm"}])


def test_a_mask_given_to_a_demons_stage_is_said_to_be_ignored():
    # the field came out the same with or without fixed_roi, and nothing said so
    f = sitk.GaussianSource(sitk.sitkFloat32, [24] * 3, [5] * 3, [12] * 3, 100)
    m = sitk.GaussianSource(sitk.sitkFloat32, [24] * 3, [5] * 3, [13, 12, 12], 100)
    half = sitk.Image([24] * 3, sitk.sitkUInt8)
    half[:12, :, :] = 1
    stages = [{"xform": "vf", "max_its": 5}]
    masked = register_images(f, m, stages, fixed_mask=half, moving_mask=half)
    assert any("stage 1 (vf): fixed_roi and moving_roi ignored" in w for w in masked.warnings), masked.warnings
    assert not any("ignored" in w for w in register_images(f, m, stages).warnings)
    linear = register_images(f, m, [{"xform": "translation", "max_its": 5}], fixed_mask=half)
    assert not any("ignored" in w for w in linear.warnings)


def test_a_landmark_penalty_without_landmarks_says_so():
    # "landmark_penalty = 10" with fixed_landmarks forgotten ran without any landmark term, and nothing said so
    f = sitk.GaussianSource(sitk.sitkFloat32, [24] * 3, [5] * 3, [12] * 3, 100)
    m = sitk.GaussianSource(sitk.sitkFloat32, [24] * 3, [5] * 3, [13, 12, 12], 100)
    stages = [{"xform": "bspline", "grid_spac": [12] * 3, "max_its": 3, "landmark_penalty": 10.0}]
    assert any("landmark_penalty is set but no landmarks" in w for w in register_images(f, m, stages).warnings)
    lm_f, lm_m = np.array([[24.0, 24.0, 24.0]]), np.array([[25.0, 24.0, 24.0]])
    with_lm = register_images(f, m, stages, fixed_landmarks=lm_f, moving_landmarks=lm_m)
    assert not any("landmark_penalty" in w for w in with_lm.warnings)


def test_progress_and_cancel():
    f = sitk.GaussianSource(sitk.sitkFloat32, [24] * 3, [5] * 3, [12] * 3, 100)
    seen = []
    register_images(f, f, [{"xform": "bspline", "grid_spac": [12] * 3, "max_its": 5}], lambda x, m: seen.append(x))
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)

    def cancel(fraction, message):
        if fraction > 0.2:
            raise Cancelled()

    m = sitk.GaussianSource(sitk.sitkFloat32, [24] * 3, [5] * 3, [14, 12, 12], 100)
    with pytest.raises(Cancelled):
        register_images(f, m, [{"xform": "bspline", "grid_spac": [12] * 3, "max_its": 50}], cancel)


def _blobs():
    f = sitk.GaussianSource(sitk.sitkFloat32, [32] * 3, [6] * 3, [16] * 3, 100)
    return f, sitk.GaussianSource(sitk.sitkFloat32, [32] * 3, [6] * 3, [18, 16, 16], 100)


@pytest.mark.parametrize(
    "stage",
    [
        {"xform": "rigid", "max_its": 50},
        {"xform": "affine", "max_its": 50},
        {"xform": "vf", "max_its": 30},
        {"xform": "bspline", "impl": "itk", "grid_spac": [16] * 3, "max_its": 30},  # LBFGS2 ignores stop requests
    ],
    ids=["rigid", "affine", "demons", "itk-bspline"],
)
def test_cancel_inside_simpleitk_stages_is_cancelled_not_failed(stage, capsys):
    calls = []

    def cancel_after_first(fraction, message):
        calls.append(fraction)
        if len(calls) > 1:
            raise Cancelled()

    f, m = _blobs()
    with pytest.raises(Cancelled):
        register_images(f, m, [stage], cancel_after_first)
    assert len(calls) == 2  # the stage start, then the first iteration: nothing reported after the cancel
    assert "Traceback" not in capsys.readouterr().err  # SimpleITK's print of the unwinding is kept quiet


def test_demons_metrics_share_a_grid_and_the_iteration_limit_is_judged():
    f, m = _blobs()
    short = register_images(f, m, [{"xform": "vf", "max_its": 5, "res": [2, 2, 2], "demons_std": 1.0}])
    coarse = sitk.BinShrink(f, [2, 2, 2])

    def mse_on_coarse(transform):  # over the voxels the moving image covers (issue 12: no fill value counted)
        moved = sitk.Resample(m, coarse, transform, sitk.sitkLinear, float("nan"))
        return float(np.nanmean((sitk.GetArrayFromImage(coarse) - sitk.GetArrayFromImage(moved)) ** 2))

    report = short.stages[0]
    assert report.initial_metric == pytest.approx(mse_on_coarse(sitk.Transform()), rel=1e-6)
    assert report.final_metric == pytest.approx(mse_on_coarse(short.transform), rel=1e-6)
    assert report.stop_reason == "iteration limit"
    assert any("stopped at its iteration limit (5) while still improving" in w for w in short.warnings)
    settled = register_images(f, m, [{"xform": "vf", "max_its": 30, "demons_std": 1.0}])
    assert not any("iteration limit" in w for w in settled.warnings), settled.warnings


@pytest.fixture(scope="module")
def smooth_pair():
    """(fixed, moving, truth): smoothed noise (texture at every scale, 24^3 voxels of 3.5 mm) and
    fixed(x) = moving(x + u(x)) for two Gaussian bumps, |u| <= 3.8 mm, finer than a 60 mm grid can follow."""
    rng = np.random.default_rng(3)
    moving = sitk.GetImageFromArray(rng.normal(0, 1, (24, 24, 24)).astype(np.float32))
    moving.SetSpacing([3.5] * 3)
    moving = sitk.RescaleIntensity(sitk.SmoothingRecursiveGaussian(moving, 3.0), 0, 1000)
    c = np.array(moving.TransformContinuousIndexToPhysicalPoint([11.5] * 3))
    a = synth_vf(moving, "gaussian", center=c + [10, 5, 0], magnitude=(3, -2, 1.5), std=(14, 14, 14))
    b = synth_vf(moving, "gaussian", center=c - [12, 10, 8], magnitude=(-2, 2.5, -2), std=(10, 10, 10))
    truth = sitk.GetImageFromArray(sitk.GetArrayFromImage(a) + sitk.GetArrayFromImage(b), isVector=True)
    truth.CopyInformation(moving)
    return warp_image(moving, field_transform(truth), moving, "bspline", 0), moving, truth


def _errors(transform, fixed, truth):
    """(mean, max) distance in mm to the true field, 4 voxels in from the border."""
    got = sitk.GetArrayFromImage(transform_to_field(transform, fixed))
    err = np.linalg.norm(got - sitk.GetArrayViewFromImage(truth), axis=-1)[4:-4, 4:-4, 4:-4]
    return float(err.mean()), float(err.max())


def _inner_ncc(fixed, moving, transform):
    inner = fixed[4:-4, 4:-4, 4:-4]  # named: _ncc reads array views, which need the images alive
    warped = warp_image(moving, transform, inner, "linear", 0)
    return _ncc(inner, warped)


COARSE_MI = {"xform": "bspline", "metric": "mi", "grid_spac": [60] * 3, "max_its": 15}
FINE_MI = {"xform": "bspline", "metric": "mi", "grid_spac": [24] * 3, "max_its": 15}


def test_two_stage_mi_bspline_coarse_then_fine(smooth_pair):
    """Two ITK B-spline stages: the second continues the first (it failed with ITK's "ComputeJacobianWithRespect-
    ToPosition not yet implemented" when the first sat in the moving initial transform).

    Error to the true field (mean/max mm, 4 voxels in from the border): none 0.84/3.79, coarse 0.47/3.27,
    coarse + fine 0.34/1.89; NCC there: 0.959 -> 0.980 -> 0.991.
    """
    fixed, moving, truth = smooth_pair
    coarse = register_images(fixed, moving, [COARSE_MI])
    both = register_images(fixed, moving, [COARSE_MI, FINE_MI])
    assert [s.metric for s in both.stages] == ["mi", "mi"]
    assert all(s.final_metric < s.initial_metric for s in both.stages), both.log
    # the fine stage starts where the coarse one ended: its B-spline refitted onto the finer grid
    assert both.stages[1].initial_metric == pytest.approx(both.stages[0].final_metric, rel=1e-3)
    assert len(both.parts) == 1 and both.transform.GetName() == "BSplineTransform"
    e0, e1, e2 = (_errors(t, fixed, truth) for t in (sitk.Transform(), coarse.transform, both.transform))
    assert e1[0] < 0.7 * e0[0], (e0, e1)
    assert e2[0] < 0.8 * e1[0] and e2[0] < 0.4, (e1, e2)
    assert e2[1] < 0.7 * e1[1], (e1, e2)
    n0, n1, n2 = (_inner_ncc(fixed, moving, t) for t in (sitk.Transform(), coarse.transform, both.transform))
    assert n2 > n1 + 0.005 and n1 > n0 + 0.01, (n0, n1, n2)


@pytest.mark.parametrize(
    "first, second",
    [
        ({**COARSE_MI, "metric": "mse"}, FINE_MI),  # fast engine, then ITK
        (COARSE_MI, {**FINE_MI, "metric": "mse"}),  # ITK, then the fast engine
    ],
    ids=["native-then-itk", "itk-then-native"],
)
def test_native_and_itk_bspline_stages_chain(smooth_pair, first, second):
    fixed, moving, truth = smooth_pair
    r = register_images(fixed, moving, [{"xform": "translation", "max_its": 20}, first, second])
    assert r.stages[2].final_metric < r.stages[2].initial_metric, r.log
    # one chain fixed -> moving: the linear stage, then the B-spline both stages refined
    assert [p.GetName() for p in r.parts] == ["AffineTransform", "BSplineTransform"]
    mean, _ = _errors(r.transform, fixed, truth)
    assert mean < 0.5 * _errors(sitk.Transform(), fixed, truth)[0], mean


def test_itk_bspline_after_bspline_and_vf_stages(smooth_pair):
    """A B-spline inside the chain (not last) reaches ITK as a displacement field; the result keeps it."""
    fixed, moving, _ = smooth_pair
    itk_mse = {**FINE_MI, "metric": "mse", "impl": "itk", "max_its": 5}
    stages = [{**COARSE_MI, "metric": "mse"}, {"xform": "vf", "max_its": 10}, itk_mse]
    r = register_images(fixed, moving, stages)
    assert [p.GetName() for p in r.parts] == ["BSplineTransform", "DisplacementFieldTransform", "BSplineTransform"]
    assert r.stages[2].final_metric < r.stages[2].initial_metric, r.log


def test_cancel_in_a_second_itk_bspline_stage(smooth_pair, capsys):
    fixed, moving, _ = smooth_pair
    calls = []

    def cancel_in_stage_2(fraction, message):
        calls.append(message)
        if fraction > 0.5 and message.startswith("B-spline (ITK)"):
            raise Cancelled()

    with pytest.raises(Cancelled):
        register_images(fixed, moving, [COARSE_MI, FINE_MI], cancel_in_stage_2)
    assert calls[-1].startswith("B-spline (ITK)") and any(m.startswith("stage 2/2") for m in calls)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("xform", ["translation", "bspline", "vf"])
def test_res_too_coarse_for_a_small_image_is_lowered_with_a_warning(xform):
    # res 1 5 1 on 16 voxels left 3: ITK's recursive Gaussian (or BinShrink) failed with a traceback
    z, y, x = np.mgrid[:8, :16, :16].astype(np.float32)
    fixed = sitk.GetImageFromArray(100 * np.exp(-((x - 8) ** 2 + (y - 8) ** 2 + (z - 4) ** 2) / 12))
    moving = sitk.GetImageFromArray(100 * np.exp(-((x - 9) ** 2 + (y - 8) ** 2 + (z - 4) ** 2) / 12))
    result = register_images(fixed, moving, [{"xform": xform, "res": [1, 5, 9], "max_its": 3, "grid_spac": [8] * 3}])
    assert any("res 1 5 9 would leave fewer than 4 voxels" in w and "using res 1 4 2" in w for w in result.warnings)
    thin = sitk.GetImageFromArray(np.zeros((3, 16, 16), np.float32))
    with pytest.raises(ImgSuiteError, match="the fixed image is 16 x 16 x 3 voxels; registration needs at least 4"):
        register_images(thin, moving, [{"xform": "translation"}])


@pytest.mark.parametrize("xform", ["translation", "bspline"])
def test_images_that_do_not_overlap_are_refused_not_registered(tmp_path, capsys, xform):
    # a moving image 500 mm away: ITK only printed "No valid points", the stage stopped at once and the
    # command wrote an image of fill values with exit 0. Now: exit 2 naming the file and stage, nothing written;
    # an align_center stage first brings them together and the same stage then runs
    from SlicerImgSuite.cli import main

    box = np.zeros((20, 40, 40), np.float32)
    box[5:15, 10:30, 10:30] = 100
    for name, origin in (("fixed", (0, 0, 0)), ("moving", (500, 500, 500))):
        image = sitk.GetImageFromArray(box)
        image.SetSpacing((2, 2, 2))
        image.SetOrigin(origin)
        sitk.WriteImage(image, str(tmp_path / f"{name}.mha"))
    head = f"[GLOBAL]\nfixed={tmp_path / 'fixed.mha'}\nmoving={tmp_path / 'moving.mha'}\nimg_out={tmp_path / 'out.mha'}\n"
    stage = f"[STAGE]\nxform={xform}\nmax_its=5\n"
    (tmp_path / "cmd.txt").write_text(head + stage)
    assert main(["register", str(tmp_path / "cmd.txt")]) == 2
    err = capsys.readouterr().err
    assert "cmd.txt: stage 1" in err and "does not overlap" in err and "Traceback" not in err
    assert not (tmp_path / "out.mha").exists()
    (tmp_path / "aligned.txt").write_text(head + "[STAGE]\nxform=align_center\n" + stage)
    assert main(["register", str(tmp_path / "aligned.txt")]) == 0
    assert (tmp_path / "out.mha").exists()


def test_an_empty_roi_is_refused_before_registering(tmp_path, capsys):
    # fixed_roi with no voxel in it: the translation stage failed with ITK's raw error after its "No valid
    # points" warning, the B-spline stage wrote its start transform with exit 0
    from SlicerImgSuite.cli import main

    box = np.zeros((20, 40, 40), np.float32)
    box[5:15, 10:30, 10:30] = 100
    image = sitk.GetImageFromArray(box)
    sitk.WriteImage(image, str(tmp_path / "fixed.mha"))
    sitk.WriteImage(sitk.Resample(image, sitk.TranslationTransform(3, (2, 0, 0))), str(tmp_path / "moving.mha"))
    sitk.WriteImage(sitk.Cast(image * 0, sitk.sitkUInt8), str(tmp_path / "roi.mha"))
    for xform in ("translation", "bspline"):
        (tmp_path / "cmd.txt").write_text(
            f"[GLOBAL]\nfixed={tmp_path / 'fixed.mha'}\nmoving={tmp_path / 'moving.mha'}\n"
            f"fixed_roi={tmp_path / 'roi.mha'}\nimg_out={tmp_path / 'out.mha'}\n[STAGE]\nxform={xform}\nmax_its=5\n"
        )
        assert main(["register", str(tmp_path / "cmd.txt")]) == 2
        err = capsys.readouterr().err
        assert "cmd.txt: the fixed mask (fixed_roi) has no non-zero voxel" in err and "ITK" not in err
        assert not (tmp_path / "out.mha").exists()


def test_a_warp_that_covers_nothing_says_so(tmp_path, capsys):
    # warping onto a grid the moving image does not reach wrote an image of fill values without a word
    from SlicerImgSuite.cli import main
    from SlicerImgSuite.registration.xforms import write_transform

    image = sitk.GetImageFromArray(np.full((8, 12, 12), 5, np.float32))
    far = sitk.Image(image)
    far.SetOrigin((500, 0, 0))
    sitk.WriteImage(image, str(tmp_path / "fixed.mha"))
    sitk.WriteImage(far, str(tmp_path / "far.mha"))
    write_transform(sitk.TranslationTransform(3, (0, 0, 0)), tmp_path / "id.tfm", image)
    for moving, warned in (("far.mha", True), ("fixed.mha", False)):
        args = ["warp", "--input", str(tmp_path / moving), "--xf", str(tmp_path / "id.tfm"),
                "--fixed", str(tmp_path / "fixed.mha"), "--output-img", str(tmp_path / f"w_{moving}")]  # fmt: skip
        assert main(args) == 0
        err = capsys.readouterr().err
        assert ("imgsuite warp: warning:" in err and "no output voxel maps inside it" in err) == warned, err
