"""The ``imgsuite`` side of the warm process: send one job, relay signals, return its exit status.

Standard library only: this runs on every ``imgsuite`` call before anything heavy is imported.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from .paths import UnsafeFolder, socket_path

# Linux only: descriptor passing needs a POSIX system, and on macOS a fork of a process that has loaded
# system frameworks (Accelerate under numpy) is not safe
SUPPORTED = sys.platform.startswith("linux")
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT) if SUPPORTED else ()


def connect(path: Path) -> socket.socket | None:
    """A connection to the warm process listening at ``path``, or None when none does."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def send_message(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    """A length-prefixed JSON message; ``fds`` go with its first bytes (SCM_RIGHTS)."""
    data = json.dumps(message).encode()
    socket.send_fds(sock, [struct.pack("!I", len(data))], list(fds))
    sock.sendall(data)


def read_lines(sock: socket.socket):
    """The JSON lines the warm process sends (the child's pid, then its exit status), until it closes."""
    with sock.makefile("rb") as stream:
        for line in stream:
            yield json.loads(line)


def run_warm(argv: list[str]) -> int | None:
    """Run ``imgsuite argv`` in the warm process; its exit status, or None when none is running (and
    ``IMGSUITE_WARM=1`` did not start one) so that the caller runs the job itself."""
    if not SUPPORTED:
        return None
    try:
        path = socket_path()
    except (UnsafeFolder, OSError):
        return None
    sock = connect(path)
    if sock is None and os.environ.get("IMGSUITE_WARM") == "1":
        sock = start_server(socket_path(create=True)) and connect(path)
    if sock is None:
        return None
    with sock:
        request = {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ), "umask": _umask()}
        send_message(sock, request, _standard_streams())
        return _wait_for_job(sock)


def _wait_for_job(sock: socket.socket) -> int:
    """Relay signals to the job's process until the warm process reports how it ended."""
    child = None

    def relay(signum, frame):
        if child is not None:
            os.kill(child, signum)

    previous = {sig: signal.signal(sig, relay) for sig in _FORWARDED}
    try:
        for message in read_lines(sock):
            if "pid" in message:
                child = message["pid"]
            elif "status" in message:
                _record_usage(message)
                return message["status"]
        print("imgsuite: the warm process ended before the job did", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _record_usage(message: dict) -> None:
    """For benchmarks: the job process's peak RSS, appended to ``$IMGSUITE_WARM_STATS`` when set."""
    target = os.environ.get("IMGSUITE_WARM_STATS")
    if target:
        with open(target, "a") as stream:
            stream.write(f"{message.get('maxrss_kb', 0)}\n")


def _standard_streams() -> list[int]:
    """Descriptors 0, 1 and 2, with the null device for any that is closed."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def start_server(path: Path, idle_minutes: float = 15.0, timeout_s: float = 60.0) -> bool:
    """Start a warm process for ``path`` in a session of its own; True once it listens."""
    log = path.with_suffix(".log")
    with open(log, "ab") as stream:
        subprocess.Popen(
            [sys.executable, "-m", "SlicerImgSuite.warm.server", str(path), "--idle", str(idle_minutes)],
            stdin=subprocess.DEVNULL, stdout=stream, stderr=stream, start_new_session=True, close_fds=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        probe = connect(path)
        if probe is not None:
            probe.close()
            return True
        time.sleep(0.02)
    return False


def control(path: Path, action: str) -> dict | None:
    """Ask the warm process at ``path`` for ``status`` or to ``stop``; its answer, or None if none runs."""
    sock = connect(path)
    if sock is None:
        return None
    with sock:
        send_message(sock, {"control": action})
        return next(read_lines(sock), None)
