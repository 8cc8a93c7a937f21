"""The review report: the structure table and, per structure, three orthogonal thumbnails with both outlines.

Thumbnails go through the structure's centroid, cropped around both structures, the CT shown in a window for
the site (lung structures in a lung window, bone in a bone window, else soft tissue); the reference outline is
solid in its colour, the test outline white and dashed-looking (every other segment). The HTML is one file
(pictures embedded), written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from .compare import canonical_name
from .metrics import Shape, inside_on_box, union_box
from .state import ReviewState
from .table import COLUMN_TITLES, COLUMNS, format_value, table_rows, view_focus

WINDOWS = {"lung": (-600.0, 1500.0), "bone": (400.0, 1800.0), "soft tissue": (40.0, 400.0)}  # level, width
PANEL_PIXELS = 220  # the longest side of a thumbnail panel, about
MARGIN_VOXELS = 6


def site_window(name: str) -> tuple[float, float]:
    """(level, width) of the CT window for a structure, from its canonical name.

    Examples
    --------
    >>> site_window("Lung_L"), site_window("Femur_Head_R"), site_window("Heart")
    ((-600.0, 1500.0), (400.0, 1800.0), (40.0, 400.0))
    """
    key = canonical_name(name)
    if "lung" in key or "trachea" in key or "bronch" in key:
        return WINDOWS["lung"]
    if any(w in key for w in ("bone", "femur", "mandible", "vertebra", "rib", "skull", "pelvis")):
        return WINDOWS["bone"]
    return WINDOWS["soft tissue"]


def thumbnails(ref: Shape, test: Shape, grid, ct=None, window=None):
    """One PIL image: axial, coronal and sagittal planes through the reference centroid with both outlines."""
    import SimpleITK as sitk
    from PIL import Image

    shapes = [s for s in (ref, test) if not s.empty]
    if not shapes:
        return Image.new("RGB", (120, 40), (40, 40, 40))
    lo, hi = union_box(shapes, margin=MARGIN_VOXELS)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, np.asarray(grid.GetSize()))
    focus = view_focus(shapes[0], grid)
    centre = np.clip(np.asarray(focus.centroid_index) - lo, 0, hi - lo - 1)
    masks = [inside_on_box(s, lo, hi) for s in (ref, test)]
    if ct is not None:
        box = sitk.GetArrayViewFromImage(ct)[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]].astype(np.float32)
    else:
        box = np.zeros(masks[0].shape, np.float32)
    level, width = window or site_window(ref.name)
    grey = np.clip((box - (level - width / 2)) / width * 255.0, 0, 255).astype(np.uint8)
    sx, sy, sz = grid.GetSpacing()
    k, j, i = int(centre[2]), int(centre[1]), int(centre[0])
    planes = [  # (grey 2D, mask 2D per shape, mm per pixel along columns and rows); rows run down the screen
        (grey[k], [m[k] for m in masks], sx, sy),
        (grey[::-1, j, :], [m[::-1, j, :] for m in masks], sx, sz),
        (grey[::-1, :, i], [m[::-1, :, i] for m in masks], sy, sz),
    ]
    colors = [tuple(ref.color), (255, 255, 255)]
    extent = float(np.max((hi - lo) * np.asarray(grid.GetSpacing())))
    scale = float(np.clip(PANEL_PIXELS / max(extent, 1.0), 1.0, 10.0))  # pixels per mm
    panels = [_panel(g, ms, colors, cx * scale, cy * scale) for g, ms, cx, cy in planes]
    out = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), max(p.height for p in panels)))
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 8
    return out


def _panel(grey: np.ndarray, masks, colors, sx: float, sy: float):
    """One plane: ``grey`` scaled ``sx`` x ``sy`` screen pixels per voxel, each mask's outline drawn on it."""
    from PIL import Image, ImageDraw
    from skimage.measure import find_contours

    size = (max(1, int(round(grey.shape[1] * sx))), max(1, int(round(grey.shape[0] * sy))))
    image = Image.fromarray(grey).resize(size, Image.BILINEAR).convert("RGB")
    draw = ImageDraw.Draw(image)
    for n, (mask, color) in enumerate(zip(masks, colors)):
        if not mask.any():
            continue
        for ring in find_contours(np.pad(mask, 1).astype(np.uint8), 0.5):
            pts = [((c - 1 + 0.5) * sx, (r - 1 + 0.5) * sy) for r, c in ring]
            if n == 0:
                draw.line(pts, fill=color, width=2)
            else:  # the test: dashed, every other stretch of the outline
                for a in range(0, len(pts) - 1, 4):
                    draw.line(pts[a : a + 3], fill=color, width=1)
    return image


def dvh_pair(ref: Shape, test: Shape, grid, dose):
    """A PIL image of the cumulative DVHs (% volume) of the reference (solid) and the test (dashed) under a dose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from ..rtstruct.dvh import dose_samples, dvh
    from ..rtstruct.rasterize import RoiMask
    from ..rtstruct.structure_set import Roi

    samples = [dose_samples(RoiMask(Roi(0, s.name), s.offset, s.mask), dose, grid) for s in (ref, test)]
    top = max((float(d.max()) for d, _ in samples if d.size), default=1.0)
    fig, ax = plt.subplots(figsize=(3.2, 2.2), dpi=100)
    for (doses, volumes), style, label in zip(samples, ("-", "--"), ("reference", "test")):
        if doses.size:
            edges, cum = dvh(doses, volumes, bin_width=max(top / 200.0, 1e-3), max_dose=top)
            ax.plot(edges, 100.0 * cum / max(cum[0], 1e-12), style, color=np.array(ref.color) / 255.0, label=label)
    ax.set_xlabel("dose (Gy)", fontsize=8)
    ax.set_ylabel("volume (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _png_data(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_review_report(
    comparison,
    path: str | os.PathLike,
    *,
    ct=None,
    state: ReviewState | None = None,
    dose=None,
    title: str = "Contour review",
    thumbnails_for: int | None = None,
    reviewed: str = "test",
) -> Path:
    """Write the review report (HTML, pictures embedded): the table, worst first, then thumbnails per structure.

    Parameters
    ----------
    comparison : Comparison
    path : path
        The HTML file.
    ct : SimpleITK.Image, optional
        The CT on the comparison grid (without it the outlines are drawn on black).
    state : ReviewState, optional
        Statuses for the table, of the ``reviewed`` set's structures (``"test"`` or ``"reference"``, as
        :func:`~.table.table_rows`).
    dose : SimpleITK.Image, optional
        A dose (Gy, any grid): each structure also gets its reference and test DVHs.
    thumbnails_for : int, optional
        Draw thumbnails for only the first (worst) ``n`` structures.

    Examples
    --------
    ::

        c = compare_structure_sets("RS_A.dcm", "RS_B.dcm", referenced_ct="CT/")
        write_review_report(c, "review.html", ct=read_image("CT/"))
    """
    rows = table_rows(comparison, state, reviewed=reviewed)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:1em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}"
        "td:first-child,td:nth-child(2){text-align:left}figure{margin:.5em 0}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(rows)} matched structure(s), tolerance {comparison.tolerance_mm:g} mm. Unmatched in the reference: "
        f"{html.escape(', '.join(comparison.unmatched_reference) or 'none')}; in the test: "
        f"{html.escape(', '.join(comparison.unmatched_test) or 'none')}.</p>",
        summary_table_html(rows),
    ]
    for row in [r for r in rows if r["test"] in comparison.test_shapes][:thumbnails_for]:  # a review with no test
        ref = comparison.reference_shapes[row["reference"]]
        picture = thumbnails(ref, comparison.test_shapes[row["test"]], comparison.grid, ct)
        caption = (
            f"{row['reference']} (solid) vs {row['test']} (dashed, white): axial, coronal, sagittal through the "
            f"centroid; Dice {format_value('dice', row['dice'])}, HD95 {format_value('hd95', row['hd95'])} mm"
        )
        parts.append(
            f"<figure><img src='{_png_data(picture)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        if dose is not None:
            curves = dvh_pair(ref, comparison.test_shapes[row["test"]], comparison.grid, dose)
            name = html.escape(row["reference"])
            parts.append(
                f"<figure><img src='{_png_data(curves)}'><figcaption>DVH of {name}: reference solid, test dashed"
                "</figcaption></figure>"
            )
    parts.append("</body></html>")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")
    return Path(path)


def summary_table_html(rows: list[dict]) -> str:
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(COLUMN_TITLES[c])}</th>" for c in COLUMNS) + "</tr>"
    body = []
    for row in rows:
        swatch = "<td style='background:rgb({},{},{})'></td>".format(*row["color"])
        cells = "".join(f"<td>{html.escape(format_value(c, row.get(c)))}</td>" for c in COLUMNS)
        body.append(f"<tr>{swatch}{cells}</tr>")
    return "<table>" + head + "".join(body) + "</table>"
