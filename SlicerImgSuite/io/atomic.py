"""Write files so that a failure leaves nothing half-written.

Everything is first written to a temporary name in the destination folder, then renamed into place.
An operating-system error (no such folder, permission, disk full) becomes one :class:`ImgSuiteError`
that names the destination, not the temporary name.
"""

from __future__ import annotations

import contextlib
import contextvars
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
    refuse_input(path)
    with _naming_os_errors(path):
        if path.is_dir():
            raise ImgSuiteError("is a folder; a file name is needed", path)
        created = _make_parent(path)
        suffix = "".join(path.suffixes) or ""
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would follow the umask
    done = False
    try:
        yield tmp  # the block's own errors pass through as they are
        with _naming_os_errors(path):
            os.replace(tmp, path)
        done = True
    finally:
        tmp.unlink(missing_ok=True)
        if not done:
            _remove_empty(created)


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
        created = _make_parent(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    done = False
    try:
        yield tmp  # the block's own errors pass through as they are
        with _naming_os_errors(path):
            _move_into(tmp, path)
        done = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            _remove_empty(created)


def _move_into(tmp: Path, path: Path) -> None:
    for member in tmp.rglob("*"):
        if member.is_file():
            refuse_input(path / member.relative_to(tmp))
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


# The inputs of the job now running, (files, folders): no output may land on one (see ``protected_inputs``).
_INPUTS: contextvars.ContextVar[tuple[frozenset, frozenset]] = contextvars.ContextVar(
    "imgsuite_inputs", default=(frozenset(), frozenset())
)
# Header formats whose pixels live in a companion file of the same stem (ENVI .hdr + .raw, MetaImage .mhd + .raw).
_HEADER_SUFFIXES = {".hdr", ".mhd"}


def input_files(paths) -> tuple[frozenset, frozenset]:
    """The real paths inputs occupy: (files, with a header format's companion data files; folders)."""
    files, folders = set(), set()
    for path in paths:
        path = Path(path)
        if path.is_dir():
            folders.add(os.path.realpath(path))
        elif path.is_file():
            files.add(os.path.realpath(path))
            if path.suffix.lower() in _HEADER_SUFFIXES:
                files.update(os.path.realpath(p) for p in path.parent.glob(f"{path.stem}*") if p.is_file())
    return frozenset(files), frozenset(folders)


def _overwrites_input(path, inputs: tuple[frozenset, frozenset]) -> str | None:
    """Why writing ``path`` would overwrite an input, or ``None``."""
    files, folders = inputs
    real = os.path.realpath(path)
    if real in files:
        return "is an input of this command"
    if real in folders:
        return "is an input folder of this command"
    if os.path.isfile(real):
        inside = next((f for f in folders if real.startswith(f.rstrip(os.sep) + os.sep)), None)
        if inside:
            return f"would overwrite a file inside the input folder {inside}"
    return None


@contextlib.contextmanager
def protected_inputs(paths):
    """While the block runs, every atomic write refuses a destination that is one of ``paths`` (or inside them).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "ct.nrrd"
    >>> _ = f.write_text("input")
    >>> with protected_inputs([f]):
    ...     with atomic_path(f) as tmp:
    ...         pass
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: ...ct.nrrd: is an input of this command; choose another output
    """
    files, folders = input_files(paths)
    old_files, old_folders = _INPUTS.get()
    token = _INPUTS.set((old_files | files, old_folders | folders))
    try:
        yield
    finally:
        _INPUTS.reset(token)


def refuse_input(path: str | os.PathLike, option: str | None = None) -> None:
    """Raise when writing ``path`` would overwrite an input protected by :func:`protected_inputs`."""
    why = _overwrites_input(path, _INPUTS.get())
    if why:
        raise ImgSuiteError(f"{option + ' ' if option else ''}{why}; choose another output", path)


def check_outputs_against_inputs(options: dict) -> None:
    """Refuse, before any work, an output option that is (or resolves to, or would overwrite a file inside) an input.

    ``options`` maps option destinations to values (``vars(args)``): outputs are those of
    :func:`is_output_option`, every other value naming an existing file or folder is an input.
    """
    outputs = [
        (key, v)
        for key, value in options.items()
        if is_output_option(key)
        for v in (value if isinstance(value, (list, tuple)) else [value])
        if isinstance(v, (str, os.PathLike)) and str(v)
    ]
    inputs = [v for v in input_options(options) if os.path.exists(v)]
    if outputs and inputs:
        protected = input_files(inputs)
        for key, value in outputs:
            why = _overwrites_input(value, protected)
            if why:
                raise ImgSuiteError(f"--{key.replace('_', '-')} {why}; choose another output", value)


# Options that name files to write without an ``output`` prefix (``dice --json``).
_OUTPUT_OPTIONS = {"json"}


def is_output_option(key: str) -> bool:
    """Whether the option destination ``key`` names a file or folder the command writes."""
    return (key.startswith("output") and not key.endswith(("_type", "_format", "_fmt"))) or key in _OUTPUT_OPTIONS


def input_options(options: dict) -> list:
    """The values of ``options`` (``vars(args)``) that may name inputs: the strings of the other options."""
    values = []
    for key, value in options.items():
        if not key.startswith("output") and key not in _OUTPUT_OPTIONS:
            values += [v for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, str)]
    return values


def _make_parent(path: Path) -> list[Path]:
    """Create the missing folders above ``path`` (never a new folder at the filesystem root); returns them."""
    missing = [p for p in path.absolute().parents if not p.exists()]
    if missing and missing[-1].parent == missing[-1].parent.parent:
        raise ImgSuiteError(f"no such folder {missing[-1]} (a folder at the filesystem root is not created)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write created (deepest first), when nothing else went into them."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


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
