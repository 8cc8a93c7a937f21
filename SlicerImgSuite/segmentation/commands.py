"""``imgsuite segment``, ``imgsuite nuclei``, ``imgsuite mabs`` (and ``imgsuite nuclei-train``).

``segment`` keeps plastimatch's option names (``--input``, ``--output-img``, ``--lower-threshold``,
``--bottom``, ``--fill-holes``); ``mabs`` takes a config file (see :mod:`.atlas`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..choices import CT_PRESETS, NUCLEI_METHODS, PERINUCLEAR_MODES, PIXEL_TYPES
from ..progress import progress_for

FILL_OPTIONS_HELP = (
    '"r1 r2 r3 i1 i2 i3": then also plastimatch\'s three voting passes (box radius r, r, r/2 voxels, at most i '
    "iterations), which close concavities open to the outside (plastimatch's defaults: 7 5 2 2 10 50)"
)


def register(subparsers) -> None:
    for add in (_add_segment, _add_nuclei, _add_mabs, _add_nuclei_train):
        add(subparsers)


def _add_segment(subparsers) -> None:
    p = subparsers.add_parser(
        "segment",
        parents=[subparsers.common_parent],
        help="threshold segmentation of a CT: patient body (couch removed), lungs or bone (plastimatch segment)",
    )
    p.add_argument("--input", required=True, help="CT image file or DICOM series folder (HU)")
    p.add_argument("--output-img", required=True, help="output mask (uint8 0/1 labelmap), e.g. body.nrrd")
    p.add_argument("--preset", choices=CT_PRESETS, default="body", help="what to segment (body)")
    p.add_argument("--lower-threshold", type=float, default=-300.0, help="body: include voxels above this HU (-300)")
    p.add_argument("--bottom", type=float, help="patient y (LPS mm) of the couch top: remove everything behind it")
    p.add_argument("--keep-couch", action="store_true", help="do not detach the couch automatically")
    p.add_argument(
        "--couch-radius", type=float, default=6.0, help="in-plane opening radius that detaches the couch, mm"
    )
    fill = p.add_mutually_exclusive_group()
    fill.add_argument("--fill-holes", dest="fill_holes", action="store_true", default=True, help="fill holes (default)")
    fill.add_argument("--no-fill-holes", dest="fill_holes", action="store_false", help="keep internal air out")
    p.add_argument("--fill-options", nargs="+", help=FILL_OPTIONS_HELP)
    p.add_argument("--output-type", choices=PIXEL_TYPES, default="uchar", help="plastimatch output type of the mask (uchar)")
    p.add_argument("--fast", action="store_true", help="segment on voxels of at least 5 mm (the output is on that grid)")
    p.set_defaults(func=run_segment)


def _add_nuclei(subparsers) -> None:
    p = subparsers.add_parser(
        "nuclei",
        parents=[subparsers.common_parent],
        help="fluorescence nuclei: labels, per-nucleus measurements, perinuclear rings, time-lapse tracking",
    )
    p.add_argument("--input", required=True, help="TIFF/OME-TIFF/CZI file, or a folder of them")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--nuclear-channel", help="channel name or index (default: a DAPI/Hoechst-like name, else 0)")
    p.add_argument(
        "--method", choices=NUCLEI_METHODS, default="auto",
        help="auto (default): the shipped model on 2D planes, adaptive on z-stacks",
    )
    p.add_argument("--threshold", type=float, help="intensity level (threshold) or probability level (model)")
    p.add_argument(
        "--threshold-8bit", type=float, metavar="0-255",
        help="--method threshold: the level on a 0-255 scale (the pixel type's range), converted and printed",
    )
    p.add_argument("--diameter", type=float, help="expected nucleus diameter in pixels (estimated if not given)")
    p.add_argument("--min-area", type=float, help="drop nuclei smaller than this many pixels (voxels)")
    p.add_argument("--max-area", type=float, help="drop objects larger than this many pixels (voxels)")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--split-touching", dest="split_touching", action="store_true", default=True)
    split.add_argument("--no-split-touching", dest="split_touching", action="store_false")
    p.add_argument("--exclude-border", action="store_true", help="drop nuclei touching the image edge")
    p.add_argument("--perinuclear-width", type=int, default=0, help="ring width in pixels for perinuclear measures")
    p.add_argument(
        "--perinuclear-mode", choices=PERINUCLEAR_MODES, default="ring",
        help="ring (default): outside the nucleus; grown: the nucleus grown by --perinuclear-width, nucleus included",
    )
    p.add_argument("--track", action="store_true", help="link nuclei over time (time-lapses)")
    p.add_argument("--max-displacement", type=float, help="tracking: largest move between frames, pixels")
    p.add_argument("--memory", type=int, default=2, help="tracking: frames a nucleus may vanish (2)")
    p.add_argument("--model", help="model file from imgsuite nuclei-train (default: the shipped ONNX model)")
    p.add_argument("--excel", action="store_true", help="also write cells.xlsx, one sheet per table (needs openpyxl)")
    p.add_argument("--plots", action="store_true", help="per-cell intensity bar chart per image and frame; nuclei per image of a folder of stills")  # fmt: skip
    p.add_argument("--notify-command", metavar="CMD", help="run CMD when the run ends or fails (summary as last argument and IMGSUITE_* environment)")  # fmt: skip
    p.add_argument("--notify-email", action="store_true", help="e-mail when the run ends or fails (SMTP from ~/.config/imgsuite/notify.ini or IMGSUITE_SMTP_*; password from IMGSUITE_SMTP_PASSWORD or the keyring)")  # fmt: skip
    p.set_defaults(func=run_nuclei)


def _add_mabs(subparsers) -> None:
    p = subparsers.add_parser(
        "mabs",
        parents=[subparsers.common_parent],
        help="multi-atlas segmentation: register atlases, warp their structures, fuse the labels",
    )
    p.add_argument("command_file", nargs="?", help="config file (same as --config)")
    p.add_argument("--config", help="config file: [atlas] folders, [registration] stages, [labelfusion] method")
    p.add_argument("--segment", help="target image (overrides the config's target)")
    p.add_argument("--output", help="output folder for per-structure masks (overrides the config)")
    p.add_argument("--output-dicom", help="write an RTSTRUCT here (needs a DICOM target)")
    p.add_argument("--train", action="store_true", help="leave-one-out Dice of each registration and fusion setting")
    p.add_argument("--atlas-selection", metavar="TARGET", help="only rank the atlases by similarity to TARGET")
    p.add_argument("--pre-align", action="store_true", help="start registrations from the centres of gravity")
    p.add_argument("--input-roi", help="target mask whose centre of gravity pre-aligns ([PREALIGNMENT] roi_structure)")
    p.set_defaults(func=run_mabs)


def _add_nuclei_train(subparsers) -> None:
    p = subparsers.add_parser(
        "nuclei-train",
        parents=[subparsers.common_parent],
        help="train the optional nuclei U-Net (needs torch==2.13.0, CPU) on image/instance-mask pairs",
    )
    p.add_argument("--images", nargs="+", default=[], help="training images (TIFF or PNG)")
    p.add_argument("--masks", nargs="+", default=[], help="instance masks, same order")
    p.add_argument("--validation-images", nargs="+", default=[], help="images for early stopping (never trained on)")
    p.add_argument("--validation-masks", nargs="+", default=[], help="their instance masks, same order")
    p.add_argument("--dsb2018", metavar="FOLDER",
                   help="train on the fixed split of a dsb2018-stage1-nuclei folder (how the shipped model was made)")  # fmt: skip
    p.add_argument("--output", required=True, help="model file to write (.onnx, or .pt for torch)")
    p.add_argument("--epochs", type=int, default=1200, help="training iterations (batches of 8 patches)")
    p.add_argument("--patch", type=int, default=128, help="patch size in pixels (128)")
    p.add_argument("--widths", default="16,32,64,128", help="channels per U-Net level (16,32,64,128)")
    p.add_argument("--boundary-weight", type=float, default=3.0, help="loss weight of the boundary class (3)")
    p.add_argument("--core", type=float, default=0.0,
                   help="interior class = nuclear cores deeper than this fraction of each nucleus's depth; also "
                        "trains at the model's scale, crowded images more often (0: all but the outer pixel "
                        "ring, as the shipped model)")  # fmt: skip
    p.add_argument("--distance-weight", type=float, default=0.0,
                   help="loss weight of a fourth output, each nucleus's depth normalised to 1 at its centre, "
                        "whose peaks seed the nuclei (0: no such output, as the shipped model)")  # fmt: skip
    p.add_argument("--model-scale", action=argparse.BooleanOptionalAction, default=None,
                   help="train on images shrunk to the model's scale, as predictions run (default: with --core)")
    p.add_argument("--by-count", action=argparse.BooleanOptionalAction, default=None,
                   help="draw training images by the square root of their nuclei's count (default: with --core)")
    p.add_argument("--threads", type=int, help="torch CPU threads (torch's default if not given)")
    p.add_argument("--average-from", type=int, default=0, metavar="ITERATION",
                   help="keep the mean of the weights from this iteration to the last (0: no averaging)")
    p.add_argument("--train-on-validation", action="store_true",
                   help="train on the validation images too (with --dsb2018: its validation part); "
                        "nothing is then kept for early stopping")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_nuclei_train)


def run_segment(args: argparse.Namespace) -> int:
    from ..errors import ImgSuiteError
    from ..io import read_image, write_image
    from .ct import segment_preset

    progress = progress_for(args)
    ct = read_image(args.input)
    options = dict(
        lower_threshold=args.lower_threshold,
        bottom=args.bottom,
        remove_couch=not args.keep_couch,
        couch_radius_mm=args.couch_radius,
        fill_holes=args.fill_holes,
    )
    if args.fill_options:
        from ..cli_options import parse_numbers

        if args.preset != "body":
            raise ImgSuiteError("--fill-options applies to --preset body (plastimatch's segmentation)")
        options["fill_options"] = parse_numbers(args.fill_options, 6, "--fill-options", int)
    try:
        if args.fast:
            from .ct import fast_grid

            ct = fast_grid(ct)
        mask = segment_preset(ct, args.preset, progress=progress, **options)
    except ImgSuiteError as exc:  # name the input file in the one-line error
        if exc.path is None:
            raise ImgSuiteError(exc.problem, args.input) from None
        raise
    write_image(mask, args.output_img, args.output_type)
    return 0


def run_nuclei(args: argparse.Namespace) -> int:
    from .nuclei_job import NucleiOptions, analyze_nuclei, report_lines

    options = NucleiOptions(
        nuclear_channel=args.nuclear_channel,
        method=args.method,
        threshold=args.threshold,
        threshold_8bit=args.threshold_8bit,
        diameter=args.diameter,
        min_area=args.min_area,
        max_area=args.max_area,
        split_touching=args.split_touching,
        exclude_border=args.exclude_border,
        perinuclear_width=args.perinuclear_width,
        perinuclear_mode=args.perinuclear_mode,
        track=args.track,
        max_displacement=args.max_displacement,
        memory=args.memory,
        model=args.model,
        excel=args.excel,
        plots=args.plots,
        notify_command=args.notify_command,
        notify_email=args.notify_email,
    )
    results, warnings = analyze_nuclei(args.input, args.output, options, progress_for(args))
    for w in warnings:
        print(f"imgsuite nuclei: warning: {w}", file=sys.stderr)
    if not args.quiet:
        print("\n".join(report_lines(results)))
    return 0


def run_mabs(args: argparse.Namespace) -> int:
    from ..errors import ImgSuiteError
    from .atlas import run_mabs_config

    config = args.config or args.command_file
    if not config:
        raise ImgSuiteError("mabs needs a config file (--config FILE)")
    if args.train and args.atlas_selection:
        raise ImgSuiteError("--train and --atlas-selection are separate runs: give one")
    if args.train:
        from .mabs import table_text, train_from_config

        summary = train_from_config(config, pre_align=args.pre_align, output=args.output, progress=progress_for(args))
        if not args.quiet:
            print(table_text(summary), end="")
        return 0
    if args.atlas_selection:
        from .mabs import atlas_selection_from_config, table_text

        ranking = atlas_selection_from_config(
            config, args.atlas_selection, pre_align=args.pre_align, input_roi=args.input_roi
        )
        print(table_text(ranking), end="")
        return 0
    run_mabs_config(
        config, target=args.segment, output=args.output, output_dicom=args.output_dicom, progress=progress_for(args),
        pre_align=args.pre_align, input_roi=args.input_roi,
    )  # fmt: skip
    return 0


def run_nuclei_train(args: argparse.Namespace) -> int:
    from ..errors import ImgSuiteError
    from .unet import dsb2018_split, train_from_files

    images, masks = list(args.images), list(args.masks)
    val_images, val_masks = list(args.validation_images), list(args.validation_masks)
    if args.dsb2018:
        folder = Path(args.dsb2018)
        split = dsb2018_split(folder)
        images += [str(folder / "images" / f"{n}.png") for n in split["train"]]
        masks += [str(folder / "labels" / f"{n}.tif") for n in split["train"]]
        val_images += [str(folder / "images" / f"{n}.png") for n in split["validation"]]
        val_masks += [str(folder / "labels" / f"{n}.tif") for n in split["validation"]]
    if args.train_on_validation:
        images, masks, val_images, val_masks = images + val_images, masks + val_masks, [], []
    if not images:
        raise ImgSuiteError("nuclei-train needs --images/--masks or --dsb2018 FOLDER")
    if len(images) != len(masks) or len(val_images) != len(val_masks):
        raise ImgSuiteError(f"{len(images)} images but {len(masks)} masks: give one mask per image")
    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise ImgSuiteError(f"--widths {args.widths!r}: give channel counts like 8,16,32,64") from None
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train_from_files(
        images, masks, args.output, epochs=args.epochs, seed=args.seed, validation_images=val_images,
        validation_masks=val_masks, widths=widths, patch=args.patch, boundary_weight=args.boundary_weight,
        core=args.core, distance_weight=args.distance_weight, model_scale=args.model_scale,
        by_count=args.by_count, average_from=args.average_from, progress=progress_for(args),
    )  # fmt: skip
    return 0
