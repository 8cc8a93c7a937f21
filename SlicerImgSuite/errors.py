"""One error type for bad input: it names the file and the problem.

The CLI prints ``str(error)`` on one line and exits non-zero; the Slicer widgets show the same text.
"""

from __future__ import annotations

import os


class ImgSuiteError(Exception):
    """Bad input or an impossible request.

    Parameters
    ----------
    problem : str
        What is wrong, in words a physicist understands.
    path : str or os.PathLike, optional
        The file or folder the problem is about; it leads the message.

    Examples
    --------
    >>> str(ImgSuiteError("not a DICOM file", "/data/x.dcm"))
    '/data/x.dcm: not a DICOM file'
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def check_memory(nbytes: int, what: str, path: str | os.PathLike | None = None) -> None:
    """Refuse, before allocating, ``nbytes`` that exceed half the free memory (damaged sizes, not data).

    Examples
    --------
    >>> check_memory(1024, "a small member")
    """
    available = available_memory()
    if available is not None and nbytes > available // 2:
        raise ImgSuiteError(
            f"{what} needs {nbytes / 2**30:.3g} GiB in memory, more than half the free memory "
            f"({available / 2**30:.3g} GiB)",
            path,
        )


def available_memory() -> int | None:
    """Free memory in bytes (psutil where installed, else the OS's own count), or None where neither answers.

    Examples
    --------
    >>> (available_memory() or 1) > 0
    True
    """
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # Slicer's Python and plain installs need no psutil
        pass
    try:  # Linux: what the kernel says can be had without swapping (page cache included)
        with open("/proc/meminfo") as fp:
            for line in fp:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf: the declared sizes still bound reads
        return None


def check_number(value, option: str, *, positive: bool = False, non_negative: bool = False) -> None:
    """Refuse a NaN or infinite option value (and one <= 0 or < 0 where asked), naming the option; None passes.

    Examples
    --------
    >>> check_number(2.0, "--weight"), check_number(None, "--weight")
    (None, None)
    >>> check_number(float("nan"), "--weight")
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: --weight must be a finite number, got nan
    """
    if value is None:
        return
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ImgSuiteError(f"{option} must be a finite number, got {value}")
    if positive and number <= 0:
        raise ImgSuiteError(f"{option} must be > 0, got {value}")
    if non_negative and number < 0:
        raise ImgSuiteError(f"{option} must be >= 0, got {value}")
