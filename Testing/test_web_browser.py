"""``imgsuite view`` in a real browser: Debian chromium driven by playwright over a loopback port.

The server runs in its own process group and is stopped at the end; every wait is bounded.
"""

from __future__ import annotations

import io
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
START_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def scene_mrb(phantom, tmp_path_factory):
    from SlicerImgSuite.mrml.mrb import save_mrb
    from SlicerImgSuite.mrml.scene import new_scene
    from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
    from SlicerImgSuite.mrml.volumes import volume_node_from_image

    scene = new_scene(set_global=False)
    volume_node_from_image(scene, phantom.ct, "Phantom CT")
    segmentation_node_from_masks(scene, phantom.masks, phantom.colors, name="Structures")
    path = save_mrb(scene, tmp_path_factory.mktemp("view") / "phantom.mrb")
    scene.scene.Clear(1)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(scene_mrb):
    """``imgsuite view phantom.mrb`` on a free loopback port; yields (url, port)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "SlicerImgSuite.cli", "view", str(scene_mrb), "--port", str(port), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stopped as a whole below
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"imgsuite view exited early: {''.join(seen)}"
            assert time.monotonic() < deadline, f"imgsuite view not ready in {START_TIMEOUT_S} s: {''.join(seen)}"
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if "serving" in line:
                break
        assert f"http://127.0.0.1:{port}/" in line
        yield f"http://127.0.0.1:{port}/", port
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode is not None


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(url, timeout=30_000)
            # the views are <img> elements fed by the websocket; wait until four hold a decoded picture
            page.wait_for_function(
                "Array.from(document.querySelectorAll('img'))"
                ".filter(i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 50).length >= 4",
                timeout=30_000,
            )
            page.wait_for_timeout(1500)  # let the views settle at their final size
            yield page
        finally:
            browser.close()


def _picture(png_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB")).astype(int)


def test_page_shows_the_scene_not_loading(page, tmp_path_factory):
    shot = _picture(page.screenshot(path=str(tmp_path_factory.mktemp("shot") / "page.png")))
    assert shot.std() > 30
    text = page.inner_text("body")
    assert "Loading" not in text
    assert "phantom.mrb" in text  # the page title names the file


def _axial(page):
    images = page.query_selector_all("img")
    boxes = [image.bounding_box() for image in images]
    return images[int(np.argmax([b["width"] * b["height"] for b in boxes]))]  # the primary view


def _red_outline(picture: np.ndarray) -> np.ndarray:
    """The GTV outline (255, 0, 0): a 1-pixel line that the stream's JPEG coding blurs, so test its hue
    (the orange PTV (255, 128, 0) and the other outlines do not pass)."""
    r, g, b = picture[..., 0], picture[..., 1], picture[..., 2]
    return (r > 120) & (r > 2.5 * g) & (r > 2.5 * b)


def test_axial_view_streams_the_ct_and_outlines(page):
    picture = _picture(_axial(page).screenshot())
    assert picture.std() > 30  # not blank
    grey = picture.mean(axis=-1)
    assert (grey > 150).mean() > 0.15  # soft tissue at the CT window's bright grey
    assert (grey < 30).mean() > 0.1  # air
    red = _red_outline(picture)
    assert red.sum() > 20
    # patient right on screen left: the GTV outline lies in the left half
    assert np.nonzero(red)[1].mean() < picture.shape[1] / 2


def test_other_views_are_drawn(page):
    images = page.query_selector_all("img")
    assert len(images) >= 4
    for image in images:
        assert _picture(image.screenshot()).std() > 10


def test_mouse_wheel_browses_slices_on_the_server(page):
    """The wheel goes through the websocket to Slicer's interactor: 10 slices (30 mm) up, the GTV (r 18 mm) is gone."""
    axial = _axial(page)
    before = _picture(axial.screenshot())
    box = axial.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(10):
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(100)
    # the server renders the new slice when it gets to it: poll, bounded
    deadline = time.monotonic() + 15
    while True:
        page.wait_for_timeout(500)
        after = _picture(axial.screenshot())
        if _red_outline(after).sum() < _red_outline(before).sum() / 4 or time.monotonic() > deadline:
            break
    assert np.abs(after - before).mean() > 1
    assert _red_outline(after).sum() < _red_outline(before).sum() / 4, (
        _red_outline(before).sum(),
        _red_outline(after).sum(),
    )
    assert after.mean(axis=-1).std() > 30  # still the CT, not a blank view


def test_layout_selector_changes_the_views(page):
    page.click(".v-select")
    page.click("text=Axial Only")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img')).filter(i => i.src.startsWith('blob:')).length == 1",
        timeout=15_000,
    )
    page.wait_for_timeout(1000)
    assert _picture(page.query_selector_all("img")[0].screenshot()).std() > 30


def test_server_listens_on_loopback_only(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    # another loopback address reaches the same machine but not a socket bound to 127.0.0.1 alone
    with pytest.raises(OSError), socket.create_connection(("127.0.1.1", port), timeout=5):
        pass


def test_view_rejects_a_missing_scene(tmp_path, capsys):
    from SlicerImgSuite.cli import main

    assert main(["view", str(tmp_path / "nothing.mrb"), "--port", "0"]) == 2
    assert "nothing.mrb" in capsys.readouterr().err
