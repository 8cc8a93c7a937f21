"""Benchmark: ``imgsuite review`` in a browser: time to a usable page and click -> new slice picture.

The case: the demo's phantom patient (96 x 96 x 48 CT, 8 structures, RTDOSE) against the same structures with
the GTV shifted 2 voxels and the heart missing. Timed: from starting ``imgsuite review`` to (a) its "serving"
line and (b) the page showing the first structure's axial picture in Debian chromium (playwright); then the
median over clicks on each structure row in turn of the time from the click to the new axial picture's load
event (measured inside the page), over several server starts. The browser is started once, before the timing:
a reviewer's browser is already open. Goals (issue 14): page <= 10 s, click <= 150 ms median on 2 cores.
No other tool serves this page, so there is no anchor: the figures are absolute; quote the load average.
Run: ``.venv/bin/python bench/review_web.py [--starts 3] [--clicks 20]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def make_case(folder: Path):
    from SlicerImgSuite.demo.phantom import make_phantom
    from SlicerImgSuite.rtstruct.write import write_rtstruct_from_masks

    p = make_phantom(folder / "phantom")
    masks = {n: m for n, m in p.masks.items() if n != "HEART"}
    gtv = sitk.GetImageFromArray(np.roll(sitk.GetArrayFromImage(masks["GTV"]), 2, axis=2))
    gtv.CopyInformation(p.ct)
    masks["GTV"] = gtv
    test = folder / "RS_test.dcm"
    write_rtstruct_from_masks(test, p.ct_dir, masks, colors=p.colors)
    return p.rtstruct, test, p.ct_dir, p.rtdose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3, help="server starts timed (default 3)")
    parser.add_argument("--clicks", type=int, default=20, help="row clicks timed per start (default 20)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    serving, usable, measured, clicks, loads = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-review-web-") as tmp, sync_playwright() as p:
        case = make_case(Path(tmp))
        # the reviewer's browser is already running: its start is not part of the review's time
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for run in range(args.starts):
            ready, page, table, times = _one_start(browser, case, Path(tmp) / f"out{run}", args.clicks)
            serving.append(ready), usable.append(page), measured.append(table), clicks.extend(times)
            loads.append(os.getloadavg()[0])
        browser.close()
    print(f"imgsuite review, {args.starts} starts (medians): serving line {np.median(serving):.2f} s, usable page "
          f"{np.median(usable):.2f} s (goal <= 10 s; max {max(usable):.2f} s), table with metrics "
          f"{np.median(measured):.2f} s")  # fmt: skip
    print(f"click -> new axial picture: median {np.median(clicks):.0f} ms, p90 {np.percentile(clicks, 90):.0f} ms, "
          f"{len(clicks)} clicks over {args.starts} starts (goal <= 150 ms median)")  # fmt: skip
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores "
          f"(1-min load after each start: {', '.join(f'{v:.1f}' for v in loads)})")  # fmt: skip


def _one_start(browser, case, output: Path, clicks: int):
    """(serving line s, usable page s, table with metrics s, [click ms]) of one ``imgsuite review`` start."""
    reference, test, ct, dose = case
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "SlicerImgSuite.cli", "review", "--reference", str(reference), "--test",
               str(test), "--referenced-ct", str(ct), "--dose", str(dose), "--output", str(output),
               "--port", str(port), "--quiet"]  # fmt: skip
    t0 = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in process.stdout:
            if "serving at" in line:
                break
        ready = time.perf_counter() - t0
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe open and drained
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
        page.wait_for_function("document.getElementById('axial').naturalWidth > 100", timeout=60_000)
        usable = time.perf_counter() - t0
        page.wait_for_function("document.body.dataset.measured === '1'", timeout=120_000, polling=50)
        measured = time.perf_counter() - t0
        names = page.evaluate("Array.from(document.querySelectorAll('#rows tr')).map(r => r.dataset.name)")
        # every row in turn (a new structure each click: nothing the server drew before)
        times = [page.evaluate(_CLICK_JS, names[(n + 1) % len(names)]) for n in range(clicks)]
        page.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    return ready, usable, measured, times


# A click on a row, timed inside the page until the axial picture of that structure has loaded.
_CLICK_JS = """async (name) => {
  const img = document.getElementById('axial');
  const row = document.querySelector(`#rows tr[data-name="${name}"]`);
  const start = performance.now();
  const loaded = new Promise(resolve => {
    const check = () => { if (img.src.includes('name=' + encodeURIComponent(name))) resolve(); else img.addEventListener('load', check, {once: true}); };
    img.addEventListener('load', check, {once: true});
  });
  row.click();
  await loaded;
  return performance.now() - start;
}"""


if __name__ == "__main__":
    main()
