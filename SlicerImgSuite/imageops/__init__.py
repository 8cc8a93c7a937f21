"""Image tools: plastimatch's utility commands as functions on ``SimpleITK.Image``.

Each function here is also an ``imgsuite`` subcommand with plastimatch's option names (see ``commands.py``)
and an operation of the Slicer "Image tools" module.
"""

from .arithmetic import add, adjust, average, pw_linear, scale
from .distance import boundary, dice_stats, distance_map
from .filters import gabor_filter, gauss_filter, kernel_filter
from .grid import crop, mask_bounding_box, output_grid, resample
from .masks import fill_image, mask_image, threshold, union
from .measure import compare, diff, image_stats, probe
from .synth import Synthetic, synth, synth_grid
from .thumbnail import thumbnail, write_png

__all__ = [
    "Synthetic",
    "add",
    "adjust",
    "average",
    "boundary",
    "compare",
    "crop",
    "dice_stats",
    "diff",
    "distance_map",
    "fill_image",
    "gabor_filter",
    "gauss_filter",
    "image_stats",
    "kernel_filter",
    "mask_bounding_box",
    "mask_image",
    "output_grid",
    "probe",
    "pw_linear",
    "resample",
    "scale",
    "synth",
    "synth_grid",
    "thumbnail",
    "threshold",
    "union",
    "write_png",
]
