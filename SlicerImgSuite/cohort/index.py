"""DICOM index of a folder tree: one row per series, from header-only reads done on the cluster.

The files are listed here (names, sizes, modification times); their headers are read by the Dask
workers in batches (one task per batch, not per file). Each file's header fields are kept in a
``files`` table beside the index, so re-indexing reads only the files whose size or modification
time changed. A file that cannot be read becomes a row of the ``errors`` table; the scan goes on.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from ..errors import ImgSuiteError
from ..io.folders import files_below
from ..progress import ProgressCallback, no_progress
from .tables import read_table, write_table

SERIES_COLUMNS = [
    "patient_id", "patient_name", "study_uid", "series_uid", "frame_of_reference_uid", "modality", "date",
    "description", "file_count", "referenced_series", "path",
]  # fmt: skip
FILE_COLUMNS = [
    "file", "size", "mtime_ns", "patient_id", "patient_name", "study_uid", "series_uid", "frame_of_reference_uid",
    "modality", "date", "description", "sop_uid", "referenced_series", "referenced_sop",
]  # fmt: skip
ERROR_COLUMNS = ["file", "stage", "message", "size", "mtime_ns"]
_TAGS = [
    "PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality",
    "SeriesDate", "StudyDate", "SeriesDescription", "SOPInstanceUID", "ReferencedFrameOfReferenceSequence",
    "ReferencedRTPlanSequence", "ReferencedStructureSetSequence",
]  # fmt: skip


def sidecar_paths(output: str | os.PathLike) -> tuple[Path, Path]:
    """The ``files`` and ``errors`` tables written beside an index (``x.parquet`` -> ``x.files.parquet`` ...)."""
    output = Path(output)
    stem = output.name[: -len(".parquet")] if output.name.endswith(".parquet") else output.name
    return output.with_name(f"{stem}.files.parquet"), output.with_name(f"{stem}.errors.parquet")


def read_headers(files: list[str]) -> tuple[list[dict], list[dict]]:
    """Header fields of each DICOM file (no pixel data read), and an error row for each damaged one.

    Files that are not DICOM (no ``DICM`` marker and no ``.dcm`` suffix: notes, images) get a row
    with an empty series UID and are left out of the series. This is what one Dask task runs on a batch of files.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "x.dcm"
    >>> _ = bad.write_bytes(b"not dicom at all")
    >>> rows, errors = read_headers([str(bad)])
    >>> rows, errors[0]["stage"], errors[0]["file"] == str(bad)
    ([], 'read header', True)
    """
    import pydicom

    rows, errors = [], []
    for name in files:
        try:
            st = os.stat(name)
            if not _looks_like_dicom(name):
                rows.append(_not_dicom_row(name, st))  # kept, so a re-index need not open it again
                continue
            ds = pydicom.dcmread(name, stop_before_pixels=True, specific_tags=_TAGS, force=True)
            rows.append(_file_row(name, st, ds))
        except Exception as exc:  # any damage: truncated, garbage, unreadable; the scan goes on
            size, mtime = (int(st.st_size), int(st.st_mtime_ns)) if "st" in locals() else (None, None)
            errors.append(
                {"file": name, "stage": "read header", "message": _one_line(exc), "size": size, "mtime_ns": mtime}
            )
    return rows, errors


def _looks_like_dicom(name: str) -> bool:
    if name.lower().endswith((".dcm", ".dicom", ".ima")):
        return True
    with open(name, "rb") as f:
        return f.read(132)[128:132] == b"DICM"


def _not_dicom_row(name: str, st: os.stat_result) -> dict:
    row = dict.fromkeys(FILE_COLUMNS, "")
    return row | {"file": name, "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _file_row(name: str, st: os.stat_result, ds) -> dict:
    series = str(ds.get("SeriesInstanceUID", "") or "")
    if not series:
        raise ValueError("no SeriesInstanceUID (0020,000E): not a DICOM object or damaged")
    frame = str(ds.get("FrameOfReferenceUID", "") or "")
    ref_series, ref_sop = [], []
    for fr in ds.get("ReferencedFrameOfReferenceSequence", []) or []:  # RTSTRUCT -> the contoured CT
        frame = frame or str(fr.get("FrameOfReferenceUID", "") or "")
        for study in fr.get("RTReferencedStudySequence", []) or []:
            for s in study.get("RTReferencedSeriesSequence", []) or []:
                ref_series.append(str(s.get("SeriesInstanceUID", "")))
    for key in ("ReferencedRTPlanSequence", "ReferencedStructureSetSequence"):  # RTDOSE -> plan, plan -> RTSTRUCT
        for item in ds.get(key, []) or []:
            ref_sop.append(str(item.get("ReferencedSOPInstanceUID", "")))
    return {
        "file": name,
        "size": int(st.st_size),
        "mtime_ns": int(st.st_mtime_ns),
        "patient_id": str(ds.get("PatientID", "") or ""),
        "patient_name": str(ds.get("PatientName", "") or ""),
        "study_uid": str(ds.get("StudyInstanceUID", "") or ""),
        "series_uid": series,
        "frame_of_reference_uid": frame,
        "modality": str(ds.get("Modality", "") or ""),
        "date": str(ds.get("SeriesDate", "") or ds.get("StudyDate", "") or ""),
        "description": str(ds.get("SeriesDescription", "") or ""),
        "sop_uid": str(ds.get("SOPInstanceUID", "") or ""),
        "referenced_series": "\\".join(u for u in ref_series if u),
        "referenced_sop": "\\".join(u for u in ref_sop if u),
    }


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def list_files(folder: str | os.PathLike) -> list[tuple[str, int, int]]:
    """Every file under ``folder`` (recursively, hidden ones left out) with its size and mtime (ns)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImgSuiteError("not a folder", folder)
    out = []
    for p in files_below(folder):  # a cohort of linked patient folders is common: links are followed
        try:
            st = os.stat(p)
        except OSError:
            continue  # removed while listing
        out.append((str(p), int(st.st_size), int(st.st_mtime_ns)))
    return out


def build_index(
    folder: str | os.PathLike,
    output: str | os.PathLike,
    *,
    client,
    csv: bool = False,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Index the DICOM files under ``folder`` into ``output`` (Parquet), one row per series.

    Parameters
    ----------
    folder : path
        Searched recursively; hidden files and folders are skipped.
    output : path
        The series table; ``<stem>.files.parquet`` (every file's header fields, size and mtime)
        and ``<stem>.errors.parquet`` (file, stage, message) are written beside it. An existing
        ``files`` table is reused: only files whose size or modification time changed are read.
    client : distributed.Client
        Reads the headers, in batches of files (one task per batch).
    csv : bool
        Also write each table as CSV (``index.csv`` ...).
    batch_size : int, optional
        Files per task (by default the files are spread over the workers).
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    dict
        Counts: ``files`` listed, ``read`` (headers read now), ``reused``, ``series``, ``errors``.

    Examples
    --------
    >>> import tempfile
    >>> from distributed import Client
    >>> from SlicerImgSuite.demo.phantom import make_phantom
    >>> p = make_phantom(tempfile.mkdtemp(), shape=(16, 16, 4))  # CT (4 slices), RTSTRUCT, RTDOSE
    >>> with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
    ...     counts = build_index(p.folder, Path(p.folder) / "index.parquet", client=client)
    >>> counts["series"], counts["files"], counts["errors"]
    (3, 6, 0)
    """
    progress = progress or no_progress
    output = Path(output)
    files_path, errors_path = sidecar_paths(output)
    listing = list_files(Path(folder).resolve())
    known = _previous(files_path, errors_path)
    reused, reused_errors, to_read = [], [], []
    for name, size, mtime in listing:
        old = known.get(name)
        if old is not None and old.get("size") == size and old.get("mtime_ns") == mtime:
            (reused_errors if "message" in old else reused).append(old)
        else:
            to_read.append(name)
    rows, errors = _read_on_cluster(client, to_read, batch_size, progress)
    rows, errors = reused + rows, reused_errors + errors
    series = group_series(rows)
    write_table(series, output, columns=SERIES_COLUMNS, csv=csv)
    write_table(rows, files_path, columns=FILE_COLUMNS, csv=csv)
    write_table(errors, errors_path, columns=ERROR_COLUMNS, csv=csv)
    progress(1.0, f"{len(series)} series")
    return {
        "files": len(listing),
        "read": len(to_read),
        "reused": len(reused) + len(reused_errors),
        "series": len(series),
        "errors": len(errors),
    }


def _previous(files_path: Path, errors_path: Path) -> dict[str, dict]:
    """File -> its row in the previous index (an error row carries ``message``); empty when none."""
    known = {}
    for path in (files_path, errors_path):
        if path.exists():
            try:
                known.update({r["file"]: r for r in read_table(path)})
            except ImgSuiteError:
                pass  # a damaged previous table: read everything again
    return known


def _read_on_cluster(client, names: list[str], batch_size: int | None, progress) -> tuple[list[dict], list[dict]]:
    from distributed import as_completed

    if not names:
        return [], []
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    size = batch_size or max(1, min(500, -(-len(names) // (4 * workers))))
    batches = [names[i : i + size] for i in range(0, len(names), size)]
    futures = client.map(read_headers, batches, pure=False)
    rows, errors, done = [], [], 0
    for future in as_completed(futures):
        r, e = future.result()
        rows += r
        errors += e
        done += 1
        progress(done / len(batches), f"headers: {done}/{len(batches)} batches")
    rows.sort(key=lambda r: r["file"])
    errors.sort(key=lambda r: r["file"])
    return rows, errors


def group_series(rows: list[dict]) -> list[dict]:
    """One row per series from the per-file rows, with the references resolved to series UIDs.

    RTSTRUCT -> the image series it was contoured on; RTDOSE -> its plan's series (when indexed)
    and the image series sharing its Frame of Reference in the same study; RTPLAN -> its
    structure set's series.

    Examples
    --------
    >>> f = dict(patient_id="P", patient_name="", study_uid="S", frame_of_reference_uid="F", date="",
    ...          description="", referenced_series="", referenced_sop="")
    >>> rows = [f | dict(file="/d/ct/1.dcm", series_uid="CT1", modality="CT", sop_uid="a"),
    ...         f | dict(file="/d/ct/2.dcm", series_uid="CT1", modality="CT", sop_uid="b"),
    ...         f | dict(file="/d/rd.dcm", series_uid="RD1", modality="RTDOSE", sop_uid="c")]
    >>> [(s["series_uid"], s["file_count"], s["referenced_series"], s["path"]) for s in group_series(rows)]
    [('CT1', 2, '', '/d/ct'), ('RD1', 1, 'CT1', '/d/rd.dcm')]
    """
    by_series: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("series_uid"):
            by_series[r["series_uid"]].append(r)
    sop_series = {r["sop_uid"]: r["series_uid"] for r in rows if r.get("sop_uid")}
    images = defaultdict(list)  # (study, frame) -> image series
    for uid, members in by_series.items():
        first = members[0]
        if first["modality"] not in ("RTSTRUCT", "RTDOSE", "RTPLAN", "SEG", "REG", "SR", "RTRECORD"):
            images[(first["study_uid"], first["frame_of_reference_uid"])].append(uid)
    out = []
    for _uid, members in sorted(by_series.items(), key=lambda kv: (kv[1][0]["patient_id"], kv[1][0]["file"])):
        first = members[0]
        refs = [u for m in members for u in m["referenced_series"].split("\\") if u]
        refs += [sop_series[u] for m in members for u in m["referenced_sop"].split("\\") if u in sop_series]
        if first["modality"] == "RTDOSE" or (first["modality"] == "RTSTRUCT" and not refs):
            refs += images.get((first["study_uid"], first["frame_of_reference_uid"]), [])
        files = sorted(m["file"] for m in members)
        path = files[0] if len(files) == 1 else os.path.commonpath([os.path.dirname(f) for f in files])
        out.append(
            {k: first[k] for k in SERIES_COLUMNS if k in first}
            | {"file_count": len(files), "referenced_series": "\\".join(dict.fromkeys(refs)), "path": path}
        )
    return out
