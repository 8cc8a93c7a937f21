"""bbox, maximum, multiply, intersect and jacobian against Debian plastimatch 1.9.4 on the same inputs.

Inputs: a real CT and its tumour mask (IBSI STS_001, not made here) and small awkward ones (non-unit spacing, an
oblique direction, int16 products beyond the type's range, mixed pixel types). Voxels must be equal unless a
tolerance is stated; where plastimatch is wrong (intersect of labels other than 1, the Jacobian on the border) the
test says so and checks ours against the analytic answer.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from Testing.test_imageops_plastimatch import assert_same, imgsuite, numbers, plastimatch, voxels

ROT = (np.cos(0.3), -np.sin(0.3), 0.0, np.sin(0.3), np.cos(0.3), 0.0, 0.0, 0.0, 1.0)


def _save(array, path, like=None, spacing=(0.9, 1.3, 2.5), origin=(-5.0, 3.0, 10.0), direction=None):
    image = sitk.GetImageFromArray(array)
    if like is not None:
        image.CopyInformation(like)
    else:
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        if direction is not None:
            image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture(scope="module")
def d(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("parity")
    sts = shared_data / "ibsi-sts-ct-rtstruct" / "STS_001" / "nifti"
    ct = sitk.ReadImage(str(sts / "CT_image.nii.gz"))
    mask = sitk.ReadImage(str(sts / "CT_mask.nii.gz"))
    sitk.WriteImage(ct, str(d / "ct.nrrd"))
    sitk.WriteImage(mask, str(d / "mask.nrrd"))
    rng = np.random.default_rng(7)
    for name in ("a", "b"):
        a = rng.normal(0, 120, (6, 7, 8)).astype(np.int16)
        _save(a, d / f"{name}.nrrd")
        _save((a * 0.37).astype(np.float32), d / f"{name}f.nrrd")
    m = np.zeros((6, 7, 8), np.uint8)
    m[2:4, 1:5, 3:7] = 1
    m[1, 3, 2] = 1
    _save(m, d / "m.nrrd")
    _save(m, d / "m_oblique.nrrd", direction=ROT)
    m2 = np.zeros_like(m)
    m2[2:5, 2:6, 1:5] = 1
    _save(m2, d / "m2.nrrd")
    return d


def _box(text: str) -> list[float]:
    return [v for line in text.splitlines() if line.startswith(("coordinates", "indices")) for v in numbers(line)]


@pytest.mark.parametrize(
    "name, options",
    [("mask.nrrd", []), ("mask.nrrd", ["--margin", "7.3"]), ("m.nrrd", ["--margin", "-1"]), ("m.nrrd", ["--z-only"]),
     ("m_oblique.nrrd", []), ("m_oblique.nrrd", ["--margin", "2", "--z-only"])],
)  # fmt: skip
def test_bbox_matches_plastimatch(d, name, options):
    theirs = plastimatch("bbox", d / name, "--output", d / "bb_p.nrrd", *options)
    ours = imgsuite("bbox", d / name, "--output", d / "bb_o.nrrd", *options)
    # the box is printed with %f from float32 arithmetic in plastimatch: equal to 1e-4 mm
    np.testing.assert_allclose(_box(ours), _box(theirs), atol=1e-4)
    assert voxels(d / "bb_o.nrrd").sum() > 0
    assert_same(d / "bb_o.nrrd", d / "bb_p.nrrd")


def test_bbox_analytic_and_empty(d, tmp_path, capsys):
    out = imgsuite("bbox", d / "m.nrrd", "--margin", "1")
    # x: voxels 2..6 at 0.9 mm from -5 -> edges -5 + 1.5 * 0.9 and -5 + 6.5 * 0.9, then 1 mm more
    np.testing.assert_allclose(numbers(out)[:2], [-5 + 1.35 - 1, -5 + 5.85 + 1], atol=1e-9)
    _save(np.zeros((3, 3, 3), np.uint8), tmp_path / "empty.nrrd")
    assert main(["bbox", str(tmp_path / "empty.nrrd"), "--output", str(tmp_path / "x.nrrd"), "--quiet"]) == 2
    assert "empty.nrrd" in capsys.readouterr().err and not (tmp_path / "x.nrrd").exists()


@pytest.mark.parametrize(
    "command, inputs",
    [("maximum", ["a.nrrd", "b.nrrd"]), ("maximum", ["a.nrrd", "bf.nrrd", "b.nrrd"]), ("maximum", ["af.nrrd", "b.nrrd"]),
     ("multiply", ["a.nrrd", "b.nrrd"]), ("multiply", ["af.nrrd", "bf.nrrd"]), ("multiply", ["a.nrrd", "bf.nrrd"]),
     ("multiply", ["ct.nrrd", "mask.nrrd"]), ("maximum", ["ct.nrrd", "mask.nrrd"]),
     ("intersect", ["m.nrrd", "m2.nrrd"]), ("intersect", ["mask.nrrd", "mask.nrrd", "mask.nrrd"])],
)  # fmt: skip
def test_combine_matches_plastimatch(d, command, inputs):
    plastimatch(command, *[d / i for i in inputs], "--output", d / "c_p.nrrd")
    imgsuite(command, *[d / i for i in inputs], "--output", d / "c_o.nrrd")
    assert_same(d / "c_o.nrrd", d / "c_p.nrrd")  # equal voxels and pixel type, also int16 products clamped


def test_multiply_int16_clamps_not_wraps(d):
    imgsuite("multiply", d / "a.nrrd", d / "b.nrrd", "--output", d / "prod.nrrd")
    exact = voxels(d / "a.nrrd").astype(np.int64) * voxels(d / "b.nrrd")
    assert (np.abs(exact) > 32767).any()
    np.testing.assert_array_equal(voxels(d / "prod.nrrd"), np.clip(exact, -32768, 32767))


def test_intersect_labels_other_than_one(d, tmp_path):
    """plastimatch takes a bitwise AND of the uchar values, so label 2 AND label 1 is empty; ours is the
    intersection of the non-zero voxels."""
    m, m2 = voxels(d / "m.nrrd"), voxels(d / "m2.nrrd")
    _save(m * 2, tmp_path / "label2.nrrd")
    plastimatch("intersect", tmp_path / "label2.nrrd", d / "m2.nrrd", "--output", tmp_path / "p.nrrd")
    imgsuite("intersect", tmp_path / "label2.nrrd", d / "m2.nrrd", "--output", tmp_path / "o.nrrd")
    assert voxels(tmp_path / "p.nrrd").sum() == 0  # plastimatch's answer
    expected = ((m != 0) & (m2 != 0)).astype(np.uint8)
    assert expected.sum() > 0
    np.testing.assert_array_equal(voxels(tmp_path / "o.nrrd"), expected)


def test_combine_refuses_other_grid(d, tmp_path, capsys):
    _save(np.zeros((6, 7, 8), np.int16), tmp_path / "shifted.nrrd", origin=(0.0, 0.0, 0.0))
    argv = ["multiply", str(d / "a.nrrd"), str(tmp_path / "shifted.nrrd"), "--output", str(tmp_path / "o.nrrd")]
    assert main([*argv, "--quiet"]) == 2
    assert "shifted.nrrd" in capsys.readouterr().err and not (tmp_path / "o.nrrd").exists()


@pytest.fixture(scope="module")
def fields(d):
    z, y, x = np.mgrid[0:10, 0:11, 0:12].astype(float)
    smooth = np.stack([0.3 * np.sin(x / 3) * y / 5, 0.2 * np.cos(z / 2) * x / 4, 0.1 * x * y / 20], -1)
    a = np.array([[0.05, -0.1, 0.02], [0.03, 0.08, -0.04], [0.0, 0.06, -0.07]])  # u = A p: J = det(I + A)
    for name, u in (("smooth", smooth), ("linear", None)):
        field = sitk.GetImageFromArray(np.zeros((10, 11, 12, 3), np.float32), isVector=True)
        field.SetSpacing((1.5, 2.0, 2.5))
        field.SetOrigin((1.0, 2.0, 3.0))
        if u is None:  # oblique: plastimatch's ITK filter ignores direction cosines, so only ours is checked
            field.SetDirection(ROT)
        if u is None:
            idx = np.stack([x, y, z], -1)
            points = np.array(field.GetOrigin()) + idx @ (np.array(ROT).reshape(3, 3) * field.GetSpacing()).T
            u = points @ a.T
        out = sitk.GetImageFromArray(u.astype(np.float32), isVector=True)
        out.CopyInformation(field)
        sitk.WriteImage(out, str(d / f"vf_{name}.mha"))
    return a


def test_jacobian_matches_plastimatch_inside(d, fields):
    """Equal inside (1e-6: float32 arithmetic); on the border plastimatch's ITK filter repeats the edge voxel
    and so halves the derivative there, ours takes the one-sided difference (see the linear-field test)."""
    theirs = plastimatch("jacobian", "--input", d / "vf_smooth.mha", "--output-img", d / "j_p.nrrd")
    ours = imgsuite("jacobian", "--input", d / "vf_smooth.mha", "--output-img", d / "j_o.nrrd",
                    "--output-stats", d / "j.txt")  # fmt: skip
    assert "Minimum of the determinant" in theirs and "Minimum of the determinant" in ours
    a, b = voxels(d / "j_o.nrrd"), voxels(d / "j_p.nrrd")
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a[1:-1, 1:-1, 1:-1], b[1:-1, 1:-1, 1:-1], atol=1e-6)
    assert np.ptp(a) > 0.1  # a field that really varies
    low, high = numbers((d / "j.txt").read_text())
    assert low == pytest.approx(a.min(), abs=1e-6) and high == pytest.approx(a.max(), abs=1e-6)


def test_jacobian_linear_field_everywhere(d, fields):
    """u = A p (oblique grid): the determinant is det(I + A) at every voxel, border included."""
    imgsuite("jacobian", "--input", d / "vf_linear.mha", "--output-img", d / "jl_o.nrrd")
    plastimatch("jacobian", "--input", d / "vf_linear.mha", "--output-img", d / "jl_p.nrrd")
    expected = np.linalg.det(np.eye(3) + fields)
    np.testing.assert_allclose(voxels(d / "jl_o.nrrd"), expected, atol=1e-5)
    assert np.abs(voxels(d / "jl_p.nrrd") - expected).max() > 1e-3  # plastimatch: direction ignored, border off


def test_jacobian_same_as_vf_stats(d, fields):
    imgsuite("jacobian", "--input", d / "vf_smooth.mha", "--output-img", d / "j1.nrrd")
    imgsuite("vf-stats", d / "vf_smooth.mha", "--output-jacobian", d / "j2.nrrd")
    np.testing.assert_array_equal(voxels(d / "j1.nrrd"), voxels(d / "j2.nrrd"))
