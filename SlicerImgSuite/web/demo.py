"""Demo step: the whole demo scene, saved as a Slicer bundle, reopened and rendered offscreen as Slicer shows it."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

ORDER = 90  # after every job has added its nodes

CT_NAME = "Phantom CT"  # the io demo step's volume


def run(ctx) -> None:
    from ..mrml.mrb import save_mrb
    from ..progress import sub_progress
    from .display import nodes
    from .render import render_views

    scene = getattr(ctx.scene, "scene", ctx.scene)
    volume = CT_NAME if any(v.GetName() == CT_NAME for v in nodes(scene, "vtkMRMLScalarVolumeNode")) else None
    png = ctx.report.figure_path("web", "scene_views.png")
    with tempfile.TemporaryDirectory(prefix="imgsuite-demo-web-") as tmp:
        ctx.progress(0.0, "saving the scene bundle")
        t0 = time.perf_counter()
        mrb = save_mrb(ctx.scene, Path(tmp) / "demo-scene.mrb")
        size_mb = mrb.stat().st_size / 1e6
        seconds_save = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = render_views(
            mrb, png, layout=("axial", "coronal", "3d"), volume=volume, progress=sub_progress(ctx.progress, 0.2, 1.0)
        )
        seconds_render = time.perf_counter() - t0
    counts = {}
    for class_name, label in (
        ("vtkMRMLVolumeNode", "volumes"),
        ("vtkMRMLSegmentationNode", "segmentations"),
        ("vtkMRMLMarkupsNode", "markups"),
        ("vtkMRMLTransformNode", "transforms"),
        ("vtkMRMLTableNode", "tables"),
    ):
        counts[label] = len(nodes(scene, class_name))
    ctx.report.section(
        "The scene as Slicer shows it (offscreen, trame-slicer)",
        f"Every node the demo added was saved into a {size_mb:.1f} MB .mrb ({seconds_save:.1f} s), read back into a "
        f"fresh trame-slicer application and drawn by Slicer's own displayable managers with Mesa's software "
        f"OpenGL ({seconds_render:.1f} s): {volume or 'the largest volume'} behind the slices (thorax window "
        f"for HU data), the dose as a colour wash, the anatomy's structure outlines in the slice views, closed "
        "surfaces in 3D with the body see-through.\n\n"
        "To browse the same scene interactively: imgsuite view SlicerImgSuite-demo.mrb (then open the printed "
        "address; it listens on this machine only).",
        images=[(result.path, "Axial, coronal and 3D views of the demo scene, rendered offscreen")],
        table=(["node kind", "count"], [[k, v] for k, v in counts.items()]),
    )
