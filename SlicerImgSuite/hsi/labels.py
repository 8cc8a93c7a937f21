"""Labels of a cube: a classification image with class names and colours, binary class masks, and
bounding boxes (CSV ``name, left, top, width, height`` in pixels, left/top from the first sample/line).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from ..errors import ImgSuiteError
from .envi_header import EnviHeader

BOX_COLUMNS = ("name", "left", "top", "width", "height")


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: columns ``left .. left+width-1``, rows ``top .. top+height-1``."""

    name: str
    left: float
    top: float
    width: float
    height: float


@dataclass
class Labels:
    """Everything under ``Exploration/``.

    classification : (lines, samples) integer array or None; 0 is unclassified.
    class_names : one name per class value (index = value).
    class_colors : one (r, g, b) 0-255 per class value.
    masks : class name -> (lines, samples) bool array.
    boxes : list of :class:`Box`.
    """

    classification: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    class_colors: list[tuple[int, int, int]] = field(default_factory=list)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    boxes: list[Box] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.classification is not None or bool(self.masks) or bool(self.boxes)


def parse_boxes_csv(text: str, path=None) -> list[Box]:
    """Boxes from CSV text; a first row ``name,left,top,width,height`` is optional.

    Examples
    --------
    >>> parse_boxes_csv("name,left,top,width,height\\nleaf, 2, 3, 10, 5\\n")
    [Box(name='leaf', left=2.0, top=3.0, width=10.0, height=5.0)]
    """
    boxes = []
    for row_number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        row = [c.strip() for c in row]
        if not row or not any(row) or row[0].startswith("#"):
            continue
        if row_number == 1 and [c.lower() for c in row[:5]] == list(BOX_COLUMNS):
            continue
        if len(row) < 5:
            raise ImgSuiteError(f"bounding box row {row_number} needs 5 columns (name, left, top, width, height)", path)
        try:
            left, top, width, height = (float(v) for v in row[1:5])
        except ValueError:
            raise ImgSuiteError(f"bounding box row {row_number} has a non-number: {row!r}", path) from None
        if width <= 0 or height <= 0:
            raise ImgSuiteError(f"bounding box row {row_number} ({row[0]!r}) has no area", path)
        boxes.append(Box(row[0], left, top, width, height))
    return boxes


def format_boxes_csv(boxes: list[Box]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BOX_COLUMNS)
    for b in boxes:
        writer.writerow([b.name] + [_num(v) for v in (b.left, b.top, b.width, b.height)])
    return out.getvalue()


def classification_fields(class_names: list[str], class_colors: list[tuple[int, int, int]] | None = None) -> dict:
    """Header fields of an ENVI Classification file (``classes``, ``class names``, ``class lookup``)."""
    colors = list(class_colors or default_colors(len(class_names)))
    if len(colors) != len(class_names):
        raise ImgSuiteError(f"{len(class_names)} class names but {len(colors)} colours")
    return {
        "file type": "ENVI Classification",
        "classes": len(class_names),
        "class names": list(class_names),
        "class lookup": [int(c) for rgb in colors for c in rgb],
    }


def classes_from_header(header: EnviHeader, path=None) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Class names and colours of a classification header (colours default to a palette)."""
    count = int(header.get("classes", 0) or 0)
    names = list(header.get("class names") or [f"class {i}" for i in range(count)])
    count = max(count, len(names))
    names += [f"class {i}" for i in range(len(names), count)]
    lookup = header.numbers("class lookup")
    if lookup is None:
        colors = default_colors(count)
    else:
        if len(lookup) != 3 * count:
            raise ImgSuiteError(f"'class lookup' has {len(lookup)} numbers for {count} classes (3 each)", path)
        colors = [tuple(int(v) for v in lookup[3 * i : 3 * i + 3]) for i in range(count)]
    return names, colors


def default_colors(count: int) -> list[tuple[int, int, int]]:
    """Black for class 0 (unclassified), then matplotlib's tab10 cycle."""
    tab10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
    tab10 += [(140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
    return [(0, 0, 0)] + [tab10[i % len(tab10)] for i in range(max(0, count - 1))]


def _num(v: float):
    return int(v) if float(v).is_integer() else v
