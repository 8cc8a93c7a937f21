"""Cohort tables: lists of flat rows written as Parquet (pyarrow) and, on request, CSV.

Every table is written atomically (:mod:`SlicerImgSuite.io.atomic`), so an interrupted run leaves
either the previous table or the new one, never half of one.
"""

from __future__ import annotations

import csv as _csv
import os
from pathlib import Path

from ..errors import ImgSuiteError
from ..io.atomic import atomic_path


def write_table(rows: list[dict], path: str | os.PathLike, *, columns: list[str] | None = None, csv: bool = False):
    """Write ``rows`` (dicts of str/int/float) to ``path`` (Parquet); with ``csv`` also ``path`` with ``.csv``.

    ``columns`` fixes the order (and the schema of an empty table); keys missing from a row are null.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.parquet"
    >>> write_table([{"case": "A", "mean": 1.5}, {"case": "B"}], p, csv=True)
    >>> read_table(p)
    [{'case': 'A', 'mean': 1.5}, {'case': 'B', 'mean': None}]
    >>> p.with_suffix(".csv").read_text().splitlines()[0]
    'case,mean'
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    data = {c: [row.get(c) for row in rows] for c in columns}
    arrays = {}
    for c, values in data.items():
        kind = _column_type(values)
        if kind == pa.string():
            values = [None if v is None else str(v) for v in values]
        arrays[c] = pa.array(values, type=kind)
    table = pa.table(arrays)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    if csv:
        with atomic_path(csv_path(path)) as tmp, open(tmp, "w", newline="") as f:
            w = _csv.writer(f)
            w.writerow(columns)
            w.writerows([_cell(row.get(c)) for c in columns] for row in rows)


def _cell(value):
    """A CSV cell: empty for null, floats with their full precision."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def csv_path(path: str | os.PathLike) -> Path:
    """The CSV twin of a Parquet table path (``x.parquet`` -> ``x.csv``)."""
    path = Path(path)
    return path.with_suffix(".csv") if path.suffix == ".parquet" else path.with_name(path.name + ".csv")


def read_table(path: str | os.PathLike) -> list[dict]:
    """The rows of a table written by :func:`write_table` (Parquet, or CSV by its suffix)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
    except FileNotFoundError:
        raise ImgSuiteError("no such table", path) from None
    except Exception as exc:  # pyarrow's ArrowInvalid and friends: a damaged or foreign file
        raise ImgSuiteError(f"cannot read the table ({exc})", path) from None
    return table.to_pylist()


def _column_type(values: list):
    """A column's Arrow type: float64 when any value is a float, int64 for ints, else string."""
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.float64() if any(isinstance(v, float) for v in present) else pa.int64()
    return pa.string()
