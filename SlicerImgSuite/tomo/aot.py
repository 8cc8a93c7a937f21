"""Joseph's forward projector compiled ahead of time (``numba.pycc``) into the extension ``_joseph_aot``.

A process that projects a few views pays numba's import (which pulls in scipy) and the loading of its cached
kernels, about 0.8 s on a quiet machine, before the first ray; plastimatch's C++ starts in milliseconds. The
same kernel source (:func:`.kernels.joseph_view`) compiled once into a plain extension loads in a few ms and
runs serially; :func:`.project.forward_project` uses it for jobs up to :data:`AOT_SAMPLES` ray samples (one DRR,
a short sweep) while numba is not loaded yet, and numba's parallel kernel for larger jobs. The outputs are
identical (same source, same arithmetic). Without the extension everything runs on numba, as before.

Build (``make venv`` does it; needs a C compiler): ``python -m SlicerImgSuite.tomo.aot [FOLDER]``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

NAME = "_joseph_aot"
# ray samples (views x panel pixels x planes) up to which the serial extension beats numba's start-up
AOT_SAMPLES = 4e7
_PLANES = {np.dtype(np.float32): "f4", np.dtype(np.int16): "i2", np.dtype(np.uint16): "u2"}


def build(folder: str | Path | None = None) -> Path:
    """Compile ``_joseph_aot`` into ``folder`` (default: this package); returns the extension's path."""
    from numba.pycc import CC

    from .kernels import joseph_view

    cc = CC(NAME)
    cc.output_dir = str(folder or Path(__file__).parent)
    vectors = ", ".join(["f8[:]"] * 7)
    for code in _PLANES.values():
        cc.export(f"joseph_{code}", f"void({code}[:,:,:], f4[:], {vectors}, f4[:,:])")(joseph_view.py_func)
    cc.compile()
    return next(Path(cc.output_dir).glob(f"{NAME}*"))


def joseph_kernel(samples: float):
    """The ahead-of-time Joseph kernel (``kernels.joseph_view``'s signature) for a job of ``samples`` ray
    samples, or ``None``: the job is large, numba is loaded already, or the extension was not built."""
    if samples > AOT_SAMPLES or "numba" in sys.modules:
        return None
    try:
        compiled = importlib.import_module(f"{__package__}.{NAME}")
    except ImportError:
        return None

    def joseph(planes, table, *rest):
        getattr(compiled, f"joseph_{_PLANES[planes.dtype]}")(planes, table, *rest)

    return joseph


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else None))
