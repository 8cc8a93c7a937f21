"""Run-wide and per-frame outputs of the nuclei job: the combined ``cells.csv`` (and its Excel workbook), and the
verification pictures of every frame (contours with the table's cell ids, and a binary mask).

The combined table follows the Immunostained Image Analysis program's ``signal_quant_stat``: one row per nucleus
per frame of every image, with ``image``, ``frame``, ``cell_id`` (the label value in ``<stem>_labels.tif`` and the
``label`` column of ``<stem>.csv``), the centre, the nucleus area and one ``<channel>_sum`` column per channel,
followed by our other columns (means, rings, track ids). Images without a column leave it blank.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path

_LEAD = ["image", "frame", "time_s", "cell_id", "centroid_x", "centroid_y", "centroid_z"]
_AREA = ["area_px", "area_um2", "volume_um3"]


def _is_sum(name: str) -> bool:
    return name.endswith("_sum") and not name.endswith("_ring_sum")


def combined_table(tables: list[tuple[str, list[str], list[list]]]) -> tuple[list[str], list[list]]:
    """One table of every image's per-nucleus rows (``(stem, header, rows)`` each; ``label`` becomes ``cell_id``).

    Examples
    --------
    >>> a = ("a", ["frame", "time_s", "label", "area_px", "centroid_y", "centroid_x", "DAPI_sum"], [[0, 0.0, 1, 4, 2.0, 3.0, 8.0]])
    >>> b = ("b", ["frame", "time_s", "label", "area_px", "centroid_y", "centroid_x", "GFP_sum"], [[0, 0.0, 1, 2, 1.0, 1.0, 5.0]])
    >>> header, rows = combined_table([a, b])
    >>> header
    ['image', 'frame', 'time_s', 'cell_id', 'centroid_x', 'centroid_y', 'area_px', 'DAPI_sum', 'GFP_sum']
    >>> rows[1]
    ['b', 0, 0.0, 1, 1.0, 1.0, 2, '', 5.0]
    """
    seen: list[str] = []
    for _, header, _ in tables:
        seen += [c for c in ("cell_id" if h == "label" else h for h in header) if c not in seen]
    lead = [c for c in _LEAD if c == "image" or c in seen]
    area = [c for c in _AREA if c in seen]
    sums = [c for c in seen if _is_sum(c)]
    rest = [c for c in seen if c not in lead and c not in area and c not in sums]
    columns = [*lead, *area, *sums, *rest]
    rows = []
    for stem, header, image_rows in tables:
        names = ["cell_id" if h == "label" else h for h in header]
        for row in image_rows:
            values = dict(zip(names, row), image=stem)
            rows.append([values.get(c, "") for c in columns])
    return columns, rows


def write_workbook(path: str | Path, sheets: dict[str, tuple[list[str], list[list]]]) -> Path:
    """An Excel workbook with one sheet per table (``name -> (header, rows)``); needs ``openpyxl``
    (``pip install SlicerImgSuite[excel]``). Blank (NaN) values stay empty cells."""
    require_openpyxl()
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    used: set[str] = set()
    for name, (header, rows) in sheets.items():
        sheet = book.create_sheet(_sheet_name(name, used))
        sheet.append(header)
        for row in rows:
            sheet.append([_excel_value(v) for v in row])
    path = Path(path)
    with atomic_path(path) as tmp:
        book.save(tmp)
    return path


def require_openpyxl() -> None:
    """An error naming ``--excel`` and the extra to install when ``openpyxl`` is missing."""
    from ..errors import ImgSuiteError

    try:
        import openpyxl  # noqa: F401
    except ImportError:
        raise ImgSuiteError("--excel needs openpyxl: pip install 'SlicerImgSuite[excel]'") from None


def _sheet_name(name: str, used: set[str]) -> str:
    """Excel allows 31 characters and no ``[]:*?/\\`` in a sheet name; names stay unique."""
    base = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:31] or "table"
    candidate, k = base, 1
    while candidate.lower() in used:
        k += 1
        candidate = f"{base[: 31 - len(str(k)) - 1]}~{k}"
    used.add(candidate.lower())
    return candidate


def _excel_value(value):
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def frame_suffixes(n_frames: int) -> list[str]:
    """``[""]`` for a single frame, else ``_t0 … _tN`` zero-padded so the files sort in frame order."""
    if n_frames == 1:
        return [""]
    width = len(str(n_frames - 1))
    return [f"_t{t:0{width}d}" for t in range(n_frames)]


def save_frame_pictures(
    grey: np.ndarray, labels: np.ndarray, ids: list[tuple[int, float, float]], overlay: Path, mask: Path
) -> None:
    """The verification pair of one frame: ``overlay`` (contours over the 8-bit ``grey`` picture, each nucleus
    numbered with its cell id at its centre, ``ids`` = ``(cell_id, x, y)``) and ``mask`` (nuclei white, 0/255).
    A stack is shown as its maximum projection."""
    from PIL import Image, ImageDraw
    from skimage.segmentation import find_boundaries

    flat = labels.max(axis=0) if labels.ndim == 3 else labels
    rgb = np.repeat(grey[..., None], 3, axis=2)
    rgb[find_boundaries(flat, mode="inner")] = (255, 50, 50)
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    draw.fontmode = "1"  # no anti-aliasing: the ids stay crisp (and exactly their colour) on any background
    for cell_id, x, y in ids:
        draw.text((x, y), str(cell_id), fill=(255, 230, 0), anchor="mm")
    with atomic_path(overlay) as tmp:
        picture.save(tmp, format="PNG", compress_level=1)  # fast: these are verification pictures
    with atomic_path(mask) as tmp:
        Image.fromarray(((flat > 0) * 255).astype(np.uint8)).save(tmp, format="PNG", compress_level=1)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    _pyplot().close(fig)


def save_intensity_bars(header: list[str], rows: list[list], path: Path, title: str = "") -> None:
    """Per-cell bar chart of every channel's mean intensity inside the nucleus (``<channel>_mean``), one bar group
    per ``cell_id`` (the ``label`` column), one colour per channel."""
    plt = _pyplot()
    ids = [r[header.index("label")] for r in rows]
    channels = [
        h[: -len("_mean")] for h in header if h.endswith("_mean") and not h.endswith(("_ring_mean", "_grown_mean"))
    ]
    width = 0.8 / max(len(channels), 1)
    fig, ax = plt.subplots(figsize=(min(4 + 0.12 * len(ids) * len(channels), 30), 3.4), dpi=100)
    positions = np.arange(len(ids))
    for k, name in enumerate(channels):
        values = [r[header.index(f"{name}_mean")] for r in rows]
        ax.bar(positions + (k - (len(channels) - 1) / 2) * width, values, width, label=name)
    step = max(1, len(ids) // 40)  # at most ~40 tick labels
    ax.set_xticks(positions[::step], [str(i) for i in ids[::step]], fontsize=7)
    ax.set_xlabel("cell id")
    ax.set_ylabel("mean intensity in the nucleus")
    ax.set_title(title)
    if channels:
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def save_population_table(stems: list[str], counts: list[int], areas: list[float], csv_path: Path, png_path: Path):
    """A folder of still images: ``population.csv`` (image, nuclei, mean area) and its bar chart."""
    import csv

    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "nuclei", "mean_area_px"])
        writer.writerows([s, n, f"{a:.6g}"] for s, n, a in zip(stems, counts, areas))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(min(4 + 0.4 * len(stems), 30), 3.6), dpi=100)
    ax.bar(range(len(stems)), counts)
    ax.set_xticks(range(len(stems)), stems, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("nuclei")
    ax.set_title("nuclei per image")
    fig.tight_layout()
    _save(fig, png_path)


def save_track_image(first: np.ndarray, last: np.ndarray, paths: list[np.ndarray], path: Path) -> None:
    """The tracks (``(y, x)`` per frame) drawn over the first and the last frame (8-bit grey pictures), each track
    in the same colour on both; a dot where it starts (first frame) or ends (last frame)."""
    plt = _pyplot()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5 * first.shape[0] / first.shape[1] + 0.4), dpi=100)
    for ax, plane, title, end in ((axes[0], first, "first frame", 0), (axes[1], last, "last frame", -1)):
        ax.imshow(plane, cmap="gray")
        for k, p in enumerate(paths):
            colour = colours[k % len(colours)]
            if len(p) > 1:
                ax.plot(p[:, 1], p[:, 0], "-", lw=1.2, color=colour)
            ax.plot(p[end, 1], p[end, 0], "o", ms=2, color=colour)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    _save(fig, path)
