"""``imgsuite compare-structures``: options only; the work is :func:`SlicerImgSuite.review.job.compare_structures`."""

from __future__ import annotations

import argparse
import os


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare-structures",
        parents=[subparsers.common_parent],
        help="compare two structure sets: Dice, Hausdorff, HD95, mean surface distance, surface Dice, APL per structure",
        description="Match the structures of two structure sets by name (case-insensitive, TG-263 names and common "
        "synonyms, or --map) and compute overlap and sub-voxel surface metrics for each pair.",
    )
    p.add_argument("--reference", required=True, help="reference structure set (RTSTRUCT file/folder or .seg.nrrd)")
    p.add_argument("--test", required=True, help="test structure set (RTSTRUCT file/folder or .seg.nrrd)")
    p.add_argument("--referenced-ct", help="CT (DICOM folder or image) whose grid both sets are rasterized on")
    p.add_argument("--input-dose", help="RTDOSE (or dose image, Gy): the report adds each structure's DVH pair")
    p.add_argument("--tolerance", type=float, default=2.0, help="surface Dice and APL tolerance, mm (default 2)")
    p.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="processes comparing pairs (default: cores, <= 4)",
    )
    p.add_argument("--map", nargs="+", default=[], metavar="REF=TEST", help="explicit name pairs")
    p.add_argument("--output-json", help="the comparison as JSON")
    p.add_argument("--output-csv", help="one row per structure pair")
    p.add_argument("--report", help="HTML report: table and thumbnails with both outlines on the CT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import progress_for
    from .job import compare_structures

    c = compare_structures(
        args.reference,
        args.test,
        output_json=args.output_json,
        output_csv=args.output_csv,
        report=args.report,
        referenced_ct=args.referenced_ct,
        dose=args.input_dose,
        tolerance_mm=args.tolerance,
        name_map=args.map,
        progress=progress_for(args),
        workers=max(1, args.workers),
    )
    print(f"{len(c.structures)} structure pair(s) compared; unmatched: reference {c.unmatched_reference}, "
          f"test {c.unmatched_test}")  # fmt: skip
    return 0
