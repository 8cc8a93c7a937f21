"""Bounded, deterministic fuzz test: damaged DICOM series, RTSTRUCTs, RTDOSEs, command files, ENVI/.hsi,
projection sets, TIFFs and radiographs run through ``imgsuite`` in this process.

For every case: exit 2 with one line naming a file of the case (or exit 0 only where the damage may be
benign, with a readable, finite output), no traceback, no hang, nothing left after a failure, nothing
written outside the output path, no input changed. The cases are in ``fuzz_cases.py``; the same cases go
through plastimatch in ``bench/fuzz_vs_plastimatch.py``.
"""

from __future__ import annotations

import collections

import fuzz_cases
import pytest

KINDS = ["dicom", "rtstruct", "rtdose", "cmdfile", "envi", "hsi", "projections", "tiff", "radiograph"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return fuzz_cases.all_cases(tmp_path_factory.mktemp("fuzz"))


def test_every_kind_is_fuzzed(cases):
    counts = collections.Counter(c.kind for c in cases)
    assert sorted(counts) == sorted(KINDS)
    assert sum(counts.values()) >= 300 and min(counts.values()) >= 20, counts


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_inputs_fail_cleanly(cases, kind):
    outcomes = collections.Counter()
    failures = []
    for case in (c for c in cases if c.kind == kind):
        outcome = fuzz_cases.run_imgsuite(case)
        outcomes[outcome.code] += 1
        if outcome.problems:
            failures.append(f"{case.name} (exit {outcome.code}): {'; '.join(outcome.problems)}")
    print(f"{kind}: exits {dict(outcomes)}")
    assert not failures, "\n".join(failures)
    assert outcomes[2] > 0  # the damage was seen
