"""Cone-beam FDK: plastimatch-format projections both ways, plastimatch fdk's options and geometry."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.tomo.projset import ProjectionSet, read_projections
from SlicerImgSuite.tomo.recon import _redundancy_weights, _view_angles, fdk

FDK_OPTS = ["-r", "48 48 40", "-z", "150 150 125"]


@pytest.fixture(scope="module")
def cbct(tmp_path_factory):
    work = tmp_path_factory.mktemp("fdk")
    z, y, x = np.ogrid[:40, :64, :64]
    a = np.full((40, 64, 64), -1000, np.int16)
    a[np.broadcast_to(((x - 32) / 24.0) ** 2 + ((y - 32) / 20.0) ** 2 < 1, a.shape)] = 0
    a[np.broadcast_to(((x - 22) / 6.0) ** 2 + ((y - 30) / 7.0) ** 2 < 1, a.shape)] = -600
    a[8:30, 40:46, 34:40] = 800
    image = sitk.GetImageFromArray(a)
    image.SetSpacing((2.5, 2.5, 3.5))
    image.SetOrigin((-78.75, -78.75, -68.25))
    image = sitk.Cast(sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), 2.0), sitk.sitkInt16)
    sitk.WriteImage(image, str(work / "ct.mha"))
    subprocess.run(
        [
            "plastimatch",
            "drr",
            "-a",
            "90",
            "-N",
            "4",
            "-r",
            "80 64",
            "-z",
            "360 288",
            "-O",
            str(work / "pl/image"),
            str(work / "ct.mha"),
        ],
        check=True,
        capture_output=True,
    )
    return work


@pytest.fixture(scope="module")
def full_fdk(cbct):
    out = cbct / "ours.mha"
    assert main(["fdk", "-q", "-I", str(cbct / "pl"), "-O", str(out), *FDK_OPTS]) == 0
    return out


def _corr(volume_path, ct_path):
    v = sitk.ReadImage(str(volume_path))
    src = sitk.GetArrayFromImage(
        sitk.Resample(sitk.ReadImage(str(ct_path)), v, sitk.Transform(), sitk.sitkLinear, -1000.0)
    )
    vol = sitk.GetArrayFromImage(v)
    inner = (slice(6, -6), slice(None), slice(None))  # away from the cone's missing corners
    return np.corrcoef(vol[inner].ravel(), src[inner].ravel())[0, 1]


def test_our_fdk_reconstructs_plastimatch_drrs(cbct, full_fdk):
    out = full_fdk
    assert _corr(out, cbct / "ct.mha") >= 0.95
    subprocess.run(
        ["plastimatch", "fdk", "-I", str(cbct / "pl"), "-O", str(cbct / "theirs.mha"), *FDK_OPTS],
        check=True,
        capture_output=True,
    )
    ours, theirs = sitk.ReadImage(str(out)), sitk.ReadImage(str(cbct / "theirs.mha"))
    # the same output grid as plastimatch fdk for the same options
    assert ours.GetSize() == theirs.GetSize()
    np.testing.assert_allclose(ours.GetOrigin(), theirs.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(ours.GetSpacing(), theirs.GetSpacing(), atol=1e-6)
    # water comes out as plastimatch's attenuation (0.022 /mm in its DRR unit of 1/10)
    centre = sitk.GetArrayFromImage(ours)[20, 24, 28]
    assert abs(centre - 0.0022) < 0.0003


def test_plastimatch_fdk_reconstructs_our_drrs(cbct):
    assert (
        main(
            [
                "drr",
                "-q",
                "-a",
                "90",
                "-N",
                "4",
                "-r",
                "80 64",
                "-z",
                "360 288",
                "-O",
                str(cbct / "ours/image"),
                str(cbct / "ct.mha"),
            ]
        )
        == 0
    )
    subprocess.run(
        ["plastimatch", "fdk", "-I", str(cbct / "ours"), "-O", str(cbct / "pl_from_ours.mha"), *FDK_OPTS],
        check=True,
        capture_output=True,
    )
    assert _corr(cbct / "pl_from_ours.mha", cbct / "ct.mha") >= 0.95


def test_short_scan_keeps_the_level(cbct, full_fdk):
    full = read_projections(cbct / "pl")
    ref = sitk.ReadImage(str(full_fdk))
    body = sitk.GetArrayFromImage(ref)[20, 18:30, 22:34]
    # 240 degrees (a short scan: 180 + fan and then some) via -a first last
    assert main(["fdk", "-q", "-I", str(cbct / "pl"), "-O", str(cbct / "short.mha"), "-a", "0 59", *FDK_OPTS]) == 0
    short = sitk.GetArrayFromImage(sitk.ReadImage(str(cbct / "short.mha")))[20, 18:30, 22:34]
    assert abs(short.mean() / body.mean() - 1) < 0.05
    assert _corr(cbct / "short.mha", cbct / "ct.mha") >= 0.9
    # 120 degrees: no ray is measured twice, so every weight stays 1 (RTK's Parker weights wrap around)
    sub = ProjectionSet(full.images[:30], full.geometry.subset(slice(0, 30)))
    grid = ref
    angles, axis = _view_angles(sub.geometry, np.zeros(3))
    w = _redundancy_weights(sub.geometry, angles, axis, np.zeros(3))
    assert np.allclose(w, 1.0, atol=1e-4)
    # 240 degrees: conjugate rays share their weight, so each view's weights lie between 0 and 1 and sum to 1
    sub = ProjectionSet(full.images[:60], full.geometry.subset(slice(0, 60)))
    angles, axis = _view_angles(sub.geometry, np.zeros(3))
    w = _redundancy_weights(sub.geometry, angles, axis, np.zeros(3))
    assert w.min() >= 0 and w.max() <= 1 and w[30].min() > 0.99  # the middle of the arc has no conjugate
    total = w[:, 0, :].sum() * 4  # degrees covered, counting each line once
    assert abs(total / 80 - 180) < 6
    assert fdk(sub, grid).GetSize() == grid.GetSize()


def test_fdk_options_and_bad_input(cbct, tmp_path, capsys):
    assert (
        main(
            [
                "fdk",
                "-q",
                "-I",
                str(cbct / "pl"),
                "-O",
                str(tmp_path / "a.mha"),
                "-r",
                "16",
                "-z",
                "150",
                "-f",
                "none",
                "-s",
                "2",
            ]
        )
        == 0
    )
    small = sitk.ReadImage(str(tmp_path / "a.mha"))
    assert small.GetSize() == (16, 16, 16) and np.allclose(small.GetSpacing(), 150 / 16)
    assert sitk.GetArrayFromImage(small).min() >= 0  # no ramp: a plain (positive) back-projection
    assert main(["fdk", "-q", "-I", str(cbct / "pl"), "-O", str(tmp_path / "b.mha"), "-a", "200 300"]) == 2
    assert "selects no projection" in capsys.readouterr().err
    assert not (tmp_path / "b.mha").exists()


def test_views_out_of_angle_order_give_the_same_volume(cbct, full_fdk, tmp_path):
    """Files numbered in acquisition order need not follow the angle (an interleaved two-pass scan): the angular
    weights must come from the angles, not from the file order (they came out 2x too high, silently)."""
    views = sorted((cbct / "pl").glob("image*.pfm"))
    order = list(range(0, len(views), 2)) + list(range(1, len(views), 2))  # the even views, then the odd ones
    (tmp_path / "pl").mkdir()
    for new, old in enumerate(order):
        for ext in ("pfm", "txt"):
            (tmp_path / f"pl/image{new:04d}.{ext}").write_bytes(views[old].with_suffix(f".{ext}").read_bytes())
    assert main(["fdk", "-q", "-I", str(tmp_path / "pl"), "-O", str(tmp_path / "mixed.mha"), *FDK_OPTS]) == 0
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(full_fdk)))
    mixed = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "mixed.mha")))
    np.testing.assert_allclose(mixed, ref, atol=2e-5)
    # a short scan shuffled: the same weights view for view as in angle order
    sub = read_projections(cbct / "pl").geometry.subset(slice(0, 60))
    perm = np.random.default_rng(1).permutation(60)
    angles, axis = _view_angles(sub, np.zeros(3))
    mixed_angles, _ = _view_angles(sub.subset(perm), np.zeros(3))
    np.testing.assert_allclose(np.ptp(mixed_angles), np.ptp(angles), atol=1e-9)
    w = _redundancy_weights(sub, angles, axis, np.zeros(3))
    w_mixed = _redundancy_weights(sub.subset(perm), mixed_angles, axis, np.zeros(3))
    np.testing.assert_allclose(w_mixed, w[perm], atol=1e-6)
