"""RT structure sets: read RTSTRUCT, rasterize, write outputs and RTSTRUCT, read RTDOSE, DVH, gamma.

Names are loaded on first use (PEP 562), so ``imgsuite`` start-up does not pay for them, except
``rasterize`` and ``dvh``: those functions share their module's name, and importing a submodule
rebinds the package attribute to the module, so they are bound here, eagerly (they need only
numpy, SimpleITK and pydicom, which the CLI has loaded anyway).
"""

from __future__ import annotations

import importlib

from .dvh import dvh as dvh  # re-exported
from .rasterize import rasterize as rasterize  # re-exported

_WHERE = {
    "read_rtdose": "dose", "read_dose": "dose", "convert_dose": "dose",
    "dose_at_volume": "dvh", "dose_samples": "dvh", "dose_statistics": "dvh", "dvh": "dvh",
    "refined_grid": "dvh", "volume_at_dose": "dvh",
    "gamma_index": "gamma",
    "labelmap": "outputs", "read_ss_list": "outputs", "ss_image": "outputs", "ss_list_text": "outputs",
    "write_prefix": "outputs", "write_seg_nrrd": "outputs",
    "Grid": "rasterize", "RoiMask": "rasterize", "guess_grid": "rasterize", "rasterize": "rasterize",
    "scan_convert": "rasterize",
    "Contour": "structure_set", "Roi": "structure_set", "StructureSet": "structure_set",
    "read_rtstruct": "structure_set",
    "find_study": "study", "find_referenced_ct": "study",
    "contours_from_mask": "write", "masks_from_labelmap": "write", "write_rtstruct": "write",
    "write_rtstruct_from_masks": "write",
}  # fmt: skip

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
