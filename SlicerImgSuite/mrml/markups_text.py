"""Check a ``.fcsv`` / ``.mrk.json`` file's text before Slicer's storage node reads it.

Slicer's readers are lenient where a dose-planning point must not be: a missing or non-numeric coordinate is read
as 0, NaN is kept, an unknown coordinate system is taken as RAS (the sign of x and y flips; the names are
case-sensitive, so ``lps`` is RAS too), a ``.fcsv`` is read by position whatever its ``# columns`` header says, and
only the first markup of a ``.mrk.json`` is read. Each such file is refused here, naming the line or control point.
Plain Python: no MRML needed.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from ..errors import ImgSuiteError

# what Slicer writes in a .fcsv header (0 and 1 in Slicer 4.x) and in a .mrk.json
FCSV_SYSTEMS = {"RAS", "LPS", "0", "1"}
JSON_SYSTEMS = {"RAS", "LPS"}
MM_PER_UNIT = {"mm": 1.0, "um": 1e-3}  # a .mrk.json's coordinateUnits (UCUM codes Slicer writes)
_FCSV_DEFAULT_COLUMNS = ["id", "x", "y", "z"]


def check_markups_text(path: Path) -> float:
    """Refuse a markups file whose coordinates Slicer would read wrongly (see the module docstring).

    Returns mm per coordinate unit: a ``.mrk.json`` written in a micrometre scene says ``coordinateUnits`` ``um``
    and Slicer's reader does not scale it; ``.fcsv`` and files without units are mm.
    """
    if path.name.lower().endswith(".fcsv"):
        _check_fcsv(path)
        return 1.0
    return _check_json(path)


def _coordinate(text, where: str, path: Path) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ImgSuiteError(f"{where}: coordinate {text!r} is not a number", path) from None
    if not math.isfinite(value):
        raise ImgSuiteError(f"{where}: coordinate {text!r} is not a finite number", path)
    return value


def _check_fcsv(path: Path) -> None:
    columns = _FCSV_DEFAULT_COLUMNS
    lines = path.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            key, value = key.strip().lower(), value.strip()
            if key == "coordinatesystem" and value not in FCSV_SYSTEMS:  # Slicer: "lps" is RAS
                raise ImgSuiteError(f"line {number}: CoordinateSystem {value!r} is not one of "
                                    f"{', '.join(sorted(FCSV_SYSTEMS))}", path)
            if key == "columns":
                columns = [c.strip().lower() for c in value.split(",")]
                if columns[1:4] != ["x", "y", "z"]:  # Slicer reads x, y, z from fields 2-4, ignoring this header
                    raise ImgSuiteError(f"line {number}: the columns {value!r} do not put x, y, z in fields 2-4, "
                                        "where Slicer's reader takes them", path)
            continue
        if not line.strip():
            continue
        fields = next(csv.reader([line]))
        where = f"line {number}"
        if len(fields) < len(columns):  # a field left out shifts every column after it (z read from ow)
            raise ImgSuiteError(f"{where}: {len(fields)} fields; the columns are {', '.join(columns)}", path)
        for axis in ("x", "y", "z"):
            index = columns.index(axis)
            if index >= len(fields) or not fields[index].strip():
                raise ImgSuiteError(f"{where}: no {axis} coordinate (column {index + 1} of {len(fields)})", path)
            _coordinate(fields[index], where, path)


def _check_json(path: Path) -> float:
    try:
        content = json.loads(path.read_text(errors="replace"))
    except ValueError:
        return 1.0  # not JSON: Slicer's reader refuses it, and read_markups names the file
    markups = content.get("markups") if isinstance(content, dict) else None
    markups = markups if isinstance(markups, list) else []
    if len(markups) > 1:  # Slicer's reader fills one node from the first markup and drops the others
        raise ImgSuiteError(f"{len(markups)} markups in one file: only one point list per file is read", path)
    for m, item in enumerate(markups, start=1):
        if not isinstance(item, dict):
            continue
        system = item.get("coordinateSystem", "LPS")
        if system not in JSON_SYSTEMS:  # Slicer: "lps" is RAS
            raise ImgSuiteError(f"markup {m}: coordinateSystem {system!r} is not LPS or RAS", path)
        points = item.get("controlPoints") or []
        for p, point in enumerate(points if isinstance(points, list) else [], start=1):
            where = f"markup {m}, control point {p}" + (f" ({point.get('label')})" if isinstance(point, dict) else "")
            position = point.get("position") if isinstance(point, dict) else None
            if not isinstance(position, list) or len(position) != 3:
                raise ImgSuiteError(f"{where}: position {position!r} is not 3 coordinates", path)
            for value in position:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ImgSuiteError(f"{where}: coordinate {value!r} is not a number", path)
                _coordinate(value, where, path)
    return _mm_per_unit([item for item in markups if isinstance(item, dict)], path)


def _mm_per_unit(markups: list[dict], path: Path) -> float:
    units = set()
    for item in markups:
        unit = item.get("coordinateUnits", "mm")
        units.add(str(unit.get("codeValue", "") if isinstance(unit, dict) else unit).strip() or "mm")
    if len(units) > 1 or not units <= set(MM_PER_UNIT):
        raise ImgSuiteError(f"coordinateUnits {sorted(units)}: only one of {', '.join(MM_PER_UNIT)} is read", path)
    return MM_PER_UNIT[units.pop()] if units else 1.0
