"""Image tools as functions, their errors, and the operations the Slicer module runs on real MRML nodes."""

from __future__ import annotations

import contextlib
import doctest
import io
import math
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite import imageops
from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError


def image(array, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    img = sitk.GetImageFromArray(np.asarray(array))
    img.SetSpacing(spacing[: img.GetDimension()])
    img.SetOrigin(origin[: img.GetDimension()])
    return img


def cube(lo, hi, shape=(20, 20, 20), spacing=(1.0, 1.0, 1.0)):
    a = np.zeros(shape, np.uint8)
    a[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]] = 1
    return image(a, spacing)


def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([*map(str, args), "--quiet"])
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "module",
    ["arithmetic", "distance", "filters", "grid", "masks", "measure", "synthetic", "slices", "nodes", "reports", "job", ""],
)
def test_docstring_examples(module):
    import importlib

    mod = importlib.import_module("SlicerImgSuite.imageops" + (f".{module}" if module else ""))
    result = doctest.testmod(mod, extraglobs={"sitk": sitk, "np": np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_dice_stats_analytic():
    # two 10 mm cubes shifted 2 mm along x, 2 mm voxels along x: overlap 8/10
    a = cube((0, 5, 5), (5, 15, 15), spacing=(2.0, 1.0, 1.0))
    b = cube((1, 5, 5), (6, 15, 15), spacing=(2.0, 1.0, 1.0))
    s = imageops.dice_stats(a, b)
    assert s["dice"] == pytest.approx(0.8)
    assert (s["tp"], s["fp"], s["fn"]) == (400, 100, 100)
    assert s["hausdorff"] == pytest.approx(2.0)  # one voxel column 2 mm away
    assert s["boundary_hausdorff"] == pytest.approx(2.0)
    assert s["reference_volume_cc"] == pytest.approx(1.0)
    assert s["test_com"][0] - s["reference_com"][0] == pytest.approx(2.0)
    same = imageops.dice_stats(a, a)
    assert same["dice"] == 1.0 and same["hausdorff"] == 0.0 and same["percent_boundary_hausdorff"] == 0.0


def test_dice_stats_empty_and_mismatch():
    a = cube((2, 2, 2), (6, 6, 6))
    empty = cube((0, 0, 0), (0, 0, 0))
    s = imageops.dice_stats(a, empty)
    assert s["dice"] == 0.0 and math.isnan(s["hausdorff"])
    assert math.isnan(imageops.dice_stats(empty, empty)["dice"])
    with pytest.raises(ImgSuiteError, match="geometry mismatch"):
        imageops.dice_stats(a, cube((2, 2, 2), (6, 6, 6), shape=(20, 20, 21)))


def test_distance_map_signs_and_truncation():
    m = cube((5, 5, 5), (15, 15, 15))
    d = sitk.GetArrayFromImage(imageops.distance_map(m))
    assert d[10, 10, 10] < 0 and d[0, 0, 0] > 0 and d[10, 10, 5] == 0.0
    dp = sitk.GetArrayFromImage(imageops.distance_map(m, inside_positive=True, maximum_distance=3))
    assert dp.max() == 3.0 and dp.min() == -3.0
    with pytest.raises(ImgSuiteError, match="empty"):
        imageops.distance_map(cube((0, 0, 0), (0, 0, 0)))


def test_pw_linear_rejects_unsorted():
    with pytest.raises(ImgSuiteError, match="must increase"):
        imageops.pw_linear(np.zeros(3), [100, 0, -100, 50])


def test_threshold_needs_one_rule():
    with pytest.raises(ImgSuiteError):
        imageops.threshold(image(np.zeros((2, 2))), above=1, below=2)


def test_synth_thorax_structures_and_dicom(tmp_path):
    from SlicerImgSuite.io import read_image

    rc, _, err = cli(
        "synth",
        "--pattern",
        "thorax",
        "--dim",
        "40 32 24",
        "--spacing",
        "10 10 12",
        "--output",
        tmp_path / "lung.nrrd",
        "--output-dicom",
        tmp_path / "dcm",
        "--output-prefix",
        tmp_path / "ss",
    )
    assert rc == 0, err
    img = sitk.ReadImage(str(tmp_path / "lung.nrrd"))
    ct = read_image(tmp_path / "dcm")
    assert ct.GetSize() == img.GetSize()
    np.testing.assert_allclose(ct.GetOrigin(), img.GetOrigin(), atol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ct), np.rint(sitk.GetArrayFromImage(img)))
    masks = {
        p.stem.replace(".nrrd", ""): sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in (tmp_path / "ss").iterdir()
    }
    assert set(masks) == {"Body", "Lung_L", "Lung_R", "Tumor"}
    values = sitk.GetArrayFromImage(img)
    assert (values[masks["Lung_L"] > 0] == -800).all() and (values[masks["Tumor"] > 0] == 0).all()
    assert masks["Tumor"].sum() > 0 and not (masks["Tumor"] & masks["Lung_L"]).any()
    # the RTSTRUCT beside the CT series rasterizes back onto the structures
    from SlicerImgSuite.rtstruct.rasterize import rasterize
    from SlicerImgSuite.rtstruct.structure_set import read_rtstruct

    ss = read_rtstruct(tmp_path / "dcm" / "RS.dcm")
    back = {m.roi.name: m for m in rasterize(ss, ct)}
    assert set(back) == set(masks)


def test_thumbnail_png(tmp_path):
    from PIL import Image as PILImage

    ct = cube((5, 5, 5), (15, 15, 15), shape=(10, 20, 30), spacing=(1.0, 1.0, 2.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    rc, _, err = cli(
        "thumbnail",
        "--input",
        tmp_path / "ct.nrrd",
        "--output",
        tmp_path / "t.png",
        "--window",
        "1",
        "--level",
        "0.5",
        "--loc",
        "10",
    )
    assert rc == 0, err
    png = np.asarray(PILImage.open(tmp_path / "t.png"))
    assert png.shape == (20, 30) and png.dtype == np.uint8
    assert png[10, 10] == 255 and png[0, 0] == 0
    rc, _, _ = cli("thumbnail", "--input", tmp_path / "ct.nrrd", "--output", tmp_path / "c.png", "--axis", "y")
    assert rc == 0 and np.asarray(PILImage.open(tmp_path / "c.png")).shape == (19, 30)  # 18 mm of z at 1 mm


def test_filters():
    rng = np.random.default_rng(0)
    img = image(rng.normal(0, 1, (12, 14, 16)).astype(np.float32), spacing=(1.0, 1.5, 2.0))
    delta = np.zeros((3, 3, 3), np.float32)
    delta[1, 1, 1] = 1
    same = imageops.kernel_filter(img, image(delta))
    np.testing.assert_allclose(sitk.GetArrayFromImage(same), sitk.GetArrayFromImage(img), atol=1e-6)
    flat = imageops.gabor_filter(image(np.full((12, 14, 16), 5.0, np.float32)), (1, 4))
    assert np.abs(sitk.GetArrayFromImage(flat)).max() < 1e-4  # zero-mean kernel: no response to a constant
    smooth = imageops.gauss_filter(img, 3.0)
    assert sitk.GetArrayFromImage(smooth).std() < 0.5 * sitk.GetArrayFromImage(img).std()


@pytest.fixture
def files(tmp_path):
    ct = image(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), spacing=(1.0, 2.0, 3.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nrrd"))
    other = image(np.zeros((4, 5, 7), np.int16))
    sitk.WriteImage(other, str(tmp_path / "other.nrrd"))
    mask = image(np.ones((4, 5, 7), np.uint8))
    sitk.WriteImage(mask, str(tmp_path / "mask7.nrrd"))
    (tmp_path / "corrupt.nrrd").write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 9 9 9\nencoding: raw\n\n123")
    return tmp_path


@pytest.mark.parametrize(
    "args,names,words",
    [
        (["crop", "--input", "ct.nrrd", "--output", "OUT", "--voxels", "0 9 0 2 0 1"], "ct.nrrd", "outside the image"),
        (["crop", "--input", "ct.nrrd", "--output", "OUT", "--voxels", "3 1 0 2 0 1"], "ct.nrrd", "outside the image"),
        (["diff", "ct.nrrd", "other.nrrd", "OUT"], "other.nrrd", "geometry mismatch"),
        (["union", "mask7.nrrd", "ct.nrrd", "--output", "OUT"], "ct.nrrd", "geometry mismatch"),
        (["mask", "--input", "ct.nrrd", "--mask", "mask7.nrrd", "--output", "OUT"], "mask7.nrrd", "geometry mismatch"),
        (["add", "ct.nrrd", "other.nrrd", "--output", "OUT"], "other.nrrd", "geometry mismatch"),
        (["stats", "ct.nrrd", "--mask", "mask7.nrrd"], "mask7.nrrd", "geometry mismatch"),
        (["dice", "ct.nrrd", "mask7.nrrd"], "mask7.nrrd", "geometry mismatch"),
        (["threshold", "--input", "corrupt.nrrd", "--output", "OUT", "--above", "0"], "corrupt.nrrd", "cannot read"),
        (["resample", "--input", "missing.nrrd", "--output", "OUT", "--spacing", "1"], "missing.nrrd", "no such file"),
        (["adjust", "--input", "ct.nrrd", "--output", "OUT", "--pw-linear", "5,0,1,1"], "ct.nrrd", "must increase"),
        (["dmap", "--input", "other.nrrd", "--output", "OUT"], "other.nrrd", "empty"),
        (["add", "ct.nrrd", "ct.nrrd", "--weight", "1 2 3", "--output", "OUT"], "", "expects 2 numbers"),
        (["thumbnail", "--input", "ct.nrrd", "--output", "OUT", "--loc", "10.5"], "ct.nrrd", "outside the image"),
        (["thumbnail", "--input", "ct.nrrd", "--output", "OUT", "--loc", "-1.6"], "ct.nrrd", "outside the image"),
    ],
)
def test_bad_input_names_the_file_and_writes_nothing(files, args, names, words):
    argv = [str(files / a) if a.endswith(".nrrd") else a for a in args]
    argv = [str(files / "out.nrrd") if a == "OUT" else a for a in argv]
    rc, out, err = cli(*argv)
    assert rc == 2, (out, err)
    assert words in err and names in err
    assert len(err.strip().splitlines()) == 1
    assert not (files / "out.nrrd").exists()
    assert not [p for p in files.iterdir() if p.name.startswith(".out")]  # no temporary left behind


def test_operations_on_mrml_nodes(mrml):
    from SlicerImgSuite.imageops.nodes import OPERATIONS, run_on_nodes
    from SlicerImgSuite.mrml.volumes import image_from_volume_node, volume_node_from_image

    ct = image((np.indices((8, 10, 12)).sum(axis=0) * 10 - 100).astype(np.int16), spacing=(0.8, 1.2, 2.5))
    ct.SetDirection((0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))  # oblique to RAS: survives the round trip
    m = sitk.Cast(ct > 50, sitk.sitkUInt8)
    ct_node = volume_node_from_image(mrml, ct, "ct")
    m_node = volume_node_from_image(mrml, m, "m", labelmap=True)
    seen = []
    node, text = run_on_nodes(mrml, "mask", ct_node, m_node, mask_value=-1000, progress=lambda f, s: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    out = image_from_volume_node(node)
    expected = imageops.mask_image(ct, m, -1000)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(expected))
    np.testing.assert_allclose(out.GetDirection(), ct.GetDirection(), atol=1e-6)
    label, _ = run_on_nodes(mrml, "threshold", ct_node, above=51)  # integers: >= 51 is > 50
    assert label.IsA("vtkMRMLLabelMapVolumeNode")
    _, text = run_on_nodes(mrml, "dice", m_node, label)
    assert "DICE:      1.000000" in text
    _, text = run_on_nodes(mrml, "stats", ct_node, m_node)
    assert f"NUMVOX {int(sitk.GetArrayFromImage(m).sum())}" in text
    resampled, _ = run_on_nodes(mrml, "resample", ct_node, spacing=[1.6, 2.4, 5], interpolation="nn")
    assert image_from_volume_node(resampled).GetSize() == (6, 5, 4)  # floor((n - 1) * old / new) + 1
    synth_node, _ = run_on_nodes(mrml, "synth", pattern="sphere", dim=[16, 16, 16], spacing=[5, 5, 5])
    assert image_from_volume_node(synth_node).GetSize() == (16, 16, 16)
    before = mrml.scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode")
    small = volume_node_from_image(mrml, image(np.ones((3, 3, 3), np.uint8)), "small")
    with pytest.raises(ImgSuiteError, match="geometry mismatch.*small"):
        run_on_nodes(mrml, "mask", ct_node, small)
    with pytest.raises(ImgSuiteError, match="needs a second volume"):
        run_on_nodes(mrml, "diff", ct_node)
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode") == before + 1  # only "small"
    assert set(OPERATIONS) <= {
        "crop",
        "resample",
        "mask",
        "fill",
        "threshold",
        "add",
        "average",
        "adjust",
        "scale",
        "diff",
        "compare",
        "dice",
        "boundary",
        "dmap",
        "union",
        "stats",
        "probe",
        "filter",
        "synth",
    }


def test_subsample_oblique_bins_along_the_image_axes():
    # plastimatch 1.9.4 shifts the origin along x/y/z even for an oblique image (its output is off by the
    # rotation); ours moves it along the image's own axes, so each output voxel is the mean of its 2 x 2 bin
    rng = np.random.default_rng(3)
    values = rng.normal(0, 100, (4, 8, 10)).astype(np.float32)
    img = image(values, spacing=(0.7, 1.1, 2.0), origin=(5.0, -3.0, 1.0))
    img.SetDirection((0.8, -0.6, 0.0, 0.6, 0.8, 0.0, 0.0, 0.0, 1.0))
    out = imageops.resample(img, subsample=(2, 2, 1))
    bins = values.reshape(4, 4, 2, 5, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(sitk.GetArrayFromImage(out), bins, atol=1e-3)
    np.testing.assert_allclose(out.GetOrigin(), img.TransformContinuousIndexToPhysicalPoint((0.5, 0.5, 0.0)), atol=1e-9)


def test_thumbnail_loc_inside_the_outer_half_voxel(files):
    # z centres 0..9 mm (3 mm slices): ITK interpolates from -1.5 up to (not including) 10.5 mm
    for loc in ("-1.5", "10.4"):
        rc, _, err = cli("thumbnail", "--input", files / "ct.nrrd", "--output", files / "t.nrrd", "--loc", loc)
        assert rc == 0, err


@pytest.mark.parametrize(
    "opt,words",
    [
        (["--spacing", "0 1 1"], "--spacing needs values > 0 mm"),
        (["--spacing", "1 -2 1"], "--spacing needs values > 0 mm"),
        (["--dim", "0 4 4"], "--dim needs at least 1 voxel"),
        (["--subsample", "12 1 1"], "leaves no voxel of the 6"),  # plastimatch writes nothing here either
    ],
)
def test_resample_refuses_empty_grids_without_numpy_warnings(files, opt, words):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would escape as an exception, not exit 2
        rc, _, err = cli("resample", "--input", files / "ct.nrrd", "--output", files / "out.nrrd", *opt)
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (files / "out.nrrd").exists()


def test_one_cast_rule_truncates_like_plastimatch():
    from SlicerImgSuite.imageops._util import cast_like
    from SlicerImgSuite.io.images import cast_image

    values = np.array([1.7, -1.7, 2.5, -2.5, np.nan, 1e6], np.float32)
    img = cast_image(sitk.GetImageFromArray(values.reshape(1, 1, -1)), "short")
    assert sitk.GetArrayFromImage(img).ravel().tolist() == [1, -1, 2, -2, 0, 32767]
    np.testing.assert_array_equal(cast_like(values, np.int16), sitk.GetArrayFromImage(img).ravel())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cast_like(np.array([1e30, -1e30]), np.int64).tolist() == [2**63 - 1, -(2**63)]


def test_grid_mismatch_names_the_direction_only_when_it_differs():
    from SlicerImgSuite.geometry import require_same_grid

    a = image(np.zeros((2, 3, 4), np.uint8))
    b = image(np.zeros((2, 3, 4), np.uint8))
    b.SetDirection((0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    with pytest.raises(ImgSuiteError) as info:
        require_same_grid(a, b, "a.nrrd", "b.nrrd")
    message = str(info.value)
    assert "a.nrrd has size (4, 3, 2), origin (0, 0, 0), spacing (1, 1, 1), direction (1, 0, 0, 0, 1, 0" in message
    assert "b.nrrd has size (4, 3, 2), origin (0, 0, 0), spacing (1, 1, 1), direction (0, -1, 0, 1, 0, 0" in message
    c = image(np.zeros((2, 3, 5), np.uint8))
    with pytest.raises(ImgSuiteError, match="geometry mismatch") as info:
        require_same_grid(a, c, "a.nrrd", "c.nrrd")
    assert "direction" not in str(info.value)


def test_multi_output_commands_write_all_or_nothing(files):
    before = sorted(p.name for p in files.iterdir())
    (files / "taken").write_text("a file where the DICOM folder should go")
    cases = [
        ["synth", "--dim", "8 8 8", "--output", files / "s.nrrd", "--output-dicom", files / "taken"],
        ["synth", "--dim", "8 8", "--output", files / "s.nrrd", "--output-dicom", files / "dcm"],  # 2D: no CT series
        ["synth", "--pattern", "thorax", "--dim", "8 8 8", "--output", files / "s.nrrd",
         "--output-prefix", files / "masks", "--output-dicom", files / "taken"],
        ["filter", files / "ct.nrrd", "--pattern", "gabor", "--output-kernel", files / "k.nrrd",
         "--output", files / "f.xyz"],  # no writer for .xyz: fails after the kernel was made
    ]
    for argv in cases:
        rc, _, err = cli(*argv)
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert sorted(p.name for p in files.iterdir()) == sorted([*before, "taken"]), (argv, err)
    assert "taken: exists and is not a folder" in cli(*cases[0])[2]
    assert "dcm: a DICOM series needs a 3D" in cli(*cases[1])[2]
    assert "f.xyz: cannot write image" in cli(*cases[3])[2]


def test_progress_and_cancel():
    from SlicerImgSuite.progress import Cancelled

    img = sitk.Image(60, 50, 40, sitk.sitkInt16)
    seen = []
    imageops.resample(img, spacing=(0.5, 0.5, 0.5), progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and len(seen) > 2 and seen == sorted(seen)

    def cancel(fraction, message):
        if fraction > 0.1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        imageops.resample(img, spacing=(0.5, 0.5, 0.5), progress=cancel)
    with pytest.raises(Cancelled):
        imageops.distance_map(cube((5, 5, 5), (15, 15, 15), shape=(40, 40, 40)), progress=cancel)


def test_dice_names_structures_inside_rtstructs(phantom, tmp_path):
    import json

    from SlicerImgSuite.io import write_image

    def dice(*argv):
        out = tmp_path / "d.json"
        assert main(["dice", *map(str, argv), "--all", "--json", str(out)]) == 0
        return json.loads(out.read_text())

    rs = phantom.rtstruct
    # an ROI against itself on the CT grid, and against the phantom's analytic mask of the same shape
    assert dice(rs, rs, "--reference-structure", "GTV", "--test-structure", "GTV")["dice"] == 1.0
    write_image(phantom.masks["GTV"], tmp_path / "gtv.nrrd")
    assert dice(tmp_path / "gtv.nrrd", rs, "--test-structure", "GTV")["dice"] > 0.99
    # GTV lies inside PTV: Dice = 2|GTV| / (|GTV| + |PTV|), with both rasterized on the CT
    g = sitk.GetArrayFromImage(phantom.masks["GTV"]).sum()
    p = sitk.GetArrayFromImage(phantom.masks["PTV"]).sum()
    got = dice(rs, rs, "--reference-structure", "PTV", "--test-structure", "GTV", "--referenced-ct", phantom.ct_dir)
    assert got["dice"] == pytest.approx(2 * g / (g + p), abs=0.02)
    assert main(["dice", str(rs), str(tmp_path / "gtv.nrrd")]) == 2  # an RTSTRUCT needs an ROI name
    assert main(["dice", str(rs), str(rs), "--reference-structure", "NOPE", "--test-structure", "GTV"]) == 2


def test_operation_parameters_are_typed():
    import inspect

    from SlicerImgSuite.imageops.nodes import OPERATIONS, parse_params, run_operation

    for name, op in OPERATIONS.items():
        taken = list(inspect.signature(op.run).parameters)[2:]
        assert taken == [p.name for p in op.params], name
    with pytest.raises(ImgSuiteError, match="above"):
        parse_params("threshold", {"above": "high"})
    with pytest.raises(ImgSuiteError, match="interpolation"):
        parse_params("resample", {"interpolation": "cubic"})
    img = sitk.Image(4, 4, 2, sitk.sitkFloat32) + 2
    with pytest.raises(ImgSuiteError, match="no parameter nope"):
        run_operation("scale", img, nope=1)
    out, _ = run_operation("scale", img, **parse_params("scale", {"weight": "1.5"}))
    assert float(sitk.GetArrayViewFromImage(out).max()) == 3.0


def test_4d_images_crop_bbox_dmap_dice(tmp_path):
    # a 4D NIfTI (a 4DCT, a DCE series): crop, bbox --output, dmap and dice stopped with SimpleITK tracebacks
    values = np.arange(2 * 4 * 5 * 6, dtype=np.float32).reshape(2, 4, 5, 6)
    sitk.WriteImage(sitk.GetImageFromArray(values, isVector=False), str(tmp_path / "4d.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray((values % 7 > 3).astype(np.uint8), isVector=False), str(tmp_path / "m.nii.gz"))
    img, mask = tmp_path / "4d.nii.gz", tmp_path / "m.nii.gz"
    assert cli("crop", "--input", img, "--output", tmp_path / "c.nrrd", "--voxels", "1,2,0,2,0,3,1,1")[0] == 0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "c.nrrd"))), values[1:2, :4, :3, 1:3])
    assert cli("crop", "--input", img, "--output", tmp_path / "s.nrrd", "--structure", mask)[0] == 0
    assert cli("bbox", mask, "--output", tmp_path / "b.nrrd")[0] == 0
    assert sitk.ReadImage(str(tmp_path / "b.nrrd")).GetSize() == (6, 5, 4, 2)
    for args in (["dmap", "--input", mask, "--output", tmp_path / "d.nrrd"], ["dice", mask, mask]):
        rc, _, err = cli(*args)
        assert rc == 2 and f"{mask}: distances need a 2D or 3D structure; this one is 4D" in err, err
    assert not (tmp_path / "d.nrrd").exists()


def test_crop_coordinates_on_an_oblique_image_keeps_the_whole_box(tmp_path):
    # a 30-degree image and a mm box around all of it: converting only the two given corners kept 20 x 10 voxels
    img = sitk.Image(20, 20, 5, sitk.sitkFloat32) + 1
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    img.SetDirection((c, -s, 0, s, c, 0, 0, 0, 1))
    sitk.WriteImage(img, str(tmp_path / "oblique.nrrd"))
    rc, _, err = cli("crop", "--input", tmp_path / "oblique.nrrd", "--output", tmp_path / "c.nrrd",
                     "--coordinates", "-10 16.5 0 26 0 4")  # fmt: skip
    assert rc == 0, err
    assert sitk.ReadImage(str(tmp_path / "c.nrrd")).GetSize() == (20, 20, 5)
    # on an axis-aligned image the same conversion is the voxels whose centres lie in the box, as before
    straight = sitk.Image(20, 20, 5, sitk.sitkFloat32)
    from SlicerImgSuite.imageops.grid import coordinates_to_voxels

    assert coordinates_to_voxels(straight, [2.5, 7.5, 0, 3, 1, 1]) == [3, 7, 0, 3, 1, 1]


def test_mask_value_beyond_the_pixel_type_warns():
    # the pixel type is kept, so -1000 outside a uint16 mask became 0 without a word (plastimatch wraps it to 64536)
    from SlicerImgSuite.imageops.masks import fill_image, mask_image

    img = image(np.full((2, 3, 4), 7, np.uint16))
    inside = image(np.pad(np.ones((2, 3, 2), np.uint8), ((0, 0), (0, 0), (0, 2))))
    with pytest.warns(UserWarning, match="mask value -1000 is outside the range of the image's uint16 voxels: 0 is"):
        out = sitk.GetArrayFromImage(mask_image(img, inside, -1000))
    assert out[0, 0].tolist() == [7, 7, 0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fraction is truncated as plastimatch does, quietly
        assert sitk.GetArrayFromImage(fill_image(img, inside, 12.7))[0, 0].tolist() == [12, 12, 7, 7]
