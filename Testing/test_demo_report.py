"""The demo report as a reader sees it: rendered by Debian chromium (playwright), its sections and pictures there,
pictures at natural size behind a link, dose statistics in Gy, and the demo scene holding the dose."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
from PIL import Image
from test_web_browser import browser_page

SECTIONS = (
    "Phantom patient (DICOM CT series)",
    "RT structure sets",
    "Dose on the CT and dose-volume histograms",
    "Gamma analysis (imgsuite gamma)",
    "Cone-beam CT (imgsuite fdk)",
    "Atlas-based segmentation (imgsuite mabs)",
    "Landmark warping (imgsuite landmark-warp)",
    "Fluorescence nuclei (imgsuite nuclei)",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from SlicerImgSuite.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, only=["io", "rtstruct", "web", "tomo", "segmentation", "registration"])


@pytest.fixture(scope="module")
def rendered(demo, tmp_path_factory):
    """(page text, image facts, full-page PNG) of report.html in chromium."""
    folder = os.environ.get("IMGSUITE_SCREENSHOTS") or tmp_path_factory.mktemp("report-shot")
    all_loaded = "Array.from(document.images).every(i => i.complete)"
    with browser_page(demo.as_uri(), all_loaded, size=(1400, 900)) as page:
        images = page.evaluate(
            "Array.from(document.images).map(i => ({src: i.getAttribute('src'), natural: i.naturalWidth, "
            "shown: i.getBoundingClientRect().width, link: i.closest('a') && i.closest('a').getAttribute('href')}))"
        )
        text = page.inner_text("body")
        png = page.screenshot(path=str(os.path.join(folder, "report.png")), full_page=True)
    return text, images, png


def test_report_sections_and_pictures_are_there(rendered):
    text, images, png = rendered
    for title in SECTIONS:
        assert title in text
    sources = [i["src"] for i in images]
    for name in (
        "structures.png",
        "dose_wash.png",
        "dvh.png",
        "gamma.png",
        "scene_views.png",
        "fdk.png",
        "atlas_fusion.png",
        "landmark_warp.png",
        "nuclei_numbered.png",
    ):
        assert any(s.endswith(name) for s in sources), (name, sources)
    for image in images:
        assert image["natural"] > 100, image  # decoded, not a broken picture
        assert image["link"] == image["src"]  # a click opens it alone
        # natural size unless wider than the page's column (1400 px less the margins)
        assert image["shown"] <= image["natural"] + 2  # + the 1 px border; never blown up
        assert image["shown"] >= min(image["natural"], 1300) - 2, image
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert picture.shape[0] > 2000 and picture.std() > 30


def test_dose_statistics_are_in_gy_with_two_decimals(rendered):
    text, _, _ = rendered
    header = re.search(r"structure\s+volume \(cc\)\s+D98 Gy\s+D95 Gy\s+D50 Gy\s+D2 Gy\s+Dmean Gy\s+V20 %", text)
    assert header
    gtv = re.search(
        r"\nGTV\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text[header.end() :]
    )
    assert gtv, text[header.end() : header.end() + 400]
    volume, d98, d95, d50, d2, mean, v20 = gtv.groups()
    # the phantom's GTV (r 18 mm) sits inside the 60 Gy plateau (r 25 mm)
    assert [d98, d95, d50, d2, mean] == ["60.00"] * 5 and v20 == "100.0"
    assert float(volume) == pytest.approx(4 / 3 * np.pi * 1.8**3, rel=0.1)
    assert "e-0" not in text  # no 1.846e-08 Gy
    # gamma of a 3 mm shift: a tighter distance criterion passes fewer points, and not all of them
    rates = {dta: float(rate) for dta, rate in re.findall(r"3 %/([23]) mm\s+([\d.]+)", text)}
    assert 0.0 < rates["2"] < rates["3"] <= 100.0 and rates["2"] < 100.0, rates


def test_demo_scene_holds_the_dose(demo):
    from SlicerImgSuite.mrml.mrb import load_mrb
    from SlicerImgSuite.web.display import dose_volume, main_volume

    scene = load_mrb(demo.parent / "SlicerImgSuite-demo.mrb")
    try:
        dose = dose_volume(scene.scene)
        assert dose is not None
        assert dose.GetImageData().GetScalarRange()[1] == pytest.approx(60.0, abs=0.01)
        assert main_volume(scene.scene).GetName() == "Phantom CT"
    finally:
        scene.scene.Clear(1)


def test_fdk_atlas_and_landmark_sections_report_sane_numbers(rendered):
    text, _, _ = rendered
    fdk = re.search(r"mean \|FDK − CT\| in the body \(HU\)\s+([\d.]+)", text)
    assert fdk and 0 < float(fdk.group(1)) < 200, fdk  # a reconstruction of the CT, streaks and all
    after = text[text.index("fused after registration") :]
    atlas = re.search(r"\nHEART\s+([\d.]+)\s+([\d.]+)", after)
    assert atlas and float(atlas.group(2)) > float(atlas.group(1)), atlas  # the fusion beats the raw atlas
    landmarks = re.search(r"landmarks\s+algorithm\s+mean error mm\s+max error mm\s+s\s+(\d+)\s+tps\s+([\d.]+)", text)
    assert landmarks and int(landmarks.group(1)) >= 8 and float(landmarks.group(2)) < 3.0, landmarks


def test_nuclei_numbers_sit_on_their_own_nuclei_and_match_the_table(demo):
    """Each number on the nuclei picture is a label of the per-nucleus table, drawn on that label's pixels."""
    import csv
    import json

    import tifffile

    out = demo.parent / "segmentation"
    positions = {int(k): v for k, v in json.loads((out / "nuclei_numbers.json").read_text()).items()}
    with open(out / "nuclei" / "culture.csv", newline="") as f:
        table_ids = {int(float(row["label"])) for row in csv.DictReader(f)}
    labels = tifffile.imread(out / "nuclei" / "culture_labels.tif")
    labels = labels.reshape(labels.shape[-2:])
    assert set(positions) == table_ids and len(table_ids) > 30
    for label, (x, y) in positions.items():
        assert labels[y, x] == label
