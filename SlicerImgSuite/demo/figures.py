"""Report figures a physicist reads without a caption: CT slices with orientation letters and a scale bar,
structure outlines with a legend, a dose colour wash with isodose lines and a colour bar (Gy).

Axial slices are drawn radiologically (patient right on the left, anterior up); coronal ones with
superior up. Arrays are SimpleITK's (z, y, x) in LPS.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..web.display import CT_WINDOW_LEVEL, DOSE_COLORS, DOSE_WASH_THRESHOLD

# Isodose levels in percent of the prescription, with their line colours (as planning systems draw them).
ISODOSE_PERCENTS = {95: "red", 80: "orange", 50: "yellow", 20: "cyan"}


def dose_colormap():
    """The viewer's dose colours (blue to red) as a matplotlib colour map."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("imgsuite_dose", DOSE_COLORS)


def _plane(image: sitk.Image, view: str, index: int) -> tuple[np.ndarray, float]:
    """A slice of ``image`` (axial: k, coronal: j) with its display aspect (row spacing / column spacing)."""
    a = sitk.GetArrayViewFromImage(image)
    sx, sy, sz = image.GetSpacing()
    if view == "axial":
        return a[index], sy / sx
    return a[:, index, :][::-1], sz / sx  # superior up


def orientation_letters(ax, view: str, color: str = "yellow") -> None:
    """R/L/A/P/S/I at the edges of an axes showing an LPS array slice (patient right on screen left)."""
    top, bottom = ("A", "P") if view == "axial" else ("S", "I")
    style = dict(color=color, fontsize=9, fontweight="bold", transform=ax.transAxes)
    ax.text(0.01, 0.5, "R", ha="left", va="center", **style)
    ax.text(0.99, 0.5, "L", ha="right", va="center", **style)
    ax.text(0.5, 0.99, top, ha="center", va="top", **style)
    ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **style)


def scale_bar(ax, spacing_x: float, length_mm: float = 50.0) -> None:
    """A white ``length_mm`` bar in the lower left corner (pixels of ``spacing_x`` mm)."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()  # images: y0 is the bottom row
    pixels = length_mm / spacing_x
    left, row = x0 + 0.05 * (x1 - x0), y0 - 0.06 * (y0 - y1)
    ax.plot([left, left + pixels], [row, row], color="white", linewidth=3)
    ax.text(left + pixels / 2, row - 0.02 * (y0 - y1), f"{length_mm:g} mm", color="white", fontsize=8, ha="center")


def ct_panel(ax, ct: sitk.Image, view: str, index: int, title: str = "") -> float:
    """The CT slice in the thorax window, letters and a scale bar; returns the aspect for overlays."""
    plane, aspect = _plane(ct, view, index)
    window, level = CT_WINDOW_LEVEL
    ax.imshow(plane, cmap="gray", vmin=level - window / 2, vmax=level + window / 2, aspect=aspect)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    orientation_letters(ax, view)
    scale_bar(ax, ct.GetSpacing()[0])
    return aspect


def outlines(ax, masks: dict[str, sitk.Image], colors: dict, view: str, index: int) -> list:
    """Each mask's outline on the slice; returns legend handles (name, colour) of those drawn."""
    from matplotlib.lines import Line2D

    handles = []
    for name, mask in masks.items():
        plane, _ = _plane(mask, view, index)
        if not plane.any():
            continue
        color = np.array(colors.get(name, (255, 255, 255))) / 255
        ax.contour(plane.astype(float), [0.5], colors=[color], linewidths=1.2)
        handles.append(Line2D([], [], color=color, linewidth=2, label=name))
    return handles


def dose_wash(ax, dose_on_ct: sitk.Image, view: str, index: int, aspect: float, prescription: float):
    """The dose as a colour wash (transparent below :data:`DOSE_WASH_THRESHOLD` of the maximum) with isodose
    lines at :data:`ISODOSE_PERCENTS` of ``prescription``; returns the image (for a colour bar) and line handles."""
    from matplotlib.lines import Line2D

    plane, _ = _plane(dose_on_ct, view, index)
    high = float(sitk.GetArrayViewFromImage(dose_on_ct).max())
    washed = np.ma.masked_less(plane, DOSE_WASH_THRESHOLD * high)
    image = ax.imshow(washed, cmap=dose_colormap(), vmin=0, vmax=high, alpha=0.45, aspect=aspect)
    handles = []
    for percent, color in ISODOSE_PERCENTS.items():
        level = percent / 100 * prescription
        if plane.max() >= level:
            ax.contour(plane, [level], colors=[color], linewidths=1.0)
            handles.append(Line2D([], [], color=color, linewidth=1.5, label=f"{percent} % ({level:.0f} Gy)"))
    return image, handles


def centre_indices(mask: sitk.Image) -> tuple[int, int]:
    """(axial k, coronal j) through a mask's centroid."""
    a = sitk.GetArrayViewFromImage(mask)
    zs, ys, _ = np.nonzero(a)
    return int(round(zs.mean())), int(round(ys.mean()))


def save_figure(fig, report, job: str, name: str, dpi: int = 100):
    """Save a matplotlib figure where the report expects ``<job>/<name>``, close it, return the path."""
    import matplotlib.pyplot as plt

    path = report.figure_path(job, name)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
