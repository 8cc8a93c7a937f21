"""Issue 20: the combined cells table (CSV, Excel) and the verification pictures of every frame."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK
import tifffile
from PIL import Image

from SlicerImgSuite.segmentation.microscopy import read_microscopy
from SlicerImgSuite.segmentation.nuclei_job import NucleiOptions, analyze_nuclei

CZI = "CD_s_1_t_3_c_2_z_5"  # 3 frames, 2 channels, 5 planes


@pytest.fixture(scope="module")
def run(nuclei_inputs, tmp_path_factory):
    src = nuclei_inputs
    out = tmp_path_factory.mktemp("out")
    results, _ = analyze_nuclei(src, out, NucleiOptions(perinuclear_width=2, excel=True))
    return src, out, results


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cells_table_has_every_nucleus_of_every_frame_with_the_per_image_sums(run):
    src, out, results = run
    cells = _rows(out / "cells.csv")
    assert list(cells[0])[:6] == ["image", "frame", "time_s", "cell_id", "centroid_x", "centroid_y"]
    per_image = {r.stem: _rows(out / f"{r.stem}.csv") for r in results}
    assert len(cells) == sum(len(v) for v in per_image.values()) == sum(sum(r.counts) for r in results)
    for r in results:  # one row per nucleus per frame
        for t, n in enumerate(r.counts):
            ids = [int(c["cell_id"]) for c in cells if c["image"] == r.stem and int(c["frame"]) == t]
            assert sorted(ids) == list(range(1, n + 1))
    by_key = {(c["image"], c["frame"], c["cell_id"]): c for c in cells}
    for stem, rows in per_image.items():
        sums = [k for k in rows[0] if k.endswith("_sum")]
        assert sums and all(by_key[(stem, r["frame"], r["label"])][k] == r[k] for r in rows for k in sums)
    # independently of the job's measurement code: bincount of the raw pixels over the written labels
    labels = tifffile.imread(out / "img2d_labels.tif")
    image = tifffile.imread(src / "img2d.tif").astype(np.float64)
    truth = np.bincount(labels.ravel(), image.ravel())
    dsb = sorted((int(c["cell_id"]), float(c["C0_sum"])) for c in cells if c["image"] == "img2d")
    np.testing.assert_allclose([s for _, s in dsb], truth[[i for i, _ in dsb]], rtol=1e-5)
    movie = read_microscopy(src / f"{CZI}.czi")
    labels = tifffile.imread(out / f"{CZI}_labels.tif")  # (T, Z, Y, X)
    channel = movie.channel_names[1]
    for t in range(labels.shape[0]):
        truth = np.bincount(labels[t].ravel(), movie.data[t, 1].astype(np.float64).ravel())
        got = [
            (int(c["cell_id"]), float(c[f"{channel}_sum"])) for c in cells if c["image"] == CZI and c["frame"] == str(t)
        ]
        np.testing.assert_allclose([s for _, s in got], truth[[i for i, _ in got]], rtol=1e-5)


def test_excel_workbook_has_one_sheet_per_table(run):
    from openpyxl import load_workbook

    _, out, results = run
    book = load_workbook(out / "cells.xlsx", read_only=True)
    assert book.sheetnames == ["cells", "summary", *[r.stem for r in results]]
    cells = list(book["cells"].values)
    with open(out / "cells.csv", newline="") as f:
        text = list(csv.reader(f))
    assert list(cells[0]) == text[0] and len(cells) == len(text)
    col = text[0].index("C0_sum")
    for row, line in zip(cells[1:], text[1:]):
        assert (row[col] is None) == (line[col] == "")
        if line[col]:
            assert row[col] == pytest.approx(float(line[col]), rel=1e-5)


def test_overlay_and_mask_for_every_frame(run):
    _, out, results = run
    for r in results:
        labels = tifffile.imread(out / f"{r.stem}_labels.tif")
        frames = labels if len(r.counts) > 1 else labels[None]
        names = [f"_t{t}" for t in range(len(r.counts))] if len(r.counts) > 1 else [""]
        for t, suffix in enumerate(names):
            mask = np.asarray(Image.open(out / f"{r.stem}{suffix}_mask.png"))
            flat = frames[t].max(axis=0) if frames[t].ndim == 3 else frames[t]
            np.testing.assert_array_equal(mask > 0, flat > 0)
            assert set(np.unique(mask)) <= {0, 255}
            overlay = np.asarray(Image.open(out / f"{r.stem}{suffix}_overlay.png"))
            assert overlay.shape == (*flat.shape, 3)
            assert np.any(np.all(overlay == (255, 230, 0), axis=2))  # the cell ids are drawn
            assert f"{r.stem}{suffix}_overlay.png" in [p.name for p in r.outputs]


def _disc_image(tmp_path):
    """Two discs (radii 6 and 4) far apart, a DAPI channel (the discs) and a ramp channel to measure."""
    yy, xx = np.mgrid[:48, :64]
    truth = np.zeros((48, 64), np.int32)
    truth[(yy - 20) ** 2 + (xx - 18) ** 2 <= 36] = 1
    truth[(yy - 24) ** 2 + (xx - 46) ** 2 <= 16] = 2
    ramp = (xx + 100 * yy).astype(np.uint16)
    path = tmp_path / "discs.ome.tif"
    dapi = np.where(truth > 0, 1000, 0).astype(np.uint16)
    tifffile.imwrite(path, np.stack([dapi, ramp]), metadata={"axes": "CYX", "Channel": {"Name": ["DAPI", "RAMP"]}})
    return path, truth, ramp.astype(np.float64)


def _by_hand(truth, width):
    """Every pixel within ``width`` (Euclidean) of a nucleus pixel, found pixel by pixel."""
    grown = np.zeros_like(truth)
    for k in (1, 2):
        ys, xs = np.nonzero(truth == k)
        for y in range(truth.shape[0]):
            for x in range(truth.shape[1]):
                if np.min((ys - y) ** 2 + (xs - x) ** 2) <= width**2:
                    grown[y, x] = k
    return grown


@pytest.mark.parametrize("mode", ["grown", "ring"])
def test_perinuclear_modes_match_a_hand_computation(tmp_path, mode):
    path, truth, ramp = _disc_image(tmp_path)
    width = 3
    grown = _by_hand(truth, width)
    region = grown if mode == "grown" else np.where(truth > 0, 0, grown)
    options = NucleiOptions(method="threshold", threshold=500, perinuclear_width=width, perinuclear_mode=mode)
    results, _ = analyze_nuclei(path, tmp_path / "out", options)
    labels = results[0].labels[0]
    np.testing.assert_array_equal(labels, truth)  # the discs themselves, so only the perinuclear part is tested
    rows = _rows(tmp_path / "out" / "discs.csv")
    assert (
        len(rows) == 2 and f"RAMP_{mode}_sum" in rows[0] and not any("_ring_" in k for k in rows[0] if mode == "grown")
    )
    for row in rows:
        k = int(row["label"])
        area = int((region == k).sum())
        assert int(row[f"{mode}_area_px"]) == area
        assert float(row[f"RAMP_{mode}_sum"]) == ramp[region == k].sum()  # exact: integers, 6 digits are enough
        assert float(row[f"RAMP_{mode}_mean"]) == pytest.approx(ramp[region == k].sum() / area, rel=1e-5)
    if mode == "grown":  # the disc of radius 6 grown by 3: pixels within 3 of the disc (not the disc of radius 9)
        assert int(rows[0]["grown_area_px"]) == int((grown == 1).sum()) > int((truth == 1).sum())


def test_perinuclear_mode_is_checked():
    from SlicerImgSuite.errors import ImgSuiteError
    from SlicerImgSuite.segmentation.nuclei_job import check_options

    with pytest.raises(ImgSuiteError, match="--perinuclear-mode"):
        check_options(NucleiOptions(perinuclear_mode="dilated"))


def test_threshold_8bit_is_the_pixel_types_range(shared_data, tmp_path):
    import subprocess
    import sys

    from SlicerImgSuite.errors import ImgSuiteError

    src = shared_data / "dsb2018-nuclei-stardist-sample" / "img2d.tif"  # uint16 pixels (largest value 235)
    cli = [sys.executable, "-m", "SlicerImgSuite.cli", "nuclei", "--input", str(src), "--method", "threshold"]
    run = subprocess.run(
        [*cli, "--output", str(tmp_path / "a"), "--threshold-8bit", "0.1"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "--threshold-8bit 0.1 = 25.7 in image units (uint16 pixels: 0-255 = 0 to 65535)" in run.stdout
    run = subprocess.run([*cli, "--output", str(tmp_path / "b"), "--threshold", "25.7"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    a, b = (tifffile.imread(tmp_path / d / "img2d_labels.tif") for d in "ab")
    assert a.max() > 50 and np.array_equal(a, b)
    # uint8 pixels: the same number; too high a level for the data is said
    path = tmp_path / "u8.tif"
    tifffile.imwrite(path, tifffile.imread(src).astype(np.uint8))
    results, _ = analyze_nuclei(path, tmp_path / "c", NucleiOptions(method="threshold", threshold_8bit=25.7))
    assert results[0].threshold_note.startswith("--threshold-8bit 25.7 = 25.7 in image units (uint8")
    assert np.array_equal(results[0].labels[0], a)
    results, _ = analyze_nuclei(src, tmp_path / "d", NucleiOptions(method="threshold", threshold_8bit=200))
    assert "no nucleus can be found" in results[0].threshold_note and results[0].counts == [0]
    for bad, match in (
        (NucleiOptions(method="threshold", threshold_8bit=256), "between 0 and 255"),
        (NucleiOptions(method="threshold", threshold_8bit=9, threshold=3), "not both"),
        (NucleiOptions(threshold_8bit=9), "--method threshold"),
    ):
        with pytest.raises(ImgSuiteError, match=match):
            analyze_nuclei(src, tmp_path / "e", bad)
    assert not (tmp_path / "e").exists()


def test_plots_per_frame_population_of_stills_and_tracks_on_first_and_last_frame(shared_data, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / f"{CZI}.czi").symlink_to(shared_data / "czi" / f"{CZI}.czi")
    dsb = tifffile.imread(shared_data / "dsb2018-nuclei-stardist-sample" / "img2d.tif")
    tifffile.imwrite(src / "a.tif", dsb)
    tifffile.imwrite(src / "b.tif", dsb[:256])  # another still, fewer nuclei
    out = tmp_path / "out"
    results, _ = analyze_nuclei(src, out, NucleiOptions(plots=True, track=True))
    by_stem = {r.stem: r for r in results}
    for name in [f"{CZI}_t{t}_intensity.png" for t in range(3)] + ["a_intensity.png", "b_intensity.png"]:
        assert Image.open(out / name).size[0] >= 400
    population = _rows(out / "population.csv")  # the stills only; the time-lapse has its own plot
    assert [(r["image"], int(r["nuclei"])) for r in population] == [
        ("a", by_stem["a"].counts[0]),
        ("b", by_stem["b"].counts[0]),
    ]
    assert by_stem["a"].counts[0] > by_stem["b"].counts[0] > 10
    assert Image.open(out / "population.png").size[0] > 300
    tracks = Image.open(out / f"{CZI}_tracks.png")
    assert tracks.size[0] == 1000  # two panels: first and last frame
    assert not (out / "population.csv").read_text().count(CZI)


def test_cells_table_in_mrml(mrml, run):
    from SlicerImgSuite.segmentation.nodes import cells_table_to_scene

    _, out, results = run
    node = cells_table_to_scene(mrml, results)
    table = node.GetTable()
    cells = _rows(out / "cells.csv")
    assert table.GetNumberOfRows() == len(cells) and table.GetColumnByName("C0_sum").IsNumeric()
    column = table.GetColumnByName("C0_sum")
    got = [column.GetValue(k) for k in range(len(cells))]
    want = [float(c["C0_sum"]) if c["C0_sum"] else float("nan") for c in cells]
    np.testing.assert_allclose(got, want, rtol=1e-5)  # NaN where the image has no C0 channel


def test_every_image_and_frame_in_mrml(mrml, run):
    from SlicerImgSuite.mrml.volumes import image_from_volume_node
    from SlicerImgSuite.segmentation.nodes import run_to_scene

    _, out, results = run
    added = run_to_scene(mrml, results)
    labelmap = added["img2d"].labels
    assert labelmap.IsA("vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(
        SimpleITK.GetArrayFromImage(image_from_volume_node(labelmap))[0], tifffile.imread(out / "img2d_labels.tif")
    )
    volumes, labelmaps, browser = added[CZI].volume, added[CZI].labels, added[CZI].browser
    labels = tifffile.imread(out / f"{CZI}_labels.tif")
    assert volumes.GetNumberOfDataNodes() == labelmaps.GetNumberOfDataNodes() == labels.shape[0] == 3
    assert browser.GetMasterSequenceNode() is volumes and browser.IsSynchronizedSequenceNode(labelmaps)
    for t in range(3):
        got = SimpleITK.GetArrayFromImage(image_from_volume_node(labelmaps.GetNthDataNode(t)))
        np.testing.assert_array_equal(got, labels[t])


def test_an_input_named_like_a_run_table_is_refused(shared_data, tmp_path):
    from SlicerImgSuite.errors import ImgSuiteError

    src = tmp_path / "in"
    src.mkdir()
    (src / "cells.tif").symlink_to(shared_data / "dsb2018-nuclei-stardist-sample" / "img2d.tif")
    with pytest.raises(ImgSuiteError, match="cells.tif"):
        analyze_nuclei(src, tmp_path / "out", NucleiOptions(method="threshold", threshold=30))
    assert not (tmp_path / "out").exists()
