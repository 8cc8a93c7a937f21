"""Panoramic stitching on a long phantom rendered by the project's DRR (beads and ruler at known positions).

Tuned on seed 3 with 160 x 240 panels; the cases marked "held out" (seed 11, other panel sizes, overlaps and
distances) were run only after the code was fixed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.stitch.job import stitch_radiographs
from SlicerImgSuite.stitch.phantom import bead_distance_errors, render_shots
from SlicerImgSuite.stitch.shots import Shot

ERRORS = [0.0, 3.3, -2.6]


@pytest.fixture(scope="module")
def rendered():
    """Shots per (mode, ruler): both modes, exposure differences, noise and positioner errors."""
    cache = {}

    def get(mode, ruler=False, seed=3, panel=(160, 240), overlap=50.0, sod=1500.0, noise=0.01):
        key = (mode, ruler, seed, panel, overlap, sod, noise)
        if key not in cache:
            cache[key] = render_shots(
                mode=mode,
                panel=panel,
                pixel=1.0,
                shots=3,
                overlap_mm=overlap,
                sod=sod,
                errors_mm=ERRORS,
                exposures=[1.0, 0.8, 1.2],
                noise=noise,
                ruler=ruler,
                seed=seed,
            )
        return cache[key]

    return get


def _true_geometry(shots, truth, mode):
    """The same shots with their reported positions corrected (what a perfect positioner would say)."""
    from SlicerImgSuite.stitch.shots import panel_view

    fixed = []
    for shot, err in zip(shots, ERRORS):
        v = shot.view
        src_shift = err if mode == "parallel" else 0.0
        view = panel_view(v.dims, v.pixel_size, float(v.sid[0]), -v.centers[0][2] - err, -v.sources[0][2] - src_shift)
        fixed.append(Shot(shot.image, shot.pixel_size, view, shot.path, shot.sod, photometric=shot.photometric))
    return fixed


@pytest.mark.parametrize("mode, tolerance", [("parallel", 1.0), ("angled", 1.5)])
def test_geometry_method_keeps_lengths_across_seams(rendered, mode, tolerance):
    shots, truth = rendered(mode)
    result = stitch_radiographs(_true_geometry(shots, truth, mode), method="geometry")
    errors = bead_distance_errors(result, truth)
    assert len(errors) >= 6  # beads on both sides of both seams
    assert np.abs(errors).max() <= tolerance, errors
    assert result.plane.magnification == pytest.approx(1800.0 / 1500.0)


def test_geometry_alone_shows_the_positioner_error(rendered):
    """Trusting a positioner that is 3 mm off breaks the distances across that seam: what image/ruler fix."""
    shots, truth = rendered("parallel")
    errors = bead_distance_errors(stitch_radiographs(shots, method="geometry"), truth)
    assert np.abs(errors).max() > 2.0


def _check_seams(result, truth, mode):
    found = np.array([s["shift_mm"][1] for s in result.seams])
    expected = truth["errors_plane_mm"][1:]  # each shot is placed absolutely (the one above is already right)
    assert np.abs(found - expected).max() <= 0.5 * result.plane.spacing[1], (found, expected)
    tolerance = 1.0 if mode == "parallel" else 1.5
    assert np.abs(bead_distance_errors(result, truth)).max() <= tolerance
    assert all(s["exposure_gain"] != pytest.approx(1.0, abs=0.05) for s in result.seams)  # exposures differed


@pytest.mark.parametrize("mode", ["parallel", "angled"])
@pytest.mark.parametrize("seed", [3, 11])  # 11: held out (another phantom, panel, overlap and distance)
def test_ruler_finds_each_seam_within_half_a_pixel(rendered, mode, seed):
    extra = {} if seed == 3 else {"panel": (200, 220), "overlap": 40.0, "sod": 1400.0}
    shots, truth = rendered(mode, ruler=True, seed=seed, **extra)
    _check_seams(stitch_radiographs(shots, method="ruler"), truth, mode)


@pytest.mark.parametrize("mode", ["parallel", "angled"])
@pytest.mark.parametrize("seed", [3, 11])
def test_image_registration_noise_free(rendered, mode, seed):
    """On the anatomy alone, noise-free shots: every seam within half a pixel, lengths within 1 / 1.5 mm."""
    extra = {} if seed == 3 else {"panel": (200, 220), "overlap": 40.0, "sod": 1400.0}
    shots, truth = rendered(mode, seed=seed, noise=0.0, **extra)
    _check_seams(stitch_radiographs(shots, method="image"), truth, mode)


@pytest.mark.parametrize("mode", ["parallel", "angled"])
@pytest.mark.parametrize("seed", [3, 11])
def test_image_registration_with_noise(rendered, mode, seed):
    """With 1 % noise each shot is placed within 1.5 px (absolute: an error of seam 1 is carried into shot 3);
    lengths stay within 1 / 1.5 mm. Not parallax (noise-free, every seam is within 0.15 px): the overlaps hold
    little vertical structure besides a bead, so the noise limits them. The ruler does better.
    Seam 1 of the parallel seed-11 phantom is refused by default (its expected error is over 0.8 px: see
    test_image_registration_refuses_an_overlap_too_noisy_to_place); here the limit is lifted to check where
    it lands when forced."""
    extra = {} if seed == 3 else {"panel": (200, 220), "overlap": 40.0, "sod": 1400.0}
    shots, truth = rendered(mode, seed=seed, **extra)
    result = stitch_radiographs(shots, method="image", max_seam_error=5.0)
    found = np.array([s["shift_mm"][1] for s in result.seams])
    assert np.abs(found - truth["errors_plane_mm"][1:]).max() <= 1.5 * result.plane.spacing[1]
    assert np.abs(bead_distance_errors(result, truth)).max() <= (1.0 if mode == "parallel" else 1.5)


def _seam_errors_px(result, truth):
    """Each seam's own error (pixels): shot k+1 against shot k as placed, so an error of seam k is not counted
    again at seam k + 1 (the test above checks each shot's absolute placement, which accumulates)."""
    found = np.array([0.0] + [s["shift_mm"][1] for s in result.seams])
    expected = np.asarray(truth["errors_plane_mm"], float)
    return np.diff(found - expected) / result.plane.spacing[1]


@pytest.mark.parametrize("seed", [5, 11])  # 5 was used in tuning; 11 (the held-out phantom) was not
def test_image_registration_with_noise_angled_every_seam_within_half_a_pixel(rendered, seed):
    """Angled mode, 1 % noise, eight noise draws per phantom: each seam within half a pixel. Before the
    full-resolution whole-pixel search, Gauss–Newton started from the smooth coarse peak (up to 4 px off) and
    stopped in the wrong basin on seed 5 (seam errors up to 3.7 px), or the overlap was refused as ambiguous."""
    clean, truth = rendered("angled", seed=seed, noise=0.0, panel=(200, 220), overlap=40.0, sod=1400.0)
    for draw in range(8):
        result = stitch_radiographs(_redrawn(clean, 200 + draw), method="image")
        errors = _seam_errors_px(result, truth)
        assert np.abs(errors).max() <= 0.5, (draw, errors)
        assert np.abs(bead_distance_errors(result, truth)).max() <= 1.5


def _write_pngs(shots, folder, sidecar=None):
    from PIL import Image

    paths = []
    for i, shot in enumerate(shots):
        values = np.clip(shot.image / shot.image.max() * 60000, 0, 65535).astype(np.uint16)
        path = folder / f"shot{i + 1}.png"
        Image.fromarray(values).save(path)
        if sidecar is not None:
            path.with_suffix(".json").write_text(json.dumps(sidecar(i, shot)))
        paths.append(str(path))
    return paths


def test_cli_pngs_without_geometry(rendered, tmp_path, capsys):
    """PNG exports with no geometry: placed on the anatomy alone, spacing at the detector (said so)."""
    shots, truth = rendered("parallel")
    paths = _write_pngs(shots, tmp_path)
    out, report = tmp_path / "long.nrrd", tmp_path / "long.json"
    rc = main(["stitch", *paths, "--pixel-size", "1", "--output", str(out), "--output-json", str(report), "-q"])
    assert rc == 0
    assert "magnification not corrected" in capsys.readouterr().out
    image = sitk.ReadImage(str(out))
    assert image.GetSpacing() == (1.0, 1.0)
    summary = json.loads(report.read_text())
    assert summary["magnification_at_plane"] is None
    # the panels moved 2 x 150 mm; on the panel an object moves SID/depth times as much: 1.2x in the bone's
    # plane, 1.16x to 1.24x at the skin (x 1448..1552 mm from the source). The seams must fall in that range.
    total = image.GetSize()[1]
    assert 240 + 300 * 1800 / 1552 <= total <= 240 + 300 * 1800 / 1448


def test_cli_sidecar_geometry_writes_dicom_dx(rendered, tmp_path, capsys):
    """PNG + JSON sidecar (panel/tube positions): DICOM DX output with PixelSpacing at the plane; dciodvfy clean."""
    import shutil
    import subprocess

    import pydicom

    shots, truth = rendered("angled", ruler=True)

    def sidecar(i, shot):
        v = shot.view
        return {
            "pixel_size": [1.0, 1.0],
            "sid": 1800.0,
            "sod": 1500.0,
            "panel_position": float(-v.centers[0][2]),
            "source_position": float(-v.sources[0][2]),
        }

    paths = _write_pngs(shots, tmp_path, sidecar)
    out = tmp_path / "long.dcm"
    rc = main(
        [
            "stitch",
            *paths,
            "--mode",
            "angled",
            "--method",
            "ruler",
            "--output",
            str(out),
            "--measure",
            "10",
            "20",
            "10",
            "420",
            "-q",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "distance [10.0, 20.0] -> [10.0, 420.0]: 333.33 mm" in text
    ds = pydicom.dcmread(out)
    assert float(ds.PixelSpacing[0]) == pytest.approx(1500.0 / 1800.0)
    assert float(ds.ImagerPixelSpacing[0]) == pytest.approx(1.0)
    assert "magnification 1.2000" in ds.DerivationDescription
    if shutil.which("dciodvfy"):
        report = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True)
        assert "Error" not in report.stderr + report.stdout, report.stderr


def test_refusals_name_the_problem(rendered, tmp_path, capsys):
    shots, _ = rendered("parallel")
    raw = [Shot(s.image, s.pixel_size) for s in shots]
    with pytest.raises(ImgSuiteError, match="no geometry"):
        stitch_radiographs(raw, method="geometry")
    with pytest.raises(ImgSuiteError, match="overlap"):  # two shots with nothing in common
        stitch_radiographs([raw[0], Shot(np.random.default_rng(1).normal(size=(240, 160)), (1, 1))], method="image")
    with pytest.raises(ImgSuiteError, match="unknown output format"):
        stitch_radiographs(shots, tmp_path / "x.jpg")
    assert (
        main(["stitch", str(tmp_path / "missing.png"), str(tmp_path / "b.png"), "--output", str(tmp_path / "o.nrrd")])
        == 2
    )
    err = capsys.readouterr().err
    assert "missing.png: no such file" in err and "Traceback" not in err
    assert not (tmp_path / "o.nrrd").exists()
    paths = _write_pngs(shots, tmp_path, lambda i, shot: {"pixel_size": [1, 1], "sid": "far", "panel_position": i})
    assert main(["stitch", *paths, "--output", str(tmp_path / "o.nrrd"), "--method", "geometry"]) == 2
    assert "shot1.json: bad geometry value" in capsys.readouterr().err
    before = (tmp_path / "shot2.png").read_bytes()
    assert main(["stitch", *paths, "--pixel-size", "1", "--output", paths[1]]) == 2
    assert "shot2.png: --output is an input" in capsys.readouterr().err  # the CLI's one output guard
    with pytest.raises(ImgSuiteError, match="is an input"):  # the same guard when the job is called directly
        stitch_radiographs(paths, paths[1], pixel_size=(1, 1))
    assert (tmp_path / "shot2.png").read_bytes() == before


def test_stitched_volume_measures_in_mm_with_a_slicer_ruler(rendered, mrml):
    """In Slicer the stitched image is a volume; a line markup between two beads measures their distance."""
    from SlicerImgSuite.stitch.nodes import stitched_volume_node, summary_text
    from SlicerImgSuite.stitch.phantom import measured_beads

    shots, truth = rendered("parallel", ruler=True)
    result = stitch_radiographs(shots, method="ruler")
    node = stitched_volume_node(mrml, result, "Long leg")
    assert "magnification 1.2" in summary_text(result)
    assert node.GetSpacing()[0] == pytest.approx(1500.0 / 1800.0)
    found = measured_beads(result, truth)
    import vtk

    ijk_to_ras = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(ijk_to_ras)
    line = mrml.scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", "ruler")
    for row, col in (found[0], found[-1]):
        line.AddControlPoint(ijk_to_ras.MultiplyPoint([col, row, 0.0, 1.0])[:3])
    true = float(np.hypot(*(truth["beads_mm"][-1] - truth["beads_mm"][0])))
    assert line.GetLineLengthWorld() == pytest.approx(true, abs=1.0)


@pytest.mark.parametrize("layout", ["set.mha", "pfm"])
def test_projection_set_of_imgsuite_drr(rendered, tmp_path, layout):
    """A projection set (plastimatch .pfm/.txt folder, or a stack with its .json) carries every view: the
    geometry alone then keeps lengths."""
    from SlicerImgSuite.tomo.geometry import Geometry
    from SlicerImgSuite.tomo.projset import ProjectionSet, write_projections

    shots, truth = rendered("parallel", noise=0.0)
    views = [s.view for s in _true_geometry(shots, truth, "parallel")]
    geometry = Geometry(
        np.concatenate([v.sources for v in views]),
        np.concatenate([v.centers for v in views]),
        views[0].u_axes[0],
        views[0].v_axes[0],
        views[0].pixel_size,
        views[0].dims,
    )
    integrals = np.stack([-np.log(s.image / 1000.0) for s in shots]).astype(np.float32)  # exposures differ: fine
    write_projections(ProjectionSet(integrals, geometry), tmp_path / layout)
    out = tmp_path / "long.nrrd"
    rc = main(
        ["stitch", str(tmp_path / layout), "--method", "geometry", "--plane-distance", "1500", "-O", str(out), "-q"]
    )
    assert rc == 0
    result = stitch_radiographs([str(tmp_path / layout)], method="geometry", plane_distance=1500.0)
    assert np.abs(bead_distance_errors(result, truth)).max() <= 1.0
    assert sitk.ReadImage(str(out)).GetSpacing()[0] == pytest.approx(1500.0 / 1800.0)


@pytest.mark.parametrize("mode", ["parallel", "angled"])
def test_multiband_blend_keeps_aligned_structures_single(rendered, mode):
    """--blend multiband on aligned shots (true geometry, exposures differing): beads in and out of the overlaps
    stay single (their positions move under 0.05 px against the linear feather, distances within 1 / 1.5 mm),
    and no seam line appears: across each overlap the image agrees with the linear blend to 1 % of its range."""
    shots, truth = rendered(mode, noise=0.0)
    fixed = _true_geometry(shots, truth, mode)
    linear = stitch_radiographs(fixed, method="geometry")
    multi = stitch_radiographs(fixed, method="geometry", blend="multiband")
    from SlicerImgSuite.stitch.phantom import measured_beads

    assert np.abs(measured_beads(multi, truth) - measured_beads(linear, truth)).max() < 0.05
    assert np.abs(bead_distance_errors(multi, truth)).max() <= (1.0 if mode == "parallel" else 1.5)
    span = float(np.ptp(linear.image))
    assert np.abs(multi.image - linear.image).max() <= 0.01 * span
    with pytest.raises(ImgSuiteError, match="--blend"):
        stitch_radiographs(fixed, method="geometry", blend="pyramid")


HELD_OUT_11 = {"panel": (200, 220), "overlap": 40.0, "sod": 1400.0}


def test_image_registration_refuses_an_overlap_too_noisy_to_place(rendered, tmp_path, capsys):
    """Seam 1 of the parallel seed-11 phantom: the only structure across the overlap is a bead cut by its top
    edge; at 1 % noise no estimator places it to half a pixel (the bound from the noise-free shots is 0.38 px,
    1 SD) and the search landed 0.7-4.4 px off in 12 of 17 noise draws. The seam's expected error is estimated
    from the overlap and the stitch refused, naming the shots; the CLI exits 2 with nothing written."""
    shots, _ = rendered("parallel", seed=11, **HELD_OUT_11)
    with pytest.raises(ImgSuiteError, match=r"shots 1 and 2: .*too little structure.*expected error \d"):
        stitch_radiographs(shots, method="image")
    paths = _write_pngs(shots, tmp_path, _sidecar(1400.0))
    out = tmp_path / "long.nrrd"
    assert main(["stitch", *paths, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "shots 1 and 2" in err and "expected error" in err and "Traceback" not in err
    assert not out.exists()


def _redrawn(clean, draw):
    """The noise-free shots with 1 % noise of generator seed ``draw``."""
    rng = np.random.default_rng(draw)
    return [
        Shot(
            (s.image + rng.normal(0.0, 0.01 * s.image.mean(), s.image.shape)).astype(np.float32),
            s.pixel_size,
            s.view,
            s.path,
            s.sod,
            photometric=s.photometric,
        )
        for s in clean
    ]


def test_image_registration_refuses_a_seam_whose_search_is_ambiguous_under_noise(rendered):
    """Seam 2 of the parallel seed-17 phantom (220 x 200 panels, 35 mm overlap, SOD 1350): its whole-pixel NCC
    curve is nearly flat, so noise moves the best shift by a pixel. The local bound alone stated 0.59-0.77 px
    (2 SD) there and the stitch was accepted with the seam 0.6-1.16 px off in noise draws 302-305; the search
    repeated on fresh noise now shows the spread and the seam is refused. Seam 1 (shots 1 and 2 stitched
    alone, same draws) stays accepted under the default limit of 0.5 px, and within 0.5 px."""
    clean, truth = rendered("parallel", seed=17, noise=0.0, panel=(220, 200), overlap=35.0, sod=1350.0)
    for draw in (302, 303, 304, 305):
        shots = _redrawn(clean, draw)
        with pytest.raises(ImgSuiteError, match=r"shots 2 and 3: .*too little structure.*expected error \d"):
            stitch_radiographs(shots, method="image")
        first = stitch_radiographs(shots[:2], method="image")
        assert abs(_seam_errors_px(first, {"errors_plane_mm": truth["errors_plane_mm"][:2]})[0]) <= 0.5
        assert first.seams[0]["expected_error_px"] <= 0.5


def _sidecar(sod):
    def sidecar(i, shot):
        v = shot.view
        return {
            "pixel_size": list(shot.pixel_size),
            "sid": float(v.sid[0]),
            "sod": sod,
            "panel_position": float(-v.centers[0][2]),
            "source_position": float(-v.sources[0][2]),
        }

    return sidecar


def test_image_registration_refuses_a_structureless_overlap(rendered):
    """Shots that show only edges along the long axis (each column constant, as a plain cylinder) and 1 % noise:
    every row shift matches as well as any other, so the stitch is refused, not placed at a random shift."""
    shots, _ = rendered("parallel", noise=0.0)
    rng = np.random.default_rng(5)
    flat = []
    for s in shots:
        column = np.broadcast_to(s.image.mean(axis=0), s.image.shape)
        noisy = column + rng.normal(0.0, 0.01 * float(column.mean()), column.shape)
        flat.append(Shot(noisy.astype(np.float32), s.pixel_size, s.view, s.path, s.sod, photometric=s.photometric))
    with pytest.raises(ImgSuiteError, match="shots 1 and 2: the overlap"):
        stitch_radiographs(flat, method="image")


@pytest.mark.parametrize("mode", ["parallel", "angled"])
def test_each_seam_reports_its_expected_error(rendered, mode, capsys):
    """The phantom seams are accepted, each with its expected error (2 SD) in the report: under the limit with
    1 % noise, and under 0.1 px noise-free (the same shots, so the estimate follows the noise). The limit is
    the first pass's 0.8 px here: seam 2 of the angled seed-3 phantom is weak (0.77 px off in one of noise
    draws 200-207, ambiguous in two) and its 0.53 px now refuses it under the default 0.5 px; this test checks
    the report, the refusal is checked below and above."""
    noisy = stitch_radiographs(rendered(mode)[0], method="image", max_seam_error=0.8)
    clean = stitch_radiographs(rendered(mode, noise=0.0)[0], method="image")
    for s_noisy, s_clean in zip(noisy.seams, clean.seams):
        assert 0.0 < s_noisy["expected_error_px"] <= 0.8
        assert s_clean["expected_error_px"] < 0.1 < s_noisy["expected_error_px"]
    assert "expected_error_px" not in stitch_radiographs(rendered(mode, ruler=True)[0], method="ruler").seams[0]
    from SlicerImgSuite.stitch.nodes import summary_text

    assert summary_text(noisy).count("px (2 SD)") == 2  # the module's result box and the CLI's log


def test_shots_without_geometry_must_share_one_pixel_pitch(rendered, tmp_path, capsys):
    """Without positions the shots are matched pixel for pixel: a shot binned 2x2 (another pitch) is refused up
    front, naming it, instead of a misleading "too little structure" or a seam at the wrong scale."""
    shots, _ = rendered("parallel")
    binned = shots[1].image[: 240 // 2 * 2, :].reshape(120, 2, 80, 2).mean(axis=(1, 3))
    mixed = [shots[0], Shot(binned.astype(np.float32), (2.0, 2.0), None, str(tmp_path / "shot2.png")), shots[2]]
    raw = [Shot(s.image, s.pixel_size, None, s.path) for s in mixed]
    with pytest.raises(ImgSuiteError, match=r"shot2\.png: pixels of 2 x 2 mm, shot 1 has 1 x 1 mm"):
        stitch_radiographs(raw, tmp_path / "long.nrrd", method="image")
    assert not (tmp_path / "long.nrrd").exists()


def _write_dx(shot, path, flip_rows=False, flip_cols=False, iop=None):
    """``shot`` as a DICOM DX with its geometry tags, stored upside down and/or mirrored as asked (tags to match)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rows, cols = shot.image.shape
    pixels = np.clip(shot.image / shot.image.max() * 60000, 0, 65535).astype(np.uint16)
    c = shot.view.centers[0]
    first = [c[0] - (cols - 1) / 2, c[1], c[2] + (rows - 1) / 2]  # 1 mm pixels, columns +x, rows -z
    row_dir, col_dir = [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]
    if flip_rows:
        pixels, first[2], col_dir = pixels[::-1], first[2] - (rows - 1), [0.0, 0.0, 1.0]
    if flip_cols:
        pixels, first[0], row_dir = pixels[:, ::-1], first[0] + (cols - 1), [-1.0, 0.0, 0.0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "DX", rows, cols, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.ImagerPixelSpacing, ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = [1.0, 1.0], 1800.0, 1500.0
    ds.ImagePositionPatient = [float(x) for x in first]
    ds.ImageOrientationPatient = iop or row_dir + col_dir
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return str(path)


def test_dicom_shots_stored_upside_down_or_mirrored_are_turned_upright(rendered, tmp_path, capsys):
    """ImageOrientationPatient was ignored: a shot stored upside down (rows to the head) was placed a panel's
    height off ("do not overlap", or a wrong seam where the overlap is large). Flipped shots now give the same
    stitch as upright ones; a shot rotated by 90 degrees is refused, naming the tag."""
    shots, _ = rendered("parallel")
    upright = [_write_dx(s, tmp_path / f"up{i}.dcm") for i, s in enumerate(shots)]
    turned = [
        upright[0],
        _write_dx(shots[1], tmp_path / "down1.dcm", flip_rows=True),
        _write_dx(shots[2], tmp_path / "mirror2.dcm", flip_rows=True, flip_cols=True),
    ]
    stitch_radiographs(upright, tmp_path / "up.nrrd", method="geometry")
    stitch_radiographs(turned, tmp_path / "turned.nrrd", method="geometry")
    up, flipped = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / n))) for n in ("up.nrrd", "turned.nrrd"))
    assert up.shape == flipped.shape
    np.testing.assert_allclose(flipped, up, atol=1e-3 * up.max())
    rotated = _write_dx(shots[1], tmp_path / "rot.dcm", iop=[0.0, 0.0, -1.0, 1.0, 0.0, 0.0])
    assert main(["stitch", upright[0], rotated, "--output", str(tmp_path / "r.nrrd"), "--method", "geometry"]) == 2
    err = capsys.readouterr().err
    assert "rot.dcm: ImageOrientationPatient" in err and "Traceback" not in err
    assert not (tmp_path / "r.nrrd").exists()
    # a lateral long-length view (rows front-back, columns down) is not a rotated one: it stitches as stored
    lateral = [_write_dx(s, tmp_path / f"lat{i}.dcm", iop=[0.0, 1.0, 0.0, 0.0, 0.0, -1.0]) for i, s in enumerate(shots)]
    stitch_radiographs(lateral, tmp_path / "lateral.nrrd", method="geometry")
    np.testing.assert_allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "lateral.nrrd"))), up, atol=1e-3 * up.max())
