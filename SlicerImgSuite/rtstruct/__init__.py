"""RT structure sets: read RTSTRUCT, rasterize, write outputs and RTSTRUCT, read RTDOSE, DVH, gamma."""

from .dose import read_rtdose
from .dvh import dose_at_volume, dose_samples, dose_statistics, dvh, volume_at_dose
from .gamma import gamma_index
from .outputs import labelmap, read_ss_list, ss_image, ss_list_text, write_prefix, write_seg_nrrd
from .rasterize import Grid, RoiMask, guess_grid, rasterize, scan_convert
from .structure_set import Contour, Roi, StructureSet, read_rtstruct
from .write import contours_from_mask, masks_from_labelmap, write_rtstruct, write_rtstruct_from_masks

__all__ = [
    "Contour", "Grid", "Roi", "RoiMask", "StructureSet", "contours_from_mask", "dose_at_volume", "dose_samples",
    "dose_statistics", "dvh", "gamma_index", "guess_grid", "labelmap", "masks_from_labelmap", "rasterize",
    "read_rtdose", "read_rtstruct", "read_ss_list", "scan_convert", "ss_image", "ss_list_text", "volume_at_dose",
    "write_prefix", "write_rtstruct", "write_rtstruct_from_masks", "write_seg_nrrd",
]  # fmt: skip
