"""The warm process (``imgsuite warm``): a job run through it behaves as the same job run cold.

Each test runs the real program (``python -m SlicerImgSuite.cli``, as the console script does) against a real
warm process in a private socket folder, and compares output, files and exit status with ``IMGSUITE_WARM=0``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.warm.client import control
from SlicerImgSuite.warm.paths import server_key, socket_path

PROGRAM = [sys.executable, "-m", "SlicerImgSuite.cli"]


def _env(folder: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "IMGSUITE_WARM"}
    return {**env, "IMGSUITE_WARM_DIR": str(folder), **extra}


def _run(args, env, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*PROGRAM, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A running warm process in a private folder: (its environment, the socket), stopped afterwards."""
    folder = tmp_path_factory.mktemp("warm")
    folder.chmod(0o700)
    env = _env(folder)
    started = _run(["warm", "start", "--idle", "5"], env)
    assert started.returncode == 0, started.stderr
    path = socket_path(env)
    yield env, path
    _run(["warm", "stop"], env)


def _served(path: Path) -> int:
    return control(path, "status")["jobs_served"]


@pytest.fixture(scope="module")
def ct(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.integers(-1000, 1500, (12, 20, 24)).astype(np.int16))
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((-10.0, 4.0, 30.0))
    path = tmp_path_factory.mktemp("ct") / "ct.mha"
    sitk.WriteImage(image, str(path))
    return path


def test_a_job_through_the_warm_process_equals_the_cold_job(warm, ct):
    env, path = warm
    before = _served(path)
    hot = _run(["stats", ct], env)
    cold = _run(["stats", ct], {**env, "IMGSUITE_WARM": "0"})
    assert _served(path) == before + 1  # the first went through the warm process, the second did not
    assert (hot.returncode, hot.stdout, hot.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert "AVE" in hot.stdout and "NUMVOX 5760" in hot.stdout


def test_errors_keep_their_one_line_and_exit_status(warm, tmp_path):
    env, path = warm
    missing = tmp_path / "nothing.mha"
    hot = _run(["header", missing], env)
    cold = _run(["header", missing], {**env, "IMGSUITE_WARM": "0"})
    assert hot.returncode == cold.returncode == 2
    assert hot.stderr == cold.stderr and len(hot.stderr.strip().splitlines()) == 1
    usage = _run(["header", "--no-such-option", missing], env)
    assert usage.returncode == 2 and "unrecognized arguments" in usage.stderr


def test_the_callers_folder_umask_and_environment_are_the_jobs(warm, ct, tmp_path):
    env, path = warm
    before = _served(path)
    result = subprocess.run(
        ["sh", "-c", f"umask 027 && exec {' '.join(PROGRAM)} threshold --input {ct} --above 0 --output out.mha"],
        env={**env, "IMGSUITE_WARM_CANARY": "1"}, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _served(path) == before + 1
    written = tmp_path / "out.mha"  # relative to the caller's folder, not the warm process's ("/")
    assert written.exists() and (written.stat().st_mode & 0o777) == 0o640
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(written)))
    assert np.array_equal(mask > 0, sitk.GetArrayFromImage(sitk.ReadImage(str(ct))) > 0)


def test_a_different_import_time_environment_does_not_use_this_process(warm, ct):
    env, path = warm
    other = {**env, "OMP_NUM_THREADS": "3" if env.get("OMP_NUM_THREADS") != "3" else "4"}
    assert server_key(other) != server_key(env)
    before = _served(path)
    result = _run(["header", ct], other)
    assert result.returncode == 0 and "Size = 24 20 12" in result.stdout
    assert _served(path) == before  # ran in the calling process


def test_jobs_run_side_by_side(warm, ct, tmp_path):
    env, path = warm
    before = _served(path)
    procs = [
        subprocess.Popen([*PROGRAM, "header", str(ct)], env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4 and len(set(outputs)) == 1
    assert _served(path) == before + 4


def test_each_job_starts_from_a_fresh_numpy_seed(warm, tmp_path):
    """Two forks of one process would otherwise draw the same numbers: synth's noise pattern must differ."""
    env, path = warm
    for name in ("a", "b"):
        args = ["synth", "--pattern", "noise", "--noise-std", "10", "--dim", "8 8 8", "--output", tmp_path / f"{name}.mha"]
        result = _run(args, env)
        assert result.returncode == 0, result.stderr
    a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"{n}.mha"))) for n in "ab")
    assert not np.array_equal(a, b)


def test_stop_removes_the_socket(tmp_path):
    folder = tmp_path / "own"
    env = _env(folder, IMGSUITE_WARM="1")
    first = _run(["header", "--help"], env)  # --help runs in the caller: starts nothing
    assert first.returncode == 0 and not folder.exists()
    started = _run(["warm", "status"], {**env})
    assert "no warm process" in started.stdout
    path = socket_path(env)
    assert _run(["warm", "start", "--idle", "1"], env).returncode == 0 and path.exists()
    stopped = _run(["warm", "stop"], env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.exists()


def test_a_folder_others_can_enter_is_refused(tmp_path, ct):
    """A socket in a folder others can write could be anyone's: no job is sent there, and start refuses."""
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    env = _env(folder, IMGSUITE_WARM="1")
    job = _run(["header", ct], env)
    assert job.returncode == 0 and "Size = 24 20 12" in job.stdout and not list(folder.iterdir())
    start = _run(["warm", "start"], env)
    assert start.returncode == 2 and "not a folder of this user's alone" in start.stderr


def test_ctrl_c_reaches_the_job_and_is_a_cancel(warm, ct, tmp_path):
    """SIGINT to the caller goes to the job's process: it stops, says "cancelled", exits 130, writes nothing."""
    env, path = warm
    out = tmp_path / "views"
    args = ["drr", "-a", "3000", "-N", "0.12", "-r", "64 64", "-z", "200 200", "-t", "pfm", "-O", out / "image", ct]
    proc = subprocess.Popen([*PROGRAM, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while control(path, "status")["jobs_running"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # 3000 views take seconds even on a quiet machine
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip() == "imgsuite drr: cancelled"
    assert not out.exists() or not any(out.iterdir())
