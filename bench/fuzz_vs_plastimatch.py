"""The fuzz test's damaged inputs through imgsuite (in-process) and plastimatch (where it has the command).

Counts, per input kind: imgsuite exits by code, tracebacks, hangs and the fuzz test's problems; plastimatch
exits by code, deaths on a signal (crashes), time-outs, and exit 0 on inputs that can only be wrong
(``expect == "fail"``). plastimatch has no command for ENVI/.hsi, tomosynthesis or nuclei: those kinds
run through imgsuite only.

Run: .venv/bin/python bench/fuzz_vs_plastimatch.py [--timeout 60] [--json counts.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Testing"))

import fuzz_cases  # noqa: E402


def run_plastimatch(case, timeout: float) -> str:
    """``exit N``, ``signal NAME`` or ``timeout``; plastimatch's outputs are removed afterwards."""
    before = set(fuzz_cases.snapshot(case.folder))
    try:
        done = subprocess.run(["plastimatch", *case.plastimatch], capture_output=True, timeout=timeout)
        code = done.returncode
        result = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
    except subprocess.TimeoutExpired:
        result = "timeout"
    for path in sorted(set(fuzz_cases.snapshot(case.folder)) - before, reverse=True):  # as imgsuite will find it
        shutil.rmtree(path, ignore_errors=True) if Path(path).is_dir() else Path(path).unlink(missing_ok=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per plastimatch run (default 60)")
    parser.add_argument("--json", help="also write the counts here")
    args = parser.parse_args()
    have_plastimatch = shutil.which("plastimatch") is not None
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        start = time.perf_counter()
        cases = fuzz_cases.all_cases(root)
        made = time.perf_counter() - start
        ours = collections.defaultdict(collections.Counter)
        theirs = collections.defaultdict(collections.Counter)
        problems = []
        start = time.perf_counter()
        for case in cases:
            if have_plastimatch and case.plastimatch:
                result = run_plastimatch(case, args.timeout)
                theirs[case.kind][result] += 1
                if result == "exit 0" and case.expect == "fail":
                    theirs[case.kind]["exit 0 on a must-fail input"] += 1
            outcome = fuzz_cases.run_imgsuite(case)
            ours[case.kind][f"exit {outcome.code}" if isinstance(outcome.code, int) else outcome.code] += 1
            if outcome.problems:
                ours[case.kind]["with problems"] += 1
                problems.append(f"{case.kind}: {case.name}: {'; '.join(outcome.problems)}")
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total_ours = sum((c for c in ours.values()), collections.Counter())
    total_theirs = sum((c for c in theirs.values()), collections.Counter())
    print(f"{len(cases)} cases (made in {made:.1f} s, run in {seconds:.1f} s; load average {os.getloadavg()[0]:.1f})")
    print(f"imgsuite:    {dict(total_ours)}")
    print(f"plastimatch: {dict(total_theirs)} on {sum(1 for c in cases if c.plastimatch)} cases it has a command for")
    for kind in ours:
        print(f"  {kind:12s} imgsuite {dict(ours[kind])}  plastimatch {dict(theirs.get(kind, {}))}")
    for line in problems:
        print("problem:", line)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"imgsuite": ours, "plastimatch": theirs, "problems": problems}, indent=1)
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
