"""Walking a folder tree the way a patient archive is laid out: linked folders followed, each real folder once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def files_below(folder: str | os.PathLike) -> Iterator[Path]:
    """Every file under ``folder``, in sorted order, hidden ones (``.name``, or in a hidden folder) left out.

    Linked subfolders are followed (a study whose CT folder is a link, a cohort of linked patient folders), each
    real folder once: a link back up the tree is not walked forever.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "a").mkdir(); (root / "a" / "x.dcm").write_text("")
    0
    >>> (root / "loop").symlink_to(root)  # a link back up the tree
    >>> [p.relative_to(root).as_posix() for p in files_below(root)]
    ['a/x.dcm']
    """
    seen = {os.path.realpath(folder)}
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in sorted(dirs) if not d.startswith(".") and _first_visit(os.path.join(root, d), seen)]
        yield from (Path(root) / n for n in sorted(names) if not n.startswith("."))


def _first_visit(folder: str, seen: set) -> bool:
    real = os.path.realpath(folder)
    if real in seen:
        return False
    seen.add(real)
    return True
