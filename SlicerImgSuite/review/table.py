"""The review table (one row per matched structure, worst first) and the view geometry of a structure.

Shared by the ContourReview module, the browser review and the HTML report, so all three show the same
columns in the same order and centre the views at the same place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .metrics import Shape
from .state import ReviewState

COLUMNS = ("reference", "test", "status", "dice", "hd95", "surface_dice", "volume_diff_pct", "hd", "msd", "apl")
COLUMN_TITLES = {
    "reference": "reference", "test": "test", "status": "status", "dice": "Dice", "hd95": "HD95 mm",
    "surface_dice": "surface Dice", "volume_diff_pct": "volume diff %", "hd": "HD mm", "msd": "MSD mm",
    "apl": "APL mm",
}  # fmt: skip


def worst_first_key(row: dict) -> tuple:
    """Sort key: missing values first, then the lowest surface Dice, then the lowest Dice, then the largest HD95."""

    def value(key, sign=1.0):
        v = row.get(key)
        return -math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else sign * v

    return (value("surface_dice"), value("dice"), value("hd95", -1.0))


def table_rows(
    comparison, state: ReviewState | None = None, worst_first: bool = True, reviewed: str = "test"
) -> list[dict]:
    """Rows for the structure table: the comparison's metrics plus ``status`` and ``color`` (reference's).

    Statuses belong to the reviewed set's structures: ``reviewed`` says which column names them (``"test"``,
    the set being approved and exported, or ``"reference"``).

    Examples
    --------
    >>> class C:
    ...     structures = [{"reference": "A", "test": "a", "dice": 0.9, "surface_dice": 0.95, "hd95": 2.0},
    ...                   {"reference": "B", "test": "b", "dice": 0.5, "surface_dice": 0.4, "hd95": 9.0}]
    ...     reference_shapes = {}
    >>> [r["reference"] for r in table_rows(C())]
    ['B', 'A']
    """
    rows = []
    for s in comparison.structures:
        row = dict(s)
        name = s[reviewed]
        row["status"] = state.status(name) if state is not None and name in state else "unreviewed"
        shape = comparison.reference_shapes.get(s["reference"])
        row["color"] = tuple(shape.color) if shape is not None else (128, 128, 128)
        rows.append(row)
    return sorted(rows, key=worst_first_key) if worst_first else rows


def format_value(key: str, value) -> str:
    """A table cell: metrics to sensible precision, NaN/None as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key in ("dice", "surface_dice", "jaccard"):
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:.1f}" if key in ("volume_diff_pct", "apl") else f"{value:.2f}"
    return str(value)


@dataclass
class ViewFocus:
    """Where the slice views go to show a structure: its centroid and bounds, LPS and RAS (mm)."""

    centroid_lps: np.ndarray
    bounds_lps: tuple[np.ndarray, np.ndarray]  # lowest and highest corner of its voxels (outer faces)
    centroid_index: tuple[int, int, int]  # the voxel (i, j, k) nearest the centroid

    @property
    def centroid_ras(self) -> np.ndarray:
        return self.centroid_lps * np.array([-1.0, -1.0, 1.0])

    @property
    def bounds_ras(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = (p * np.array([-1.0, -1.0, 1.0]) for p in self.bounds_lps)
        return np.minimum(a, b), np.maximum(a, b)

    def field_of_view_mm(self, margin: float = 1.5, minimum: float = 30.0) -> float:
        """A square field of view that holds the structure with ``margin`` times its largest extent."""
        lo, hi = self.bounds_lps
        return float(max(minimum, margin * float(np.max(hi - lo))))


def view_focus(shape: Shape, grid) -> ViewFocus | None:
    """The :class:`ViewFocus` of a structure on the comparison grid (a SimpleITK image); None when empty.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> g = sitk.Image(10, 10, 5, sitk.sitkUInt8); g.SetSpacing((1, 1, 2))
    >>> m = np.zeros((2, 3, 4), bool); m[:] = True
    >>> f = view_focus(Shape("A", (2, 3, 1), m), g)
    >>> f.centroid_lps.tolist(), f.centroid_index
    ([3.5, 4.0, 3.0], (4, 4, 2))
    """
    from ..rtstruct.rasterize import Grid

    if shape.empty:
        return None
    g = Grid.of(grid)
    z, y, x = np.nonzero(shape.mask)
    index = np.column_stack([x, y, z]).astype(float) + shape.offset
    centre = index.mean(axis=0)
    corners = g.to_physical(np.array([index.min(axis=0) - 0.5, index.max(axis=0) + 0.5]))
    return ViewFocus(
        g.to_physical(centre[None])[0],
        (corners.min(axis=0), corners.max(axis=0)),
        tuple(int(v) for v in np.rint(centre)),
    )
