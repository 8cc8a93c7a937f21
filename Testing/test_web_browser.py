"""``imgsuite view`` in a real browser: Debian chromium driven by playwright over a loopback port.

The server runs in its own process group and is stopped at the end; every wait is bounded.
"""

from __future__ import annotations

import contextlib
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
import SimpleITK as sitk
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
    # a larger volume that is not the CT, added first (a tomosynthesis reconstruction in the demo): the
    # viewer must still put the CT behind the slices
    recon = sitk.Image([2 * n for n in phantom.ct.GetSize()], sitk.sitkFloat32) + 0.25
    recon.SetSpacing([s / 2 for s in phantom.ct.GetSpacing()])
    recon.SetOrigin(phantom.ct.GetOrigin())
    volume_node_from_image(scene, recon, "Tomo SART")
    volume_node_from_image(scene, phantom.ct, "Phantom CT")
    segmentation_node_from_masks(scene, phantom.masks, phantom.colors, name="Structures")
    # a second copy of the structures: shown only when chosen in the panel
    segmentation_node_from_masks(scene, phantom.masks, phantom.colors, name="Structures copy")
    path = save_mrb(scene, tmp_path_factory.mktemp("view") / "phantom.mrb")
    scene.scene.Clear(1)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_imgsuite(arguments: list[str], marker: str = "serving") -> tuple[subprocess.Popen, str]:
    """``imgsuite ARGUMENTS`` in its own process group (stopped as a whole by :func:`_stop`); returns the process
    and its first output line holding ``marker``, waited for at most START_TIMEOUT_S."""
    process = subprocess.Popen(
        [sys.executable, "-m", "SlicerImgSuite.cli", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen = []
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            assert process.poll() is None, f"imgsuite {arguments[0]} exited early: {''.join(seen)}"
            assert time.monotonic() < deadline, f"imgsuite {arguments[0]} not ready: {''.join(seen)}"
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if marker in line:
                return process, line
    except AssertionError:
        _stop(process)
        raise


@pytest.fixture(scope="module")
def server(scene_mrb):
    """``imgsuite view phantom.mrb`` on a free loopback port; yields (url, port)."""
    port = _free_port()
    process, line = start_imgsuite(["view", str(scene_mrb), "--port", str(port), "--quiet"])
    try:
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


@contextlib.contextmanager
def browser_page(url: str, ready_js: str, size=(1200, 800)):
    """A chromium page (Debian's, driven by playwright) on ``url`` once ``ready_js`` holds; closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": size[0], "height": size[1]})
            page.goto(url, timeout=30_000)
            page.wait_for_function(ready_js, timeout=30_000)
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(server):
    url, _ = server
    # the views are <img> elements fed by the websocket; wait until four hold a decoded picture
    four_views = (
        "Array.from(document.querySelectorAll('img'))"
        ".filter(i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 50).length >= 4"
    )
    with browser_page(url, four_views) as page:
        page.wait_for_timeout(1500)  # let the views settle at their final size
        yield page


def _picture(png_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB")).astype(int)


def test_page_shows_the_scene_not_loading(page, tmp_path_factory):
    # IMGSUITE_SCREENSHOTS=Resources/Screenshots keeps the picture for the docs (web_viewer.png)
    folder = os.environ.get("IMGSUITE_SCREENSHOTS") or tmp_path_factory.mktemp("shot")
    shot = _picture(page.screenshot(path=str(os.path.join(folder, "web_viewer.png"))))
    assert shot.std() > 30
    text = page.inner_text("body")
    assert "Loading" not in text
    assert "phantom.mrb" in text  # the page title names the file


def _axial(page):
    """The Red (axial) slice view's picture: the <img> beside the view's annotation layer."""
    return page.query_selector("[data-testid=view-Red] >> xpath=.. >> img")


LABEL_ROWS = 24  # the view's name bar (Slicer's view colour) over the top of the picture


def _shot(element) -> np.ndarray:
    """A view's picture without its name bar (the red bar of the axial view would count as outline)."""
    picture = _picture(element.screenshot())
    picture[:LABEL_ROWS] = 0
    return picture


def _settled(page, element, before: np.ndarray, changed, timeout_s: float = 15) -> np.ndarray:
    """The element's picture once ``changed(before, now)`` holds or the time is up (the server renders when it can)."""
    deadline = time.monotonic() + timeout_s
    while True:
        page.wait_for_timeout(400)
        now = _shot(element)
        if changed(before, now) or time.monotonic() > deadline:
            return now


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


def _yellow_outline(picture: np.ndarray) -> np.ndarray:
    """The spinal cord's outline (255, 255, 0)."""
    r, g, b = picture[..., 0], picture[..., 1], picture[..., 2]
    return (r > 140) & (g > 140) & (b < 0.5 * np.minimum(r, g))


def test_structure_toggle_removes_its_outline(page):
    axial = _axial(page)
    before = _shot(axial)
    assert _red_outline(before).sum() > 20
    toggle = page.locator("[data-testid=structure-toggle-GTV]")
    toggle.uncheck()
    hidden = _settled(page, axial, before, lambda b, n: _red_outline(n).sum() < _red_outline(b).sum() / 4)
    assert _red_outline(hidden).sum() < _red_outline(before).sum() / 4
    assert _yellow_outline(hidden).sum() > 5  # the other structures stay
    toggle.check()
    shown = _settled(page, axial, hidden, lambda b, n: _red_outline(n).sum() > _red_outline(before).sum() / 2)
    assert _red_outline(shown).sum() > _red_outline(before).sum() / 2


def test_window_preset_changes_the_slice_pixels(page):
    axial = _axial(page)
    before = _shot(axial)
    bright = (before.mean(axis=-1) > 150).mean()
    page.click("[data-testid=window-preset]")
    page.click(".v-overlay-container >> text=Brain")  # W 100 / L 50: soft tissue (0 HU) at the bottom: dark
    after = _settled(page, axial, before, lambda b, n: (n.mean(axis=-1) > 150).mean() < bright / 2)
    assert (after.mean(axis=-1) > 150).mean() < bright / 2, (bright, (after.mean(axis=-1) > 150).mean())
    page.click("[data-testid=window-preset]")
    page.click(".v-overlay-container >> text=Lung")
    lung = _settled(page, axial, after, lambda b, n: (n.mean(axis=-1) > 150).mean() > bright / 2)
    assert (lung.mean(axis=-1) > 150).mean() > bright / 2


def _drag(page, element, button: str, dx: float, dy: float) -> None:
    box = element.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button=button)
    page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up(button=button)


def test_views_carry_names_orientation_letters_and_position(page):
    letters = {edge: page.inner_text(f"[data-testid=letter-{edge}-Red]") for edge in ("left", "right", "top", "bottom")}
    assert letters == {"left": "R", "right": "L", "top": "A", "bottom": "P"}  # patient right on screen left
    assert page.inner_text("[data-testid=letter-top-Green]") == "S"
    label = page.inner_text("[data-testid=view-label-Red]")
    assert label.startswith("Axial") and " mm" in label
    box = _axial(page).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] / 2 + 5, box["y"] + box["height"] / 2 + 5)
    page.wait_for_function(
        "document.querySelector('[data-testid=probe]').innerText.includes('Phantom CT')", timeout=10_000
    )


def test_mouse_wheel_browses_slices_on_the_server(page):
    """The wheel goes through the websocket to Slicer's interactor: 10 slices (30 mm) up, the GTV (r 18 mm) is gone."""
    axial = _axial(page)
    before = _shot(axial)
    label = page.inner_text("[data-testid=view-label-Red]")
    box = axial.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(10):
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(100)
    # the server renders the new slice when it gets to it: poll, bounded
    deadline = time.monotonic() + 15
    while True:
        page.wait_for_timeout(500)
        after = _shot(axial)
        if _red_outline(after).sum() < _red_outline(before).sum() / 4 or time.monotonic() > deadline:
            break
    assert np.abs(after - before).mean() > 1
    assert _red_outline(after).sum() < _red_outline(before).sum() / 4, (
        _red_outline(before).sum(),
        _red_outline(after).sum(),
    )
    assert after.mean(axis=-1).std() > 30  # still the CT, not a blank view
    assert page.inner_text("[data-testid=view-label-Red]") != label  # the slice position follows


def test_left_drag_sets_window_level_and_right_drag_zooms(page):
    axial = _axial(page)
    before = _shot(axial)
    _drag(page, axial, "left", 80, 60)
    levelled = _settled(page, axial, before, lambda b, n: np.abs(n - b).mean() > 5)
    assert np.abs(levelled - before).mean() > 5
    # zoom: the body (anything brighter than air) fills more of the view
    body = (levelled.mean(axis=-1) > 40).mean()
    _drag(page, axial, "right", 0, 120)  # down: zoom in, as in Slicer
    zoomed = _settled(page, axial, levelled, lambda b, n: (n.mean(axis=-1) > 40).mean() > body * 1.1)
    assert (zoomed.mean(axis=-1) > 40).mean() > body * 1.1, (body, (zoomed.mean(axis=-1) > 40).mean())


def test_menu_button_opens_and_closes_the_structure_panel(page):
    """☰ hides the panel and the views take its room; a second click brings it back."""

    def panel_right() -> float:
        box = page.locator("[data-testid=structure-panel]").bounding_box()
        return box["x"] + box["width"]

    assert panel_right() > 100
    page.click("[data-testid=menu-button]")
    page.wait_for_function(
        "document.querySelector('[data-testid=structure-panel]').getBoundingClientRect().right <= 0", timeout=10_000
    )
    page.click("[data-testid=menu-button]")
    page.wait_for_function(
        "document.querySelector('[data-testid=structure-panel]').getBoundingClientRect().right > 100", timeout=10_000
    )
    assert page.locator("[data-testid^=structure-toggle-]").count() == 8  # one segmentation shown, not both


def test_layout_selector_changes_the_views(page):
    page.click("[data-testid=layout-select]")
    page.click(".v-overlay-container >> text=Red slice only")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img')).filter(i => i.src.startsWith('blob:')).length == 1",
        timeout=15_000,
    )
    page.wait_for_timeout(1000)
    assert _picture(page.query_selector_all("img")[0].screenshot()).std() > 30


def test_each_tab_keeps_its_own_layout_and_window(page, server):
    """Per-session state: a second tab gets a viewer of its own; its layout and window do not reach the first."""
    url, _ = server
    first_layout = page.inner_text("[data-testid=layout-select]")
    if "Red slice only" not in first_layout:  # run alone: set the first tab's layout here
        test_layout_selector_changes_the_views(page)
    first = _shot(page.query_selector_all("img")[0])
    four_views = (
        "Array.from(document.querySelectorAll('img'))"
        ".filter(i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 50).length >= 4"
    )
    other = page.context.browser.new_page(viewport={"width": 1200, "height": 800})  # a second tab
    try:
        other.goto(url, timeout=60_000)
        other.wait_for_function(four_views, timeout=60_000)  # Four-Up, as started, not the first tab's layout
        assert "Four-Up" in other.inner_text("[data-testid=layout-select]")
        axial = _axial(other)
        before = _shot(axial)
        bright = (before.mean(axis=-1) > 150).mean()
        other.click("[data-testid=window-preset]")
        other.click(".v-overlay-container >> text=Brain")
        after = _settled(other, axial, before, lambda b, n: (n.mean(axis=-1) > 150).mean() < bright / 2)
        assert (after.mean(axis=-1) > 150).mean() < bright / 2  # the second tab's window changed
        page.wait_for_timeout(1500)
        # the first tab: still one view, its window as it was
        assert "Red slice only" in page.inner_text("[data-testid=layout-select]")
        assert (
            len([i for i in page.query_selector_all("img") if (i.get_attribute("src") or "").startswith("blob:")]) == 1
        )
        again = _shot(page.query_selector_all("img")[0])
        assert np.abs(again - first).mean() < 2, np.abs(again - first).mean()
    finally:
        other.close()


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
