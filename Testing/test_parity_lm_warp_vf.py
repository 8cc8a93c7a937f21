"""``lm-warp --input-vf`` beside Debian plastimatch 1.9.4.

plastimatch 1.9.4 documents --input-vf as "applied prior to landmark warping" but never loads it: its outputs
are the same with and without. Ours composes it: the landmark warp first (in the output grid), then the field,
so a translation field adds its translation to every output displacement.
"""

from __future__ import annotations

import subprocess

import numpy as np
import SimpleITK as sitk

from SlicerImgSuite.cli import main


def _array(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_lm_warp_input_vf(tmp_path):
    z, y, x = np.mgrid[:16, :24, :24]
    image = sitk.GetImageFromArray((100 * np.exp(-((x - 12) ** 2 + (y - 11) ** 2 + (z - 8) ** 2) / 40.0)).astype("f4"))
    image.SetSpacing((4, 4, 5))
    image.SetOrigin((-46, -46, -37.5))
    sitk.WriteImage(image, str(tmp_path / "img.mha"))
    shift = (6.0, -4.0, 3.0)
    field = sitk.GetImageFromArray(np.broadcast_to(np.float32(shift), (16, 24, 24, 3)).copy(), isVector=True)
    field.CopyInformation(image)
    sitk.WriteImage(field, str(tmp_path / "vf.mha"))
    (tmp_path / "f.txt").write_text("0 0 0\n10 5 0\n-10 -5 5\n")
    (tmp_path / "m.txt").write_text("2 1 0\n11 5 -1\n-10 -4 6\n")
    base = ["-f", str(tmp_path / "f.txt"), "-m", str(tmp_path / "m.txt"), "-I", str(tmp_path / "img.mha")]
    base += ["-a", "gauss", "-r", "30"]
    for name, extra in (("1", []), ("2", ["--input-vf", str(tmp_path / "vf.mha")])):
        out = ["-O", str(tmp_path / f"pl_img{name}.mha"), "-V", str(tmp_path / f"pl_vf{name}.mha")]
        subprocess.run(["plastimatch", "lm-warp", *base, *out, *extra], check=True, capture_output=True)
        out = ["-O", str(tmp_path / f"img{name}.mha"), "-V", str(tmp_path / f"vf{name}.mha")]
        assert main(["lm-warp", "-q", *base, *out, *extra]) == 0
    # plastimatch ignores the field
    np.testing.assert_array_equal(_array(tmp_path / "pl_vf1.mha"), _array(tmp_path / "pl_vf2.mha"))
    np.testing.assert_array_equal(_array(tmp_path / "pl_img1.mha"), _array(tmp_path / "pl_img2.mha"))
    # without it ours is plastimatch's landmark field; with it every displacement gains the translation
    lm_only = _array(tmp_path / "vf1.mha")
    np.testing.assert_allclose(lm_only, _array(tmp_path / "pl_vf1.mha"), atol=1e-3)
    np.testing.assert_allclose(_array(tmp_path / "vf2.mha") - lm_only, np.broadcast_to(shift, lm_only.shape), atol=1e-4)
    # and the image is the input sampled at x + landmark displacement + shift
    warped = sitk.Resample(
        image, image, sitk.DisplacementFieldTransform(sitk.ReadImage(str(tmp_path / "vf2.mha"), sitk.sitkVectorFloat64))
    )
    np.testing.assert_allclose(_array(tmp_path / "img2.mha"), sitk.GetArrayFromImage(warped), atol=1e-3)
    assert np.abs(_array(tmp_path / "img2.mha") - _array(tmp_path / "img1.mha")).max() > 10
