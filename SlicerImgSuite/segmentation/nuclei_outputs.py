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
