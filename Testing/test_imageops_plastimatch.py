"""imgsuite's image tools against Debian plastimatch 1.9.4, run side by side on the same inputs.

Inputs are small (fast) but awkward: non-unit spacing, an oblique direction, a 2D image, int16 values near the
type's limits, an empty mask. Voxels must be equal unless a tolerance is stated next to the comparison.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main

ROT = (np.cos(0.3), -np.sin(0.3), 0.0, np.sin(0.3), np.cos(0.3), 0.0, 0.0, 0.0, 1.0)


def plastimatch(*args: str) -> str:
    proc = subprocess.run(["plastimatch", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def imgsuite(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([*map(str, args), "--quiet"])
    assert rc == 0
    return out.getvalue()


def voxels(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def assert_same(ours, theirs, atol=0.0, dtype=True):
    a, b = sitk.ReadImage(str(ours)), sitk.ReadImage(str(theirs))
    n = a.GetDimension()  # plastimatch writes a 2D input back as 3D with one slice
    assert a.GetSize() == b.GetSize()[:n]
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin()[:n], atol=1e-3)
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing()[:n], atol=1e-4)
    np.testing.assert_allclose(
        np.array(a.GetDirection()).reshape(n, n),
        np.array(b.GetDirection()).reshape(-1, b.GetDimension())[:n, :n],
        atol=1e-4,
    )
    va, vb = sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b).reshape(sitk.GetArrayFromImage(a).shape)
    if dtype:
        assert va.dtype == vb.dtype, (va.dtype, vb.dtype)
    np.testing.assert_allclose(va.astype(float), vb.astype(float), atol=atol, rtol=0)


def numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", text)]


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """Input files: CT-like int16 (non-unit spacing), its oblique twin, a 2D slice, masks, an empty mask."""
    d = tmp_path_factory.mktemp("plm")
    rng = np.random.default_rng(4)
    z, y, x = np.mgrid[0:12, 0:16, 0:20]
    ct = (-1000 + 1000 * (((x - 10) / 8.0) ** 2 + ((y - 8) / 6.0) ** 2 < 1) + rng.normal(0, 40, x.shape)).astype(
        np.int16
    )
    ct[0, 0, :3] = (32767, -32768, 30000)
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.9, 1.3, 2.5))
    img.SetOrigin((-12.0, 4.5, -30.0))
    sitk.WriteImage(img, str(d / "ct.nrrd"))
    sitk.WriteImage(sitk.Cast(img, sitk.sitkFloat32) + 0.25, str(d / "ctf.nrrd"))
    other = sitk.GetImageFromArray((ct // 2 + rng.integers(-50, 50, ct.shape)).astype(np.int16))
    other.CopyInformation(img)
    sitk.WriteImage(other, str(d / "ct2.nrrd"))
    obl = sitk.Image(img)
    obl.SetDirection(ROT)
    sitk.WriteImage(obl, str(d / "obl.nrrd"))
    m1 = ((((x - 9) / 5.0) ** 2 + ((y - 8) / 4.0) ** 2 + ((z - 6) / 3.5) ** 2) < 1).astype(np.uint8)
    m2 = ((((x - 11) / 5.5) ** 2 + ((y - 7) / 4.0) ** 2 + ((z - 5) / 3.0) ** 2) < 1).astype(np.uint8)
    for name, m in (("m1", m1), ("m2", m2), ("empty", np.zeros_like(m1))):
        mi = sitk.GetImageFromArray(m)
        mi.CopyInformation(img)
        sitk.WriteImage(mi, str(d / f"{name}.nrrd"))
        mi.SetDirection(ROT)
        sitk.WriteImage(mi, str(d / f"{name}_obl.nrrd"))
    two = sitk.GetImageFromArray(ct[6])
    two.SetSpacing((0.9, 1.3))
    two.SetOrigin((-12.0, 4.5))
    sitk.WriteImage(two, str(d / "slice2d.nrrd"))
    u8 = sitk.GetImageFromArray(np.full((3, 4, 5), 200, np.uint8))
    sitk.WriteImage(u8, str(d / "u8.nrrd"))
    return d


@pytest.mark.parametrize("src", ["ct", "obl"])
def test_crop(d, src):
    box = "2 9 3 11 0 0" if src == "slice2d" else "2 9 3 11 1 7"
    imgsuite("crop", "--input", d / f"{src}.nrrd", "--output", d / f"crop_{src}.nrrd", "--voxels", box)
    plastimatch("crop", "--input", d / f"{src}.nrrd", "--output", d / f"crop_{src}_p.nrrd", "--voxels", box)
    assert_same(d / f"crop_{src}.nrrd", d / f"crop_{src}_p.nrrd")


@pytest.mark.parametrize(
    "opts",
    [
        ["--spacing", "1 1 1"],
        ["--dim", "7 9 5"],
        ["--origin", "-10 5 -29", "--dim", "12 10 8", "--spacing", "1.1 1.7 3", "--default-value", "-999"],
        ["--origin", "-10 5 -29", "--dim", "12 10 8", "--spacing", "1.1 1.7 3", "--interpolation", "nn"],
        ["--subsample", "2 2 1"],
        ["--subsample", "3 3 5"],  # 20, 16, 12 voxels -> ceil(n/s - 0.5) = 7, 5, 2 (not floor: 6, 5, 2)
        ["--fixed", "ct2.nrrd"],
    ],
    ids=["spacing", "dim", "grid-linear", "grid-nn", "subsample", "subsample-odd", "fixed"],
)
@pytest.mark.parametrize("src", ["ct", "ctf"])
def test_resample(d, opts, src):
    opts = [str(d / o) if o.endswith(".nrrd") else o for o in opts]
    imgsuite("resample", "--input", d / f"{src}.nrrd", "--output", d / "rs.nrrd", *opts)
    plastimatch("resample", "--input", d / f"{src}.nrrd", "--output", d / "rs_p.nrrd", *opts)
    # float input: the interpolated values agree to single precision. int16 input: both truncate toward
    # zero; where the exact value is an integer (new voxel centres on old ones) plastimatch's float weights
    # land a hair above or below it, so one unit may differ there
    assert_same(d / "rs.nrrd", d / "rs_p.nrrd", atol=1.0 if src == "ct" else 2e-3)


@pytest.mark.parametrize("rate", ["4 4 4", "2 2 2", "3 3 3"])
def test_resample_subsample_odd_sizes(tmp_path, rate):
    # 7 x 9 x 5 voxels: a last part-bin of at least half a bin counts (7 at rate 4 -> 2, 9 at rate 2 -> 4)
    img = sitk.GetImageFromArray(np.random.default_rng(5).normal(0, 100, (5, 9, 7)).astype(np.float32))
    img.SetSpacing((1.5, 2.0, 0.7))
    img.SetOrigin((-3.0, 4.0, 10.0))
    sitk.WriteImage(img, str(tmp_path / "odd.nrrd"))
    imgsuite("resample", "--input", tmp_path / "odd.nrrd", "--output", tmp_path / "o.nrrd", "--subsample", rate)
    plastimatch("resample", "--input", tmp_path / "odd.nrrd", "--output", tmp_path / "p.nrrd", "--subsample", rate)
    assert_same(tmp_path / "o.nrrd", tmp_path / "p.nrrd", atol=1e-3)
    if rate == "4 4 4":
        assert sitk.ReadImage(str(tmp_path / "o.nrrd")).GetSize() == (2, 2, 1)


@pytest.mark.parametrize("output_type", ["short", "uchar"])
def test_convert_output_type_truncates(tmp_path, output_type):
    values = np.array([1.7, -1.7, 2.5, -2.5, 0.5, -0.5, 254.9, 1e6, -1e6], np.float32).reshape(1, 1, -1)
    sitk.WriteImage(sitk.GetImageFromArray(values), str(tmp_path / "f.nrrd"))
    args = ["--input", tmp_path / "f.nrrd", "--output-type", output_type, "--output-img"]
    imgsuite("convert", *args, tmp_path / "o.nrrd")
    plastimatch("convert", *args, tmp_path / "p.nrrd")
    assert_same(tmp_path / "o.nrrd", tmp_path / "p.nrrd")
    expected = {
        "short": [1, -1, 2, -2, 0, 0, 254, 32767, -32768],  # toward zero, then clamped
        "uchar": [1, 0, 2, 0, 0, 0, 254, 255, 0],
    }[output_type]
    assert voxels(tmp_path / "o.nrrd").ravel().tolist() == expected


def test_resample_oblique_spacing(d):
    imgsuite("resample", "--input", d / "obl.nrrd", "--output", d / "ro.nrrd", "--spacing", "1.5 1.5 2")
    plastimatch("resample", "--input", d / "obl.nrrd", "--output", d / "ro_p.nrrd", "--spacing", "1.5 1.5 2")
    assert_same(d / "ro.nrrd", d / "ro_p.nrrd", atol=1.0)


@pytest.mark.parametrize("cmd", ["mask", "fill"])
@pytest.mark.parametrize("mask", ["m1", "empty"])
def test_mask_fill(d, cmd, mask):
    args = ["--input", d / "ct.nrrd", "--mask", d / f"{mask}.nrrd", "--mask-value", "-1200.7"]
    imgsuite(cmd, *args, "--output", d / "mk.nrrd")
    plastimatch(cmd, *args, "--output", d / "mk_p.nrrd")
    assert_same(d / "mk.nrrd", d / "mk_p.nrrd")


@pytest.mark.parametrize("opt", [["--above", "-200"], ["--below", "-500"], ["--range=-1100,-900,-50,50"]])
def test_threshold(d, opt):
    imgsuite("threshold", "--input", d / "ct.nrrd", "--output", d / "th.nrrd", *opt)
    plastimatch("threshold", "--input", d / "ct.nrrd", "--output", d / "th_p.nrrd", *opt)
    assert_same(d / "th.nrrd", d / "th_p.nrrd")


@pytest.mark.parametrize(
    "cmd,opts",
    [
        ("add", []),  # int16 sum saturates at 32767 / -32768 in both
        ("add", ["--weight", "0.5 -2"]),
        ("add", ["--average"]),
        ("average", []),
    ],
)
def test_add_average(d, cmd, opts):
    imgsuite(cmd, d / "ct.nrrd", d / "ct.nrrd", "--output", d / "sum.nrrd", *opts)
    plastimatch(cmd, d / "ct.nrrd", d / "ct.nrrd", "--output", d / "sum_p.nrrd", *opts)
    assert_same(d / "sum.nrrd", d / "sum_p.nrrd")
    if cmd == "add" and not opts:
        assert voxels(d / "sum.nrrd")[0, 0, 0] == 32767 and voxels(d / "sum.nrrd")[0, 0, 1] == -32768


@pytest.mark.parametrize(
    "args",
    [
        ["threshold", "--input", "slice2d.nrrd", "--above", "-500", "--output", "{out}"],
        ["add", "slice2d.nrrd", "slice2d.nrrd", "--output", "{out}"],
        ["mask", "--input", "slice2d.nrrd", "--mask", "slice2d_mask.nrrd", "--mask-value", "7", "--output", "{out}"],
    ],
    ids=["threshold", "add", "mask"],
)
def test_2d(d, args):
    m = sitk.GetImageFromArray(
        (sitk.GetArrayFromImage(sitk.ReadImage(str(d / "slice2d.nrrd"))) > -500).astype(np.uint8)
    )
    m.CopyInformation(sitk.ReadImage(str(d / "slice2d.nrrd")))
    sitk.WriteImage(m, str(d / "slice2d_mask.nrrd"))
    args = [str(d / a) if a.endswith(".nrrd") else a for a in args]
    imgsuite(*[a.replace("{out}", str(d / "o2.nrrd")) for a in args])
    plastimatch(*[a.replace("{out}", str(d / "o2_p.nrrd")) for a in args])
    assert sitk.ReadImage(str(d / "o2.nrrd")).GetDimension() == 2
    assert_same(d / "o2.nrrd", d / "o2_p.nrrd")


def test_add_uint8_saturates(d):
    imgsuite("add", d / "u8.nrrd", d / "u8.nrrd", "--output", d / "u.nrrd")
    plastimatch("add", d / "u8.nrrd", d / "u8.nrrd", "--output", d / "u_p.nrrd")
    assert_same(d / "u.nrrd", d / "u_p.nrrd")
    assert (voxels(d / "u.nrrd") == 255).all()


@pytest.mark.parametrize(
    "pw",
    ["-inf,0,-1000,-1000,0,0,1000,2000,inf,0", "-1000,0,1000,100", "-inf,3,-500,0,500,1000,inf,-2", "0,100"],
)
def test_adjust_pw_linear(d, pw):
    imgsuite("adjust", "--input", d / "ct.nrrd", "--output", d / "adj.nrrd", f"--pw-linear={pw}")
    plastimatch("adjust", "--input", d / "ct.nrrd", "--output", d / "adj_p.nrrd", "--pw-linear", pw)
    assert_same(d / "adj.nrrd", d / "adj_p.nrrd", atol=1e-3)


def test_adjust_pw_linear_spaced_minus(d):
    # plastimatch scripts write --pw-linear "-inf,0,..." with a space: argparse must take it as the value
    imgsuite("adjust", "--input", d / "ct.nrrd", "--output", d / "adj2.nrrd", "--pw-linear", "-inf,0,0,0,inf,1")
    assert voxels(d / "adj2.nrrd").min() == 0


def test_scale_overflow(d):
    imgsuite("scale", d / "ct.nrrd", "--weight", "3.5", "--output", d / "sc.nrrd")
    plastimatch("scale", d / "ct.nrrd", "--weight", "3.5", "--output", d / "sc_p.nrrd")
    assert_same(d / "sc.nrrd", d / "sc_p.nrrd")
    assert voxels(d / "sc.nrrd").max() == pytest.approx(32767 * 3.5)


def test_diff(d):
    imgsuite("diff", d / "ct.nrrd", d / "ct2.nrrd", d / "df.nrrd")
    plastimatch("diff", d / "ct.nrrd", d / "ct2.nrrd", d / "df_p.nrrd")
    assert_same(d / "df.nrrd", d / "df_p.nrrd")


def test_compare(d):
    ours = numbers(imgsuite("compare", d / "ct.nrrd", d / "ct2.nrrd"))
    theirs = numbers(plastimatch("compare", d / "ct.nrrd", d / "ct2.nrrd"))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


@pytest.mark.parametrize("pair", [("m1", "m2"), ("m1_obl", "m2_obl"), ("m2", "m1")])
def test_dice_all(d, pair):
    a, b = (d / f"{p}.nrrd" for p in pair)
    ours = imgsuite("dice", "--all", a, b)
    theirs = plastimatch("dice", "--all", a, b)
    np.testing.assert_allclose(numbers(ours), numbers(theirs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("src", ["m1", "m1_obl"])
def test_boundary(d, src):
    imgsuite("boundary", d / f"{src}.nrrd", "--output", d / "bd.nrrd")
    plastimatch("boundary", d / f"{src}.nrrd", "--output", d / "bd_p.nrrd")
    assert_same(d / "bd.nrrd", d / "bd_p.nrrd")


@pytest.mark.parametrize("behavior", ["adaptive", "zero-pad", "edge-pad"])
def test_boundary_faces(d, behavior):
    # a structure touching the image's first corner, so the padding rule matters
    mask = np.zeros((6, 7, 8), np.uint8)
    mask[0:4, 0:5, 0:3] = 1
    mask[2:6, 3:7, 5:8] = 1
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing((0.8, 1.1, 2.5))
    sitk.WriteImage(image, str(d / "faces_in.nrrd"))
    opts = ["--boundary-type", "interior-face", "--boundary-behavior", behavior]
    imgsuite("boundary", d / "faces_in.nrrd", "--output", d / "bf.nrrd", *opts)
    plastimatch("boundary", d / "faces_in.nrrd", "--output", d / "bf_p.nrrd", *opts)
    assert_same(d / "bf.nrrd", d / "bf_p.nrrd")
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(d / "bf.nrrd"))).max() > 8  # several face bits in use


@pytest.mark.parametrize(
    "opts",
    [
        [],
        ["--inside-positive", "--maximum-distance", "4"],
        ["--absolute-distance"],
        ["--algorithm", "danielsson"],  # the default; its itk-* and maurer variants count inside differently
    ],
)
@pytest.mark.parametrize("src", ["m1", "m1_obl"])
def test_dmap(d, opts, src):
    imgsuite("dmap", "--input", d / f"{src}.nrrd", "--output", d / "dm.nrrd", *opts)
    plastimatch("dmap", "--input", d / f"{src}.nrrd", "--output", d / "dm_p.nrrd", *opts)
    assert_same(d / "dm.nrrd", d / "dm_p.nrrd", atol=1e-4)


def test_dmap_squared(d):
    # plastimatch 1.9.4: --squared-distance gives all zeros with the default algorithm; its maurer variant
    # puts 0 on the inner layer next to the boundary (unlike its danielsson); outside, all agree
    imgsuite("dmap", "--input", d / "m1.nrrd", "--output", d / "dq.nrrd", "--squared-distance")
    imgsuite("dmap", "--input", d / "m1.nrrd", "--output", d / "dl.nrrd")
    plastimatch(
        "dmap", "--input", d / "m1.nrrd", "--output", d / "dq_p.nrrd", "--squared-distance", "--algorithm", "maurer"
    )
    ours, plain, theirs = voxels(d / "dq.nrrd"), voxels(d / "dl.nrrd"), voxels(d / "dq_p.nrrd")
    np.testing.assert_allclose(ours, np.sign(plain) * plain**2, rtol=1e-5, atol=1e-4)
    outside = voxels(d / "m1.nrrd") == 0
    np.testing.assert_allclose(ours[outside], theirs[outside], rtol=1e-5, atol=1e-3)


def test_union(d):
    imgsuite("union", d / "m1.nrrd", d / "m2.nrrd", "--output", d / "un.nrrd")
    plastimatch("union", d / "m1.nrrd", d / "m2.nrrd", "--output", d / "un_p.nrrd")
    assert_same(d / "un.nrrd", d / "un_p.nrrd")


@pytest.mark.parametrize(
    "src,opts",
    [
        ("ct", []),
        ("obl", ["--sigma"]),
        ("ct", ["--mask", "m1.nrrd", "--sigma"]),
        ("obl", ["--mask", "m1_obl.nrrd", "--outside"]),
        ("ct", ["--mask", "empty.nrrd"]),
    ],
)
def test_stats(d, src, opts):
    opts = [str(d / o) if o.endswith(".nrrd") else o for o in opts]
    ours = imgsuite("stats", d / f"{src}.nrrd", *opts)
    theirs = plastimatch("stats", d / f"{src}.nrrd", *opts)
    if "empty" in opts[-1:][0] if opts else False:
        assert "NUMVOX 0" in ours and "NUMVOX 0" in theirs
        return
    ours, theirs = numbers(ours), numbers(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-4)


@pytest.mark.parametrize("src", ["ct", "obl"])
def test_probe(d, src):
    opts = ["-i", "1 2 3;0 0 0;4.5 3.25 2.75;40 0 0", "-l", "-10 8 -25;-8.3 10.1 -21.4;100 0 0"]
    ours = imgsuite("probe", d / f"{src}.nrrd", *opts)
    theirs = plastimatch("probe", d / f"{src}.nrrd", *opts)
    assert ours.count("N/A") == theirs.count("N/A") > 0
    np.testing.assert_allclose(numbers(ours), numbers(theirs), atol=0.0051, rtol=1e-5)  # %.2f columns


@pytest.mark.parametrize(
    "opts",
    [
        ["--pattern", "rect", "--rect-size", "-20 30 -10 25 -30 40"],
        ["--pattern", "rect", "--rect-size", "30", "--foreground", "100", "--background", "5"],
        ["--pattern", "sphere", "--center", "5 -3 2", "--radius", "25 30 35", "--output-type", "short"],
        ["--pattern", "xramp"],
        ["--pattern", "zramp"],
        ["--pattern", "gauss", "--gauss-center", "5 0 -5", "--gauss-std", "20 30 40"],
        ["--pattern", "grid", "--grid-pattern", "3 4 2"],
    ],
    ids=["rect-corners", "rect-width", "sphere", "xramp", "zramp", "gauss", "grid"],
)
def test_synth(d, opts):
    grid = ["--dim", "18 14 10", "--spacing", "4 5 7", "--origin", "-35 -30 -31"]
    imgsuite("synth", *opts, *grid, "--output", d / "sy.nrrd")
    plastimatch("synth", *opts, *grid, "--output", d / "sy_p.nrrd")
    assert_same(d / "sy.nrrd", d / "sy_p.nrrd", atol=1e-3)


def test_synth_default_grid(d):
    imgsuite("synth", "--pattern", "sphere", "--dim", "20", "--output", d / "sy.nrrd")
    plastimatch("synth", "--pattern", "sphere", "--dim", "20", "--output", d / "sy_p.nrrd")
    assert_same(d / "sy.nrrd", d / "sy_p.nrrd")


def test_thumbnail_axial(d):
    opts = ["--axis", "z", "--loc", "-17", "--dim", "12", "--spacing", "1.5"]
    imgsuite("thumbnail", "--input", d / "ct.nrrd", "--output", d / "th.mha", *opts)
    plastimatch("thumbnail", "--input", d / "ct.nrrd", "--output", d / "th_p.mha", *opts)
    ours, theirs = voxels(d / "th.mha"), voxels(d / "th_p.mha")[0]
    np.testing.assert_allclose(ours, theirs, atol=0.05)


@pytest.mark.parametrize("opts", [["--dim", "12", "--spacing", "1.5"], ["--spacing", "2"]], ids=["dim", "spacing"])
def test_thumbnail_default_loc(d, tmp_path, opts):
    # without --loc plastimatch cuts at 0 mm (and with only --spacing makes 16 voxels): shift the CT over z = 0
    ct = sitk.ReadImage(str(d / "ct.nrrd"))
    ct.SetOrigin((-12.0, 4.5, -16.0))  # z centres -16 .. 11.5 mm
    sitk.WriteImage(ct, str(tmp_path / "ct0.nrrd"))
    imgsuite("thumbnail", "--input", tmp_path / "ct0.nrrd", "--output", tmp_path / "th.mha", *opts)
    plastimatch("thumbnail", "--input", tmp_path / "ct0.nrrd", "--output", tmp_path / "th_p.mha", *opts)
    ours, theirs = voxels(tmp_path / "th.mha"), voxels(tmp_path / "th_p.mha")[0]
    assert ours.shape == theirs.shape and (ours != -1000).any()
    np.testing.assert_allclose(ours, theirs, atol=0.05)


def test_filter_gauss(d):
    imgsuite("filter", d / "ct.nrrd", "--gauss-width", "2.5", "--output", d / "fg.nrrd")
    plastimatch("filter", d / "ct.nrrd", "--gauss-width", "2.5", "--output", d / "fg_p.nrrd")
    assert_same(d / "fg.nrrd", d / "fg_p.nrrd", atol=0.05)


def test_filter_gradient_magnitude(d):
    imgsuite("filter", d / "ct.nrrd", "--pattern", "gm", "--output", d / "gm.nrrd")
    plastimatch("filter", d / "ct.nrrd", "--pattern", "gm", "--output", d / "gm_p.nrrd")
    assert_same(d / "gm.nrrd", d / "gm_p.nrrd", atol=0.01)  # float32 rounding of values up to ~10^4 HU/mm


@pytest.mark.parametrize("opt", [["--structure", "m1.nrrd"], ["--coordinates", "-10 0 8 15 -25 -10"]])
def test_crop_structure_and_coordinates(d, opt):
    opt = [str(d / o) if o.endswith(".nrrd") else o for o in opt]
    imgsuite("crop", "--input", d / "ct.nrrd", "--output", d / "cs.nrrd", *opt)
    plastimatch("crop", "--input", d / "ct.nrrd", "--output", d / "cs_p.nrrd", *opt)
    assert_same(d / "cs.nrrd", d / "cs_p.nrrd")
