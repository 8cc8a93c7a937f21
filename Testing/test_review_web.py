"""``imgsuite review`` in a real browser (Debian chromium + playwright) on the phantom patient, whose test
structure set is the reference with the GTV shifted 2 voxels (6.4 mm) to the patient's left and the heart
missing. Plus the server's security and state on disk, over plain HTTP."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image
from test_web_browser import _free_port, _stop, browser_page, start_imgsuite

SHIFT_VOXELS = 2


@pytest.fixture(scope="module")
def review_inputs(phantom, tmp_path_factory):
    """(reference RTSTRUCT, test RTSTRUCT, CT folder, RTDOSE)."""
    from SlicerImgSuite.rtstruct.write import write_rtstruct_from_masks

    masks = {name: mask for name, mask in phantom.masks.items() if name != "HEART"}
    shifted = np.roll(sitk.GetArrayFromImage(masks["GTV"]), SHIFT_VOXELS, axis=2)
    masks["GTV"] = sitk.GetImageFromArray(shifted)
    masks["GTV"].CopyInformation(phantom.ct)
    test = tmp_path_factory.mktemp("review-in") / "RS_test.dcm"
    write_rtstruct_from_masks(test, phantom.ct_dir, masks, colors=phantom.colors)
    return phantom.rtstruct, test, phantom.ct_dir, phantom.rtdose


def _start(inputs, output, port):
    reference, test, ct, dose = inputs
    process, line = start_imgsuite(
        ["review", "--reference", str(reference), "--test", str(test), "--referenced-ct", str(ct), "--dose", str(dose),
         "--reviewer", "Dr Test", "--output", str(output), "--port", str(port), "--quiet"],
        marker="serving at",
    )  # fmt: skip
    return process, line.split("serving at ")[1].split()[0]


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    return tmp_path_factory.mktemp("review-out")


@pytest.fixture(scope="module")
def server(review_inputs, output):
    process, url = _start(review_inputs, output, _free_port())
    try:
        yield process, url
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def page(server):
    _, url = server
    axial_shown = "document.getElementById('axial').complete && document.getElementById('axial').naturalWidth > 100"
    # the page comes first; the table is complete (metrics in, worst first) when the page marks it measured
    ready = f"{axial_shown} && document.body.dataset.measured === '1'"
    with browser_page(url, ready, size=(1500, 900)) as page:
        yield page


def _image(page, testid: str) -> np.ndarray:
    data = page.locator(f"[data-testid={testid}]").screenshot()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def _wait_loaded(page, element_id: str, previous_src: str | None = None) -> None:
    page.wait_for_function(
        f"(() => {{ const i = document.getElementById('{element_id}'); return i.complete && i.naturalWidth > 100 "
        f"&& i.src !== {json.dumps(previous_src or '')}; }})()",
        timeout=15_000,
    )


def test_table_is_worst_first_with_metrics(page):
    rows = page.locator("#rows tr")
    # the heart, missing from the test set, first; then the shifted GTV
    assert [rows.nth(i).get_attribute("data-testid") for i in (0, 1)] == ["structure-row-HEART", "structure-row-GTV"]
    assert page.inner_text("[data-testid=status-GTV]") == "unreviewed"
    assert rows.count() == 8
    assert rows.nth(0).inner_text().split("\t")[2] == "–"  # no metric without a partner
    cells = rows.nth(1).inner_text().split("\t")
    assert float(cells[2]) < 0.9  # Dice of a 6.4 mm shift of an 18 mm sphere


def test_click_centres_the_views_on_the_structure_with_both_outlines(page, phantom):
    src = page.get_attribute("#axial", "src")
    page.click("[data-testid=structure-row-SPINAL_CORD]")
    _wait_loaded(page, "axial", src)
    src = page.get_attribute("#axial", "src")
    page.click("[data-testid=structure-row-GTV]")
    _wait_loaded(page, "axial", src)
    centre = phantom.ct.TransformPhysicalPointToIndex((-60.0, -10.0, 0.0))  # the GTV centre (LPS)
    page.wait_for_function(f"document.getElementById('pos-coronal').innerText === 'slice {centre[1]}'", timeout=10_000)
    assert page.inner_text("#pos-axial") == f"slice {centre[2]}"
    _wait_loaded(page, "axial")

    def outlines(picture):
        r, g, b = picture[..., 0], picture[..., 1], picture[..., 2]
        return (r > 180) & (g < 80) & (b < 80), (r > 230) & (g > 230) & (b > 230)

    deadline = time.monotonic() + 10  # the browser paints the decoded picture when it can
    while True:
        picture = _image(page, "view-axial")
        red, white = outlines(picture)
        if (red.sum() > 100 and white.sum() > 50) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
    assert red.sum() > 100 and white.sum() > 50
    if os.environ.get("IMGSUITE_SCREENSHOTS"):  # the docs' picture of the review page, with the GTV's DVH
        page.wait_for_function(
            "(() => { const d = document.getElementById('dvh'); return d.src.includes('name=GTV') && d.complete "
            "&& d.style.opacity === '1'; })()",
            timeout=30_000,
        )
        page.screenshot(path=os.path.join(os.environ["IMGSUITE_SCREENSHOTS"], "review_page.png"))
    # both outlines around the middle (the view is centred on the structure); the test one further right
    columns = np.arange(picture.shape[1])
    red_x, white_x = (float(np.average(columns, weights=m.sum(axis=0))) for m in (red, white))
    assert abs(red_x - picture.shape[1] / 2) < picture.shape[1] * 0.1
    assert white_x > red_x + 5  # shifted to the patient's left: screen right


def test_window_preset_changes_the_slice_pixels(page):
    before = _image(page, "view-axial")
    src = page.get_attribute("#axial", "src")
    page.select_option("[data-testid=window-preset]", "Brain")
    _wait_loaded(page, "axial", src)
    page.wait_for_timeout(200)
    after = _image(page, "view-axial")
    assert np.abs(after - before).mean() > 10
    page.select_option("[data-testid=window-preset]", "")


def test_next_key_and_button_move_through_the_table(page):
    names = [row.get_attribute("data-name") for row in page.locator("#rows tr").all()]
    page.click(f"[data-testid=structure-row-{names[0]}]")
    page.keyboard.press("n")
    page.wait_for_function(f"document.querySelector('[data-testid=selected-structure]').innerText === '{names[1]}'")
    page.click("[data-testid=next-button]")
    page.wait_for_function(f"document.querySelector('[data-testid=selected-structure]').innerText === '{names[2]}'")
    page.keyboard.press("p")
    page.wait_for_function(f"document.querySelector('[data-testid=selected-structure]').innerText === '{names[1]}'")


def test_dvh_of_the_selected_structure_is_shown(page):
    page.click("[data-testid=structure-row-GTV]")
    page.wait_for_function(
        "document.getElementById('dvh').complete && document.getElementById('dvh').naturalWidth > 100"
    )


def test_approve_all_and_export_writes_an_approved_rtstruct(page, output):
    names = [row.get_attribute("data-name") for row in page.locator("#rows tr").all()]
    page.click("[data-testid=structure-row-GTV]")
    page.fill("[data-testid=comment-box]", "shift accepted")
    page.click("[data-testid=needs-edit-button]")
    page.wait_for_function("document.querySelector('[data-testid=status-GTV]').innerText === 'needs-edit'")
    for name in names:
        page.click(f"[data-testid=structure-row-{name}]")
        page.click("[data-testid=approve-button]")
        page.wait_for_function(f"document.querySelector('[data-testid=status-{name}]').innerText === 'approved'")
    page.click("[data-testid=export-button]")
    page.wait_for_function("document.querySelectorAll('[data-testid=exports] a').length === 4", timeout=60_000)
    rs = pydicom.dcmread(output / "RS_reviewed.dcm")
    assert rs.ApprovalStatus == "APPROVED"
    assert rs.ReviewerName
    assert {"RS_reviewed.dcm", "SEG_reviewed.dcm", "review.json", "review_report.html"} <= set(os.listdir(output))
    state = json.loads((output / "review_state.json").read_text())
    text = json.dumps(state)
    assert "needs-edit" in text and "shift accepted" in text  # the history of GTV is kept


def test_killed_server_restarts_with_the_decisions(server, review_inputs, output):
    process, _ = server
    os.killpg(process.pid, signal.SIGKILL)  # no clean shutdown
    process.wait(timeout=10)
    again, url = _start(review_inputs, output, _free_port())
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/table", timeout=10) as response:
            rows = json.loads(response.read())["rows"]
        assert rows and all(r["status"] == "approved" for r in rows)
        assert next(r for r in rows if r["name"] == "GTV")["reviewer"] == "Dr Test"
    finally:
        _stop(again)


@pytest.fixture(scope="module")
def session(review_inputs, tmp_path_factory):
    from SlicerImgSuite.web.review_session import open_review

    reference, test, ct, dose = review_inputs
    return open_review(reference, ct, tmp_path_factory.mktemp("review-session"), test=test)


def test_without_token_a_non_loopback_server_refuses(session):
    from SlicerImgSuite.web.review_server import make_review_server

    server = make_review_server(session, host="0.0.0.0", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert server.token and len(server.token) >= 24
        base = f"http://127.0.0.1:{port}"
        wrong = server.token[:-1] + ("y" if server.token.endswith("x") else "x")  # (one token in 64 ends with x)
        for path in ("/", "/api/table", "/exports/review.json", f"/api/table?token={wrong}"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path, timeout=10)
            assert refused.value.code == 403
        with urllib.request.urlopen(f"{base}/api/table?token={server.token}", timeout=10) as response:
            assert response.status == 200
        # no path from the client reaches the file system, token or not
        for path in ("/exports/../review_state.json", "/exports/%2e%2e%2fetc%2fpasswd", "/etc/passwd"):
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(f"{base}{path}?token={server.token}", timeout=10)
            assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_concurrent_reviewers_last_write_per_structure_wins_history_kept(session):
    names = session.names()
    barrier = threading.Barrier(2)

    def reviewer(who, status):
        barrier.wait()
        for name in names:
            session.set_status(name, status, reviewer=who)

    threads = [threading.Thread(target=reviewer, args=a) for a in (("A", "approved"), ("B", "rejected"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    from SlicerImgSuite.review.state import ReviewState

    saved = ReviewState.load(session.state_path)
    for name in names:
        review = saved[name]
        assert review.status in ("approved", "rejected")
        assert {c.reviewer for c in review.history} == {"A", "B"}  # neither change is lost
        assert review.history[-1].to_status == review.status  # the last write is the state


def test_review_of_a_slicer_scene_takes_its_two_segmentations_and_tags(phantom, tmp_path):
    from SlicerImgSuite.mrml.mrb import save_mrb
    from SlicerImgSuite.mrml.scene import new_scene
    from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
    from SlicerImgSuite.mrml.volumes import volume_node_from_image
    from SlicerImgSuite.review.state import ReviewState, to_segment_tags
    from SlicerImgSuite.web.review_session import open_review

    scene = new_scene(set_global=False)
    volume_node_from_image(scene, phantom.ct, "Phantom CT").SetAttribute("DICOM.Modality", "CT")
    reference = segmentation_node_from_masks(scene, phantom.masks, phantom.colors, name="Physician")
    shifted = dict(phantom.masks)
    shifted["GTV"] = sitk.GetImageFromArray(np.roll(sitk.GetArrayFromImage(phantom.masks["GTV"]), SHIFT_VOXELS, axis=2))
    shifted["GTV"].CopyInformation(phantom.ct)
    segmentation_node_from_masks(scene, shifted, phantom.colors, name="Auto")
    tags = ReviewState(list(phantom.masks))
    tags.set_status("HEART", "approved", reviewer="Dr Slicer", comment="as drawn")
    to_segment_tags(tags, reference)
    mrb = save_mrb(scene, tmp_path / "scene.mrb")
    scene.scene.Clear(1)

    session = open_review(mrb, phantom.ct_dir, tmp_path / "out")
    rows = session.table()
    assert len(rows) == len(phantom.masks)
    assert rows[0]["name"] == "GTV" and float(rows[0]["dice"]) < 0.9  # the only structure that moved
    assert all(float(r["dice"]) > 0.99 for r in rows[1:])
    heart = next(r for r in rows if r["name"] == "HEART")
    assert (heart["status"], heart["reviewer"], heart["comment"]) == ("approved", "Dr Slicer", "as drawn")

