"""``imgsuite review``: the contour review in a browser, served by a small HTTP server of its own.

Security: loopback by default; on any other interface a random token is required on every request (printed
once, in the address). The server answers only its own routes; the only files it hands out are the exports
it wrote (fixed names, :data:`~.review_session.EXPORTS`): no path from the client reaches the file system.
Two reviewers on one server share one state: each decision is applied under a lock and saved at once (last
write per structure wins, the history of every change is kept); the page polls the table to show the
other reviewer's decisions.
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ..errors import ImgSuiteError
from .review_page import PAGE
from .review_session import EXPORTS, ReviewSession
from .serve import _check_address, _is_loopback

TOKEN_PARAMETER = "token"


class ReviewServer(ThreadingHTTPServer):
    """A threading HTTP server holding one :class:`ReviewSession` and the token (None on loopback)."""

    daemon_threads = True

    def __init__(self, address, session: ReviewSession, token: str | None):
        self.session = session
        self.token = token
        self.page = PAGE
        super().__init__(address, ReviewHandler)

    def handle_error(self, request, client_address):
        """A picture the browser no longer wants (a newer click replaced it) closes the socket: not an error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/" + (f"?{TOKEN_PARAMETER}={self.token}" if self.token else "")


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer

    def log_message(self, *args):  # no access log on the terminal
        pass

    def _authorised(self, query: dict) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = query.get(TOKEN_PARAMETER, [""])[0] or self.headers.get("X-Review-Token", "")
        return hmac.compare_digest(given.encode(), token.encode())

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if not self._authorised(query):
            return self._error(HTTPStatus.FORBIDDEN, "a valid token is required")
        session = self.server.session
        one = {k: v[0] for k, v in query.items()}
        try:
            if url.path in ("/", "/index.html"):
                return self._send(HTTPStatus.OK, self.server.page.encode(), "text/html; charset=utf-8")
            if url.path == "/api/table":
                return self._json(
                    {"rows": session.table(), "reviewer": session.reviewer, "dose": session.dose is not None,
                     "measuring": not session.measured.is_set(), "warnings": session.notes}
                )  # fmt: skip
            if url.path == "/api/focus":
                return self._json(session.focus(one.get("name", "")))
            if url.path == "/api/slice":
                picture = session.slice_picture(
                    one.get("view", "axial"),
                    int(one.get("index", 0)),
                    one.get("name") or None,
                    one.get("window") or None,
                    float(one.get("field", 0) or 0),
                )
                self._send(HTTPStatus.OK, picture, "image/jpeg")
                return session.shown.set()  # the reviewer sees a picture: the metrics may take the CPU now
            if url.path == "/api/dvh":
                png = session.dvh_png(one.get("name", ""))
                if png is None:
                    return self._error(HTTPStatus.NOT_FOUND, "no dose in this review")
                return self._send(HTTPStatus.OK, png, "image/png")
            if url.path.startswith("/exports/"):
                return self._export_file(url.path.removeprefix("/exports/"))
        except (ImgSuiteError, ValueError) as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc))
        return self._error(HTTPStatus.NOT_FOUND, "no such page")

    def _export_file(self, name: str) -> None:
        # only the fixed export names; the client's text never becomes a path
        chosen = next((n for n in EXPORTS.values() if n == name), None)
        path = self.server.session.output / chosen if chosen else None
        if path is None or not path.is_file():
            return self._error(HTTPStatus.NOT_FOUND, "no such export")
        kind = "text/html; charset=utf-8" if chosen.endswith(".html") else "application/octet-stream"
        if chosen.endswith(".json"):
            kind = "application/json"
        extra = {} if chosen.endswith(".html") else {"Content-Disposition": f'attachment; filename="{chosen}"'}
        return self._send(HTTPStatus.OK, path.read_bytes(), kind, extra)

    def do_POST(self):  # noqa: N802
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if not self._authorised(query):
            return self._error(HTTPStatus.FORBIDDEN, "a valid token is required")
        try:
            # a negative length read to the end of the stream (a hung thread); a JSON list or number raised
            # AttributeError below (a traceback on the terminal, no answer)
            length = max(0, min(int(self.headers.get("Content-Length", 0) or 0), 64_000))
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            session = self.server.session
            if url.path == "/api/status":
                return self._json(
                    session.set_status(
                        str(body.get("name", "")),
                        str(body.get("status", "")),
                        comment=str(body.get("comment", ""))[:2000],
                        reviewer=str(body.get("reviewer") or "")[:200] or None,
                    )
                )
            if url.path == "/api/export":
                names = session.export()
                return self._json({"files": [f"/exports/{n}" for n in names]})
        except (ImgSuiteError, ValueError) as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc))
        return self._error(HTTPStatus.NOT_FOUND, "no such action")


def make_review_server(session: ReviewSession, host: str = "127.0.0.1", port: int = 8090) -> ReviewServer:
    """A ready (bound, not yet serving) review server; a token is drawn unless ``host`` is a loopback address."""
    _check_address(host, port)
    token = None if _is_loopback(host) else secrets.token_urlsafe(24)
    try:
        return ReviewServer((host, int(port)), session, token)
    except OSError as exc:
        raise ImgSuiteError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def serve_review(session: ReviewSession, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve the review until interrupted; prints the address (with the token, once) when ready.

    The page is served at once; metrics still owed (``open_review(..., measure=False)``) and the DVH pictures are
    computed meanwhile in a thread, and the table fills in when they are.
    """
    server = make_review_server(session, host, port)
    if server.token:
        print(f"imgsuite review: listening on {host}: other machines can reach it with the token", file=sys.stderr)
    print(f"imgsuite review: serving at {server.url} (Ctrl-C stops; decisions are saved in "
          f"{Path(session.state_path)})", flush=True)  # fmt: skip
    session.measure_in_background()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
