"""Progress reporting, the report writer and the whole demo (every job's step on the phantom)."""

from __future__ import annotations

import io
import zipfile

import pytest

from SlicerImgSuite.progress import Cancelled, TextProgressBar, sub_progress


def test_text_progress_bar_draws_and_finishes():
    stream = io.StringIO()
    bar = TextProgressBar(stream, width=10, min_interval=0.0)
    bar(0.5, "half")
    bar(1.0, "done")
    out = stream.getvalue()
    assert "[#####-----]  50.0% half" in out
    assert "[##########] 100.0% done" in out and out.endswith("\n")


def test_sub_progress_clamps_and_cancel_propagates():
    seen = []

    def parent(fraction, message=""):
        seen.append(fraction)
        if fraction > 0.9:
            raise Cancelled()

    child = sub_progress(parent, 0.2, 0.6)
    child(-1.0)
    child(2.0)
    assert seen == [0.2, 0.6]
    with pytest.raises(Cancelled):
        sub_progress(parent, 0.5, 1.0)(1.0)


def test_demo_runs_every_job_and_writes_report_and_mrb(tmp_path):
    from SlicerImgSuite.demo import demo_steps, run_demo
    from SlicerImgSuite.mrml.mrb import load_mrb

    fractions = []
    report = run_demo(tmp_path, progress=lambda f, m="": fractions.append(f))
    html = report.read_text()
    jobs = [s.__name__.split(".")[-2] for s in demo_steps()]
    assert "io" in jobs and len(jobs) >= 1
    assert fractions[-1] == 1.0 and all(b >= a - 1e-9 for a, b in zip(fractions, fractions[1:]))
    images = list(tmp_path.rglob("*.png"))
    assert images and html.count("<img") >= len(jobs)
    for img in images:
        assert img.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mrb = tmp_path / "SlicerImgSuite-demo.mrb"
    with zipfile.ZipFile(mrb) as z:
        assert any(n.endswith(".mrml") for n in z.namelist())
    scene = load_mrb(mrb)
    assert scene.scene.GetFirstNodeByName("Phantom CT") is not None
