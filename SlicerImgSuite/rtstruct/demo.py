"""Demo step: rasterize the phantom's RTSTRUCT, write labelmap / ss-img / RTSTRUCT round trip, DVH plot."""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from ..demo.figures import save_figure  # noqa: E402
from ..io import write_image  # noqa: E402
from ..web.display import DOSE_WASH_THRESHOLD  # noqa: E402
from .dose import read_rtdose  # noqa: E402
from .dvh import dose_samples, dose_statistics, dvh  # noqa: E402
from .outputs import labelmap, ss_image, ss_list_text  # noqa: E402
from .rasterize import Grid, rasterize  # noqa: E402
from .structure_set import read_rtstruct  # noqa: E402
from .write import write_rtstruct_from_masks  # noqa: E402

ORDER = 20
PRESCRIPTION_GY = 60.0  # the phantom's plan: 60 Gy to the PTV


def run(ctx) -> None:
    from ..mrml.segmentations import segmentation_node_from_masks
    from ..mrml.tables import plot_from_table, table_node_from_rows
    from ..mrml.volumes import volume_node_from_image

    p = ctx.phantom
    out = ctx.outdir / "rtstruct"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ss = read_rtstruct(p.rtstruct)
    masks = rasterize(ss, p.ct, progress=ctx.progress)
    seconds = time.perf_counter() - t0
    grid = Grid.of(p.ct)
    write_image(labelmap(masks, p.ct), out / "labelmap.nrrd")
    write_image(ss_image(masks, p.ct), out / "ss_img.nrrd")
    (out / "ss_list.txt").write_text(ss_list_text(masks))
    full = {m.roi.name: m.full(grid) for m in masks}
    images = {n: grid.image(a) for n, a in full.items()}
    write_rtstruct_from_masks(
        out / "RS_roundtrip.dcm", p.ct_dir, images, colors={m.roi.name: m.roi.color for m in masks}
    )
    again = {m.roi.name: m.full(grid) for m in rasterize(read_rtstruct(out / "RS_roundtrip.dcm"), p.ct)}
    segmentation_node_from_masks(ctx.scene, images, {m.roi.name: m.roi.color for m in masks}, name="Phantom structures")

    rows = []
    for name, a in full.items():
        truth = sitk.GetArrayViewFromImage(p.masks[name]).astype(bool) if name in p.masks else None
        b = a.astype(bool)
        dice_truth = 2 * (b & truth).sum() / max(b.sum() + truth.sum(), 1) if truth is not None else float("nan")
        dice_rt = 2 * (b & again[name].astype(bool)).sum() / max(b.sum() + again[name].astype(bool).sum(), 1)
        rows.append(
            [
                name,
                round(float(b.sum() * np.prod(p.ct.GetSpacing()) / 1000), 2),
                round(dice_truth, 4),
                round(dice_rt, 4),
            ]
        )

    dose = read_rtdose(p.rtdose)
    dose_node = volume_node_from_image(ctx.scene, dose, "Phantom RTDOSE (Gy)")
    dose_node.SetAttribute("DICOM.Modality", "RTDOSE")  # shown as a colour wash over the CT
    samples = {m.roi.name: dose_samples(m, dose, p.ct) for m in masks if m.array.size}
    names = [m.roi.name for m in masks if m.roi.name in samples]
    png, dvh_rows = _dvh_figure(ctx, names, samples)
    table = table_node_from_rows(ctx.scene, ["Dose (Gy)"] + names, dvh_rows, "Phantom DVH")
    plot_from_table(ctx.scene, table, "Dose (Gy)", names, "Phantom DVH")
    colors = {m.roi.name: m.roi.color for m in masks}
    png2 = _structures_figure(ctx, p.ct, images, colors)
    png3 = _dose_figure(ctx, p.ct, dose, images)
    ctx.report.section(
        "RT structure sets",
        f"The phantom's RTSTRUCT ({len(masks)} ROIs) was rasterized onto the CT in {seconds:.2f} s (voxel centre inside "
        "polygon, even-odd), written as a labelmap, a plastimatch ss-img/ss-list and traced back to an RTSTRUCT; "
        "re-rasterizing that RTSTRUCT gives the same masks (Dice 1.0 column).",
        images=[(png2, "structures as outlines on the CT, through the GTV centre (RING keeps its hole: even-odd)")],
        table=(["structure", "volume (cc)", "Dice vs analytic", "Dice after RTSTRUCT round trip"], rows),
    )
    ctx.report.section(
        "Dose on the CT and dose-volume histograms",
        f"The phantom's RTDOSE ({' x '.join(f'{v:g}' for v in dose.GetSpacing())} mm grid) over the CT: colour wash "
        f"from {DOSE_WASH_THRESHOLD:.0%} of the maximum, isodose lines in % of the {PRESCRIPTION_GY:g} Gy prescription. "
        "DVHs sample the dose at each structure's voxels (trilinear). Dx: the lowest dose to the hottest x % of the "
        "structure; V20: the volume (%) receiving 20 Gy or more. The dose is in the Slicer scene as a volume.",
        images=[(png3, "dose colour wash with isodose lines"), (png, "cumulative DVH from the phantom's RTDOSE")],
        table=(
            ["structure", "volume (cc)", "D98 Gy", "D95 Gy", "D50 Gy", "D2 Gy", "Dmean Gy", "V20 %"],
            _dose_rows(names, samples),
        ),
    )
    _gamma_section(ctx, dose)


def _gamma_section(ctx, dose) -> None:
    """Gamma (3 %/3 mm and 3 %/2 mm, global, 10 % threshold) of the plan against a simulated delivery: the dose
    shifted 3 mm to the patient's left and 2 % hotter; the 3 %/2 mm map on the axial slice through the GTV."""
    from ..demo.figures import orientation_letters, scale_bar
    from .gamma import gamma_index

    shift_mm, scale = 3.0, 1.02
    delivered = sitk.Resample(dose, dose, sitk.TranslationTransform(3, (-shift_mm, 0.0, 0.0)), sitk.sitkLinear, 0.0)
    delivered = delivered * scale
    t0 = time.perf_counter()
    results = {dta: gamma_index(dose, delivered, dose_percent=3.0, dta_mm=dta, resolution_mm=1.0) for dta in (3.0, 2.0)}
    seconds = time.perf_counter() - t0
    gamma = sitk.GetArrayViewFromImage(results[2.0][0])
    k = dose.TransformPhysicalPointToIndex((-60.0, -10.0, 0.0))[2]  # the GTV centre's dose slice
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    shown = np.ma.masked_less(gamma[k], 0)  # -1: below the threshold, not evaluated
    image = ax.imshow(shown, cmap="RdYlGn_r", vmin=0, vmax=2, aspect=dose.GetSpacing()[1] / dose.GetSpacing()[0])
    ax.set_facecolor("black")
    ax.set_title(f"gamma 3 %/2 mm, axial dose slice {k}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    orientation_letters(ax, "axial")
    scale_bar(ax, dose.GetSpacing()[0])
    fig.colorbar(image, ax=ax, fraction=0.046, label="gamma (> 1 fails)")
    png = save_figure(fig, ctx.report, "rtstruct", "gamma.png")
    ctx.report.section(
        "Gamma analysis (imgsuite gamma)",
        f"The plan's dose against a simulated delivery (the same dose {shift_mm:g} mm to the patient's left and "
        f"{(scale - 1) * 100:.0f} % hotter), global normalisation to the maximum, points below 10 % left out, "
        f"search step 1 mm ({seconds:.1f} s for both). Black: not evaluated.",
        images=[(png, "gamma map, 3 %/2 mm")],
        table=(
            ["criterion", "pass rate (%)"],
            [[f"3 %/{dta:g} mm", f"{rate:.1f}"] for dta, (_, rate) in results.items()],
        ),
    )


def _dose_rows(names, samples) -> list[list]:
    """Dose statistics per structure, in Gy with 0.01 Gy resolution (V20 in % with 0.1 %)."""
    rows = []
    for name in names:
        s = dose_statistics(*samples[name], d_percents=(98, 95, 50, 2), v_doses=(20,))
        rows.append(
            [name, f"{s['volume_cc']:.1f}"]
            + [f"{s[k]:.2f}" for k in ("D98", "D95", "D50", "D2", "mean")]
            + [f"{s['V20Gy']:.1f}"]
        )
    return rows


def _dvh_figure(ctx, names, samples):
    """Cumulative DVHs: each structure its own colour and line style, so overlapping curves stay apart."""
    top = max(float(d.max()) for d, _ in samples.values() if d.size)
    styles = ["-", "--", "-.", ":"]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    dvh_rows = None
    for n, name in enumerate(names):
        d, v = samples[name]
        edges, vol = dvh(d, v, 0.25, max_dose=top)
        color = plt.get_cmap("tab10")(n % 10)
        ax.plot(
            edges,
            100 * vol / max(vol[0], 1e-9),
            color=color,
            linestyle=styles[n % len(styles)],
            linewidth=1.8,
            label=name,
        )
        dvh_rows = [[e] for e in edges] if dvh_rows is None else dvh_rows
        for r, value in zip(dvh_rows, vol):
            r.append(float(value))
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.set_xlim(0, top * 1.02)
    ax.set_ylim(0, 102)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # off the curves
    ax.grid(alpha=0.3)
    png = save_figure(fig, ctx.report, "rtstruct", "dvh.png")
    return png, dvh_rows


def _structures_figure(ctx, ct, masks, colors):
    """Axial and coronal CT slices through the GTV centre with every structure's outline and a legend."""
    from ..demo.figures import centre_indices, ct_panel, outlines

    k, j = centre_indices(masks["GTV"]) if "GTV" in masks else (ct.GetSize()[2] // 2, ct.GetSize()[1] // 2)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    handles = {}
    for ax, (view, index) in zip(axes, (("axial", k), ("coronal", j))):
        ct_panel(ax, ct, view, index, f"{view} slice {index}")
        handles.update({h.get_label(): h for h in outlines(ax, masks, colors, view, index)})
    fig.legend(handles=[handles[n] for n in masks if n in handles], loc="center right", fontsize=9, frameon=False)
    fig.subplots_adjust(right=0.86, wspace=0.05)
    png = save_figure(fig, ctx.report, "rtstruct", "structures.png")
    return png


def _dose_figure(ctx, ct, dose, masks):
    """Axial and coronal dose colour wash through the GTV centre, isodose lines, PTV outline, colour bar (Gy)."""
    from ..demo.figures import centre_indices, ct_panel, dose_wash, outlines
    from ..imageops import resample

    dose_on_ct = resample(dose, ct, interpolation="linear")
    k, j = centre_indices(masks["GTV"]) if "GTV" in masks else (ct.GetSize()[2] // 2, ct.GetSize()[1] // 2)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for ax, (view, index) in zip(axes, (("axial", k), ("coronal", j))):
        aspect = ct_panel(ax, ct, view, index, f"dose, {view} slice {index}")
        wash, handles = dose_wash(ax, dose_on_ct, view, index, aspect, PRESCRIPTION_GY)
        if "PTV" in masks:
            handles += outlines(ax, {"PTV": masks["PTV"]}, {"PTV": (255, 255, 255)}, view, index)
    bar = fig.colorbar(wash, ax=axes, fraction=0.025, pad=0.01, label="dose (Gy)")
    bar.solids.set_alpha(1.0)  # the bar in full colour, though the wash is see-through
    axes[0].legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.6)
    png = save_figure(fig, ctx.report, "rtstruct", "dose_wash.png")
    return png
