"""``imgsuite view`` with a viewer of its own for every browser tab (per-session state).

A trame server keeps one state for all its clients, and trame-slicer renders one MRML scene on the server: the
layout, window/level, slice positions and structure visibility chosen in one tab would change every other tab.
trame's answer for several users is one server process per session (its launcher); this module is that launcher,
kept small: a plain HTTP server on the requested address answers ``/`` with a redirect to a viewer process of
its own (``imgsuite view --shared`` on a free port of the same interface). One viewer is always loaded ahead, so
a new tab does not wait for the scene to load; a viewer no tab has used for ``idle_s`` seconds exits by itself
(trame's idle time-out).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..errors import ImgSuiteError

READY_TIMEOUT_S = 180.0


class _Viewer:
    """One ``imgsuite view --shared`` process; ``ready`` is set when it serves (or exited)."""

    def __init__(self, arguments: list[str], host: str):
        with socket.socket() as s:  # a free port on the interface the viewer will listen on
            s.bind((host, 0))
            self.port = s.getsockname()[1]
        command = [sys.executable, "-m", "SlicerImgSuite.cli", "view", *arguments, "--shared", "--quiet",
                   "--host", host, "--port", str(self.port)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.ready = threading.Event()
        self.serving = False
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        for line in self.process.stdout:
            if "serving" in line and not self.ready.is_set():
                self.serving = True
                self.ready.set()
        self.ready.set()  # it exited (idle, or failed before serving)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()


class TabServer(ThreadingHTTPServer):
    """The launcher: ``/`` sends each browser tab to a viewer process of its own."""

    daemon_threads = True

    def __init__(self, host: str, port: int, arguments: list[str]):
        self.arguments, self.host = arguments, host
        self.viewers: list[_Viewer] = []
        self.lock = threading.Lock()
        self.spare = self._start_viewer()
        try:
            super().__init__((host, int(port)), _TabHandler)
        except OSError as exc:
            self.spare.stop()
            raise ImgSuiteError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc

    def _start_viewer(self) -> _Viewer:
        viewer = _Viewer(self.arguments, self.host)
        self.viewers.append(viewer)
        return viewer

    def take(self) -> int:
        """The port of a loaded viewer no tab has had yet; the next one starts loading at once."""
        with self.lock:
            viewer = self.spare
            if not viewer.alive() and viewer.ready.is_set():  # timed out while nobody came: start another
                viewer = self._start_viewer()
            self.spare = self._start_viewer()
        if not viewer.ready.wait(READY_TIMEOUT_S) or not viewer.serving:
            raise ImgSuiteError("the viewer did not start")
        return viewer.port

    def wait_first(self) -> None:
        """Block until the viewer loaded ahead serves (the address is printed then); raise if it failed."""
        self.spare.ready.wait(READY_TIMEOUT_S)
        if not self.spare.serving:
            raise ImgSuiteError("the viewer did not start (run with --shared to see why)")

    def stop_viewers(self) -> None:
        for viewer in self.viewers:
            viewer.stop()


class _TabHandler(BaseHTTPRequestHandler):
    server: TabServer

    def log_message(self, *args):  # no access log on the terminal
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.split("?")[0] not in ("/", "/index.html"):
            return self._plain(HTTPStatus.NOT_FOUND, "no such page")
        try:
            port = self.server.take()
        except ImgSuiteError as exc:
            return self._plain(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        host = _hostname(self.headers.get("Host"), self.server.host)  # the name the browser used for us
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", f"http://{host}:{port}/")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _plain(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _hostname(header: str | None, default: str) -> str:
    """The host part of a ``Host`` header (``name:port``, ``[v6]:port``)."""
    if not header:
        return default
    if header.startswith("["):
        return header[: header.index("]") + 1]
    return header.split(":")[0]


def _stop_on_sigterm(*_):
    raise KeyboardInterrupt


def serve_tabs(arguments: list[str], title: str, host: str, port: int, open_browser: bool = False) -> None:
    """Serve ``imgsuite view ARGUMENTS`` with one viewer process per browser tab until interrupted."""
    server = TabServer(host, port, arguments)
    try:
        server.wait_first()
        url = f"http://{host}:{server.server_address[1]}/"
        print(f"imgsuite view: serving {title} at {url} (Ctrl-C stops; each browser tab gets a viewer of its own)",
              flush=True)  # fmt: skip
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        signal.signal(signal.SIGTERM, _stop_on_sigterm)  # the viewers stop with the launcher
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.stop_viewers()
