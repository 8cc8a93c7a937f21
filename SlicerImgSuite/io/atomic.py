"""Write files so that a failure leaves nothing half-written.

Everything is first written to a temporary name in the destination folder, then renamed into place.
An operating-system error (no such folder, permission, disk full) becomes one :class:`ImgSuiteError`
that names the destination, not the temporary name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ImgSuiteError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the final suffixes, so writers that choose the format by extension
    (SimpleITK, pydicom, PIL) behave as for the real name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "a.txt").read_text()
    'hello'
    """
    path = Path(path)
    with _naming_os_errors(path):
        if path.is_dir():
            raise ImgSuiteError("is a folder; a file name is needed", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = "".join(path.suffixes) or ""
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would follow the umask
    try:
        yield tmp  # the block's own errors pass through as they are
        with _naming_os_errors(path):
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary folder next to ``path``; its files move into ``path`` only if the block succeeds.

    ``path`` is created when missing. An existing folder is kept with whatever else it holds (a
    user's notes, another series): only the files the block wrote replace their namesakes, as
    plastimatch does when it writes into a folder. On failure nothing in ``path`` changes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "notes.txt").write_text("keep me")
    >>> with atomic_dir(d) as tmp:
    ...     _ = (tmp / "CT0001.dcm").write_bytes(b"new")
    >>> sorted(p.name for p in d.iterdir())
    ['CT0001.dcm', 'notes.txt']
    """
    path = Path(path)
    with _naming_os_errors(path):
        if path.exists() and not path.is_dir():
            raise ImgSuiteError("output folder exists as a file", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp  # the block's own errors pass through as they are
        with _naming_os_errors(path):
            _move_into(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into(tmp: Path, path: Path) -> None:
    if not path.exists():
        os.replace(tmp, path)
        return
    for member in sorted(tmp.rglob("*")):  # parents before their children
        target = path / member.relative_to(tmp)
        if member.is_dir():
            target.mkdir(exist_ok=True)
        else:
            os.replace(member, target)


def write_together(outputs) -> None:
    """Write several outputs all or nothing.

    ``outputs`` holds ``(path, write, is_folder)``: ``write(staging_path)`` fills a temporary file
    (or folder); every destination is checked first, and the staged outputs are renamed into
    place only after all of them were written, so a failure in any leaves none.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> def broken(tmp):
    ...     raise ImgSuiteError("no pixels")
    >>> write_together([(d / "a.txt", lambda tmp: tmp.write_text("a"), False), (d / "b.nrrd", broken, False)])
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: ...b.nrrd: no pixels
    >>> list(d.iterdir())
    []
    """
    outputs = [(Path(path), write, folder) for path, write, folder in outputs if path]
    for path, _, folder in outputs:
        if folder and path.exists() and not path.is_dir():
            raise ImgSuiteError("exists and is not a folder", path)
        if not folder and path.is_dir():
            raise ImgSuiteError("is a folder; a file name is needed", path)
    with contextlib.ExitStack() as stack:
        for path, write, folder in outputs:
            tmp = stack.enter_context((atomic_dir if folder else atomic_path)(path))
            try:
                write(tmp)
            except ImgSuiteError as exc:  # name the user's path, not the staging one
                if exc.path is None or exc.path.startswith(str(tmp)):
                    raise ImgSuiteError(exc.problem, str(path) + (exc.path or str(tmp))[len(str(tmp)) :]) from None
                raise


@contextlib.contextmanager
def _naming_os_errors(path: Path):
    try:
        yield
    except OSError as exc:
        raise ImgSuiteError(f"cannot write: {exc.strerror or exc}", path) from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
