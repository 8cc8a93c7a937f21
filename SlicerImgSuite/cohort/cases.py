"""The cases of a cohort: from a DICOM index, a manifest CSV, or a plate folder."""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

from ..errors import ImgSuiteError
from .tables import read_table

_IMAGE_MODALITIES = ("CT", "MR", "PT")


def cases_from_index(index: str | os.PathLike) -> list[dict]:
    """One case per RTSTRUCT series of an index: its image series (``ct``) and the RTDOSEs sharing its frame.

    The case is named after the patient ID; a patient with several structure sets gets
    ``<patient>_<last digits of the RTSTRUCT series UID>`` per set.

    Examples
    --------
    >>> rows = [dict(patient_id="P1", study_uid="S", series_uid="1.2.9", frame_of_reference_uid="F",
    ...              modality=m, referenced_series=r, path=p)
    ...         for m, r, p in [("CT", "", "/d/ct"), ("RTSTRUCT", "1.2.8", "/d/rs.dcm"), ("RTDOSE", "", "/d/rd.dcm")]]
    >>> rows[0]["series_uid"] = "1.2.8"; rows[2]["series_uid"] = "1.2.7"
    >>> cases_from_rows(rows)
    [{'case': 'P1', 'rtstruct': '/d/rs.dcm', 'ct': '/d/ct', 'dose': '/d/rd.dcm'}]
    """
    return cases_from_rows(read_table(index))


def cases_from_rows(rows: list[dict]) -> list[dict]:
    """:func:`cases_from_index` on the rows of an index already read."""
    by_uid = {r["series_uid"]: r for r in rows}
    doses = defaultdict(list)
    for r in rows:
        if r["modality"] == "RTDOSE":
            doses[(r["patient_id"], r["frame_of_reference_uid"])].append(r["path"])
    structure_sets = [r for r in rows if r["modality"] == "RTSTRUCT"]
    per_patient = defaultdict(int)
    for r in structure_sets:
        per_patient[r["patient_id"]] += 1
    cases = []
    for r in structure_sets:
        refs = [by_uid[u] for u in (r["referenced_series"] or "").split("\\") if u in by_uid]
        images = [x for x in refs if x["modality"] in _IMAGE_MODALITIES]
        name = r["patient_id"] or Path(r["path"]).parent.name
        if per_patient[r["patient_id"]] > 1:
            name = f"{name}_{r['series_uid'].replace('.', '')[-8:]}"
        case = {"case": name, "rtstruct": r["path"], "ct": images[0]["path"] if images else ""}
        case["dose"] = ";".join(sorted(doses.get((r["patient_id"], r["frame_of_reference_uid"]), [])))
        cases.append(case)
    return cases


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The cases of a manifest CSV: a ``case`` column and one column per input role (paths).

    Relative paths are taken from the manifest's folder. Roles: ``rtstruct``, ``ct``, ``dose``
    (several joined by ``;``) for dvh/convert; any names for a register template; ``image`` for nuclei.
    """
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ImgSuiteError(f"cannot read the manifest ({exc})", path) from None
    if not rows or "case" not in rows[0]:
        raise ImgSuiteError("a manifest needs a header line with a 'case' column and one row per case", path)
    cases, lines = [], {}
    for n, row in enumerate(rows, 2):
        if not (row.get("case") or "").strip():
            raise ImgSuiteError(f"line {n}: empty case name", path)
        case = {"case": row["case"].strip()}
        if lines.setdefault(case["case"], n) != n:
            raise ImgSuiteError(f"line {n}: case {case['case']!r} again (line {lines[case['case']]})", path)
        for key, value in row.items():
            if key and key != "case" and value:
                parts = [p if os.path.isabs(p) else str(path.parent / p) for p in value.strip().split(";") if p]
                case[key] = ";".join(parts)
        cases.append(case)
    return cases


def cases_from_plate(folder: str | os.PathLike) -> list[dict]:
    """One case per microscopy image of a plate folder (``imgsuite nuclei``'s inputs), named after the file."""
    from ..segmentation.nuclei_job import find_inputs

    files, _ = find_inputs(folder)
    return [{"case": f.name.split(".")[0], "image": str(f)} for f in files]
