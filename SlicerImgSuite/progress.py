"""Progress reporting: a callback ``(fraction, message)`` passed down through the logic.

The CLI renders it as a text bar, the Slicer widgets as a progress dialog. A callback may raise
:class:`Cancelled` (for example when the user presses Cancel) to stop the work cleanly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised by a progress callback to stop long work; nothing is written half-way."""


def no_progress(fraction: float, message: str = "") -> None:
    """The default callback: ignores everything."""


def sub_progress(progress: ProgressCallback | None, start: float, stop: float) -> ProgressCallback:
    """Map a child's ``[0, 1]`` range onto ``[start, stop]`` of the parent's.

    Examples
    --------
    >>> seen = []
    >>> child = sub_progress(lambda f, m: seen.append(round(f, 2)), 0.5, 1.0)
    >>> child(0.5, "half of the second half")
    >>> seen
    [0.75]
    """
    parent = progress or no_progress

    def child(fraction: float, message: str = "") -> None:
        parent(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return child


class TextProgressBar:
    """A progress callback that draws a bar on a terminal stream (stderr by default)."""

    def __init__(self, stream=None, width: int = 30, min_interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._last = 0.0
        self._drawn = False

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self.min_interval:
            return
        self._last = now
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(round(self.width * fraction))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {fraction * 100:5.1f}% {message[:60]:<60}")
        self._drawn = True
        if fraction >= 1.0:
            self.close()
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False


def progress_for(args) -> ProgressCallback:
    """The progress callback for a command line: a bar on a terminal's stderr, nothing with ``--quiet``.

    Examples
    --------
    >>> import argparse
    >>> progress_for(argparse.Namespace(quiet=True)) is no_progress
    True
    """
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return no_progress
    return TextProgressBar()
