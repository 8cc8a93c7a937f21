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
