"""Benchmark: `cohort dvh` on 2 Dask workers vs 1 worker vs a shell loop of single `imgsuite dvh` calls, same run.

40 generated phantom patients (CT 96x96x48 at 3.2x3.2x3 mm, RTSTRUCT with 8 structures, RTDOSE on a 4 mm
grid; see ``SlicerImgSuite/cohort/phantoms.py``) in a nested tree. Reports:

- speed-up from 1 to 2 workers (the run alone, clusters started before the clock);
- Dask's per-task overhead: (1-worker wall - summed task time) / cases, as % of the mean task time;
- the ratio of the shell loop to `cohort dvh` (including the cluster's start-up, as a user pays it);
- the per-case time and the index's files per second, for the sizing model in docs/cohorts.md;
- the machine's own ceiling without Dask: the same task function over the cases in 1 vs 2 plain
  ``multiprocessing`` processes (imports paid before the clock), so Dask's share of a shortfall shows;
- the 1-minute load average before each timed part (the machine is shared: expect noise).

Run: ``PYTHONPATH=. .venv/bin/python bench/cohort.py [--patients 40] [--data DIR]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from SlicerImgSuite.cohort.cases import cases_from_index
from SlicerImgSuite.cohort.cluster import SINGLE_THREAD_ENV, cohort_client, pin_threads
from SlicerImgSuite.cohort.index import build_index
from SlicerImgSuite.cohort.phantoms import make_cohort
from SlicerImgSuite.cohort.runner import run_case, run_cohort


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def cohort_run(cases, out: Path, workers: int) -> dict:
    t0 = time.perf_counter()
    with cohort_client(workers=workers, job="dvh") as client:
        started = time.perf_counter()
        counts = run_cohort("dvh", cases, out, client=client)
        done = time.perf_counter()
    counts["run_s"] = done - started
    counts["with_start_s"] = done - t0
    return counts


def _plain_worker(args) -> float:
    """Run cases one after another in this process (imports already paid); returns the wall seconds."""
    cases, out = args
    t0 = time.perf_counter()
    for c in cases:
        r = run_case("dvh", c, out, {}, False)
        assert r["status"] == "done", r["error"]
    return time.perf_counter() - t0


def _warm(case: dict, out: str, ready) -> None:
    """Pool initializer: one thread per library and one case run, so imports and first calls are paid here;
    then wait for the other workers, so no task starts before every worker is warm."""
    pin_threads()
    run_case("dvh", case, out, {}, False)
    ready.wait()


def plain_processes(cases, out: Path, n: int) -> float:
    """The cases split over ``n`` plain processes (started and warmed before the clock): the ceiling."""
    import multiprocessing as mp

    os.environ.update(SINGLE_THREAD_ENV)
    context = mp.get_context("fork")
    ready = context.Barrier(n + 1)
    with context.Pool(n, initializer=_warm, initargs=(cases[0], str(out / "warm"), ready)) as pool:
        ready.wait()  # every worker warm
        t0 = time.perf_counter()
        pool.map(_plain_worker, [(cases[i::n], str(out / f"p{i}")) for i in range(n)], chunksize=1)
        return time.perf_counter() - t0


def shell_loop(cases, out: Path) -> float:
    """One `imgsuite dvh` process per case, in a bash loop, as a user would write it."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{sys.executable} -m SlicerImgSuite.cli dvh -q --input-rtstruct '{c['rtstruct']}' --input-dose '{c['dose']}' "
        f"--referenced-ct '{c['ct']}' --output-stats '{out}/{c['case']}.csv' || exit 1"
        for c in cases
    ]
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", "\n".join(lines)], check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--data", help="folder for the generated patients (reused when it holds them)")
    args = ap.parse_args()
    root = Path(args.data or tempfile.mkdtemp(prefix="cohort-bench-"))
    tree = root / "tree"
    t0 = time.perf_counter()
    if not tree.exists():
        make_cohort(tree, args.patients, shape=(96, 96, 48), spacing=(3.2, 3.2, 3.0))
    print(f"{args.patients} patients in {tree} ({time.perf_counter() - t0:.0f} s to generate)", flush=True)
    with cohort_client(workers=2) as client:
        (root / "index.files.parquet").unlink(missing_ok=True)  # a fresh index: every header read
        t0 = time.perf_counter()
        counts = build_index(tree, root / "index.parquet", client=client)
        t_index = time.perf_counter() - t0
    print(
        f"[{load()}] index, 2 workers: {counts['files']} files in {t_index:.1f} s ({counts['files'] / t_index:.0f} files/s)"
    )
    cases = cases_from_index(root / "index.parquet")
    assert len(cases) == args.patients

    print(f"[{load()}] cohort dvh, 2 workers ...", flush=True)
    two = cohort_run(cases, root / "out2", 2)
    print(f"[{load()}] cohort dvh, 1 worker ...", flush=True)
    one = cohort_run(cases, root / "out1", 1)
    print(f"[{load()}] plain processes (no Dask), 2 then 1 ...", flush=True)
    plain2 = plain_processes(cases, root / "plain2", 2)
    plain1 = plain_processes(cases, root / "plain1", 1)
    print(f"[{load()}] shell loop of imgsuite dvh ...", flush=True)
    shell = shell_loop(cases, root / "shell")
    print(f"[{load()}] done", flush=True)

    n = len(cases)
    per_case = one["task_seconds"] / n
    overhead = (one["run_s"] - one["task_seconds"]) / n
    for name, r in (("2 workers", two), ("1 worker", one)):
        assert r["failed"] == 0 and r["rows"] == 8 * n, r
        print(
            f"{name:10s}: run {r['run_s']:6.1f} s, with cluster start {r['with_start_s']:6.1f} s, "
            f"task time summed {r['task_seconds']:6.1f} s"
        )
    print(f"shell loop: {shell:6.1f} s ({shell / n:.2f} s per case)")
    print(f"per-case task time (1 worker): {per_case:.3f} s")
    print(f"speed-up 1 -> 2 workers (run): {one['run_s'] / two['run_s']:.2f}x")
    print(f"no Dask, plain processes: 1 {plain1:.1f} s, 2 {plain2:.1f} s, machine ceiling {plain1 / plain2:.2f}x")
    print(f"Dask overhead per task (1 worker): {1000 * overhead:.1f} ms = {100 * overhead / per_case:.1f} % of a task")
    print(f"shell loop / cohort 2 workers (with start-up): {shell / two['with_start_s']:.2f}x")
    print(f"shell loop / cohort 1 worker (with start-up): {shell / one['with_start_s']:.2f}x")


if __name__ == "__main__":
    main()
