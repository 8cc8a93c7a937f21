"""Run one job over many cases on a Dask cluster: one task per case, one results table.

A task receives paths and returns small rows; the worker reads its own files. Every case writes
its outputs (and a ``done.json`` with its rows and its inputs' content hash) into
``OUTPUT/cases/<case>/`` atomically. A case that raises, or whose worker dies (over its memory
limit, killed), becomes a row of the ``errors`` table; the other cases go on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress
from .tables import write_table

ERROR_COLUMNS = ["case", "stage", "message"]
WARNING_COLUMNS = ERROR_COLUMNS  # what a done case's job warned (a structure beyond the dose grid counted at 0 Gy ...)


_running = threading.local()  # per thread: (case name, its stage, its warning rows) while a case runs
_printed = warnings.showwarning  # how warnings outside a case are shown


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """The warning hook of a process that runs cases: into the running case's rows, else shown as before."""
    case = getattr(_running, "case", None)
    if case is None:
        return _printed(message, category, filename, lineno, file, line)
    name, stage, told = case
    told.append({"case": name, "stage": stage.current, "message": " ".join(str(message).split())})


@contextmanager
def _recorded(name: str, stage, told: list):
    """Keep what a case's job warns in ``told`` (case, stage, message). One hook for the process, the rows per
    thread (``warnings.catch_warnings`` is not thread-safe, and a worker may run cases in several threads);
    every warning is kept ("always"), also one that the same code line warned for an earlier case."""
    global _printed
    if warnings.showwarning is not _show_warning:
        _printed, warnings.showwarning = warnings.showwarning, _show_warning
        warnings.simplefilter("always")
    _running.case = (name, stage, told)
    try:
        yield
    finally:
        _running.case = None


class _Stage:
    """The step a case is in, for its error row."""

    def __init__(self):
        self.current = "start"

    def __call__(self, name: str) -> None:
        self.current = name


def case_folder(output: str | os.PathLike, case: str) -> Path:
    """``OUTPUT/cases/<case>`` with the case name made safe for a file name.

    Examples
    --------
    >>> case_folder("/out", "PAT 01/a").as_posix()
    '/out/cases/PAT_01_a'
    >>> case_folder("/out", "..").as_posix()  # never the cases folder or the output itself
    '/out/cases/__'
    """
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(case))
    return Path(output) / "cases" / (name if name.strip(".") else "_" * len(name))


def input_hash(case: dict, keys, job: str, options: dict) -> str:
    """SHA-1 of the job, its options and the content of every input file (folders recursively).

    ``keys`` names the case's path columns; ``None`` takes every column that is an existing path.
    """
    h = hashlib.sha1(json.dumps([job, options], sort_keys=True, default=str).encode())
    keys = keys if keys is not None else [k for k, v in case.items() if k != "case" and v and os.path.exists(str(v))]
    for key in sorted(keys):
        for value in str(case.get(key) or "").split(";"):
            if not value:
                continue
            p = Path(value)
            files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
            for f in files:
                h.update(f"{key}:{f.relative_to(p) if p.is_dir() else f.name}\0".encode())
                with open(f, "rb") as stream:  # a missing input: the job's own error says so below
                    for chunk in iter(lambda s=stream: s.read(1 << 20), b""):
                        h.update(chunk)
    return h.hexdigest()


def run_case(job: str, case: dict, output: str, options: dict, resume: bool) -> dict:
    """One cohort task: run ``job`` on ``case`` (or reuse its outputs with ``resume``); never raises.

    With ``resume``, a case is skipped when its ``done.json`` holds the same input hash and every
    output file it lists still exists.

    What the job warned is kept with the case (``warnings``: case, stage, message; in ``done.json`` too): on a
    worker a warning went only to that worker's stderr, naming no case, while its numbers went into the table.

    Returns ``{"case", "status": done|skipped|failed, "rows", "error", "warnings", "seconds"}``.
    """
    from ..io.atomic import atomic_dir
    from .jobs import INPUT_KEYS, JOBS

    start = time.perf_counter()
    stage = _Stage()
    folder = case_folder(output, case["case"])
    result = {"case": case["case"], "status": "done", "rows": [], "error": None, "warnings": []}
    try:
        stage("hash inputs")
        key = input_hash(case, INPUT_KEYS[job], job, options)
        done = folder / "done.json"
        if resume and done.exists():
            meta = json.loads(done.read_text())
            if meta.get("hash") == key and all((folder / f).exists() for f in meta.get("files", [])):
                kept = {"rows": meta["rows"], "warnings": meta.get("warnings", [])}
                return result | kept | {"status": "skipped", "seconds": time.perf_counter() - start}
        told: list[dict] = []
        with atomic_dir(folder) as tmp, _recorded(case["case"], stage, told):
            stage(job)
            rows = JOBS[job](case, Path(tmp), options, stage)
            stage("write outputs")
            files = sorted(str(f.relative_to(tmp)) for f in Path(tmp).rglob("*") if f.is_file())
            meta = {"hash": key, "job": job, "rows": rows, "files": files, "warnings": told}
            (Path(tmp) / "done.json").write_text(json.dumps(meta))
        result |= {"rows": rows, "warnings": told}
    except Exception as exc:  # a failing case is a row of the errors table, never a stopped cohort
        message = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, ImgSuiteError):
            message = f"{type(exc).__name__}: {message}"
        result |= {"status": "failed", "error": {"case": case["case"], "stage": stage.current, "message": message}}
    result["seconds"] = time.perf_counter() - start
    return result


def run_cohort(
    job: str,
    cases: list[dict],
    output: str | os.PathLike,
    *,
    client,
    options: dict | None = None,
    resume: bool = False,
    progress: ProgressCallback | None = None,
) -> dict:
    """Run ``job`` on every case on ``client``'s cluster; write ``results`` and ``errors`` tables.

    Parameters
    ----------
    job : str
        ``dvh``, ``convert``, ``register`` or ``nuclei`` (:data:`SlicerImgSuite.cohort.jobs.JOBS`).
    cases : list of dict
        Each has ``case`` (a unique name) and the input paths the job needs.
    output : path
        Receives ``results.parquet``/``.csv`` (one row per case x structure), ``errors.parquet``/
        ``.csv`` (case, stage, message), ``warnings.parquet``/``.csv`` (the same, for done cases) and
        ``cases/<case>/`` (each case's own outputs).
    client : distributed.Client
        Where the tasks run (:func:`SlicerImgSuite.cohort.cluster.cohort_client`).
    options : dict, optional
        The job's options (``d_percents``, ``v_doses`` for ``dvh`` ...).
    resume : bool
        Skip cases whose outputs exist and whose inputs' content hash is unchanged.
    progress : callable, optional
        ``(fraction, message)`` as cases finish.

    Returns
    -------
    dict
        Counts (``cases``, ``done``, ``skipped``, ``failed``, ``warned``: cases with a row in the ``warnings``
        table (case, stage, message), ``rows``) and ``task_seconds`` (the
        summed time of the tasks, as measured inside them).

    Examples
    --------
    >>> import tempfile
    >>> from distributed import Client
    >>> from SlicerImgSuite.demo.phantom import make_phantom
    >>> p = make_phantom(tempfile.mkdtemp(), shape=(16, 16, 4), spacing=(20.0, 20.0, 3.0))
    >>> case = {"case": "p1", "ct": str(p.ct_dir), "rtstruct": str(p.rtstruct), "dose": str(p.rtdose)}
    >>> with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
    ...     counts = run_cohort("dvh", [case], Path(p.folder) / "out", client=client)
    >>> counts["done"], counts["failed"], counts["rows"]  # one row per structure
    (1, 0, 8)
    """
    from distributed import as_completed

    from .jobs import JOBS

    if job not in JOBS:
        raise ImgSuiteError(f"unknown cohort job {job!r}; use one of {', '.join(JOBS)}")
    names = [str(c.get("case", "")) for c in cases]
    if not all(names):
        raise ImgSuiteError("every case needs a non-empty name (column 'case')")
    folders: dict[Path, str] = {}
    for name in names:  # 'a/b' and 'a_b' would share cases/a_b: one case's outputs over the other's
        other = folders.setdefault(case_folder(output, name), name)
        if other != name or names.count(name) > 1:
            shared = f"cases {other!r} and {name!r} share" if other != name else f"case {name!r} is listed twice:"
            raise ImgSuiteError(f"{shared} the folder {case_folder(output, name).name!r}; give every case its own name")
    progress = progress or no_progress
    options = options or {}
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    futures = {
        client.submit(run_case, job, case, str(output), options, resume, key=f"{job}-{i}-{time.time_ns()}"): case
        for i, case in enumerate(cases)
    }
    results = {}
    # results (small rows) come back as soon as a case ends, so a worker that dies later loses nothing done
    for n, (future, value) in enumerate(as_completed(futures, with_results=True, raise_errors=False), 1):
        name = futures[future]["case"]
        if isinstance(value, tuple):  # an erred task: (type, exception, traceback)
            value = value[1]
        if isinstance(value, BaseException):  # KilledWorker (memory limit, crash), a lost scheduler connection
            value = _lost(name, value)
        if results.get(name, {}).get("status") != "done":  # a result already back stays
            results[name] = value
        progress(min(n, len(cases)) / len(cases), f"{len(results)}/{len(cases)} cases")
    ordered = [results[n] for n in names]
    rows = [row for r in ordered for row in r["rows"]]
    errors = [r["error"] for r in ordered if r["error"]]
    told = [w for r in ordered for w in r.get("warnings", [])]
    write_table(rows, output / "results.parquet", csv=True)
    write_table(errors, output / "errors.parquet", columns=ERROR_COLUMNS, csv=True)
    write_table(told, output / "warnings.parquet", columns=WARNING_COLUMNS, csv=True)
    counts = {s: sum(r["status"] == s for r in ordered) for s in ("done", "skipped", "failed")}
    counts["warned"] = sum(bool(r.get("warnings")) for r in ordered)
    return {"cases": len(cases), **counts, "rows": len(rows), "task_seconds": sum(r["seconds"] for r in ordered)}


def _lost(name: str, exc: Exception) -> dict:
    """The result of a case whose task never came back."""
    if type(exc).__name__ == "KilledWorker":
        message = "its worker died each time it ran this case (over the worker memory limit, or a crash)"
    else:
        message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return {"case": name, "status": "failed", "rows": [], "seconds": 0.0,
            "error": {"case": name, "stage": "worker", "message": message}}  # fmt: skip
