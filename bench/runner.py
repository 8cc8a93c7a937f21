"""A small benchmark runner: our command and the anchors' commands, in one run, alternating.

Each case is a command line run as a child process; wall time and the child's own peak RSS (from
``wait4``) are recorded per repeat; the table prints medians and the ratio of each case to the
first (ours), so contention on a shared machine hits both sides alike.

The command is started by a small wrapper process (this file with ``--child``): a process that
execs straight from a large parent inherits the parent's peak RSS in its accounting, so a
benchmark that generated big inputs in memory would otherwise report that for every case.

Usage from a benchmark script::

    from runner import Case, compare
    compare([Case("imgsuite", ["imgsuite", "convert", ...]), Case("plastimatch", ["plastimatch", ...])])
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("IMGSUITE_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass
class Case:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    times: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


def run_once(case: Case) -> None:
    env = dict(os.environ, **(case.env or {}))
    result = subprocess.run(
        [sys.executable, __file__, "--child", *case.argv], capture_output=True, env=env
    )
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace")[-2000:]
        raise SystemExit(f"benchmark case {case.name!r} failed ({result.returncode}): {' '.join(case.argv)}\n{err}")
    wall, rss_kib = result.stdout.decode().split()[-2:]
    case.times.append(float(wall))
    case.rss_mb.append(float(rss_kib) / 1024.0)


def _child(argv: list[str]) -> int:
    """Run ``argv``; print its wall time (s) and peak RSS (KiB) on the last line of stdout.

    A job run by a warm ``imgsuite`` process reports its own peak RSS (the forked job's, which counts the
    pages it shares with the warm process) through ``IMGSUITE_WARM_STATS``: the larger of that and the
    caller's is printed."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as stats:
        os.environ["IMGSUITE_WARM_STATS"] = stats.name
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        job_kib = max((int(line) for line in stats.read().split()), default=0)
    print(f"{wall:.6f} {max(usage.ru_maxrss, job_kib)}")
    return os.waitstatus_to_exitcode(status)


def precompile() -> None:
    """Byte-compile the package the runs import, as ``pip install`` does: with PYTHONDONTWRITEBYTECODE set (as in
    this workspace) every cold run would otherwise compile our modules from source (0.1-0.2 s), a cost that an
    installed package and plastimatch do not have."""
    import compileall

    compileall.compile_dir(str(REPO / "SlicerImgSuite"), quiet=1)


@contextlib.contextmanager
def warm_imgsuite(folder: Path):
    """A warm ``imgsuite`` process (``imgsuite warm start``) in a private socket folder for the benchmark's
    duration; yields the environment that makes a case use it (cold cases set ``IMGSUITE_WARM=0``)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {"IMGSUITE_WARM_DIR": str(folder), "IMGSUITE_WARM": "1"}
    subprocess.run([*imgsuite(), "warm", "start", "--idle", "30"], env=dict(os.environ, **env), check=True)
    try:
        yield env
    finally:
        subprocess.run([*imgsuite(), "warm", "stop"], env=dict(os.environ, **env), check=False)


def compare(cases: list[Case], repeats: int = 3, title: str = "", warmup: bool = True) -> list[Case]:
    """Run every case ``repeats`` times, alternating, and print medians and ratios to the first case."""
    if warmup:
        for case in cases:
            run_once(case)
            case.times.clear()
            case.rss_mb.clear()
    for r in range(repeats):
        # alternate the order, so neither side always runs right after the other one
        for case in cases if r % 2 == 0 else cases[::-1]:
            run_once(case)
    base = statistics.median(cases[0].times)
    print(f"\n## {title or 'benchmark'}  ({repeats} repeats, median; load average {os.getloadavg()[0]:.1f})")
    print(f"{'case':<28}{'wall s':>10}{'peak RSS MB':>14}{'ratio to ' + cases[0].name:>24}")
    for case in cases:
        t = statistics.median(case.times)
        print(f"{case.name:<28}{t:>10.3f}{max(case.rss_mb):>14.0f}{t / base:>24.2f}")
    for i, first in enumerate(cases):
        for case in cases[i + 1 :]:
            ratio = statistics.median(first.times) / statistics.median(case.times)
            print(f"ratio {first.name}/{case.name}: {ratio:.2f}")
    sys.stdout.flush()
    return cases


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    sys.exit(_child(sys.argv[2:]))


def imgsuite() -> list[str]:
    """The imgsuite command of the interpreter running the benchmark."""
    return [sys.executable, "-m", "SlicerImgSuite.cli"]
