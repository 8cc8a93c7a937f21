"""dciodvfy (Debian dicom3tools), the anchor every written DICOM object is checked against."""

from __future__ import annotations

import shutil
import subprocess


def dciodvfy_errors(path, iod: str | None = None) -> list[str]:
    """The ``Error`` and ``Abort`` lines dciodvfy prints for ``path``; ``iod`` (e.g. ``RTDose``): assert that
    dciodvfy really validated the file as that object."""
    assert shutil.which("dciodvfy"), "dciodvfy (Debian dicom3tools) is needed"
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    if iod is not None:
        assert any(line.strip() == iod for line in lines), lines
    return [line for line in lines if line.startswith(("Error", "Abort"))]
