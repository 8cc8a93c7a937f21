"""``imgsuite stitch``: panoramic stitching of overlapping radiographs (long-leg, full-spine)."""

from __future__ import annotations

import argparse

from . import BLENDS, METHODS, MODES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stitch",
        parents=[subparsers.common_parent],
        help="stitch overlapping radiographs (long-leg, full-spine) into one image on a measurement plane",
        description="Shots in acquisition order, top to bottom: DICOM DX/CR files, PNG/TIFF files with a JSON "
        "geometry sidecar (<stem>.json), or one projection set written by `imgsuite drr`.",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="the shots, top to bottom")
    p.add_argument(
        "--output",
        "-O",
        required=True,
        help="stitched image: .nrrd/.mha/.nii (Slicer), .png (16-bit) or .dcm (DICOM DX)",
    )
    p.add_argument("--output-json", help="seams, residuals, magnification and measurements as JSON")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="parallel",
        help="tube and panel move together (parallel) or the tube tilts about one focus (angled)",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="image",
        help="place the overlaps from the geometry, the anatomy (default) or a ruler's marks",
    )
    p.add_argument(
        "--plane-distance",
        type=float,
        help="source to measurement plane, mm (default: DistanceSourceToPatient, else 90%% of the SID)",
    )
    p.add_argument(
        "--spacing", type=float, help="output pixel size at the plane, mm (default: panel pitch / magnification)"
    )
    p.add_argument("--pixel-size", nargs="+", help='panel pitch "du dv", mm, for files that do not give it')
    p.add_argument("--sid", type=float, help="source to panel distance, mm, for files that do not give it")
    p.add_argument("--ruler-spacing", type=float, default=10.0, help="distance between ruler marks, mm (default 10)")
    p.add_argument(
        "--max-shift",
        type=float,
        default=20.0,
        help="how far registration may move a shot from its geometry, mm (default 20)",
    )
    p.add_argument(
        "--max-seam-error",
        type=float,
        help="image method: refuse a seam whose expected error (2 SD from the overlap's structure and noise) "
        "exceeds this many output pixels (default 0.5)",
    )
    p.add_argument(
        "--overlap",
        type=float,
        default=0.25,
        help="shots without geometry: expected overlap, fraction of a panel (default 0.25)",
    )
    p.add_argument("--no-exposure-match", action="store_true", help="keep each shot's intensities as they are")
    p.add_argument(
        "--blend",
        choices=BLENDS,
        default="linear",
        help="join the overlaps with a linear feather or band by band (multiband) (default linear)",
    )
    p.add_argument(
        "--measure",
        nargs=4,
        type=float,
        action="append",
        default=[],
        metavar=("X1", "Y1", "X2", "Y2"),
        help="report the distance in mm between two output pixels (column row); repeatable",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli_options import parse_numbers
    from ..progress import progress_for
    from .job import seam_text, stitch_radiographs

    result = stitch_radiographs(
        args.inputs,
        args.output,
        mode=args.mode,
        method=args.method,
        plane_distance=args.plane_distance,
        spacing=args.spacing,
        pixel_size=parse_numbers(args.pixel_size, 2, "--pixel-size"),
        sid=args.sid,
        ruler_spacing=args.ruler_spacing,
        max_shift=args.max_shift,
        **({} if args.max_seam_error is None else {"max_seam_error": args.max_seam_error}),
        overlap=args.overlap,
        match_exposures=not args.no_exposure_match,
        blend=args.blend,
        measure=args.measure,
        output_json=args.output_json,
        progress=progress_for(args),
    )
    summary = result.summary()
    where = (
        f"plane {summary['plane_distance_mm']} mm from the source, magnification {summary['magnification_at_plane']}"
        if result.geometry_known
        else "no geometry: spacing at the detector, magnification not corrected"
    )
    print(
        f"stitched {len(result.seams) + 1} shots: {summary['rows']} x {summary['columns']} pixels of "
        f"{result.spacing[0]:.4g} mm ({where})"
    )
    for seam in result.seams:
        print(f"  {seam_text(seam)}")
    for m in result.measurements:
        print(f"  distance {m['from']} -> {m['to']}: {m['distance_mm']:.2f} mm")
    return 0
