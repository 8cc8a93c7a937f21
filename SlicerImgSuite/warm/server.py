"""The warm process: import the job packages once, then fork a child per ``imgsuite`` call.

Run by :func:`SlicerImgSuite.warm.client.start_server` as
``python -m SlicerImgSuite.warm.server SOCKET --idle MINUTES``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import time
import traceback
from pathlib import Path

from .paths import code_stamp

# packages whose modules are not imported ahead: MRML adapters, browser, cohort pools, the demo, this one
_NOT_PRELOADED = ("web", "cohort", "demo", "mrml", "warm")


def preload() -> int:
    """Import every job module (numpy, SimpleITK, pydicom, scipy, numba kernels with them); how many."""
    import SlicerImgSuite

    count = 0
    for info in pkgutil.walk_packages(SlicerImgSuite.__path__, "SlicerImgSuite."):
        parts = info.name.split(".")
        if parts[1] in _NOT_PRELOADED or parts[-1] in ("nodes", "demo", "__main__"):
            continue
        with contextlib.suppress(ImportError):  # an optional extra that is not installed
            importlib.import_module(info.name)
            count += 1
    return count


def load_compiled_kernels() -> int:
    """Prepare numba once for every job: its typing and target contexts (about 0.7 s a process) and every
    serial kernel of the package that numba's on-disk cache holds. Parallel kernels are left to load in the
    job (some 30 ms each): loading one here would start numba's OpenMP pool, which a fork may not inherit.
    This reads numba's cache index, not a public interface: if it changes, kernels load in each job as
    before. How many kernels were loaded."""
    if "numba" not in sys.modules:
        return 0
    from numba.core.dispatcher import Dispatcher
    from numba.core.registry import cpu_target

    cpu_target.typing_context.refresh()
    cpu_target.target_context.refresh()
    kernels = {id(v): v for name, m in list(sys.modules.items()) if name.startswith("SlicerImgSuite.")
               for v in vars(m).values() if isinstance(v, Dispatcher) and not v.targetoptions.get("parallel")}  # fmt: skip
    loaded = 0
    for kernel in kernels.values():
        with contextlib.suppress(Exception):  # a changed numba: leave the kernel to load on first call
            magic = kernel.targetctx.codegen().magic_tuple()
            for sig, target, *_ in kernel._cache._cache_file._load_index():  # (signature, target, stamps)
                if target == magic and tuple(sig) not in kernel.overloads:
                    kernel.add_overload(kernel._cache.load_overload(sig, kernel.targetctx))
                    loaded += 1
    return loaded


def _listen(path: Path) -> socket.socket:
    """Listen at ``path``, appearing there only once ready (bound under a temporary name, then renamed)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(temporary))
    listener.listen(64)
    os.rename(temporary, path)
    return listener


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """One length-prefixed JSON message and the file descriptors sent with it."""
    header, fds, _, _ = socket.recv_fds(conn, 4, 3)
    if len(header) < 4:
        raise ConnectionError("no request")
    size = struct.unpack("!I", header)[0]
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("request cut short")
        data += chunk
    return json.loads(data), fds


def _reply(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # the caller has gone (killed): the job's status is dropped
        conn.sendall(json.dumps(message).encode() + b"\n")


class WarmServer:
    """The accept loop: control requests, one forked child per job, reaping with the exit status."""

    def __init__(self, path: Path, idle_s: float):
        self.path, self.idle_s = path, idle_s
        self.jobs: dict[int, socket.socket] = {}
        self.served, self.started, self.last = 0, time.time(), time.monotonic()
        self.stopping = False

    def serve(self) -> None:
        self.stamp = code_stamp()
        self.modules = preload()
        self.kernels = load_compiled_kernels()
        self.listener = _listen(self.path)
        self.inode = os.stat(self.path).st_ino
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through the wakeup fd
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        print(f"imgsuite warm: pid {os.getpid()} listening at {self.path} ({self.modules} modules, {self.kernels} kernels)", flush=True)
        try:
            while not self._should_stop():
                ready, _, _ = select.select([self.listener, self.wake_r], [], [], 5.0)
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 512)
                self._reap()
                if self.listener in ready:
                    self._accept()
        finally:
            self._close()

    def _should_stop(self) -> bool:
        if self.stopping:
            return True
        try:
            ours = os.stat(self.path).st_ino == self.inode
        except FileNotFoundError:
            ours = False
        idle = not self.jobs and time.monotonic() - self.last > self.idle_s
        return not ours or idle or code_stamp() != self.stamp  # the package changed: its callers use a new key

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10.0)  # a caller that connects and sends nothing does not hold the loop
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError, ConnectionError):
            conn.close()
            return
        self.last = time.monotonic()
        if "control" in request:
            self._control(conn, request["control"])
            return
        pid = os.fork()
        if pid == 0:
            run_job(request, fds, close=[self.listener, conn, *self.jobs.values()], close_fds=[self.wake_r, self.wake_w])
        for fd in fds:
            os.close(fd)
        self.served += 1
        self.jobs[pid] = conn
        _reply(conn, {"pid": pid})

    def _control(self, conn: socket.socket, action: str) -> None:
        info = {"pid": os.getpid(), "socket": str(self.path), "started": self.started, "jobs_served": self.served,
                "jobs_running": len(self.jobs), "modules": self.modules, "kernels": self.kernels, "idle_s": self.idle_s}  # fmt: skip
        if action == "stop":
            self.stopping = True
        _reply(conn, info)
        conn.close()

    def _reap(self) -> None:
        while self.jobs:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            conn = self.jobs.pop(pid, None)
            if conn is not None:
                _reply(conn, {"status": code if code >= 0 else 128 - code, "maxrss_kb": usage.ru_maxrss})
                conn.close()
            self.last = time.monotonic()

    def _close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self.inode:
                self.path.unlink()
        self.listener.close()
        while self.jobs:  # stopped with jobs running: let them finish and report
            time.sleep(0.05)
            self._reap()


def run_job(request: dict, fds: list[int], *, close: list, close_fds: list[int]) -> None:
    """In the forked child: become the caller's process (streams, folder, environment, umask), run the
    command as ``imgsuite`` would, and exit with its status. Never returns."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sock in close:
            sock.close()
        for fd in close_fds:
            os.close(fd)
        _adopt_streams(fds)
        _adopt_caller(request)
        status = _run_command(list(request["argv"]))
    except KeyboardInterrupt:  # Ctrl-C before the command started: a cancel all the same
        print("imgsuite: cancelled", file=sys.stderr)
        status = 130
    except BaseException:  # as the interpreter prints an uncaught error (--debug, the caller's folder gone, ...)
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def _adopt_streams(fds: list[int]) -> None:
    """The caller's stdin, stdout and stderr as this process's 0, 1 and 2 (and Python's streams on them)."""
    for target, fd in enumerate(fds[:3]):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115 (the process's own streams)
    sys.stdout = sys.__stdout__ = open(1, "w", closefd=False)  # noqa: SIM115 (line-buffered on a terminal)
    sys.stderr = sys.__stderr__ = open(2, "w", closefd=False, errors="backslashreplace", buffering=1)  # noqa: SIM115


def _adopt_caller(request: dict) -> None:
    """The caller's folder, environment and umask; what the imports cached from the server's environment
    (the temporary folder) is looked up again, and numpy's global generator reseeded as a new process's is
    (Python's ``random`` reseeds itself after a fork)."""
    import tempfile

    import numpy as np

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(request["umask"])
    tempfile.tempdir = None
    np.random.seed()


def _run_command(argv: list[str]) -> int:
    """``imgsuite argv`` in this process: its exit status (as the interpreter would give it)."""
    from ..cli import main

    sys.argv = ["imgsuite", *argv]
    try:
        return int(main(argv) or 0) & 0xFF
    except SystemExit as exc:  # argparse's usage errors, --help
        if exc.code is None or isinstance(exc.code, int):
            return (exc.code or 0) & 0xFF
        print(exc.code, file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m SlicerImgSuite.warm.server")
    parser.add_argument("socket", type=Path)
    parser.add_argument("--idle", type=float, default=15.0, help="minutes without a job before stopping")
    args = parser.parse_args(argv)
    path = args.socket.resolve()
    os.chdir("/")  # hold no caller's folder (each job changes to its caller's)
    WarmServer(path, idle_s=args.idle * 60.0).serve()


if __name__ == "__main__":
    main()
