"""Demo step: the phantom CT -> a linear tomosynthesis sweep (DRRs) -> SAA, FBP and SART side by side."""

from __future__ import annotations

import time

import numpy as np

ORDER = 50
JOB = "tomo"


def run(ctx) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..mrml.volumes import volume_node_from_image
    from ..progress import sub_progress
    from .nodes import projection_sequence_node, simulate_sweep, sweep_geometry
    from .projset import write_projections
    from .recon import reconstruct, tomo_grid

    progress = ctx.progress or (lambda f, m="": None)
    folder = ctx.outdir / JOB
    ct = ctx.phantom.ct
    geometry = sweep_geometry(ct, "linear", views=25, sweep_angle=40.0, sid=1800.0, pixel_size=2.0)
    projections = simulate_sweep(ct, geometry, sub_progress(progress, 0.0, 0.2))
    write_projections(projections, folder / "sweep")  # a plastimatch projection folder
    projection_sequence_node(ctx.scene, projections, "Tomo sweep (DRR)")

    # coronal planes through the whole CT, 5 mm apart, depths measured from the panel
    panel_y = geometry.centers[0][1]
    lo = ct.TransformContinuousIndexToPhysicalPoint([-0.5] * 3)[1]
    grid = tomo_grid(geometry, (0.0, panel_y - lo), 5.0, pixel_size=2.0)
    volumes, seconds = {}, {}
    for n, (name, options) in enumerate([("saa", {}), ("fbp", {}), ("sart", {"iterations": 2})]):
        t0 = time.perf_counter()
        volumes[name] = reconstruct(
            projections, grid, name, sub_progress(progress, 0.2 + 0.25 * n, 0.45 + 0.25 * n), **options
        )
        seconds[name] = time.perf_counter() - t0
        volume_node_from_image(ctx.scene, volumes[name], f"Tomo {name.upper()}")

    # the plane through the GTV centre (from the analytic mask)
    import SimpleITK as sitk

    gtv = sitk.GetArrayFromImage(ctx.phantom.masks["GTV"])
    k, j, i = (np.mean(np.nonzero(gtv), axis=1)).round().astype(int)
    y = ct.TransformIndexToPhysicalPoint([int(i), int(j), int(k)])[1]
    plane = int(round((y - grid.GetOrigin()[1]) / grid.GetSpacing()[1]))
    ct_plane = sitk.Resample(ct, grid, sitk.Transform(), sitk.sitkLinear, -1000.0)
    fig, axes = plt.subplots(1, 5, figsize=(17, 4))
    show = [
        ("CT (resampled)", sitk.GetArrayFromImage(ct_plane)[:, plane, :]),
        ("DRR, central view", projections.images[12][::-1]),  # row 0 is the head end
    ]
    show += [(f"{n.upper()} ({seconds[n]:.1f} s)", sitk.GetArrayFromImage(v)[:, plane, :]) for n, v in volumes.items()]
    for ax, (title, image) in zip(axes, show):
        lo_, hi_ = np.percentile(image, [1, 99.5])
        ax.imshow(image, cmap="gray", vmin=lo_, vmax=hi_, origin="lower")  # head up
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    png = ctx.report.figure_path(JOB, "tomo_planes.png")
    fig.savefig(png, dpi=80)
    plt.close(fig)
    ctx.report.section(
        "Tomosynthesis",
        f"A linear sweep of {len(geometry)} views over 40 degrees (SID 1800 mm, panel {geometry.dims[0]}x"
        f"{geometry.dims[1]} at 2 mm) simulated from the phantom CT with imgsuite's DRR projector, then "
        f"reconstructed into coronal planes 5 mm apart: shift-and-add, filtered back-projection (ramp x Hann x "
        f"slice-thickness filter) and OS-SART (2 iterations). Shown: the plane through the GTV, depth "
        f"{panel_y - y:.0f} mm above the panel. The projection folder (plastimatch format) is in {JOB}/sweep.",
        images=[(png, "CT plane, one projection, SAA, FBP, SART")],
        table=(["algorithm", "seconds"], [[n.upper(), round(s, 2)] for n, s in seconds.items()]),
    )
