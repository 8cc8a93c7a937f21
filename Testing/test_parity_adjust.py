"""``adjust --hist-match`` and ``--linear-match`` (with ``--input-mask``/``--ref-mask``) against Debian plastimatch
1.9.4, on real CTs of two patients (IBSI STS_003 matched to STS_001, each with its tumour mask; not made here)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from Testing.test_imageops_plastimatch import imgsuite, plastimatch, voxels


@pytest.fixture(scope="module")
def sts(shared_data):
    root = shared_data / "ibsi-sts-ct-rtstruct"
    return {k: root / f"STS_00{n}" / "nifti" / f"CT_{w}.nii.gz"
            for k, n, w in (("ct", 3, "image"), ("mask", 3, "mask"), ("ref", 1, "image"), ("ref_mask", 1, "mask"))}  # fmt: skip


@pytest.mark.parametrize(
    "options", [[], ["--hist-levels", "256", "--hist-points", "7", "--hist-threshold"], ["--hist-points", "30"]]
)
def test_hist_match_matches_plastimatch(sts, tmp_path, options):
    levels = [] if "--hist-levels" in options else ["--hist-levels", "1024"]  # plastimatch 1.9.4 insists on both
    points = [] if "--hist-points" in options else ["--hist-points", "10"]
    plastimatch("adjust", "--input", sts["ct"], "--hist-match", sts["ref"], *levels, *points, *options,
                "--output", tmp_path / "p.nrrd")  # fmt: skip
    imgsuite("adjust", "--input", sts["ct"], "--hist-match", sts["ref"], *options, "--output", tmp_path / "o.nrrd")
    ours, theirs = voxels(tmp_path / "o.nrrd"), voxels(tmp_path / "p.nrrd")
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)  # the same ITK filter: bit for bit
    assert np.abs(ours - voxels(sts["ct"])).max() > 10  # it did change the numbers


@pytest.mark.parametrize("masks", [(), ("mask", "ref_mask"), ("mask",), ("ref_mask",)])
def test_linear_match_matches_plastimatch(sts, tmp_path, masks):
    options = [a for m in masks for a in ({"mask": "--input-mask", "ref_mask": "--ref-mask"}[m], sts[m])]
    plastimatch("adjust", "--input", sts["ct"], "--linear-match", sts["ref"], *options, "--output", tmp_path / "p.nrrd")
    imgsuite("adjust", "--input", sts["ct"], "--linear-match", sts["ref"], *options, "--output", tmp_path / "o.nrrd")
    ours, theirs = voxels(tmp_path / "o.nrrd"), voxels(tmp_path / "p.nrrd")
    assert ours.dtype == theirs.dtype == np.float32
    # v * scale + shift rounded to float32 once by us, in steps by plastimatch: one float32 step (6e-5 at 600 HU)
    np.testing.assert_allclose(ours, theirs, rtol=2.5e-7, atol=1e-4)


def test_linear_match_reaches_reference_statistics(sts, tmp_path):
    """Analytic check: inside the masks, the matched input has the reference's mean and (population) std."""
    imgsuite("adjust", "--input", sts["ct"], "--linear-match", sts["ref"], "--input-mask", sts["mask"],
             "--ref-mask", sts["ref_mask"], "--output", tmp_path / "o.nrrd")  # fmt: skip
    out = voxels(tmp_path / "o.nrrd").astype(np.float64)[voxels(sts["mask"]) != 0]
    ref = voxels(sts["ref"]).astype(np.float64)[voxels(sts["ref_mask"]) != 0]
    assert out.mean() == pytest.approx(ref.mean(), abs=1e-3)
    assert out.std() == pytest.approx(ref.std(), rel=1e-5)


def test_matching_refuses_bad_requests(sts, tmp_path, capsys):
    out = tmp_path / "o.nrrd"
    base = ["adjust", "--input", str(sts["ct"]), "--output", str(out), "--quiet"]
    # a mask on the other patient's grid: named, nothing written
    assert main([*base, "--linear-match", str(sts["ref"]), "--input-mask", str(sts["ref_mask"])]) == 2
    assert "STS_001/nifti/CT_mask.nii.gz" in capsys.readouterr().err
    assert main([*base, "--linear-match", str(sts["ref"]), "--scale", "2"]) == 2
    assert "one of --hist-match" in capsys.readouterr().err
    assert main([*base, "--hist-match", str(sts["ref"]), "--ref-mask", str(sts["ref_mask"])]) == 2
    assert "--linear-match" in capsys.readouterr().err
    flat = tmp_path / "flat.nrrd"
    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkFloat32), str(flat))
    assert main(["adjust", "--input", str(flat), "--linear-match", str(sts["ref"]), "--output", str(out)]) == 2
    assert "constant" in capsys.readouterr().err and not out.exists()


@pytest.fixture(scope="module")
def cbct(sts, tmp_path_factory):
    """A cone-beam-like CT: the real CT (cropped near its tumour) with a smooth gain, an offset ripple and noise;
    the real tumour mask and a copy of it moved 3 voxels."""
    d = tmp_path_factory.mktemp("local")
    ct, mask = sitk.ReadImage(str(sts["ref"])), sitk.ReadImage(str(sts["ref_mask"]))
    box, corner = [90, 80, 30], [60, 60, 10]
    ref, m = sitk.RegionOfInterest(ct, box, corner), sitk.RegionOfInterest(mask, box, corner)
    sitk.WriteImage(ref, str(d / "ref.nrrd"))
    sitk.WriteImage(m, str(d / "mask.nrrd"))
    moved = sitk.GetImageFromArray(np.roll(sitk.GetArrayFromImage(m), 3, axis=2))
    moved.CopyInformation(m)
    sitk.WriteImage(moved, str(d / "mask_moved.nrrd"))
    a = sitk.GetArrayFromImage(ref).astype(np.float64)
    z, y, x = np.indices(a.shape)
    cb = a * (0.8 + 0.3 * x / 90) + 50 * np.sin(y / 15) + np.random.default_rng(3).normal(0, 15, a.shape)
    out = sitk.GetImageFromArray(cb.astype(np.float32))
    out.CopyInformation(ref)
    sitk.WriteImage(out, str(d / "cbct.nrrd"))
    return d


@pytest.mark.parametrize(
    "options",
    [["--patch-size", "16 16 8"], ["--patch-size", "10 7 5"], ["--patch-size", "15 15 7", "--local-blending-off"],
     ["--patch-size", "16 16 8", "--input-mask", "mask.nrrd", "--ref-mask", "mask_moved.nrrd"],
     ["--patch-size", "16 16 8", "--input-mask", "mask.nrrd"], ["--patch-size", "12", "--ref-mask", "mask_moved.nrrd"]],
)  # fmt: skip
def test_local_match_matches_plastimatch(cbct, tmp_path, options):
    options = [str(cbct / o) if o.endswith(".nrrd") else o for o in options]
    outs = {}
    for who, run in (("p", plastimatch), ("o", imgsuite)):
        run("adjust", "--input", cbct / "cbct.nrrd", "--local-match", cbct / "ref.nrrd", *options,
            "--local-shift-out", tmp_path / f"{who}_shift.nrrd", "--local-scale-out", tmp_path / f"{who}_scale.nrrd",
            "--output", tmp_path / f"{who}.nrrd")  # fmt: skip
        outs[who] = [voxels(tmp_path / f"{who}{s}.nrrd") for s in ("", "_shift", "_scale")]
    (out, shift, scale), (p_out, p_shift, p_scale) = outs["o"], outs["p"]
    assert out.dtype == p_out.dtype == np.float32
    # plastimatch's edge bug (see test_local_match_undoes_a_gain): scale 0 on the last column of an axis whose
    # size is a multiple of the patch; ours keeps the edge patch's value there
    theirs_ok = p_scale != 0
    assert (scale > 0).all() and theirs_ok.mean() > 0.95
    # float32 sums in a different order: 1e-5 relative on the per-voxel shift and scale
    np.testing.assert_allclose(scale[theirs_ok], p_scale[theirs_ok], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shift[theirs_ok], p_shift[theirs_ok], rtol=1e-5, atol=2e-4)
    np.testing.assert_allclose(out[theirs_ok], p_out[theirs_ok], rtol=1e-5, atol=2e-3)
    assert np.ptp(scale) > 0.1  # the gain really varies over the image


def test_local_match_undoes_a_gain(tmp_path):
    """Analytic: an image that is 2 * ref + 100 in every patch comes back as ref (patch-wise constant gain).

    plastimatch 1.9.4 leaves the last voxel plane of an axis out of its interpolated fields when the size is a
    multiple of the patch (12 / 4 and 8 / 4 here): scale and shift 0 there, so those voxels come out 0."""
    rng = np.random.default_rng(5)
    ref = sitk.GetImageFromArray(rng.normal(0, 100, (8, 12, 12)).astype(np.float32))
    img = sitk.GetImageFromArray((2 * sitk.GetArrayFromImage(ref) + 100).astype(np.float32))
    sitk.WriteImage(ref, str(tmp_path / "ref.nrrd"))
    sitk.WriteImage(img, str(tmp_path / "img.nrrd"))
    imgsuite("adjust", "--input", tmp_path / "img.nrrd", "--local-match", tmp_path / "ref.nrrd",
             "--patch-size", "4", "--output", tmp_path / "o.nrrd")  # fmt: skip
    np.testing.assert_allclose(voxels(tmp_path / "o.nrrd"), sitk.GetArrayFromImage(ref), atol=2e-3)
    plastimatch("adjust", "--input", tmp_path / "img.nrrd", "--local-match", tmp_path / "ref.nrrd",
                "--patch-size", "4", "--output", tmp_path / "p.nrrd")  # fmt: skip
    theirs = voxels(tmp_path / "p.nrrd")
    assert (theirs[:, :, -1] == 0).all() and (theirs[-1] == 0).all()  # plastimatch's edge
    np.testing.assert_allclose(theirs[:-1, :-1, :-1], sitk.GetArrayFromImage(ref)[:-1, :-1, :-1], atol=2e-3)


def test_local_match_needs_patch_size(cbct, tmp_path, capsys):
    argv = ["adjust", "--input", str(cbct / "cbct.nrrd"), "--local-match", str(cbct / "ref.nrrd"),
            "--local-scale-out", str(tmp_path / "s.nrrd"), "--output", str(tmp_path / "o.nrrd"), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "--patch-size" in capsys.readouterr().err
    assert main([*argv, "--patch-size", "0 4 4"]) == 2
    assert not (tmp_path / "o.nrrd").exists() and not (tmp_path / "s.nrrd").exists()
