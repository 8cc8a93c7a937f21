"""Command line: register, warp/convert --xf, landmark-warp, xf-convert, compose, vf-stats, synth-vf;
plastimatch side by side where it has the command."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.registration import read_command_file, synth_vf, transform_to_field, vf_stats
from SlicerImgSuite.registration.landmarks import LandmarkWarp, read_landmarks, write_landmarks
from SlicerImgSuite.registration.xforms import field_to_bspline, read_transform, regrid_bspline, write_transform

PLASTIMATCH = shutil.which("plastimatch") or "plastimatch"  # the Debian package is the anchor (CI has it)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, shared_data):
    """A small real CT (4D lung phase 0, cropped) and a copy shifted by whole voxels, (5, -5, 6) mm."""
    from SlicerImgSuite.io import read_image

    folder = tmp_path_factory.mktemp("pair")
    ct = sitk.Cast(read_image(shared_data / "opentps-4dct-light-lung" / "00"), sitk.sitkInt16)[10:90, 10:90, 5:40]
    shift = sitk.TranslationTransform(3, [-5.0, 5.0, -6.0])
    moving = sitk.Resample(ct, ct, shift, sitk.sitkLinear, -1024)
    sitk.WriteImage(ct, str(folder / "fixed.mha"))
    sitk.WriteImage(moving, str(folder / "moving.mha"))
    return folder, ct, moving


def run(*argv) -> int:
    return main([str(a) for a in argv])


def test_register_command_file_writes_every_output(pair, tmp_path):
    folder, ct, moving = pair
    write_landmarks([[0, 0, 0], [10, 20, -30]], tmp_path / "fixed.mrk.json")
    write_landmarks([[5, -5, 6], [15, 15, -24]], tmp_path / "moving.mrk.json")
    cmd = tmp_path / "reg.txt"
    cmd.write_text(
        f"[GLOBAL]\nfixed={folder / 'fixed.mha'}\nmoving={folder / 'moving.mha'}\n"
        f"fixed_landmarks={tmp_path / 'fixed.mrk.json'}\nmoving_landmarks={tmp_path / 'moving.mrk.json'}\n"
        f"xform_out={tmp_path / 'x.h5'}\nvf_out={tmp_path / 'vf.nrrd'}\nimg_out={tmp_path / 'w.nrrd'}\n"
        f"img_out_type=short\ndefault_value=-1024\nwarped_landmarks={tmp_path / 'warped.fcsv'}\n"
        f"logfile={tmp_path / 'log.txt'}\n\n[STAGE]\nxform=translation\nres=2 2 1\nmax_its=100\n"
        "[STAGE]\nxform=bspline\nres=1 1 1\ngrid_spac=40 40 40\nmax_its=10\nlandmark_penalty=1\n"
    )
    assert run("register", "-q", cmd) == 0
    t = read_transform(tmp_path / "x.h5")
    assert np.allclose(np.array(t.TransformPoint([0, 0, 0])), [5, -5, 6], atol=1.0)  # 5 x 5 x 6 mm voxels
    vf = sitk.ReadImage(str(tmp_path / "vf.nrrd"))
    assert vf.GetSize() == ct.GetSize() and vf.GetNumberOfComponentsPerPixel() == 3
    warped = sitk.ReadImage(str(tmp_path / "w.nrrd"))
    assert warped.GetPixelID() == sitk.sitkInt16
    before = np.abs(sitk.GetArrayViewFromImage(moving).astype(float) - sitk.GetArrayViewFromImage(ct)).mean()
    after = np.abs(sitk.GetArrayViewFromImage(warped).astype(float) - sitk.GetArrayViewFromImage(ct)).mean()
    assert after < 0.5 * before
    pts, labels = read_landmarks(tmp_path / "warped.fcsv")
    assert np.allclose(pts, [[0, 0, 0], [10, 20, -30]], atol=1.0) and len(labels) == 2
    assert "stage 2 (bspline" in (tmp_path / "log.txt").read_text()


def test_register_bad_command_file_fails_cleanly(pair, tmp_path, capsys):
    folder, _, _ = pair
    cmd = tmp_path / "bad.txt"
    cmd.write_text(f"[GLOBAL]\nfixed={folder / 'fixed.mha'}\nmoving={folder / 'moving.mha'}\n"
                   f"img_out={tmp_path / 'out.mha'}\n[STAGE]\nxform=rigid\ngrid_spacing=3\n")  # fmt: skip
    assert run("register", cmd) == 2
    err = capsys.readouterr().err
    assert "bad.txt: line 7: unknown key 'grid_spacing'" in err
    assert not (tmp_path / "out.mha").exists()
    assert run("register", tmp_path / "missing.txt") == 2
    cmd.write_text(f"[GLOBAL]\nfixed={tmp_path / 'none.mha'}\nmoving={folder / 'moving.mha'}\n[STAGE]\n")
    assert run("register", cmd) == 2
    assert "none.mha: no such file" in capsys.readouterr().err


def test_warp_matches_plastimatch_and_keeps_labels(pair, tmp_path):
    folder, ct, _ = pair
    vf = synth_vf(ct, "gaussian", magnitude=(4, -3, 2), std=(30, 30, 40))
    sitk.WriteImage(sitk.Cast(vf, sitk.sitkVectorFloat32), str(tmp_path / "vf.mha"))
    assert run("warp", "-q", "--input", folder / "fixed.mha", "--xf", tmp_path / "vf.mha",
               "--output-img", tmp_path / "ours.mha", "--default-value", -1024) == 0  # fmt: skip
    subprocess.run([PLASTIMATCH, "warp", "--input", str(folder / "fixed.mha"), "--xf", str(tmp_path / "vf.mha"),
                    "--output-img", str(tmp_path / "plm.mha"), "--default-value", "-1024"],
                   check=True, capture_output=True)  # fmt: skip
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ours.mha"))).astype(float)
    plm = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "plm.mha"))).astype(float)
    inner = (slice(3, -3), slice(3, -3), slice(3, -3))
    assert np.median(np.abs(ours[inner] - plm[inner])) <= 1.0
    assert np.mean(np.abs(ours[inner] - plm[inner])) < 15  # HU; same warp, interpolation details differ
    # convert --xf is the same job
    assert run("convert", "--input", folder / "fixed.mha", "--xf", tmp_path / "vf.mha",
               "--output-img", tmp_path / "conv.mha", "--default-value", -1024) == 0  # fmt: skip
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "conv.mha"))), ours.astype(np.int16))
    # an ss-img keeps its bit patterns (nearest), a dose stays float
    ss = sitk.Cast(sitk.GetImageFromArray(np.where(sitk.GetArrayFromImage(ct) > -400, 5, 2).astype(np.uint32)),
                   sitk.sitkUInt32)  # fmt: skip
    ss.CopyInformation(ct)
    sitk.WriteImage(ss, str(tmp_path / "ss.nrrd"))
    sitk.WriteImage(sitk.Cast(ct, sitk.sitkFloat32) / 100.0, str(tmp_path / "dose.nrrd"))
    assert run("warp", "--input-ss-img", tmp_path / "ss.nrrd", "--output-ss-img", tmp_path / "ss_w.nrrd",
               "--input-dose-img", tmp_path / "dose.nrrd", "--output-dose-img", tmp_path / "dose_w.nrrd", "--dose-units", "gy",
               "--xf", tmp_path / "vf.mha") == 0  # fmt: skip
    ssw = sitk.ReadImage(str(tmp_path / "ss_w.nrrd"))
    assert ssw.GetPixelID() == sitk.sitkUInt32 and set(np.unique(sitk.GetArrayViewFromImage(ssw))) <= {0, 2, 5}
    assert sitk.ReadImage(str(tmp_path / "dose_w.nrrd")).GetPixelID() == sitk.sitkFloat32


def test_synth_vf_and_compose_match_plastimatch(pair, tmp_path):
    folder, ct, _ = pair
    fixed = folder / "fixed.mha"
    args = ["--xf-gauss", "--gauss-center", "-20 10 -60", "--gauss-mag", "3 -2 4", "--gauss-std", "25 30 35"]
    assert run("synth-vf", "--fixed", fixed, "--output", tmp_path / "g.mha", *args) == 0
    subprocess.run([PLASTIMATCH, "synth-vf", "--fixed", str(fixed), "--output", str(tmp_path / "pg.mha"), *args],
                   check=True, capture_output=True)  # fmt: skip
    g = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "g.mha")))
    assert np.abs(g - sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "pg.mha")))).max() < 1e-4
    assert run("synth-vf", "--fixed", fixed, "--output", tmp_path / "t.mha", "--xf-trans", "1 2 3") == 0
    assert run("compose", tmp_path / "t.mha", tmp_path / "g.mha", tmp_path / "c.mha") == 0
    subprocess.run([PLASTIMATCH, "compose", str(tmp_path / "t.mha"), str(tmp_path / "g.mha"), str(tmp_path / "pc.mha")],
                   check=True, capture_output=True)  # fmt: skip
    c = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "c.mha")))
    pc = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "pc.mha")))
    inner = (slice(2, -2), slice(2, -2), slice(2, -2))
    assert np.abs(c[inner] - pc[inner]).max() < 0.05


def test_vf_stats_and_jacobian(pair, tmp_path, capsys):
    folder, ct, _ = pair
    assert run("synth-vf", "--fixed", folder / "fixed.mha", "--output", tmp_path / "r.mha", "--xf-radial",
               "--radial-mag", "4", "--radial-radius", "60") == 0  # fmt: skip
    assert run("vf-stats", tmp_path / "r.mha", "--output-json", tmp_path / "s.json",
               "--output-jacobian", tmp_path / "j.nrrd") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "jacobian min" in out and "folded voxels 0" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["jacobian_max"] > 1.0 and stats["folded_voxels"] == 0  # an expansion
    assert abs(stats["x"]["mean"]) < 0.5 and stats["x"]["max"] > 1.0
    # a field that folds is counted and warned about
    fold = synth_vf(ct, "radial", radius=(40, 40, 40), magnitude=(-80, -80, -80))
    sitk.WriteImage(sitk.Cast(fold, sitk.sitkVectorFloat32), str(tmp_path / "fold.mha"))
    assert run("vf-stats", tmp_path / "fold.mha") == 0
    assert "folded voxels" in capsys.readouterr().err
    assert vf_stats(fold)["jacobian_min"] <= 0


def test_xf_convert_bspline_vf_regrid_linear(pair, tmp_path):
    folder, ct, _ = pair
    from SlicerImgSuite.registration.bspline import ControlGrid

    grid = ControlGrid.covering(ct, [40, 40, 40])
    coef = np.random.default_rng(3).normal(0, 2, (3, *grid.shape_zyx))
    bs = grid.to_sitk(coef)
    write_transform(bs, tmp_path / "b.h5")
    assert run("xf-convert", "--input", tmp_path / "b.h5", "--output", tmp_path / "b.nrrd",
               "--fixed", folder / "fixed.mha") == 0  # fmt: skip
    field = sitk.ReadImage(str(tmp_path / "b.nrrd"))
    assert np.allclose(sitk.GetArrayFromImage(field), sitk.GetArrayFromImage(transform_to_field(bs, ct)), atol=1e-4)
    # vector field -> B-spline on the same spacing recovers the spline
    back = field_to_bspline(sitk.Cast(field, sitk.sitkVectorFloat64), [40, 40, 40])
    diff = sitk.GetArrayFromImage(transform_to_field(back, ct)) - sitk.GetArrayFromImage(field)
    assert np.abs(diff).max() < 0.05
    assert run("xf-convert", "--input", tmp_path / "b.nrrd", "--output", tmp_path / "b2.h5",
               "--output-type", "bspline", "--grid-spacing", "40") == 0  # fmt: skip
    # refining 40 -> 20 mm is exact
    fine = regrid_bspline(bs, [20, 20, 20])
    assert fine.GetTransformDomainMeshSize() == tuple(2 * m for m in bs.GetTransformDomainMeshSize())
    d = sitk.GetArrayFromImage(transform_to_field(fine, ct)) - sitk.GetArrayFromImage(transform_to_field(bs, ct))
    assert np.abs(d).max() < 1e-3
    # linear -> .tfm
    rigid = sitk.Euler3DTransform([0, 0, 0], 0.1, 0, 0, [1, 2, 3])
    sitk.WriteTransform(rigid, str(tmp_path / "r.h5"))
    assert run("xf-convert", "--input", tmp_path / "r.h5", "--output", tmp_path / "r.tfm") == 0
    r = read_transform(tmp_path / "r.tfm")
    assert r.GetName() == "AffineTransform" and np.allclose(
        r.TransformPoint([5, 5, 5]), rigid.TransformPoint([5, 5, 5])
    )


def test_bad_transform_files_are_named(tmp_path, capsys):
    (tmp_path / "junk.tfm").write_text("not a transform")
    assert run("vf-stats", tmp_path / "junk.tfm", "--dim", "4 4 4", "--origin", "0 0 0", "--spacing", "1") == 2
    assert "junk.tfm: cannot read transform" in capsys.readouterr().err
    img = sitk.Image([4, 4, 4], sitk.sitkFloat32)
    sitk.WriteImage(img, str(tmp_path / "scalar.mha"))
    assert run("warp", "--input", tmp_path / "scalar.mha", "--xf", tmp_path / "scalar.mha",
               "--output-img", tmp_path / "o.mha") == 2  # fmt: skip
    assert "scalar.mha: not a vector field" in capsys.readouterr().err
    assert not (tmp_path / "o.mha").exists()


def test_a_transform_class_simpleitk_lacks_is_named(tmp_path, capsys):
    # the B-spline class Slicer's bulk B-spline node and plastimatch's xf_out_itk write: the error named
    # "VersorTransform_float_3_3", the last line of ITK's list of the classes it does know
    (tmp_path / "bsp.tfm").write_text(
        "#Insight Transform File V1.0\n#Transform 0\nTransform: BSplineDeformableTransform_double_3_3\n"
        "Parameters: " + " ".join(["0"] * 3 * 64) + "\nFixedParameters: 4 4 4 0 0 0 1 1 1 1 0 0 0 1 0 0 0 1\n"
    )
    assert run("vf-stats", tmp_path / "bsp.tfm", "--dim", "4 4 4", "--origin", "0 0 0", "--spacing", "1") == 2
    err = capsys.readouterr().err
    assert "bsp.tfm: cannot read transform: SimpleITK has no class BSplineDeformableTransform_double_3_3" in err


@pytest.mark.parametrize("kind", ["bspline", "field"])
def test_a_transform_made_for_another_grid_warns_it_warps_in_part(tmp_path, capsys, kind):
    # a 3 mm shift on a 40 mm cube, applied to a 62 mm image: ITK moves nothing outside the cube, so the output
    # was shifted on a third of the grid and left in place elsewhere, with a seam, and nothing said so
    cube = sitk.Image([11, 11, 11], sitk.sitkFloat32)
    cube.SetSpacing([4, 4, 4])
    if kind == "bspline":
        t = sitk.BSplineTransformInitializer(cube, [4, 4, 4])
        n = len(t.GetParameters()) // 3
        t.SetParameters([3.0] * n + [0.0] * 2 * n)
        xf = tmp_path / "small.tfm"
        sitk.WriteTransform(t, str(xf))
    else:
        xf = tmp_path / "small_vf.mha"
        sitk.WriteImage(synth_vf(cube, "translation", translation=(3, 0, 0)), str(xf))
    big = sitk.GaussianSource(sitk.sitkFloat32, [32] * 3, [8] * 3, [16] * 3, 100, [0, 0, 0], [2, 2, 2])
    sitk.WriteImage(big, str(tmp_path / "big.mha"))
    assert run("warp", "--input", tmp_path / "big.mha", "--xf", xf, "--output-img", tmp_path / "w.mha") == 0
    assert "reaches only 32.5 % of the output grid" in capsys.readouterr().err
    # the same file as register's xform_in starts the registration with that seam
    (tmp_path / "reg.txt").write_text(f"[GLOBAL]\nfixed={tmp_path / 'big.mha'}\nmoving={tmp_path / 'big.mha'}\n"
                                      f"xform_in={xf}\n[STAGE]\nxform=vf\nmax_its=2\n")  # fmt: skip
    assert run("register", tmp_path / "reg.txt") == 0
    assert "reaches only 32.5 % of the fixed image's grid" in capsys.readouterr().err
    # on the grid it was made for: no warning
    sitk.WriteImage(sitk.Cast(cube, sitk.sitkFloat32) + 1, str(tmp_path / "cube.mha"))
    assert run("warp", "--input", tmp_path / "cube.mha", "--xf", xf, "--output-img", tmp_path / "c.mha") == 0
    assert "reaches only" not in capsys.readouterr().err


def test_a_text_landmark_line_with_four_numbers_is_refused(tmp_path):
    # "10 20 30 1" was read as (20, 30, 1) labelled "10"; plastimatch reads (10, 20, 30): which is meant is unclear
    (tmp_path / "four.txt").write_text("# x y z\n10 20 30 1\n")
    with pytest.raises(ImgSuiteError, match=r"four.txt: line 2: 4 fields; expected 'x y z' or 'label x y z'"):
        read_landmarks(tmp_path / "four.txt")
    (tmp_path / "ok.txt").write_text("10, 20, 30\ncarina 1 2 3\n")
    points, labels = read_landmarks(tmp_path / "ok.txt")
    assert points.tolist() == [[10, 20, 30], [1, 2, 3]] and labels[1] == "carina"


def test_landmarks_with_the_same_labels_in_another_order_are_refused(tmp_path, capsys):
    # pairing by order joined fixed 'apex' to moving 'carina' (30 mm apart) and warped with it, exit 0
    img = sitk.GaussianSource(sitk.sitkFloat32, [16] * 3, [4] * 3, [8] * 3, 100, [0, 0, 0], [4, 4, 4])
    sitk.WriteImage(img, str(tmp_path / "img.mha"))
    (tmp_path / "f.txt").write_text("apex 0 0 0\ncarina 30 0 0\nrib 0 30 10\n")
    (tmp_path / "m.txt").write_text("carina 32 0 0\napex 2 0 0\nrib 2 30 10\n")
    args = ["landmark-warp", "--fixed-landmarks", tmp_path / "f.txt", "--input", tmp_path / "img.mha",
            "--output-img", tmp_path / "w.mha", "--moving-landmarks"]  # fmt: skip
    assert run(*args, tmp_path / "m.txt") == 2
    err = capsys.readouterr().err
    assert "m.txt: landmark 1 is 'apex' in the fixed file but 'carina' here" in err
    assert not (tmp_path / "w.mha").exists()
    (tmp_path / "m2.txt").write_text("apex 2 0 0\ncarina 32 0 0\nrib 2 30 10\n")
    assert run(*args, tmp_path / "m2.txt") == 0
    # labels that do not name the points (two schemes) still pair by order, as plastimatch
    (tmp_path / "m3.txt").write_text("M-1 2 0 0\nM-2 32 0 0\nM-3 2 30 10\n")
    assert run(*args, tmp_path / "m3.txt") == 0


@pytest.mark.parametrize("algorithm", ["tps", "gauss", "wendland"])
def test_landmark_warp_interpolates_the_pairs(algorithm):
    f = np.array([[0, 0, 0], [40, 0, 0], [0, 40, 0], [0, 0, 40], [30, 30, 30]], float)
    m = f + np.array([[2, 0, 0], [0, 1, 0], [0, 0, -2], [1, 1, 1], [0, 0, 0]])
    w = LandmarkWarp(f, m, algorithm, radius=30)
    assert np.allclose(w.displacement(f), m - f, atol=1e-6)
    if algorithm == "wendland":
        assert np.allclose(w.displacement([[200, 200, 200]]), 0)
    smooth = LandmarkWarp(f, m, algorithm, radius=30, stiffness=1.0)
    assert not np.allclose(smooth.displacement(f), m - f, atol=1e-3)


def test_one_fixed_point_sent_to_two_places_is_refused(pair, tmp_path, capsys):
    # fixed landmarks 1 and 4 at one place, their moving ones 4 mm apart: the warp met neither (off by 2 mm
    # each) and said nothing. A repeated pair (same both sides) is harmless and still warps.
    (tmp_path / "f.txt").write_text("10 10 10\n20 20 20\n30 30 30\n10 10 10\n")
    (tmp_path / "m.txt").write_text("11 10 10\n21 20 20\n31 30 30\n15 10 10\n")
    args = ["landmark-warp", "-f", str(tmp_path / "f.txt"), "-m", str(tmp_path / "m.txt"), "-I", str(pair[0] / "moving.mha"),
            "-O", str(tmp_path / "o.mha")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "f.txt: fixed landmarks 1 and 4 are both at (10, 10, 10)" in err and "4 mm apart" in err
    assert not (tmp_path / "o.mha").exists()
    with pytest.raises(Exception, match="one point cannot go to two places"):
        LandmarkWarp([[0, 0, 0], [0, 0, 0], [40, 0, 0]], [[1, 0, 0], [2, 0, 0], [40, 0, 0]])
    (tmp_path / "m.txt").write_text("11 10 10\n21 20 20\n31 30 30\n11 10 10\n")
    assert main(args) == 0 and (tmp_path / "o.mha").exists()


def test_landmark_warp_cli_with_slicer_and_text_files(pair, tmp_path, mrml):
    folder, ct, _ = pair
    from SlicerImgSuite.mrml import markups

    c = np.array(ct.TransformContinuousIndexToPhysicalPoint([40, 40, 17]))
    fixed_pts = c + np.array([[0, 0, 0], [30, 0, 0], [0, 30, 0], [0, 0, 30]])
    moving_pts = fixed_pts + [[3, 0, 0], [0, 2, 0], [0, 0, 0], [-2, 0, 1]]
    write_landmarks(fixed_pts, tmp_path / "f.fcsv")
    np.savetxt(tmp_path / "m.txt", moving_pts)
    # the .fcsv reads back through Slicer's own storage node as the same LPS points
    node = markups.read_markups(mrml, tmp_path / "f.fcsv")
    assert np.allclose(markups.points_from_fiducial_node(node)[0], fixed_pts, atol=1e-3)
    assert run("landmark-warp", "-q", "--fixed-landmarks", tmp_path / "f.fcsv", "--moving-landmarks",
               tmp_path / "m.txt", "--input", folder / "fixed.mha", "--output-img", tmp_path / "w.mha",
               "--output-vf", tmp_path / "vf.mha", "--algorithm", "tps", "--output-landmarks",
               tmp_path / "back.txt") == 0  # fmt: skip
    vf = sitk.ReadImage(str(tmp_path / "vf.mha"))
    for p, q in zip(fixed_pts, moving_pts):
        idx = vf.TransformPhysicalPointToIndex(p.tolist())
        assert np.allclose(vf[idx], q - p, atol=0.5)
    assert np.allclose(read_landmarks(tmp_path / "back.txt")[0], fixed_pts, atol=0.05)
    assert sitk.ReadImage(str(tmp_path / "w.mha")).GetSize() == ct.GetSize()
    np.savetxt(tmp_path / "short.txt", moving_pts[:3])
    assert run("landmark-warp", "--fixed-landmarks", tmp_path / "f.fcsv", "--moving-landmarks",
               tmp_path / "short.txt", "--input", folder / "fixed.mha", "--output-img", tmp_path / "x.mha") == 2  # fmt: skip
    assert not (tmp_path / "x.mha").exists()


def test_read_command_file_from_disk(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("[GLOBAL]\nfixed=a\nmoving=b\n[STAGE]\nxform=bspline\n")
    assert read_command_file(p).stages[0]["xform"] == "bspline"


def test_warp_rtstruct_through_masks(phantom, tmp_path):
    """An RTSTRUCT follows the transform: rasterized on the moving CT, warped, written as labelmap and RTSTRUCT."""
    from SlicerImgSuite.registration import warp_image
    from SlicerImgSuite.rtstruct import read_rtstruct

    shift = sitk.TranslationTransform(3, [-6.0, 0.0, 4.0])
    sitk.WriteTransform(shift, str(tmp_path / "shift.tfm"))
    assert run("warp", "-q", "--input-rtstruct", phantom.rtstruct, "--referenced-ct", phantom.ct_dir,
               "--xf", tmp_path / "shift.tfm", "--fixed", phantom.ct_dir, "--output-labelmap", tmp_path / "lm.nrrd",
               "--output-dicom", tmp_path / "rs", "--output-prefix", tmp_path / "prefix") == 0  # fmt: skip
    lm = sitk.ReadImage(str(tmp_path / "lm.nrrd"))
    assert lm.GetSize() == phantom.ct.GetSize() and sitk.GetArrayViewFromImage(lm).max() > 1
    gtv = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "prefix" / "GTV.nrrd"))) > 0
    truth = sitk.GetArrayFromImage(warp_image(phantom.masks["GTV"], shift, phantom.ct, "nn")) > 0
    assert 2 * np.sum(gtv & truth) / (gtv.sum() + truth.sum()) > 0.9
    assert {r.name for r in read_rtstruct(tmp_path / "rs" / "RS.dcm").rois} >= {"GTV", "BODY"}


@pytest.mark.parametrize("algorithm", ["gauss", "tps"])
def test_landmark_field_matches_plastimatch_lm_warp(tmp_path, algorithm):
    """Same landmarks (plastimatch text, LPS), same RBF: the fields agree to micrometres."""
    ref = sitk.Image([20, 20, 10], sitk.sitkInt16)
    ref.SetSpacing([2, 2, 3])
    ref.SetOrigin([-20, -20, -15])
    sitk.WriteImage(ref, str(tmp_path / "ref.mha"))
    f = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 5]], float)
    m = f + [[2, 0, 0], [0, 1, 0], [0, 0, -2]]
    np.savetxt(tmp_path / "f.txt", f)
    np.savetxt(tmp_path / "m.txt", m)
    subprocess.run([PLASTIMATCH, "lm-warp", "-f", str(tmp_path / "f.txt"), "-m", str(tmp_path / "m.txt"),
                    "-I", str(tmp_path / "ref.mha"), "-V", str(tmp_path / "plm.mha"), "-a", algorithm, "-r", "20"],
                   check=True, capture_output=True)  # fmt: skip
    assert run("landmark-warp", "-q", "-f", tmp_path / "f.txt", "-m", tmp_path / "m.txt", "-I", tmp_path / "ref.mha",
               "-V", tmp_path / "ours.mha", "-a", algorithm, "-r", 20) == 0  # fmt: skip
    plm = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "plm.mha")))
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ours.mha")))
    assert np.abs(plm).max() > 1.0 and np.abs(ours - plm).max() < 1e-3


def test_register_dicom_output_joins_the_fixed_study(pair, tmp_path):
    import pydicom

    from SlicerImgSuite.io.dicom_write import new_study, write_ct_series

    folder, ct, _ = pair
    write_ct_series(ct, tmp_path / "fixed_ct", new_study("Doe^Jane", "J001"))
    cmd = tmp_path / "reg.txt"
    cmd.write_text(f"[GLOBAL]\nfixed={tmp_path / 'fixed_ct'}\nmoving={folder / 'moving.mha'}\n"
                   f"img_out={tmp_path / 'warped_ct'}\nimg_out_fmt=dicom\n[STAGE]\nxform=translation\nres=2 2 1\n"
                   "max_its=20\n")  # fmt: skip
    assert run("register", "-q", cmd) == 0
    fixed = pydicom.dcmread(next((tmp_path / "fixed_ct").iterdir()), stop_before_pixels=True)
    warped = [pydicom.dcmread(f, stop_before_pixels=True) for f in (tmp_path / "warped_ct").iterdir()]
    assert len(warped) == ct.GetSize()[2]
    for key in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "FrameOfReferenceUID"):
        assert {str(w.get(key)) for w in warped} == {str(fixed.get(key))}, key
    assert warped[0].SeriesInstanceUID != fixed.SeriesInstanceUID


def test_register_cancel_writes_nothing(pair, tmp_path):
    from SlicerImgSuite.progress import Cancelled
    from SlicerImgSuite.registration.job import register_from_command_file

    folder, _, _ = pair
    cmd = tmp_path / "reg.txt"
    cmd.write_text(f"[GLOBAL]\nfixed={folder / 'fixed.mha'}\nmoving={folder / 'moving.mha'}\n"
                   f"xform_out={tmp_path / 'x.h5'}\nimg_out={tmp_path / 'w.mha'}\n[STAGE]\nxform=rigid\nmax_its=50\n")  # fmt: skip
    calls = []

    def cancel_after_first(fraction, message):
        calls.append(fraction)
        if len(calls) > 1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        register_from_command_file(read_command_file(cmd), cancel_after_first)
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "w.mha").exists()


def test_warp_int16_labelmap_keeps_its_labels(pair, tmp_path, caplog):
    import logging

    from SlicerImgSuite.registration.commands import _is_label

    folder, ct, _ = pair
    hu = sitk.GetArrayFromImage(ct)
    labels = np.select([hu > 200, hu > -400, hu > -900], [300, 7, 3], 0).astype(np.int16)
    lab = sitk.GetImageFromArray(labels)
    lab.CopyInformation(ct)
    sitk.WriteImage(lab, str(tmp_path / "lab.nrrd"))
    vf = synth_vf(ct, "gaussian", magnitude=(4.3, -3.1, 2.2), std=(30, 30, 40))  # sub-voxel: linear would blend
    sitk.WriteImage(sitk.Cast(vf, sitk.sitkVectorFloat32), str(tmp_path / "vf.mha"))
    with caplog.at_level(logging.INFO, logger="SlicerImgSuite.registration"):
        assert run("warp", "--input", tmp_path / "lab.nrrd", "--xf", tmp_path / "vf.mha",
                   "--output-img", tmp_path / "lab_w.nrrd") == 0  # fmt: skip
    out = sitk.ReadImage(str(tmp_path / "lab_w.nrrd"))
    assert out.GetPixelID() == sitk.sitkInt16
    assert set(np.unique(sitk.GetArrayViewFromImage(out))) == {0, 3, 7, 300}
    assert "lab.nrrd: nn interpolation (integer, no negative value" in caplog.text
    # the rule: a CT in HU (negative values) and an 8-bit grey ramp using all 256 levels are linear
    assert _is_label(lab) and not _is_label(ct)
    ramp = sitk.GetImageFromArray(np.arange(256, dtype=np.uint8).reshape(4, 8, 8))
    assert not _is_label(ramp) and _is_label(sitk.GetImageFromArray(np.arange(128, dtype=np.uint8).reshape(2, 8, 8)))


def test_convert_rtstruct_with_xf_warps_the_structures(phantom, tmp_path):
    """``convert --input RS.dcm --xf T --output-labelmap X`` is ``warp --input-rtstruct``: the same labelmap, the
    structures moved by the transform (the dispatch of io/commands.py, not the first package that claims --xf)."""
    shift = sitk.TranslationTransform(3, [-6.0, 0.0, 4.0])  # fixed -> moving: structures move by (+6, 0, -4) mm
    write_transform(shift, tmp_path / "T.h5")
    common = ["--referenced-ct", phantom.ct_dir, "--xf", tmp_path / "T.h5"]
    assert run("convert", "-q", "--input", phantom.rtstruct, *common, "--output-labelmap", tmp_path / "c.nrrd",
               "--output-prefix", tmp_path / "moved") == 0  # fmt: skip
    assert run("warp", "-q", "--input-rtstruct", phantom.rtstruct, *common, "--output-labelmap", tmp_path / "w.nrrd") == 0
    assert run("convert", "-q", "--input", phantom.rtstruct, "--referenced-ct", phantom.ct_dir,
               "--output-prefix", tmp_path / "still") == 0  # fmt: skip
    moved = sitk.ReadImage(str(tmp_path / "c.nrrd"))
    assert np.array_equal(sitk.GetArrayViewFromImage(moved), sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "w.nrrd"))))

    def centroid(image):
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(sitk.Cast(image > 0, sitk.sitkUInt8))
        return np.array(stats.GetCentroid(1))

    gtv_moved, gtv_still = (sitk.ReadImage(str(tmp_path / d / "GTV.nrrd")) for d in ("moved", "still"))
    np.testing.assert_allclose(centroid(gtv_moved) - centroid(gtv_still), [6.0, 0.0, -4.0], atol=1.0)


def test_warp_writes_all_outputs_or_none(pair, tmp_path):
    folder, _, _ = pair
    write_transform(sitk.TranslationTransform(3, [1.0, 0.0, 0.0]), tmp_path / "T.tfm")
    (tmp_path / "dose_is_a_folder").mkdir()
    code = run("warp", "-q", "--xf", tmp_path / "T.tfm", "--input", folder / "fixed.mha",
               "--output-img", tmp_path / "w.mha", "--output-vf", tmp_path / "vf.nrrd",
               "--input-dose-img", folder / "moving.mha", "--output-dose-img", tmp_path / "dose_is_a_folder")  # fmt: skip
    assert code == 2
    assert not (tmp_path / "w.mha").exists() and not (tmp_path / "vf.nrrd").exists()


def test_register_writes_all_outputs_or_none(pair, tmp_path):
    folder, _, _ = pair
    (tmp_path / "log_is_a_folder").mkdir()
    cmd = tmp_path / "reg.txt"
    cmd.write_text(f"[GLOBAL]\nfixed={folder / 'fixed.mha'}\nmoving={folder / 'moving.mha'}\n"
                   f"xform_out={tmp_path / 'x.h5'}\nimg_out={tmp_path / 'w.mha'}\nlogfile={tmp_path / 'log_is_a_folder'}\n"
                   "[STAGE]\nxform=translation\nres=4 4 2\nmax_its=5\n")  # fmt: skip
    assert run("register", "-q", cmd) == 2
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "w.mha").exists()


_FCSV = ("# Markups fiducial file version = 4.11\n# CoordinateSystem = LPS\n"
         "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n1,{xyz},0,0,0,1,1,1,0,P-1,,\n")
_JSON = {"markups": [{"type": "Fiducial", "coordinateSystem": "LPS", "controlPoints": [{"label": "A", "position": [1, 2, 3]}]}]}


def _json_with(**change):
    item = {**_JSON["markups"][0], **change}
    return json.dumps({"markups": [item]})


@pytest.mark.parametrize(("name", "text", "expect"), [
    ("nan.fcsv", _FCSV.format(xyz="nan,2,3"), "line 4: coordinate 'nan' is not a finite number"),
    ("short.fcsv", _FCSV.format(xyz="1,2"), "line 4: 13 fields"),  # was read with z = 0
    ("system.fcsv", _FCSV.format(xyz="1,2,3").replace("LPS", "XYZ"), "CoordinateSystem 'XYZ'"),  # was RAS
    ("empty.fcsv", "", "no landmarks in the file"),  # was an empty output, exit 0
    ("two.mrk.json", _json_with(controlPoints=[{"label": "A", "position": [1, 2]}]), "position [1, 2] is not 3"),
    ("text.mrk.json", _json_with(controlPoints=[{"label": "A", "position": ["a", 2, 3]}]), "'a' is not a number"),
    ("nan.mrk.json", json.dumps(_JSON).replace("[1, 2, 3]", "[NaN, 2, 3]"), "nan is not a finite"),
    ("system.mrk.json", _json_with(coordinateSystem="XYZ"), "coordinateSystem 'XYZ' is not LPS or RAS"),
    # Slicer's reader matches the names case-sensitively: "lps" was read as RAS (x and y negated)
    ("lower.fcsv", _FCSV.format(xyz="1,2,3").replace("= LPS", "= lps"), "CoordinateSystem 'lps'"),
    ("lower.mrk.json", _json_with(coordinateSystem="lps"), "coordinateSystem 'lps'"),
    # Slicer reads x, y, z from fields 2-4 whatever the header says: was read as (0, 1, 2)
    ("columns.fcsv", "# CoordinateSystem = LPS\n# columns = id,label,x,y,z\n1,A,1,2,3\n", "fields 2-4"),
    # Slicer reads the first markup only: the second list's points were dropped
    ("lists.mrk.json", json.dumps({"markups": [_JSON["markups"][0]] * 2}), "2 markups in one file"),
])
def test_markups_slicer_would_read_as_zero_nan_or_ras_are_refused(tmp_path, capsys, name, text, expect):
    path = tmp_path / name
    path.write_text(text)
    assert main(["convert", "--input", str(path), "--output-pointset", str(tmp_path / "out.txt")]) == 2
    err = capsys.readouterr().err
    assert expect in err and name in err and "Traceback" not in err
    assert not (tmp_path / "out.txt").exists()


def test_markups_slicer_writes_are_still_read(tmp_path):
    (tmp_path / "a.fcsv").write_text(_FCSV.format(xyz="1,2,3"))
    (tmp_path / "b.mrk.json").write_text(json.dumps(_JSON))
    (tmp_path / "c.fcsv").write_text("1,1,2,3\n")  # Slicer 3: no header, RAS
    assert read_landmarks(tmp_path / "a.fcsv")[0].tolist() == [[1, 2, 3]]
    assert read_landmarks(tmp_path / "b.mrk.json")[0].tolist() == [[1, 2, 3]]
    assert read_landmarks(tmp_path / "c.fcsv")[0].tolist() == [[-1, -2, 3]]
