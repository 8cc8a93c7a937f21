"""``imgsuite drr``, ``imgsuite tomo`` and ``imgsuite fdk`` (plastimatch's option names and meanings)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

import numpy as np

from ..choices import FDK_FILTERS, RECON_FILTERS, SWEEP_KINDS, TOMO_ALGORITHMS
from ..cli_options import add_grid_options, grid_from_args, parse_numbers
from ..errors import ImgSuiteError
from ..geometry import grid_image
from ..progress import progress_for


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "drr",
        parents=[subparsers.common_parent],
        help="DRRs from a CT, or a tomosynthesis sweep (plastimatch drr options)",
    )
    p.add_argument("infile", nargs="?", help="CT image or DICOM folder")
    p.add_argument("-I", "--input", help="CT image or DICOM folder (same as INFILE)")
    p.add_argument(
        "-O",
        "--output",
        required=True,
        help="file name prefix: writes PREFIXNNNN.pfm + PREFIXNNNN.txt (folder made if missing); or a .mha/.nrrd stack",
    )
    p.add_argument("-t", "--output-format", type=str.lower, choices=["pfm", "pgm", "raw"], help="default pfm")
    p.add_argument("-r", "--dim", default="128 128", help='detector pixels "columns rows" (128 128)')
    p.add_argument("-z", "--detector-size", default="600 600", help='detector mm "width height" (600 600)')
    p.add_argument("-w", "--subwindow", help='write only pixels "c1 c2 r1 r2" (plastimatch\'s "r1 r2 c1 c2")')
    p.add_argument("--sad", type=float, default=1000.0, help="source to isocenter distance, mm (default 1000)")
    p.add_argument("--sid", type=float, default=1500.0, help="source to detector distance, mm (default 1500)")
    p.add_argument("-o", "-g", "--isocenter", help='isocenter "x y z" LPS mm (default 0 0 0)')
    p.add_argument("-n", "--nrm", help='isocenter-to-source direction "x y z" (one view)')
    p.add_argument("--vup", help='direction to the top panel row (default "0 0 1")')
    p.add_argument("-a", "--num-angles", type=int, help="number of views on the circle (default 1)")
    p.add_argument("-N", "--gantry-angle-spacing", type=float, help="degrees between views (default 360/a)")
    p.add_argument("-y", "--gantry-angle", type=float, help="first gantry angle, degrees (default 0)")
    p.add_argument("-c", "--image-center", help='principal point "column row" in pixels')
    p.add_argument("-e", "--exponential", action="store_true", help="write exp(-integral) instead of the integral")
    p.add_argument(
        "-P", "--hu-conversion", type=str.lower, choices=["preprocess", "inline", "none"], default="preprocess"
    )
    p.add_argument("-s", "--intensity-scale", type=float, default=1.0, help="scale the output values")
    p.add_argument("--autoscale", action="store_true", help="map each image's min..max onto --autoscale-range")
    p.add_argument("--autoscale-range", help='"min max" for --autoscale (default "0 255")')
    p.add_argument("-G", "--geometry-only", action="store_true", help="write the .txt matrices only (no CT needed)")
    p.add_argument(
        "-i", "--algorithm", type=str.lower, choices=["exact", "uniform"], default="exact", help="accepted; Joseph"
    )
    p.add_argument(
        "-A",
        "--threading",
        type=str.lower,
        choices=["cpu", "openmp", "cuda", "gpu", "opencl"],
        help="accepted; ignored",
    )
    p.add_argument("-S", "--raytrace-details", metavar="PREFIX", help="plastimatch's ray debug files; not written")
    p.add_argument("--sweep", choices=SWEEP_KINDS, help="a tomosynthesis sweep instead of a circle")
    p.add_argument("--sweep-angle", type=float, help="total sweep angle, degrees (default 40)")
    p.add_argument("--views", type=int, help="views in the sweep (default 25)")
    p.set_defaults(func=run_drr)

    p = subparsers.add_parser(
        "tomo",
        parents=[subparsers.common_parent],
        help="tomosynthesis reconstruction (shift-and-add, FBP, SART) from a projection set",
    )
    p.add_argument("--input", required=True, help="plastimatch projection folder or DIR/prefix, or a stack with .json")
    p.add_argument("--output", required=True, help="output volume (nrrd, mha, nii.gz)")
    p.add_argument("--algorithm", choices=TOMO_ALGORITHMS, default="fbp", help="default fbp")
    p.add_argument("--slice-spacing", type=float, default=5.0, help="mm between slices (default 5)")
    p.add_argument(
        "--depth-range",
        nargs=2,
        type=float,
        help="mm above the middle view's detector (default: what every view sees between source and panel)",
    )
    p.add_argument("--pixel-size", type=float, help="in-plane voxel size, mm (default: panel pitch at mid depth)")
    p.add_argument("--iterations", type=int, default=4, help="SART iterations (default 4)")
    p.add_argument("--subsets", type=int, help="SART ordered subsets (default views/5)")
    p.add_argument("--filter", choices=RECON_FILTERS, default="slice-thickness")
    p.add_argument("--slice-thickness", type=float, help="thinnest slice for the slice-thickness filter, mm")
    p.add_argument("--log", action="store_true", help="the input holds intensities I0 exp(-integral): take log(I0/I)")
    p.add_argument("--i0", help="with --log: unattenuated intensity, or auto (each view's air level; the default)")
    add_grid_options(p)
    p.set_defaults(func=run_tomo)

    p = subparsers.add_parser(
        "fdk", parents=[subparsers.common_parent], help="cone-beam CT reconstruction (plastimatch fdk options)"
    )
    p.add_argument(
        "-I",
        "--input",
        required=True,
        help="plastimatch projection folder or DIR/prefix, a folder of Varian .hnd files, or a .json stack",
    )
    p.add_argument("-O", "--output", required=True, help="output volume")
    p.add_argument("-r", "--dim", nargs="+", default=["256", "256", "100"], help='voxels "i j k" (default 256 256 100)')
    p.add_argument("-z", "--volume-size", nargs="+", default=["300", "300", "150"], help='size "x y z" mm')
    p.add_argument("-f", "--filter", choices=FDK_FILTERS, default="ramp")
    p.add_argument("-a", "--image-range", nargs="+", help='views "first last" or "first skip last"')
    p.add_argument("-x", "--detector-offset", nargs="+", help='detector offset "x0 y0" in pixels')
    p.add_argument("-s", "--intensity-scale", type=float, default=1.0, help="scale the output values")
    p.add_argument("-X", "--flavor", help="accepted for plastimatch compatibility; ignored")
    p.add_argument("-A", "--threading", help="accepted for plastimatch compatibility; ignored")
    p.set_defaults(func=run_fdk)


def run_drr(args: argparse.Namespace) -> int:
    from ..io import read_image
    from .drr import autoscale, drr
    from .geometry import subwindow
    from .projset import ProjectionSet, is_stack, write_projection_files, write_projections

    _check_drr_options(args)
    geometry = _drr_geometry(args)
    if args.subwindow:
        geometry = subwindow(geometry, *parse_numbers(args.subwindow, 4, "--subwindow", int))
    images = None
    if not args.geometry_only:
        source = args.input or args.infile
        if not source:
            raise ImgSuiteError("drr needs a CT: give INFILE or --input (or -G for the matrices only)")
        ct = read_image(source)
        images = drr(
            ct,
            geometry,
            hu_conversion=args.hu_conversion,
            exponential=args.exponential,
            intensity_scale=args.intensity_scale,
            progress=progress_for(args),
        ).images
        if args.autoscale:
            autoscale(images, *parse_numbers(args.autoscale_range or "0 255", 2, "--autoscale-range"))
    if is_stack(args.output):
        write_projections(ProjectionSet(images, geometry), args.output)
        return 0
    write_projection_files(args.output, geometry, images, args.output_format or "pfm")
    _warn_stale(args.output, len(geometry), args.output_format or "pfm")
    return 0


def _warn(message: str) -> None:
    print(f"imgsuite drr: warning: {message}", file=sys.stderr)


def _check_drr_options(args: argparse.Namespace) -> None:
    """Refuse options that would be silently ignored; warn for plastimatch's debugging output."""
    from .projset import is_stack

    if args.sweep:
        circle = {"-a": args.num_angles, "-N": args.gantry_angle_spacing, "-y": args.gantry_angle}
        circle.update({"-n": args.nrm, "--vup": args.vup, "-c": args.image_center})
        given = [name for name, value in circle.items() if value is not None]
        if given:
            raise ImgSuiteError(
                f"--sweep builds its own views: it cannot take {', '.join(given)} (use --views and --sweep-angle)"
            )
    elif args.views is not None or args.sweep_angle is not None:
        raise ImgSuiteError("--views and --sweep-angle need --sweep linear or --sweep arc")
    if args.sad <= 0 or args.sid <= args.sad:
        raise ImgSuiteError(f"need 0 < --sad < --sid, got {args.sad} and {args.sid}")
    stack = is_stack(args.output)
    if stack and (args.output_format or args.geometry_only):
        raise ImgSuiteError("-t and -G write plastimatch files: give -O a prefix, not a stack file", args.output)
    if args.autoscale_range and not args.autoscale:
        _warn("--autoscale-range does nothing without --autoscale")
    if args.raytrace_details:
        _warn("-S ray-trace details are a plastimatch debugging output; not written")
    if not stack and os.path.basename(args.output) and os.path.isdir(args.output):
        _warn(
            f"-O is a file name prefix: files go to {args.output}0000..., beside the folder (use {args.output}/image)"
        )


def _drr_geometry(args: argparse.Namespace):
    from .geometry import arc_sweep, circular, linear_sweep

    dims = parse_numbers(args.dim, 2, "--dim", int)
    size = parse_numbers(args.detector_size, 2, "--detector-size")
    if min(dims) < 1 or min(size) <= 0:
        raise ImgSuiteError(f"--dim must be >= 1 pixel and --detector-size > 0 mm, got {dims} and {size}")
    pixel = (size[0] / dims[0], size[1] / dims[1])
    iso = parse_numbers(args.isocenter, 3, "--isocenter") if args.isocenter else [0.0, 0.0, 0.0]
    views = 25 if args.views is None else args.views
    angle = 40.0 if args.sweep_angle is None else args.sweep_angle
    if args.sweep == "linear":
        center = np.asarray(iso) + [0.0, args.sid - args.sad, 0.0]  # coronal panel, source anterior
        return linear_sweep(views, angle, args.sid, dims, pixel, center)
    if args.sweep == "arc":
        return arc_sweep(views, angle, sad=args.sad, sid=args.sid, dims=dims, pixel_size=pixel, isocenter=iso)
    nrm = parse_numbers(args.nrm, 3, "--nrm") if args.nrm else None
    return circular(
        1 if nrm else (args.num_angles or 1),
        sad=args.sad,
        sid=args.sid,
        dims=dims,
        pixel_size=pixel,
        start_angle=args.gantry_angle or 0.0,
        angle_step=args.gantry_angle_spacing,
        isocenter=iso,
        vup=parse_numbers(args.vup or "0 0 1", 3, "--vup"),
        normal=nrm,
        image_center=parse_numbers(args.image_center, 2, "--image-center") if args.image_center else None,
    )


def _warn_stale(prefix: str, count: int, extension: str) -> None:
    """Other numbered files of the same prefix (an earlier run) would be read with these by ``tomo``/``fdk``."""
    folder, name = os.path.split(prefix)
    written = {f"{name}{i:04d}.{e}" for i in range(count) for e in ("txt", extension)}
    pattern = re.compile(rf"^{re.escape(name)}\d+\.(pfm|raw|pgm|txt)$", re.IGNORECASE)
    other = sorted(f for f in os.listdir(folder or ".") if pattern.match(f) and f not in written)
    if other:
        _warn(f"{folder or '.'} also holds {len(other)} older files of this prefix ({other[0]}...): remove them")


def run_tomo(args: argparse.Namespace) -> int:
    from ..io import write_image
    from .projset import line_integrals, read_projections
    from .recon import algorithm_options, reconstruct, tomo_grid

    if args.i0 and not args.log:
        raise ImgSuiteError("--i0 goes with --log (raw intensities); line integrals need no I0")
    _check_tomo_options(args)
    projections = read_projections(args.input)
    if args.log:
        i0 = args.i0 or "auto"
        projections = line_integrals(projections, i0 if i0 == "auto" else _number(i0, "--i0"))
    grid = grid_from_args(args) or tomo_grid(
        projections.geometry, args.depth_range, args.slice_spacing, args.pixel_size
    )
    options = algorithm_options(args.algorithm, iterations=args.iterations, subsets=args.subsets,
                                filter=args.filter, slice_thickness=args.slice_thickness)  # fmt: skip
    volume = reconstruct(projections, grid, algorithm=args.algorithm, progress=progress_for(args), **options)
    del projections  # free the panels before the writer's buffers are allocated
    _check_result(volume, args.input)
    write_image(volume, args.output)
    return 0


def _check_tomo_options(args: argparse.Namespace) -> None:
    """Refuse, before reading anything, values no reconstruction can use (each error names its option)."""
    positive = {"--slice-spacing": args.slice_spacing, "--pixel-size": args.pixel_size}
    positive["--slice-thickness"] = args.slice_thickness
    for option, value in positive.items():
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ImgSuiteError(f"{option} must be a positive number of mm, got {value}")
    for option, value in {"--iterations": args.iterations, "--subsets": args.subsets}.items():
        if value is not None and value < 1:
            raise ImgSuiteError(f"{option} must be at least 1, got {value}")
    if args.depth_range is None:  # the default grid: what every view sees
        return
    low, high = args.depth_range
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ImgSuiteError(f"--depth-range needs MIN < MAX (mm above the detector), got {low:g} {high:g}")


def _check_result(volume, source) -> None:
    """Refuse to write a reconstruction with NaN or infinite voxels: finite but absurd projection values (a
    damaged file's 1e38) overflow float32 on the way, and a silent NaN volume is worse than an error."""
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(volume)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ImgSuiteError(
            f"the reconstruction has {bad} NaN or infinite voxels: projection values out of any physical range", source
        )


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ImgSuiteError(f"{option} takes a number or 'auto', not {text!r}") from None


def _check_cone_beam(g, path) -> None:
    """FDK needs the volume centre (the origin) strictly between each view's source and its detector."""
    sad = np.einsum("ij,ij->i", -np.asarray(g.sources, float), g.normals)
    sid = np.asarray(g.sid, float)
    bad = np.where(~((sad > 1e-6 * sid) & (sad < sid * (1 - 1e-6))))[0]
    if len(bad):
        k = int(bad[0])
        raise ImgSuiteError(
            f"view {k}: the volume centre is not between source and detector (SAD {sad[k]:g} mm, SID {sid[k]:g} mm); "
            "fdk needs 0 < SAD < SID",
            path,
        )


def fdk_grid(dim, volume_size) -> object:
    """plastimatch fdk's output grid: ``dim`` voxels spanning ``volume_size`` mm, centred on the origin."""
    spacing = [s / d for s, d in zip(volume_size, dim)]
    origin = [-(s - sp) / 2.0 for s, sp in zip(volume_size, spacing)]
    return grid_image(origin, dim, spacing)


def run_fdk(args: argparse.Namespace) -> int:
    from ..io import write_image
    from .projset import read_projections, warn_if_not_line_integrals
    from .recon import fdk

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        projections = read_projections(args.input)
        warn_if_not_line_integrals(projections, args.input)
    for w in caught:
        print(f"imgsuite fdk: warning: {w.message}", file=sys.stderr)
    dim = parse_numbers(args.dim, None, "--dim", int)
    dim = dim * 3 if len(dim) == 1 else dim
    size = parse_numbers(args.volume_size, None, "--volume-size")
    size = size * 3 if len(size) == 1 else size
    if len(dim) != 3 or len(size) != 3:
        raise ImgSuiteError(f"--dim and --volume-size need 1 or 3 numbers, got {dim} and {size}")
    if min(dim) < 1:
        raise ImgSuiteError(f"-r/--dim needs at least 1 voxel along each axis, got {' '.join(map(str, dim))}")
    if not all(np.isfinite(v) and v > 0 for v in size):
        raise ImgSuiteError(f"-z/--volume-size needs positive sizes in mm, got {' '.join(f'{v:g}' for v in size)}")
    if not np.isfinite(args.intensity_scale):
        raise ImgSuiteError(f"-s/--intensity-scale must be a finite number, got {args.intensity_scale}")
    if args.image_range:
        r = parse_numbers(args.image_range, None, "--image-range", int)
        if min(r) < 0:  # a negative index would count from the end: the wrong views, silently
            raise ImgSuiteError(f"--image-range takes view numbers >= 0, got {' '.join(map(str, r))}")
        first, skip, last = (r[0], 1, r[1]) if len(r) == 2 else (r[0], r[1], r[2]) if len(r) == 3 else (r[0], 1, r[0])
        index = [i for i in range(first, last + 1, max(skip, 1)) if i < len(projections.geometry)]
        if not index:
            raise ImgSuiteError(f"--image-range {r} selects no projection", args.input)
        projections = type(projections)(projections.images[index], projections.geometry.subset(index))
    if args.detector_offset:
        offset = parse_numbers(args.detector_offset, 2, "--detector-offset")
        projections.geometry.image_center = projections.geometry.image_center + np.asarray(offset)
    _check_cone_beam(projections.geometry, args.input)
    volume = fdk(projections, fdk_grid(dim, size), filter=args.filter, progress=progress_for(args))
    if args.intensity_scale != 1.0:
        volume = volume * args.intensity_scale
    _check_result(volume, args.input)
    write_image(volume, args.output)
    return 0
