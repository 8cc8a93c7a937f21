"""Image registration: plastimatch command files, a fast B-spline engine, landmarks, warping, transform tools.

Transforms follow ITK: they map fixed (reference) points to moving points. Names are imported on first
use, so ``imgsuite``'s start-up (which imports every ``commands`` module) does not pay for scipy.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "CommandFile": "cmdfile",
    "format_command_file": "cmdfile",
    "parse_command_file": "cmdfile",
    "read_command_file": "cmdfile",
    "RegistrationResult": "engine",
    "StageReport": "engine",
    "compose": "engine",
    "register_images": "engine",
    "warp_image": "engine",
    "field_transform": "vf",
    "jacobian_determinant": "vf",
    "synth_vf": "vf",
    "transform_to_field": "vf",
    "vf_stats": "vf",
    "read_transform": "xforms",
    "write_transform": "xforms",
    "read_landmarks": "landmarks",
    "write_landmarks": "landmarks",
    "LandmarkWarp": "landmarks",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
