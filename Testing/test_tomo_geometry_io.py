"""Projection geometry and projection-set files, checked against plastimatch's own output."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.tomo.geometry import Geometry, arc_sweep, circular, from_matrix, linear_sweep
from SlicerImgSuite.tomo.projset import ProjectionSet, read_projections, write_projection_files, write_projections


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory):
    a = np.full((20, 24, 28), -1000, np.int16)
    a[4:16, 6:18, 5:22] = 0
    a[12:15, 15:18, 6:9] = 1000  # off-centre bone: left/right, front/back, up/down all differ
    image = sitk.GetImageFromArray(a)
    image.SetSpacing((2.5, 2.5, 2.5))
    image.SetOrigin((-33.75, -28.75, -23.75))
    path = tmp_path_factory.mktemp("ct") / "ct.mha"
    sitk.WriteImage(image, str(path))
    return path


def _plastimatch_matrices(folder):
    out = []
    for txt in sorted(folder.glob("*.txt")):
        rows = [[float(w) for w in line.split()] for line in txt.read_text().splitlines()[:4]]
        out.append((np.array(rows[0]), np.array(rows[1:4])))
    return out


@pytest.mark.parametrize(
    "options, kwargs",
    [
        (["-a", "4", "-N", "30", "--sad", "900", "--sid", "1400"], dict(count=4, angle_step=30, sad=900, sid=1400)),
        (["-n", "0 -1 0"], dict(count=1, normal=(0, -1, 0))),
        (["--vup", "0 1 0", "-o", "10 -5 3"], dict(count=1, vup=(0, 1, 0), isocenter=(10, -5, 3))),
    ],
)
def test_circular_geometry_matches_plastimatch(tmp_path, small_ct, options, kwargs):
    subprocess.run(
        [
            "plastimatch",
            "drr",
            "-G",
            "-r",
            "16 24",
            "-z",
            "200 300",
            *options,
            "-O",
            str(tmp_path / "g/image"),
            str(small_ct),
        ],
        check=True,
        capture_output=True,
    )
    theirs = _plastimatch_matrices(tmp_path / "g")
    ours = circular(dims=(16, 24), pixel_size=(12.5, 12.5), **kwargs)
    assert len(theirs) == len(ours)
    for i, (ic, m) in enumerate(theirs):
        np.testing.assert_allclose(ours.image_center[i], ic)
        np.testing.assert_allclose(ours.matrix(i), m, atol=1e-7)


@pytest.mark.parametrize(
    "geometry",
    [
        linear_sweep(5, 40, sid=1200, dims=(30, 20), pixel_size=(2, 3), sweep_axis=(1, 0, 0)),
        arc_sweep(5, 60, sad=800, sid=1300, dims=(30, 20), pixel_size=(2, 3), isocenter=(5, 6, 7)),
    ],
)
def test_matrix_projects_where_the_ray_hits_the_panel(geometry):
    rng = np.random.default_rng(1)
    for view in range(len(geometry)):
        x = rng.uniform(-50, 50, 3)
        u, v, w = geometry.matrix(view) @ np.append(x, 1.0)
        col, row = geometry.image_center[view] + [u / w, v / w]
        # independent: intersect the ray source->x with the panel plane
        s, c, n = geometry.sources[view], geometry.centers[view], geometry.normals[view]
        hit = s + (x - s) * np.dot(c - s, n) / np.dot(x - s, n)
        np.testing.assert_allclose(geometry.pixel_positions(view, col, row), hit, atol=1e-6)


def test_from_matrix_recovers_the_view():
    g = circular(3, sad=1000, sid=1500, dims=(40, 30), pixel_size=(0.8, 1.2), start_angle=17, angle_step=50)
    for i in range(3):
        s, c, u, v, ps = from_matrix(g.matrix(i), 1500)
        np.testing.assert_allclose(s, g.sources[i], atol=1e-6)
        np.testing.assert_allclose(c, g.centers[i], atol=1e-6)
        np.testing.assert_allclose(u, g.u_axes[i], atol=1e-9)
        np.testing.assert_allclose(ps, g.pixel_size)


@pytest.mark.parametrize("fmt", ["pfm", "raw"])
def test_reads_plastimatch_projection_folders(tmp_path, small_ct, fmt):
    subprocess.run(
        [
            "plastimatch",
            "drr",
            "-t",
            fmt,
            "-a",
            "2",
            "-N",
            "90",
            "-r",
            "20 30",
            "-z",
            "200 300",
            "-O",
            str(tmp_path / "p/image"),
            str(small_ct),
        ],
        check=True,
        capture_output=True,
    )
    ps = read_projections(tmp_path / "p")
    assert ps.images.shape == (2, 30, 20)
    np.testing.assert_allclose(ps.geometry.sources, [[1000, 0, 0], [0, -1000, 0]], atol=1e-3)
    # the bone sits at high z: the top rows (row 0 = head end) see it, the bottom rows do not
    assert ps.images[0, :15].max() > ps.images[0, 15:].max()


def test_write_read_roundtrip_and_stack(tmp_path):
    g = linear_sweep(4, 30, sid=1000, dims=(12, 8), pixel_size=(1.5, 1.5), sweep_axis=(1, 0, 0))
    images = np.random.default_rng(0).random((4, 8, 12)).astype(np.float32)
    ps = ProjectionSet(images, g)
    write_projections(ps, tmp_path / "folder")
    back = read_projections(tmp_path / "folder")
    np.testing.assert_array_equal(back.images, images)
    for i in range(4):
        # plastimatch's image centre is the principal point: different numbers, same projection
        x = np.array([3.0, 40.0, -7.0, 1.0])
        for geo in (g, back.geometry):
            u, v, w = geo.matrix(i) @ x
            if geo is g:
                expected = geo.image_center[i] + [u / w, v / w]
            else:
                np.testing.assert_allclose(geo.image_center[i] + [u / w, v / w], expected, atol=1e-6)
    write_projections(ps, tmp_path / "stack.mha")
    assert (tmp_path / "stack.json").exists()
    back = read_projections(tmp_path / "stack.mha")
    np.testing.assert_array_equal(back.images, images)
    np.testing.assert_allclose(back.geometry.sources, g.sources)
    assert isinstance(Geometry.from_dict(g.to_dict()), Geometry)


def test_bad_projection_inputs_name_the_file(tmp_path):
    with pytest.raises(ImgSuiteError, match="no imageNNNN"):
        read_projections(tmp_path)
    (tmp_path / "image0000.pfm").write_bytes(b"P6\n1 1\n255\n\x00\x00\x00")
    (tmp_path / "image0000.txt").write_text("7.5 11.5\n1 0 0 0\n0 1 0 0\n0 0 1 1\n1000\n1500\n")
    with pytest.raises(ImgSuiteError, match="image0000.pfm: not a single-channel PFM"):
        read_projections(tmp_path)
    (tmp_path / "stack.mha").write_bytes(b"junk")
    with pytest.raises(ImgSuiteError, match="stack.json"):
        read_projections(tmp_path / "stack.mha")
    (tmp_path / "stack.json").write_text("{}")
    with pytest.raises(ImgSuiteError, match="stack.json: not a geometry"):
        read_projections(tmp_path / "stack.mha")


def test_sets_are_read_by_folder_or_by_prefix(tmp_path):
    g = circular(3, dims=(6, 4), pixel_size=(2, 2), angle_step=40)
    images = np.random.default_rng(2).random((3, 4, 6)).astype(np.float32)
    write_projection_files(tmp_path / "out/proj", g, images)  # out/ is made, as plastimatch drr -O out/proj
    (tmp_path / "out/notes.txt").write_text("kept")
    np.testing.assert_array_equal(read_projections(tmp_path / "out").images, images)  # one set: the folder will do
    write_projection_files(tmp_path / "out/b", g.subset([0]), images[:1], "raw")
    with pytest.raises(ImgSuiteError, match=r"out: holds several projection sets \(bNNNN.raw, projNNNN.pfm\)"):
        read_projections(tmp_path / "out")
    back = read_projections(tmp_path / "out/proj")
    np.testing.assert_array_equal(back.images, images)
    np.testing.assert_allclose(back.geometry.sources, g.sources, atol=1e-6)
    assert read_projections(tmp_path / "out/b").images.shape == (1, 4, 6)
    # the commands read a prefix too
    vol = str(tmp_path / "v.mha")
    assert main(["fdk", "-q", "-I", str(tmp_path / "out/proj"), "-O", vol, "-r", "4 4 4", "-z", "40 40 40"]) == 0
    assert main(["tomo", "-q", "--input", str(tmp_path / "out/proj"), "--output", vol, "--slice-spacing", "100"]) == 0
    write_projection_files(tmp_path / "out/proj", g)  # matrices only (plastimatch drr -G): the images stay
    assert sorted(f.name for f in (tmp_path / "out").glob("proj*")) == [
        f"proj000{i}.{e}" for i in range(3) for e in ("pfm", "txt")
    ]
    with pytest.raises(ImgSuiteError, match="out/nothing: no such projection set"):
        read_projections(tmp_path / "out/nothing")
