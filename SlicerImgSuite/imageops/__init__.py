"""Image tools: plastimatch's utility commands as functions on ``SimpleITK.Image``.

Each function here is also an ``imgsuite`` subcommand with plastimatch's option names (see ``commands.py``)
and an operation of the Slicer "Image tools" module. Submodules load on first use, so the command line
starts fast.

Examples
--------
>>> from SlicerImgSuite.imageops import dice_stats
>>> callable(dice_stats)
True
"""

from __future__ import annotations

import importlib

_WHERE = {
    "add": "arithmetic",
    "adjust": "arithmetic",
    "average": "arithmetic",
    "pw_linear": "arithmetic",
    "scale": "arithmetic",
    "boundary": "distance",
    "dice_stats": "distance",
    "distance_map": "distance",
    "gabor_filter": "filters",
    "gauss_filter": "filters",
    "kernel_filter": "filters",
    "crop": "grid",
    "mask_bounding_box": "grid",
    "output_grid": "grid",
    "resample": "grid",
    "fill_image": "masks",
    "mask_image": "masks",
    "threshold": "masks",
    "union": "masks",
    "compare": "measure",
    "diff": "measure",
    "image_stats": "measure",
    "probe": "measure",
    "Synthetic": "synthetic",
    "synth": "synthetic",
    "synth_grid": "synthetic",
    "thumbnail": "slices",
    "write_png": "slices",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
