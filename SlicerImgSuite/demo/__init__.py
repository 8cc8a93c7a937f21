"""``make demo``: a generated phantom patient pushed through every job, a report and a Slicer scene.

Each job package contributes ``<job>/demo.py`` with ``ORDER`` (an int) and ``run(ctx)``; steps run in
``ORDER``, all on the same phantom and the same MRML scene, which is saved as a ``.mrb`` at the end.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..progress import ProgressCallback, no_progress, sub_progress


@dataclass
class DemoContext:
    outdir: Path
    phantom: object  # PhantomPatient
    scene: object  # SlicerScene
    report: object  # Report
    progress: ProgressCallback


def demo_steps() -> list:
    """The ``demo`` module of every job subpackage, sorted by ``ORDER``."""
    package = importlib.import_module(__package__.rsplit(".", 1)[0])
    steps = []
    for info in pkgutil.iter_modules(package.__path__):
        name = f"{package.__name__}.{info.name}.demo"
        if info.ispkg and info.name != "demo" and importlib.util.find_spec(name) is not None:
            steps.append(importlib.import_module(name))
    return sorted(steps, key=lambda m: (m.ORDER, m.__name__))


def run_demo(outdir: str | Path, *, progress: ProgressCallback | None = None, only: list[str] | None = None) -> Path:
    """Run every job's demo step on a new phantom patient; returns the report's path.

    Parameters
    ----------
    outdir : path
        Receives ``phantom/`` (DICOM), one folder per job, ``report.html`` and ``SlicerImgSuite-demo.mrb``.
    only : list of str, optional
        Job package names to run (all by default).
    progress : callable, optional
        ``(fraction, message)`` per job.

    Returns
    -------
    Path
        The report, ``outdir/report.html``.
    """
    from ..mrml.mrb import save_mrb
    from ..mrml.scene import new_scene
    from .phantom import make_phantom
    from .report import Report

    progress = progress or no_progress
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    progress(0.0, "generating the phantom patient")
    phantom = make_phantom(outdir / "phantom")
    report = Report(outdir, "SlicerImgSuite demo: a phantom patient through every job")
    ctx = DemoContext(outdir, phantom, new_scene(), report, progress)
    steps = [s for s in demo_steps() if only is None or s.__name__.split(".")[-2] in only]
    timings = []
    for n, step in enumerate(steps):
        job = step.__name__.split(".")[-2]
        ctx.progress = sub_progress(progress, 0.05 + 0.9 * n / len(steps), 0.05 + 0.9 * (n + 1) / len(steps))
        ctx.progress(0.0, f"demo: {job}")
        t0 = time.perf_counter()
        step.run(ctx)
        timings.append([job, round(time.perf_counter() - t0, 2)])
    mrb = save_mrb(ctx.scene, outdir / "SlicerImgSuite-demo.mrb")
    report.section(
        "Run",
        f"Scene for Slicer: {mrb.name} (drag it onto the Slicer window). Seconds per job on this machine:",
        table=(["job", "seconds"], timings),
    )
    path = report.write()
    progress(1.0, "demo finished")
    return path
