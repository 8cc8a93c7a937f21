"""Fluorescence nuclei: accuracy on real DSB2018 / synthetic 3D data, readers, measurements, tracking, CLI, MRML."""

from __future__ import annotations

import csv
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tifffile
from skimage.draw import disk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.segmentation.matching import instance_f1
from SlicerImgSuite.segmentation.measure import measure_nuclei
from SlicerImgSuite.segmentation.microscopy import read_microscopy
from SlicerImgSuite.segmentation.nuclei import label_nuclei
from SlicerImgSuite.segmentation.nuclei_job import NucleiOptions, analyze_nuclei
from SlicerImgSuite.segmentation.tracking import track_nuclei


def _imgsuite(*args):
    return subprocess.run([sys.executable, "-m", "SlicerImgSuite.cli", *args], capture_output=True, text=True)


def _cells(shape, centres, radius, value=1000.0, seed=0):
    """A synthetic fluorescence plane: bright discs on a dim noisy background."""
    rng = np.random.default_rng(seed)
    img = rng.normal(100, 5, shape)
    truth = np.zeros(shape, np.int32)
    for i, (y, x) in enumerate(centres, 1):
        rr, cc = disk((y, x), radius, shape=shape)
        img[rr, cc] += value
        truth[rr, cc] = i
    return img.clip(0, 65535).astype(np.uint16), truth


def _write_czi(path, frames, names, scale=0.5e-6):
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for t, channels in enumerate(frames):
            for c, plane in enumerate(channels):
                czi.write(plane, plane={"T": t, "C": c, "Z": 0})
        czi.write_metadata(channel_names=dict(enumerate(names)), scale_x=scale, scale_y=scale)


def test_dsb2018_instance_f1(shared_data):
    folder = shared_data / "dsb2018-nuclei-stardist-sample"
    image = tifffile.imread(folder / "img2d.tif")
    truth = tifffile.imread(folder / "mask2d.tif")
    score = instance_f1(truth, label_nuclei(image))  # default settings, diameter estimated from the image
    print(
        f"DSB2018 F1@0.5 = {score.f1:.3f} (tp {score.true_positives}, fp {score.false_positives}, fn {score.false_negatives})"
    )
    assert score.f1 >= 0.85
    # the classic global-Otsu pipeline, for the record: clearly below the adaptive default
    assert instance_f1(truth, label_nuclei(image, "otsu")).f1 < score.f1


def test_3d_synthetic_instance_f1(shared_data):
    folder = shared_data / "nuclei-3d-synthetic-stardist"
    image = tifffile.imread(folder / "img3d.tif")
    truth = tifffile.imread(folder / "mask3d.tif")
    auto = instance_f1(truth, label_nuclei(image)).f1
    sized = instance_f1(truth, label_nuclei(image, diameter=8)).f1
    print(f"3D synthetic F1@0.5: estimated diameter {auto:.3f}, --diameter 8: {sized:.3f}")
    assert auto >= 0.65 and sized >= 0.88


def test_watershed_splits_touching_pair_and_filters():
    img, truth = _cells((80, 120), [(40, 40), (40, 58), (15, 100)], 10)
    img[70:72, 5:7] = 1100  # a 4-pixel speck: debris, below the area filter
    labels = label_nuclei(img)
    assert labels.max() == 3 and instance_f1(truth, labels).f1 == 1.0
    assert label_nuclei(img, split_touching=False).max() == 2  # the pair stays one blob
    assert label_nuclei(img, min_area=1).max() == 4
    assert label_nuclei(img, exclude_border=True).max() == 3
    edge, _ = _cells((80, 120), [(40, 40), (5, 60)], 10)
    assert label_nuclei(edge, diameter=20, exclude_border=True).max() == 1
    assert label_nuclei(img, "threshold", threshold=600).max() == 3
    with pytest.raises(ImgSuiteError, match="--threshold"):
        label_nuclei(img, "threshold")
    with pytest.raises(ImgSuiteError, match="model"):
        label_nuclei(img, "model")


def test_measurements_are_exact():
    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 2:6] = 1
    labels[10:15, 10:12] = 2
    dapi = np.arange(400, dtype=float).reshape(20, 20)
    ones = np.ones((20, 20))
    header, rows = measure_nuclei(labels, {"DAPI": dapi, "GFP": ones}, perinuclear_width=1, pixel_size=(0.5, 0.5))
    row = dict(zip(header, rows[0]))
    assert row["area_px"] == 16 and row["area_um2"] == 4.0
    assert row["DAPI_sum"] == dapi[2:6, 2:6].sum() and row["DAPI_mean"] == dapi[2:6, 2:6].mean()
    assert (row["centroid_y"], row["centroid_x"]) == (3.5, 3.5)
    assert row["ring_area_px"] == 16 and row["GFP_ring_sum"] == 16 and row["GFP_ring_to_nucleus"] == 1.0
    assert dict(zip(header, rows[1]))["area_px"] == 10


def test_tracking_links_with_gap_memory():
    frames = [np.array([[10.0, 10.0], [50.0, 50.0]]), np.array([[12.0, 11.0]]), np.array([[14.0, 12.0], [52.0, 50.0]])]
    tracks = track_nuclei(frames, max_distance=5, memory=1)
    assert sorted(tracks) == [[(0, 0), (1, 0), (2, 0)], [(0, 1), (2, 1)]]
    assert len(track_nuclei(frames, max_distance=5, memory=0)) == 3  # without memory the gap breaks the track


def test_czi_readers_channel_names_and_timelapse(shared_data):
    cd = read_microscopy(shared_data / "czi" / "CD_s_1_t_3_c_2_z_5.czi")
    assert cd.data.shape == (3, 2, 5, 170, 240)
    assert cd.channel_names == ["LED555", "LED470"] and cd.channel_index("led470") == 1
    assert cd.pixel_size_um[2] == pytest.approx(0.0906, abs=1e-4)
    assert cd.time_s == pytest.approx([0.0, 60.075, 120.15])  # frame offsets from the CZI metadata
    rgb = read_microscopy(shared_data / "czi" / "RGB-multichannel.czi")
    assert rgb.data.shape == (1, 7, 1, 81, 147) and rgb.channel_names[1] == "Pol_0"
    with pytest.raises(ImgSuiteError, match="no channel named 'DAPI'"):
        cd.channel_index("DAPI")


def test_czi_with_several_scenes_reads_the_first_and_warns(tmp_path):
    # two wells 3000 x 2000 pixels apart on the stage: read as one image they were a 2020 x 3030 mosaic, 99.98 % black
    from pylibCZIrw import czi as pyczi

    path = tmp_path / "wells.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        czi.write(np.full((20, 30), 100, np.uint16), plane={"C": 0}, scene=0, location=(0, 0))
        czi.write(np.full((20, 30), 200, np.uint16), plane={"C": 0}, scene=1, location=(3000, 2000))
        czi.write_metadata(channel_names={0: "DAPI"}, scale_x=0.5e-6, scale_y=0.5e-6)
    with pytest.warns(UserWarning, match="2 scenes .*reading scene 0 only"):
        image = read_microscopy(path)
    assert image.data.shape == (1, 1, 1, 20, 30)
    assert np.unique(image.data).tolist() == [100]


def test_tiff_with_several_positions_warns_it_reads_the_first(tmp_path):
    # two stage positions, as two OME images or as an R axis: only the first was analysed, without a word
    with tifffile.TiffWriter(tmp_path / "two.ome.tif", ome=True) as tif:
        tif.write(np.full((20, 30), 5, np.uint16))
        tif.write(np.full((40, 50), 9, np.uint16))
    tifffile.imwrite(tmp_path / "r.tif", np.stack([np.full((20, 30), 5, np.uint16)] * 2), metadata={"axes": "RYX"})
    with pytest.warns(UserWarning, match="2 image series; reading series 0 only"):
        assert read_microscopy(tmp_path / "two.ome.tif").data.shape == (1, 1, 1, 20, 30)
    with pytest.warns(UserWarning, match="axis R has 2 entries; reading the first only"):
        assert read_microscopy(tmp_path / "r.tif").data.shape == (1, 1, 1, 20, 30)


def test_z_stack_without_z_step_warns(tmp_path):
    # pixel size in x and y but no PhysicalSizeZ / ImageJ spacing: z was 1 um silently, and so every volume_um3
    stack = np.zeros((5, 20, 30), np.uint16)
    meta = {"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2}
    tifffile.imwrite(tmp_path / "z.ome.tif", stack, ome=True, metadata=meta)
    tifffile.imwrite(tmp_path / "z.tif", stack, imagej=True, resolution=(5, 5), metadata={"axes": "ZYX", "unit": "um"})
    for name in ("z.ome.tif", "z.tif"):
        with pytest.warns(UserWarning, match="no z step for its 5 planes: 1 um assumed"):
            assert read_microscopy(tmp_path / name).pixel_size_um == pytest.approx((1.0, 0.2, 0.2))
    tifffile.imwrite(tmp_path / "dz.ome.tif", stack, ome=True, metadata={**meta, "PhysicalSizeZ": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a given z step and a single plane stay quiet
        assert read_microscopy(tmp_path / "dz.ome.tif").pixel_size_um == pytest.approx((0.5, 0.2, 0.2))
        tifffile.imwrite(tmp_path / "one.ome.tif", stack[0], ome=True, metadata={**meta, "axes": "YX"})
        assert read_microscopy(tmp_path / "one.ome.tif").pixel_size_um[0] == 1.0


def test_ome_tiff_channel_names(tmp_path):
    img, _ = _cells((64, 64), [(30, 30)], 8)
    path = tmp_path / "two.ome.tif"
    tifffile.imwrite(path, np.stack([img // 2, img]), metadata={"axes": "CYX", "Channel": {"Name": ["GFP", "DAPI"]}})
    image = read_microscopy(path)
    assert image.channel_names == ["GFP", "DAPI"] and image.channel_index(None) == 1


def test_cli_timelapse_czi_with_tracking(tmp_path):
    centres = [[(30, 30), (30, 90), (90, 60)], [(32, 33), (30, 93)], [(34, 36), (31, 96), (90, 63)]]
    frames = []
    for t, cs in enumerate(centres):
        nuc, _ = _cells((128, 128), cs, 9, seed=t)
        frames.append([nuc // 3, nuc])  # GFP (dim copy), DAPI
    src = tmp_path / "in"
    src.mkdir()
    _write_czi(src / "movie.czi", frames, ["GFP", "DAPI"])
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    run = _imgsuite(
        "nuclei",
        "--input",
        str(src),
        "--output",
        str(out),
        "--nuclear-channel",
        "DAPI",
        "--track",
        "--perinuclear-width",
        "3",
        "--max-displacement",
        "8",
    )
    assert run.returncode == 0, run.stderr
    assert "notes.txt" in run.stderr and "warning" in run.stderr
    labels = tifffile.imread(out / "movie_labels.tif")
    assert labels.shape == (3, 128, 128) and [labels[t].max() for t in range(3)] == [3, 2, 3]
    rows = list(csv.DictReader(open(out / "movie.csv")))
    assert {"DAPI_mean", "GFP_ring_mean", "track_id", "area_um2"} <= set(rows[0])
    tracks = list(csv.DictReader(open(out / "movie_tracks.csv")))
    lengths = sorted(np.bincount([int(r["track_id"]) for r in tracks])[1:].tolist())
    assert lengths == [2, 3, 3]  # the cell missing in frame 1 is re-linked in frame 2 (gap memory)
    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert [int(r["nuclei"]) for r in summary] == [3, 2, 3]
    for name in ("movie_overlay.png", "movie_tracks.png", "movie_population.png"):
        assert (out / name).stat().st_size > 1000


def test_cli_bad_inputs(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    run = _imgsuite("nuclei", "--input", str(bad), "--output", str(tmp_path / "o"))
    assert run.returncode == 2 and str(bad) in run.stderr
    assert not (tmp_path / "o" / "broken_labels.tif").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    run = _imgsuite("nuclei", "--input", str(empty), "--output", str(tmp_path / "o2"))
    assert run.returncode == 2 and "no TIFF" in run.stderr
    # a folder where one image is corrupt: the good one is still processed, with a warning
    good, _ = _cells((64, 64), [(30, 30)], 8)
    tifffile.imwrite(empty / "good.tif", good)
    (empty / "bad.tif").write_bytes(b"II*\x00garbage")
    results, warnings = analyze_nuclei(empty, tmp_path / "o3", NucleiOptions())
    assert [r.stem for r in results] == ["good"] and any("bad.tif" in w for w in warnings)


def test_3d_stack_labels_keep_stack_shape(shared_data, tmp_path):
    run = _imgsuite(
        "nuclei",
        "--input",
        str(shared_data / "nuclei-3d-synthetic-stardist" / "img3d.tif"),
        "--output",
        str(tmp_path),
        "--diameter",
        "8",
    )
    assert run.returncode == 0, run.stderr
    labels = tifffile.imread(tmp_path / "img3d_labels.tif")
    truth = tifffile.imread(shared_data / "nuclei-3d-synthetic-stardist" / "mask3d.tif")
    assert labels.shape == truth.shape and instance_f1(truth, labels).f1 > 0.85


def test_nuclei_in_mrml(mrml):
    from SlicerImgSuite.segmentation.nodes import nuclei_to_scene

    img, truth = _cells((64, 96), [(30, 30), (30, 70)], 9)
    labels = label_nuclei(img)
    header, rows = measure_nuclei(labels, {"DAPI": img})
    nodes = nuclei_to_scene(mrml, img, labels, header, rows, name="cells")
    assert nodes.segmentation.GetSegmentation().GetNumberOfSegments() == 2
    assert nodes.table.GetTable().GetNumberOfRows() == 2
    assert nodes.volume.GetImageData().GetDimensions() == (96, 64, 1)
    assert nodes.plot is not None


def test_model_probabilities_to_instances_without_torch():
    # two touching discs: interior cores separated by a boundary ring -> two nuclei, no torch needed
    from SlicerImgSuite.segmentation.unet import labels_from_probabilities

    prob = np.zeros((3, 60, 80), np.float32)
    prob[0] = 1
    for centre in ((30, 30), (30, 48)):
        rr, cc = disk(centre, 10, shape=(60, 80))
        prob[:, rr, cc] = np.array([[0], [0.1], [0.9]])
    for centre in ((30, 30), (30, 48)):
        rr, cc = disk(centre, 7, shape=(60, 80))
        prob[:, rr, cc] = np.array([[0], [0.9], [0.1]])
    labels = label_nuclei(np.zeros((60, 80)), method="model", probability=prob)
    assert labels.max() == 2
    assert labels[30, 30] != labels[30, 48] and labels[30, 30] > 0
    assert abs((labels > 0).sum() - (prob[0] < 0.5).sum()) == 0  # grown back over the whole foreground
    assert labels_from_probabilities(prob).max() == 2


def test_folder_skips_an_image_without_the_asked_channel(tmp_path):
    one, _ = _cells((64, 64), [(30, 30)], 8)
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "a_one_channel.tif", one)
    tifffile.imwrite(src / "b_two_channels.ome.tif", np.stack([one // 2, one]), metadata={"axes": "CYX"})
    results, warnings = analyze_nuclei(src, tmp_path / "out", NucleiOptions(nuclear_channel=1))
    assert [r.stem for r in results] == ["b_two_channels"]
    assert any("a_one_channel.tif" in w and "channel 1 does not exist" in w for w in warnings)
    assert not (tmp_path / "out" / "a_one_channel_labels.tif").exists()
    assert [r["image"] for r in csv.DictReader(open(tmp_path / "out" / "summary.csv"))] == ["b_two_channels"]


def test_micrometres_only_when_the_file_gives_the_pixel_size(tmp_path):
    img, _ = _cells((64, 64), [(30, 30)], 8)
    plain, imagej = tmp_path / "plain.tif", tmp_path / "imagej.tif"
    tifffile.imwrite(plain, img)
    tifffile.imwrite(imagej, img, imagej=True, resolution=(1 / 0.25, 1 / 0.5), metadata={"unit": "micron"})
    assert read_microscopy(imagej).pixel_size_um == pytest.approx((1.0, 0.5, 0.25))
    assert not read_microscopy(plain).pixel_size_known
    results, _ = analyze_nuclei(imagej, tmp_path / "o1", NucleiOptions())
    row = dict(zip(results[0].header, results[0].rows[0]))
    assert row["area_um2"] == pytest.approx(row["area_px"] * 0.125)
    analyze_nuclei(plain, tmp_path / "o2", NucleiOptions())
    row = next(csv.DictReader(open(tmp_path / "o2" / "plain.csv")))
    assert "area_um2" not in row and row["time_s"] == ""  # no pixel size or frame time in the file: none invented


def test_bright_background_image_warns_nuclei_are_bright_objects(tmp_path, shared_data):
    """A brightfield / H&E image (dark nuclei on a bright background; DSB2018's colour images) was segmented
    without a word: Otsu took 67 % of 17b9bf4356db (11 nuclei) as 298 "nuclei", the background among them."""
    from PIL import Image

    rgb = np.asarray(Image.open(shared_data / "dsb2018-stage1-nuclei" / "images" / "17b9bf4356db.png"))[..., :3]
    tifffile.imwrite(tmp_path / "he.tif", rgb, photometric="rgb")
    img, _ = _cells((96, 96), [(30, 30), (60, 60)], 8)
    tifffile.imwrite(tmp_path / "inverted.tif", (65535 - img).astype(np.uint16))
    tifffile.imwrite(tmp_path / "fluo.tif", img)
    for name, expected in (("he", True), ("inverted", True), ("fluo", False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            analyze_nuclei(tmp_path / f"{name}.tif", tmp_path / f"out_{name}", NucleiOptions(method="otsu"))
        said = [str(w.message) for w in caught if "bright background" in str(w.message)]
        assert bool(said) == expected, (name, said)
        assert not said or f"{name}.tif" in said[0]


def test_tracking_default_reach_is_one_diameter_with_the_model(tmp_path):
    """With the default method (the model) no diameter is estimated up front, so --max-displacement fell back to
    10 px: three nuclei 30 px wide moving 12 px per frame came out as 12 one-frame tracks instead of 3."""
    frames = []
    for t in range(4):
        plane, _ = _cells((160, 200), [(40, 40 + 12 * t), (110, 60 + 12 * t), (60, 120 + 12 * t)], 15, seed=t)
        frames.append(plane)
    axes = {"axes": "TYX"}
    tifffile.imwrite(tmp_path / "moving.tif", np.stack(frames), imagej=True, photometric="minisblack", metadata=axes)
    results, _ = analyze_nuclei(tmp_path / "moving.tif", tmp_path / "out", NucleiOptions(track=True))
    assert results[0].counts == [3, 3, 3, 3]
    assert sorted(len(track) for track in results[0].tracks) == [4, 4, 4]


def test_labels_of_three_or_four_frames_are_not_written_as_rgb(tmp_path):
    """tifffile wrote a (3|4, Y, X) label array as one RGB(A) page: ITK (Slicer's reader) loaded a 4-frame
    time-lapse's labels as a 2D 8-bit RGBA image (data loss), Fiji as a colour picture."""
    import SimpleITK as sitk

    for n in (3, 4):
        frames = [_cells((64, 80), [(20, 20 + 3 * t), (44, 50)], 7, seed=t)[0] for t in range(n)]
        tifffile.imwrite(tmp_path / f"t{n}.tif", np.stack(frames), imagej=True, metadata={"axes": "TYX"})
        results, _ = analyze_nuclei(tmp_path / f"t{n}.tif", tmp_path / f"out{n}", NucleiOptions(method="otsu"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ITK's own messages
            image = sitk.ReadImage(str(tmp_path / f"out{n}" / f"t{n}_labels.tif"))
        assert image.GetNumberOfComponentsPerPixel() == 1 and image.GetSize() == (80, 64, n)
        assert np.array_equal(sitk.GetArrayFromImage(image), results[0].labels)


def test_rgb_composite_says_the_nuclei_are_looked_for_in_red(tmp_path):
    """An RGB export of a fluorescence composite (nuclei blue, cytoplasm red) was segmented in its red channel
    without a word: 4 "nuclei" of 1730-1789 px, the cytoplasm discs (the nuclei are 254 px)."""
    rgb = np.full((128, 128, 3), 10, np.uint8)
    for y, x in ((30, 30), (30, 90), (90, 60), (95, 100)):
        rgb[disk((y, x), 24, shape=(128, 128))] += np.array([120, 0, 0], np.uint8)
        rgb[disk((y, x), 9, shape=(128, 128))] += np.array([0, 0, 200], np.uint8)
    tifffile.imwrite(tmp_path / "composite.tif", rgb, photometric="rgb")
    said = {}
    for channel in (None, 2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            options = NucleiOptions(method="otsu", nuclear_channel=channel)
            results, _ = analyze_nuclei(tmp_path / "composite.tif", tmp_path / f"out{channel}", options)
        said[channel] = [str(w.message) for w in caught if "RGB pixels" in str(w.message)]
    assert len(said[None]) == 1 and "--nuclear-channel 2" in said[None][0] and "composite.tif" in said[None][0]
    assert said[2] == []
    areas = [row[results[0].header.index("area_px")] for row in results[0].rows]
    assert len(areas) == 4 and max(areas) < 300  # channel 2: the nuclei themselves


def test_ome_pixel_size_units_greek_mu_cm_angstrom(tmp_path):
    """OME "μm" written with the Greek mu (U+03BC, not the micro sign), "cm" or "Å" left the pixel size unknown
    without a word: the tables had no area_um2. An unknown unit now says so."""
    plane = np.zeros((16, 16), np.uint16)
    expected = {"\u03bcm": 0.5, "cm": 0.5e4, "\u00c5": 0.5e-4, "furlong": None}
    for unit, um in expected.items():
        path = tmp_path / "u.ome.tif"
        meta = {"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": unit}
        tifffile.imwrite(path, plane, metadata={**meta, "PhysicalSizeY": 0.5, "PhysicalSizeYUnit": unit})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = read_microscopy(path)
        said = [str(w.message) for w in caught if "not known" in str(w.message)]
        assert image.pixel_size_known == (um is not None), unit
        if um is not None:
            assert image.pixel_size_um[1:] == pytest.approx((um, um)) and said == []
        else:
            assert len(said) == 1 and "furlong" in said[0] and "u.ome.tif" in said[0]


def test_tracking_in_z_stacks_measures_z_in_micrometres(tmp_path):
    """Tracking compared centroids in voxel indices: on a stack with a 5 um z step and 1 um pixels, a nucleus
    4 planes (20 um) away was linked as the same cell within --max-displacement 8 px."""
    from SlicerImgSuite.segmentation.microscopy import MicroscopyImage
    from SlicerImgSuite.segmentation.nuclei_job import analyze_image

    data = np.zeros((2, 1, 10, 40, 40), np.uint16)
    data[0, 0, 1:3, 16:24, 16:24] = 1000
    data[1, 0, 5:7, 16:24, 16:24] = 1000  # the same x, y, 4 planes deeper
    image = MicroscopyImage(data, ["DAPI"], (5.0, 1.0, 1.0), pixel_size_known=True, path=tmp_path / "s.tif")
    options = NucleiOptions(method="threshold", threshold=500, diameter=8, track=True, max_displacement=8)
    assert len(analyze_image(image, options).tracks) == 2
    image.data[1] = data[0]  # not moved: one track
    assert len(analyze_image(image, options).tracks) == 1
