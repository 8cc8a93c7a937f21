"""Where the warm process listens, and the key that keeps a stale or foreign one from being used.

Standard library only: the client imports this on every ``imgsuite`` call.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
# environment variables read when numpy, SimpleITK, numba or the interpreter start: a change needs a new process
IMPORT_TIME_PREFIXES = ("PYTHON", "OMP_", "OPENBLAS_", "MKL_", "NUMBA_", "ITK_", "SITK_", "LD_", "IMGSUITE_SHARED")


class UnsafeFolder(Exception):
    """The socket folder is not this user's alone: the warm process is not used."""


def socket_folder(environ=None, *, create: bool = False) -> Path:
    """``$IMGSUITE_WARM_DIR``, else ``$XDG_RUNTIME_DIR/imgsuite``, else ``/tmp/imgsuite-<uid>``; made 0700 when
    ``create``, and, when it exists, checked to belong to this user with no access for others (a socket
    there runs jobs as this user)."""
    environ = os.environ if environ is None else environ
    if environ.get("IMGSUITE_WARM_DIR"):
        folder = Path(environ["IMGSUITE_WARM_DIR"])
    elif environ.get("XDG_RUNTIME_DIR"):
        folder = Path(environ["XDG_RUNTIME_DIR"]) / "imgsuite"
    else:
        folder = Path("/tmp") / f"imgsuite-{os.getuid()}"
    if create:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return folder  # nothing listens there
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnsafeFolder(f"{folder}: not a folder of this user's alone (mode {stat.filemode(info.st_mode)})")
    return folder


def code_stamp() -> str:
    """The newest modification time and the number of the package's Python and extension files."""
    newest, count = 0, 0
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith((".py", ".so")):
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime_ns)
                count += 1
    return f"{newest}:{count}"


def server_key(environ=None) -> str:
    """A short hash of the interpreter, the package (place, files) and the import-time environment."""
    environ = os.environ if environ is None else environ
    relevant = sorted((k, v) for k, v in environ.items() if k.startswith(IMPORT_TIME_PREFIXES))
    text = repr((os.path.realpath(sys.executable), str(PACKAGE), code_stamp(), relevant))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def socket_path(environ=None, *, create: bool = False) -> Path:
    """The socket of the warm process for this interpreter, package and environment (its folder made when
    ``create``)."""
    return socket_folder(environ, create=create) / f"{server_key(environ)}.sock"
