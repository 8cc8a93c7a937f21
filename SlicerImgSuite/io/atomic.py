"""Write files so that a failure leaves nothing half-written.

Everything is first written to a temporary name in the destination folder, then renamed into place.
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
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would follow the umask
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    if path.exists() and not path.is_dir():
        raise ImgSuiteError("output folder exists as a file", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if not path.exists():
            os.replace(tmp, path)
            return
        for member in sorted(tmp.rglob("*")):  # parents before their children
            target = path / member.relative_to(tmp)
            if member.is_dir():
                target.mkdir(exist_ok=True)
            else:
                os.replace(member, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
