"""Demo step: the image tools on the phantom patient (mask, threshold, dice, dmap, resample, stats)."""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from . import dice_stats, distance_map, image_stats, mask_image, resample, threshold, union  # noqa: E402

ORDER = 40


def run(ctx) -> None:
    from ..mrml.volumes import volume_node_from_image

    p = ctx.phantom
    progress = ctx.progress or (lambda f, m="": None)
    t0 = time.perf_counter()
    progress(0.0, "image tools: mask and threshold")
    body_ct = mask_image(p.ct, p.masks["BODY"], -1000)  # the couch goes
    lungs = sitk.And(threshold(body_ct, below=-400), sitk.Cast(p.masks["BODY"] > 0, sitk.sitkUInt8))
    truth = union([p.masks["LUNG_L"], p.masks["LUNG_R"]])
    lung_scores = dice_stats(truth, lungs)
    margin = dice_stats(p.masks["GTV"], p.masks["PTV"])
    progress(0.4, "image tools: distance map")
    dmap = distance_map(p.masks["PTV"], inside_positive=False)
    progress(0.6, "image tools: dose statistics")
    dose = resample(p.dose, p.ct, interpolation="linear")  # dose onto the CT grid
    rows = []
    for name in ("PTV", "GTV", "SPINAL_CORD", "HEART"):
        if name in p.masks:
            s = image_stats(dose, p.masks[name])
            rows.append([name, s["numvox"]] + [f"{s[k]:.2f}" for k in ("min", "mean", "max")])  # Gy, 0.01 Gy
    ct2 = resample(p.ct, spacing=[2.0 * s for s in p.ct.GetSpacing()[:2]] + [p.ct.GetSpacing()[2]])
    seconds = time.perf_counter() - t0
    volume_node_from_image(ctx.scene, body_ct, "CT body only (imgsuite mask)")
    volume_node_from_image(ctx.scene, lungs, "Lungs (imgsuite threshold)", labelmap=True)
    volume_node_from_image(ctx.scene, dmap, "PTV distance map mm (imgsuite dmap)")
    progress(0.8, "image tools: figure")

    k = int(np.argmax(sitk.GetArrayViewFromImage(p.masks["PTV"]).sum(axis=(1, 2))))
    ct_a = sitk.GetArrayViewFromImage(body_ct)[k]
    sx, sy = p.ct.GetSpacing()[:2]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    axes[0].imshow(ct_a, cmap="gray", vmin=-1000, vmax=500, aspect=sy / sx)
    axes[0].set_title("mask: BODY only (couch removed)")
    axes[1].imshow(ct_a, cmap="gray", vmin=-1000, vmax=500, aspect=sy / sx)
    axes[1].contour(sitk.GetArrayViewFromImage(lungs)[k], [0.5], colors="c", linewidths=1)
    axes[1].contour(sitk.GetArrayViewFromImage(truth)[k], [0.5], colors="m", linewidths=1, linestyles="dashed")
    axes[1].set_title(f"threshold < -400 HU vs true lungs: Dice {lung_scores['dice']:.3f}")
    im = axes[2].imshow(sitk.GetArrayViewFromImage(dmap)[k], cmap="RdBu_r", vmin=-40, vmax=40, aspect=sy / sx)
    axes[2].contour(sitk.GetArrayViewFromImage(p.masks["PTV"])[k], [0.5], colors="k", linewidths=1)
    axes[2].set_title("dmap of PTV (mm, negative inside)")
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    path = ctx.report.figure_path("imageops", "image_tools.png")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    ctx.report.section(
        "Image tools (plastimatch's utilities)",
        f"mask, threshold, union, dice, dmap, resample and stats on the phantom, {seconds:.1f} s in all. Lungs by "
        f"thresholding the body-masked CT at -400 HU: Dice {lung_scores['dice']:.3f}, Hausdorff "
        f"{lung_scores['hausdorff']:.1f} mm, HD95 between surfaces {lung_scores['percent_boundary_hausdorff']:.1f} mm. "
        f"GTV to PTV: mean surface distance {margin['avg_boundary_hausdorff']:.1f} mm, Hausdorff "
        f"{margin['boundary_hausdorff']:.1f} mm (the planning margin). CT resampled to "
        f"{' x '.join(f'{s:g}' for s in ct2.GetSpacing())} mm: size {ct2.GetSize()}. Each step is also an imgsuite "
        "command with plastimatch's options; the tests compare them with plastimatch 1.9.4 voxel by voxel.",
        images=[
            (
                path,
                "left: CT masked to BODY; middle: threshold lungs (cyan) vs the analytic lung masks (magenta, they overlap the heart); right: PTV dmap",
            )
        ],
        table=(["structure", "voxels", "min dose Gy", "mean dose Gy", "max dose Gy"], rows),
    )
    progress(1.0, "image tools: done")
