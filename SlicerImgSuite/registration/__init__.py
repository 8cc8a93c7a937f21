"""Image registration: plastimatch command files, a fast B-spline engine, landmarks, warping, transform tools.

Transforms follow ITK: they map fixed (reference) points to moving points.
"""

from .cmdfile import CommandFile, format_command_file, parse_command_file, read_command_file
from .engine import RegistrationResult, StageReport, compose, register_images, warp_image
from .vf import field_transform, jacobian_determinant, synth_vf, transform_to_field, vf_stats

__all__ = [
    "CommandFile",
    "RegistrationResult",
    "StageReport",
    "compose",
    "field_transform",
    "format_command_file",
    "jacobian_determinant",
    "parse_command_file",
    "read_command_file",
    "register_images",
    "synth_vf",
    "transform_to_field",
    "vf_stats",
    "warp_image",
]
