"""``imgsuite header`` and ``imgsuite convert``.

``convert`` is plastimatch's convert: one command whose inputs and options choose the job. The
dispatch is explicit (:func:`run_convert`), first match wins:

=====================================  ===============================  ====================================
``--input``                            options                          job
=====================================  ===============================  ====================================
a ``.hsi`` container                   ``--output-img``                 ``hsi``: the cube, bands as components
an ss-img or labelmap                  ``--input-ss-list``              ``rtstruct``: RTSTRUCT in ``--output-dicom``
an RTSTRUCT file                       ``--xf``                         ``registration``: ``warp --input-rtstruct``
an RTSTRUCT (file, or CT+RS folder)    a structure output               ``rtstruct``: rasterized structures
an RTDOSE, or ``--input-dose-img``     a dose output                    ``rtstruct``: the dose in Gy
an image or DICOM series               ``--xf``                         ``registration``: ``warp``
an image or DICOM series               ``--output-img``                 here: read, resample, write
=====================================  ===============================  ====================================

Structure outputs are ``--output-labelmap``, ``--output-ss-img``, ``--output-ss-list``, ``--output-prefix``,
``--output-dicom`` and ``--output-seg``. The job packages add their options with ``add_convert_options(parser)``
and do their part in ``convert(args, progress) -> bool`` (True when the inputs were theirs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..choices import PIXEL_TYPES
from ..cli_options import add_grid_options, grid_from_args
from ..errors import ImgSuiteError
from ..geometry import resample_like
from ..hsi import commands as hsi_commands
from ..progress import progress_for
from ..registration import commands as registration_commands
from ..rtstruct import commands as rtstruct_commands
from .images import read_image, write_image


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "header", parents=[subparsers.common_parent], help="print an image's geometry (plastimatch header)"
    )
    p.add_argument("input", help="image file or DICOM folder")
    add_series_options(p)
    p.set_defaults(func=run_header)

    p = subparsers.add_parser(
        "convert",
        parents=[subparsers.common_parent],
        help="convert images, DICOM series, structure sets and transforms (plastimatch convert)",
    )
    p.add_argument("--input", help="image file, DICOM folder, or what another job accepts")
    p.add_argument("--output-img", help="output image (nrrd, mha, nii.gz, ...)")
    p.add_argument("--output-type", choices=PIXEL_TYPES, help="pixel type of the output image")
    p.add_argument(
        "--interpolation", choices=["nn", "linear"], default="linear", help="when resampling (default linear)"
    )
    p.add_argument("--default-value", type=float, default=0.0, help="value outside the input (default 0)")
    add_series_options(p)
    add_grid_options(p)
    registration_commands.add_convert_options(p)
    rtstruct_commands.add_convert_options(p)
    p.set_defaults(func=run_convert)
    global _CONVERT_PARSER
    _CONVERT_PARSER = p  # run_convert answers a missing input as argparse does (usage, exit 2)


_CONVERT_PARSER: argparse.ArgumentParser | None = None


def add_series_options(parser: argparse.ArgumentParser) -> None:
    # input- names: plastimatch's --series-uid/--modality set the metadata of a DICOM output instead
    g = parser.add_argument_group("DICOM series selection")
    g.add_argument(
        "--input-series-uid", dest="series_uid", help="SeriesInstanceUID to read when a folder holds several series"
    )
    g.add_argument(
        "--input-modality", dest="modality", help="modality to read when a folder holds several series (CT, MR, ...)"
    )
    g.add_argument("--resample-uneven", action="store_true", help="resample unevenly spaced slices instead of failing")


def read_input(args: argparse.Namespace, path: str | None = None, progress=None) -> sitk.Image:
    """Read ``--input`` (or ``path``) honouring the series-selection options."""
    return read_image(
        path or args.input,
        series_uid=getattr(args, "series_uid", None),
        modality=getattr(args, "modality", None),
        resample_uneven=getattr(args, "resample_uneven", False),
        progress=progress,
    )


# plastimatch's names for pixel types in `header`
_TYPE_NAMES = {
    "int8": "char",
    "uint8": "unsigned char",
    "int16": "short",
    "uint16": "unsigned short",
    "int32": "int",
    "uint32": "unsigned int",
    "int64": "long",
    "uint64": "unsigned long",
    "float32": "float",
    "float64": "double",
}


def header_text(image: sitk.Image) -> str:
    """plastimatch's header layout: type, planes, origin, size, spacing, direction."""
    array_type = np.dtype(sitk.GetArrayViewFromImage(image).dtype).name
    fmt = lambda values: " ".join(f"{v:.4f}" for v in values)  # noqa: E731
    return "\n".join(
        [
            f"Type = {_TYPE_NAMES.get(array_type, array_type)}",
            f"Planes = {image.GetNumberOfComponentsPerPixel()}",
            f"Origin = {fmt(image.GetOrigin())}",
            f"Size = {' '.join(str(v) for v in image.GetSize())}",
            f"Spacing = {fmt(image.GetSpacing())}",
            f"Direction = {fmt(image.GetDirection())}",
        ]
    )


def run_header(args: argparse.Namespace) -> int:
    image = read_input(args, args.input, progress_for(args))
    print(header_text(image))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    """The dispatch of the module docstring's table."""
    progress = progress_for(args)
    if not args.input and not getattr(args, "input_dose_img", None):  # argparse's error: usage, exit 2
        _CONVERT_PARSER.error("the following arguments are required: --input (or --input-dose-img)")
    if args.input and not Path(args.input).exists():
        raise ImgSuiteError("no such file or folder (--input)", args.input)
    if hsi_commands.convert(args, progress):
        return 0
    if args.xf and not args.input_ss_list:
        if args.input and _is_rtstruct_file(args.input):
            args.input_rtstruct, args.input = args.input, None
        registration_commands.convert(args, progress)
        return 0
    if rtstruct_commands.convert(args, progress):
        return 0
    if not args.input:
        raise ImgSuiteError("nothing to convert: give --input")
    if not args.output_img:
        given = sorted(
            "--" + k.replace("_", "-")
            for k, v in vars(args).items()
            if k.startswith("output_") and v and k != "output_type"
        )
        if given:
            raise ImgSuiteError(
                f"{', '.join(given)} do not apply to this input (an image); use --output-img", args.input
            )
        raise ImgSuiteError("nothing to write: give --output-img (or another --output-* option)")
    image = read_input(args, progress=progress)
    reference = grid_from_args(args, like=image)
    if reference is not None:
        image = resample_like(image, reference, args.interpolation, args.default_value)
    write_image(image, args.output_img, args.output_type)
    return 0


def _is_rtstruct_file(path) -> bool:
    from ..rtstruct.structure_set import is_rtstruct

    return is_rtstruct(path)
