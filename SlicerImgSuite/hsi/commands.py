"""``imgsuite hsi info | convert | pack``, and ``.hsi`` inputs for ``imgsuite convert --output-img``."""

from __future__ import annotations

import argparse
import json
import sys

from ..progress import progress_for


def register(subparsers) -> None:
    hsi = subparsers.add_parser("hsi", help="hyperspectral .hsi containers and ENVI cubes")
    commands = hsi.add_subparsers(dest="hsi_command", metavar="HSI_COMMAND", required=True)
    common = subparsers.common_parent

    p = commands.add_parser("info", parents=[common], help="print a cube's header (ENVI text, or JSON)")
    p.add_argument("input", help=".hsi container or ENVI .hdr")
    p.add_argument(
        "--json", action="store_true", help="JSON: keys as in the header, numbers as numbers, lists as lists"
    )
    _reading_options(p)
    p.set_defaults(func=run_info)

    p = commands.add_parser("convert", parents=[common], help="write the cube as NRRD, NIfTI or ENVI")
    p.add_argument("input", help=".hsi container or ENVI .hdr")
    p.add_argument("--output", required=True, help="output: .nrrd, .nii.gz, .mha (bands as vector components) or .envi")
    p.add_argument("--calibrate", action="store_true", help="reflectance from Reference/white and Reference/black")
    p.add_argument("--apply-procedures", action="store_true", help="apply the header's read procedures")
    p.add_argument(
        "--apply-scaling",
        action="store_true",
        help="apply 'data gain values', 'data offset values' and 'reflectance scale factor' (float32 output)",
    )
    p.add_argument("--bands", metavar="A:B", help="keep bands A..B (0-based, inclusive)")
    p.add_argument("--output-labelmap", help="also write the classification as a label image (.nrrd, .nii.gz)")
    _reading_options(p)
    p.set_defaults(func=run_convert)

    p = commands.add_parser("pack", parents=[common], help="build a .hsi from an ENVI cube or a folder")
    p.add_argument("input", help="ENVI .hdr, or a folder with the cube, references, labels and Metadata/")
    p.add_argument("--output", required=True, help="the .hsi to write")
    p.add_argument("--interleave", choices=["bsq", "bil", "bip"], help="layout of data.envi (default: the source's)")
    p.add_argument(
        "--lods", default="1,2", help="preview levels of detail, binned by 2**lod (default 1,2; '' for none)"
    )
    p.add_argument("--strict", action="store_true", help="fail on any header irregularity instead of warning")
    p.set_defaults(func=run_pack)


def _reading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true", help="fail on any header irregularity instead of warning")
    p.add_argument("--allow-compressed", action="store_true", help="read deflated members into memory")


def run_info(args: argparse.Namespace) -> int:
    from .container import open_hsi
    from .envi_header import format_header, header_to_json, layout, read_header
    from .load import is_hsi

    if is_hsi(args.input):
        hsi = open_hsi(args.input, strict=args.strict, allow_compressed=args.allow_compressed)
        header, members = hsi.header, hsi.names
    else:
        header, members = read_header(args.input, strict=args.strict), None
        layout(header, args.input, strict=args.strict)
    if args.json:
        json.dump(header_to_json(header), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_header(header))
        if members:
            print("; members: " + ", ".join(members))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from .images import write_cube
    from .load import load_hyperspectral

    progress = progress_for(args)
    loaded = load_hyperspectral(
        args.input,
        calibrate=args.calibrate,
        apply_procedures=args.apply_procedures,
        bands=args.bands,
        apply_scaling=args.apply_scaling,
        strict=args.strict,
        allow_compressed=args.allow_compressed,
        progress=progress,
    )
    if args.output_labelmap and loaded.labels.classification is None:
        from ..errors import ImgSuiteError

        raise ImgSuiteError("no classification to write (--output-labelmap)", args.input)
    write_cube(loaded.cube, loaded.header, args.output)
    if args.output_labelmap:
        from ..io.images import write_image
        from .images import label_image

        write_image(label_image(loaded.labels.classification, loaded.header), args.output_labelmap)
    return 0


def run_pack(args: argparse.Namespace) -> int:
    from ..errors import ImgSuiteError
    from .pack import pack

    try:
        lods = tuple(int(v) for v in args.lods.split(",") if v.strip())
    except ValueError:
        raise ImgSuiteError(f"--lods {args.lods!r}: use comma-separated integers") from None
    if any(lod < 0 for lod in lods):  # a preview binned by 2**lod pixels: -1 was a TypeError traceback
        raise ImgSuiteError(f"--lods {args.lods!r}: levels of detail are whole numbers >= 0 (binned by 2**lod)")
    pack(
        args.input,
        args.output,
        interleave=args.interleave,
        previews=lods,
        strict=args.strict,
        progress=progress_for(args),
    )
    return 0


def convert(args: argparse.Namespace, progress) -> bool:
    """``imgsuite convert --input X.hsi --output-img Y.nrrd``: the cube, bands as vector components."""
    if not args.output_img or not str(args.input).lower().endswith(".hsi"):
        return False  # before importing the readers: every `imgsuite convert` asks here first
    from .images import write_cube
    from .load import is_hsi, load_hyperspectral

    if not is_hsi(args.input):
        return False
    loaded = load_hyperspectral(args.input, progress=progress)
    write_cube(loaded.cube, loaded.header, args.output_img)
    return True
