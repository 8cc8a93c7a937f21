"""``imgsuite header`` and ``imgsuite convert``.

``convert`` is plastimatch's convert: one command whose inputs and options choose the job. The
dispatch is explicit (:func:`run_convert`), first match wins:

=====================================  ===============================  ====================================
``--input``                            options                          job
=====================================  ===============================  ====================================
a ``.hsi`` container                   ``--output-img``                 ``hsi``: the cube, bands as components
an ss-img or labelmap (or none)        ``--input-ss-list``              ``rtstruct``: RTSTRUCT in ``--output-dicom``
                                       (``--input-ss-img``)
an RTSTRUCT file                       ``--xf``                         ``registration``: ``warp --input-rtstruct``
an RTSTRUCT (file, or CT+RS folder)    a structure output               ``rtstruct``: rasterized structures
an RTDOSE, or ``--input-dose-img``     a dose output                    ``rtstruct``: the dose in Gy
an image or DICOM series               ``--xf``                         ``registration``: ``warp``
a pointset (.fcsv, .mrk.json, text)    ``--output-pointset``            here: the points in another format
an image or DICOM series               ``--output-img``                 here: read, resample, write
an image or DICOM series               ``--output-dicom``               here: a CT/MR series (also --output-img;
                                       (``--input-ss-img``)             with --input-ss-img an RTSTRUCT on it)
=====================================  ===============================  ====================================

Structure outputs are ``--output-labelmap``, ``--output-ss-img``, ``--output-ss-list``, ``--output-prefix``,
``--output-dicom``, ``--output-seg``, ``--output-colormap`` and ``--output-prefix-fcsv``. The job packages add their options with ``add_convert_options(parser)``
and do their part in ``convert(args, progress) -> bool`` (True when the inputs were theirs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..choices import PATIENT_POSITIONS, PIXEL_TYPES, SERIES_MODALITIES
from ..cli_options import add_grid_options, grid_from_args
from ..errors import ImgSuiteError
from ..geometry import resample_like
from ..hsi import commands as hsi_commands
from ..progress import progress_for
from ..registration import commands as registration_commands
from ..rtstruct import commands as rtstruct_commands
from .atomic import write_together
from .dicom_series import is_dicom_file
from .images import read_image, refuse_non_image, write_image


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
    p.add_argument(
        "--output-pointset",
        help="with a pointset --input (.fcsv, .mrk.json, or 'x y z' text in LPS): the points as .fcsv (RAS, as "
        "plastimatch reads it), .mrk.json or text",
    )
    add_series_options(p)
    add_grid_options(p)
    add_dicom_output_options(p)
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


def add_dicom_output_options(parser: argparse.ArgumentParser) -> None:
    """plastimatch convert's metadata options for an image written as a DICOM series (``--output-dicom``)."""
    g = parser.add_argument_group("image -> DICOM series (--output-dicom DIR; plastimatch's metadata options)")
    g.add_argument(
        "--patient-name", help="PatientName (default: --referenced-ct's or the input series', else ANONYMOUS)"
    )
    g.add_argument("--patient-id", help="PatientID (default: --referenced-ct's or the input series', else a new one)")
    g.add_argument(
        "--patient-pos", type=str.upper, choices=PATIENT_POSITIONS, default="HFS", help="PatientPosition (default HFS)"
    )
    g.add_argument("--series-description", help="SeriesDescription (default imgsuite convert)")
    g.add_argument("--series-number", type=int, default=1, help="SeriesNumber (default 1)")
    g.add_argument(
        "--series-uid", dest="dicom_series_uid", help="SeriesInstanceUID (default a new one; --input-series-uid picks "
        "an input series)",
    )  # fmt: skip
    g.add_argument("--study-description", help="StudyDescription")
    g.add_argument(
        "--modality", dest="dicom_modality", type=str.upper, choices=SERIES_MODALITIES, default="CT",
        help="Modality of the written series (default CT; --input-modality picks an input series)",
    )  # fmt: skip
    g.add_argument(
        "--metadata", action="append", metavar="KEY=VALUE",
        help='more attributes, "XXXX,YYYY=value" (plastimatch) or "Keyword=value"; may be repeated',
    )  # fmt: skip
    g.add_argument(
        "--regenerate-study-uids", action="store_true",
        help="new StudyInstanceUID and FrameOfReferenceUID instead of --referenced-ct's (or the input series')",
    )  # fmt: skip
    g.add_argument("--filenames-without-uids", action="store_true", help="CT0001.dcm, not CT0001_<SOPInstanceUID>.dcm")


def read_input(args: argparse.Namespace, path: str | None = None, progress=None) -> sitk.Image:
    """Read ``--input`` (or ``path``) honouring the series-selection options; a series found in a subfolder is named."""
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = read_image(
            path or args.input,
            series_uid=getattr(args, "series_uid", None),
            modality=getattr(args, "modality", None),
            resample_uneven=getattr(args, "resample_uneven", False),
            progress=progress,
        )
    for w in caught:
        if not getattr(args, "quiet", False) or "using series" in str(w.message):
            print(f"imgsuite {getattr(args, 'command', 'convert')}: {w.message}", file=sys.stderr)
    return image


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
    if not (args.input or getattr(args, "input_dose_img", None) or getattr(args, "input_ss_img", None)):
        _CONVERT_PARSER.error("the following arguments are required: --input (or --input-dose-img, --input-ss-img)")
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
    rtstruct_commands.refuse_unused_dose_options(args, "--input is converted as an image (no dose output)")
    if not args.input:
        raise ImgSuiteError("nothing to convert: give --input")
    if args.output_pointset:
        convert_pointset(args.input, args.output_pointset)
        return 0
    if not args.output_img and not args.output_dicom:
        given = sorted(
            "--" + k.replace("_", "-")
            for k, v in vars(args).items()
            if k.startswith("output_") and v and k != "output_type"
        )
        if given:
            if Path(args.input).is_file() and is_dicom_file(Path(args.input)):
                refuse_non_image(Path(args.input))  # an RTPLAN is no image either: say what it is
            raise ImgSuiteError(
                f"{', '.join(given)}: not for this input (an image); use --output-img", args.input
            )
        raise ImgSuiteError("nothing to write: give --output-img (or another --output-* option)")
    dicom = _dicom_series_options(args) if args.output_dicom else None  # bad metadata: refused before reading
    image = read_input(args, progress=progress)
    reference = grid_from_args(args, like=image)
    if reference is not None:
        image = resample_like(image, reference, args.interpolation, args.default_value)
    if args.output_dicom:
        from .dicom_write import check_series_image

        try:
            check_series_image(image, args.dicom_modality)
        except ImgSuiteError as exc:  # about the input image: name it
            raise ImgSuiteError(f"--output-dicom: {exc.problem}", args.input) from None
    if not args.output_dicom:  # one file: written atomically (a new file beside the input's slices is fine)
        write_image(image, args.output_img, args.output_type)
        return 0
    write_together(
        [
            (args.output_img, lambda tmp: write_image(image, tmp, args.output_type), False),
            (args.output_dicom, lambda tmp: _write_series(image, tmp, args, dicom, progress), True),
        ]
    )
    return 0


def convert_pointset(source, output) -> None:
    """Points from a ``.fcsv``/``.mrk.json``/text file into another (the format from ``output``'s suffix).

    ``.fcsv`` is written with ``CoordinateSystem = RAS`` so that plastimatch 1.9.4 (which assumes RAS)
    and Slicer (which reads the header) both read it; text is ``x y z`` in LPS, as plastimatch writes it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "in.txt").write_text("1 2 3")
    >>> convert_pointset(d / "in.txt", d / "out.fcsv")
    >>> (d / "out.fcsv").read_text().splitlines()[-1]
    '1,-1.000000,-2.000000,3.000000,0,0,0,1,1,1,0,P-1,,'
    """
    from ..registration.landmarks import read_landmarks, write_landmarks
    from ..rtstruct.outputs import fcsv_text
    from .atomic import atomic_path

    points, labels = read_landmarks(source)
    if str(output).lower().endswith(".fcsv"):
        with atomic_path(output) as tmp:
            Path(tmp).write_text(fcsv_text(points * [-1, -1, 1], labels, "RAS"))
    else:
        write_landmarks(points, output, labels)


def _dicom_series_options(args: argparse.Namespace) -> dict:
    """The named metadata options and --metadata as {keyword: value}, checked (a name given twice is refused)."""
    from .dicom_write import metadata_attributes

    named = {
        "PatientName": args.patient_name, "PatientID": args.patient_id,
        "SeriesDescription": args.series_description, "StudyDescription": args.study_description,
    }  # fmt: skip
    option = {"PatientName": "--patient-name", "PatientID": "--patient-id"}
    option |= {"SeriesDescription": "--series-description", "StudyDescription": "--study-description"}
    attributes = {}
    for keyword, value in named.items():
        if value is not None:
            attributes |= metadata_attributes([f"{keyword}={value}"], option[keyword])
    if args.dicom_series_uid:
        metadata_attributes([f"SeriesInstanceUID={args.dicom_series_uid}"], "--series-uid", writer=True)
    if not -(2**31 - 1) <= args.series_number <= 2**31 - 1:
        raise ImgSuiteError(f"--series-number must fit a DICOM IS (a 32-bit signed integer), got {args.series_number}")
    for keyword, value in metadata_attributes(args.metadata).items():
        if keyword in attributes:
            raise ImgSuiteError(f"--metadata sets {keyword}, which {option[keyword]} sets too; give one")
        attributes[keyword] = value
    return attributes


def _write_series(image: sitk.Image, folder, args: argparse.Namespace, attributes: dict, progress) -> None:
    """``--output-dicom`` of an image: the study of --referenced-ct, else of the input series, else a new one."""
    from .dicom_write import series_study, write_ct_series

    source, uid = args.referenced_ct, None
    if source is None and Path(args.input).is_dir():
        source, uid = args.input, image.GetMetaData("0020|000e") if image.HasMetaDataKey("0020|000e") else None
    if source is not None and not Path(source).is_dir():
        raise ImgSuiteError("--referenced-ct (--dicom-dir) must be the folder of a DICOM series", source)
    study, slices = series_study(source, series_uid=uid, regenerate_uids=args.regenerate_study_uids,
                                 attributes=attributes)  # fmt: skip
    headers = write_ct_series(
        image, folder, study, args.dicom_modality, attributes.get("SeriesDescription", "imgsuite convert"),
        args.series_number, patient_position=args.patient_pos, attributes=slices,
        uid_file_names=not args.filenames_without_uids, series_uid=args.dicom_series_uid, progress=progress,
    )  # fmt: skip
    if getattr(args, "input_ss_img", None):
        _write_structures_on(headers, Path(folder) / "RS.dcm", args)


def _write_structures_on(headers, path: Path, args: argparse.Namespace) -> None:
    """plastimatch's --input-ss-img with an image: the structures as an RTSTRUCT on the series just written."""
    from ..rtstruct.commands import ss_masks
    from ..rtstruct.write import reference_series, write_rtstruct_from_masks

    masks, colors = ss_masks(args.input_ss_img, args.input_ss_list, bits=True)
    if args.prune_empty:
        masks = {k: m for k, m in masks.items() if sitk.GetArrayViewFromImage(m).any()}
    # onto the series' grid (the ss-img may have its own; --spacing etc. moved the image): nearest neighbour
    reference = reference_series(headers)
    grid = reference.image()
    write_rtstruct_from_masks(
        path, reference, {k: resample_like(m, grid, "nn", 0) for k, m in masks.items()}, colors=colors
    )


def _is_rtstruct_file(path) -> bool:
    from ..rtstruct.structure_set import is_rtstruct

    return is_rtstruct(path)
