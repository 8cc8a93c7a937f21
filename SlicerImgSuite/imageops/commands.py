"""``imgsuite`` subcommands for the image tools, with plastimatch's option names and printed output.

crop, resample, mask, fill, threshold, add, average, adjust, scale, diff, compare, dice, boundary, dmap, union,
stats, probe, synth, thumbnail, filter. Vectors may be one quoted string (``--dim "512 512 100"``), commas or
separate words; values starting with a minus sign (``--pw-linear -inf,0,...``) are read as values.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..choices import PIXEL_TYPES
from ..cli_options import direction_cosines, parse_numbers
from ..errors import ImgSuiteError
from ..io import read_image, write_image
from ..progress import progress_for
from .reports import compare_text, dice_text, probe_text, stats_text

# argparse takes "-inf,0,-100,0" or "-100,0" for an unknown option; these commands have no option that looks
# like a number, so any word that starts like a (list of) negative number(s) is a value.
_NEGATIVE_VALUES = re.compile(r"^-(\d|\.\d|inf)[0-9eE.,;+\-infINF ]*$")


def _parser(subparsers, name: str, help: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, parents=[subparsers.common_parent], help=help, description=help)
    p._negative_number_matcher = _NEGATIVE_VALUES
    return p


def _read(path: str, what: str = "input"):
    if not path:
        raise ImgSuiteError(f"missing {what} image")
    return read_image(path)


def _numbers(value, count, name, kind=float, allow_inf=False):
    return None if value is None else parse_numbers(value, count, name, kind, allow_inf=allow_inf)


def _naming(func, attr: str = "input"):
    """Wrap a runner so that an error about the input that names no file names ``args.<attr>``."""

    def run(args) -> int:
        try:
            return func(args)
        except ImgSuiteError as exc:
            if exc.path is None and getattr(args, attr, None):
                raise ImgSuiteError(exc.problem, getattr(args, attr)) from None
            raise

    run.__name__ = func.__name__
    return run


def _image_writer(image, path):
    """A writer for :func:`~SlicerImgSuite.io.atomic.write_together` that saves ``image``; its errors name ``path``."""
    from ..io.images import save_image

    return lambda tmp: save_image(image, tmp, shown_as=path)


def _output_type(p):
    p.add_argument("--output-type", choices=PIXEL_TYPES, help="pixel type of the output image")


def register(subparsers) -> None:
    _register_grid(subparsers)
    _register_masks(subparsers)
    _register_arithmetic(subparsers)
    _register_measures(subparsers)
    _register_synth(subparsers)
    _register_pictures(subparsers)
    from .parity_commands import register as register_parity  # bbox maximum multiply intersect jacobian

    register_parity(subparsers)


def _register_grid(subparsers) -> None:
    """crop, resample"""
    p = _parser(subparsers, "crop", "crop an image to a voxel box, a mm box or a structure's bounding box")
    p.add_argument("--input", required=True, help="input image or DICOM folder")
    p.add_argument("--output", required=True, help="output image")
    p.add_argument("--voxels", help='first and last voxel per axis, both kept: "x1 x2 y1 y2 z1 z2"')
    p.add_argument("--coordinates", help='corners in mm: "x1 x2 y1 y2 z1 z2"')
    p.add_argument("--structure", help="mask image: crop to its bounding box")
    p.add_argument("--zcrop", help='"zsup zinf": crop that many more mm at the superior and inferior ends')
    _output_type(p)
    p.set_defaults(func=_naming(run_crop))

    p = _parser(subparsers, "resample", "resample an image onto a new grid")
    p.add_argument("--input", required=True, help="input image or DICOM folder")
    p.add_argument("--output", required=True, help="output image")
    p.add_argument("--fixed", "-F", help="image whose grid the output takes")
    p.add_argument("--origin", help='centre of the first voxel, mm: "x y z"')
    p.add_argument("--dim", help='voxels per axis: "x [y z]"')
    p.add_argument("--spacing", help='voxel size, mm: "x [y z]"')
    p.add_argument("--direction-cosines", "--direction", help='9 direction cosines "a b c d e f g h i" (or "identity")')
    p.add_argument("--subsample", help='bin voxels together at an integer rate "x [y z]"')
    p.add_argument("--interpolation", choices=["nn", "linear"], default="linear", help="default linear")
    p.add_argument("--default-value", type=float, default=0.0, help="value outside the input (default 0)")
    _output_type(p)
    p.set_defaults(func=_naming(run_resample))


def _register_masks(subparsers) -> None:
    """mask, fill, threshold, boundary, dmap, union"""
    for name, help in (
        ("mask", "set voxels OUTSIDE a mask to --mask-value"),
        ("fill", "set voxels INSIDE a mask to --mask-value"),
    ):
        p = _parser(subparsers, name, help)
        p.add_argument("--input", required=True, help="input image or DICOM folder")
        p.add_argument("--mask", required=True, help="mask image (non-zero = inside), on the input's grid")
        p.add_argument("--mask-value", type=float, default=0.0, help="value to write (default 0)")
        p.add_argument("--output", required=True, help="output image, or folder with --output-format dicom")
        p.add_argument("--output-format", choices=["dicom"], help="dicom: a CT series in the input's study")
        _output_type(p)
        p.set_defaults(func=_naming(run_mask), fill=name == "fill")

    p = _parser(subparsers, "threshold", "make a 0/1 mask from intensity thresholds")
    p.add_argument("--input", required=True, help="input image or DICOM folder")
    p.add_argument("--output", required=True, help="output mask (uchar)")
    p.add_argument("--above", type=float, help="1 where the value is >= this")
    p.add_argument("--below", type=float, help="1 where the value is <= this")
    p.add_argument("--range", help='1 inside any closed range "lo1,hi1,lo2,hi2,..."')
    p.set_defaults(func=_naming(run_threshold))

    p = _parser(subparsers, "boundary", "mark a structure's boundary voxels")
    p.add_argument("input")
    p.add_argument("--output", required=True, help="output mask (uchar)")
    p.add_argument("--boundary-behavior", choices=["adaptive", "zero-pad", "edge-pad"], default="adaptive")
    p.add_argument(
        "--boundary-type",
        choices=["interior-edge", "interior-face"],
        default="interior-edge",
        help="interior-edge: 1 on boundary voxels; interior-face: bits -x 1, -y 2, -z 4, +x 8, +y 16, +z 32",
    )
    p.set_defaults(func=_naming(run_boundary))

    p = _parser(subparsers, "dmap", "signed distance map (mm) of a structure, negative inside by default")
    p.add_argument("--input", required=True, help="structure mask")
    p.add_argument("--output", required=True, help="output image (float)")
    p.add_argument("--absolute-distance", action="store_true", help="all distances positive")
    p.add_argument("--inside-positive", action="store_true", help="positive inside, negative outside")
    p.add_argument("--squared-distance", action="store_true", help="squared distances (mm^2)")
    p.add_argument("--maximum-distance", type=float, help="truncate distances beyond this")
    p.add_argument("--boundary-behavior", choices=["adaptive", "zero-pad", "edge-pad"], default="adaptive")
    p.add_argument(
        "--algorithm",
        choices=["maurer", "itk-maurer", "danielsson", "itk-danielsson", "song-maurer"],
        help="accepted for compatibility; the exact Euclidean distance is always computed",
    )
    p.set_defaults(func=_naming(run_dmap))

    p = _parser(subparsers, "union", "union of masks (uchar)")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--output", required=True)
    p.set_defaults(func=run_union)


def _register_arithmetic(subparsers) -> None:
    """add, average, adjust, scale, diff"""
    for name, help in (("add", "add images (optionally weighted or averaged)"), ("average", "average images")):
        p = _parser(subparsers, name, help)
        p.add_argument("inputs", nargs="+", help="input images, same grid")
        p.add_argument("--output", required=True, help="output image")
        p.add_argument("--weight", help='one weight per image "w1 w2 ..."')
        p.add_argument("--average", action="store_true", default=name == "average", help="divide by the count")
        p.set_defaults(func=run_add)

    p = _parser(subparsers, "adjust", "adjust intensities: piecewise linear map, truncation, scaling")
    p.add_argument("--input", required=True, help="input image or DICOM folder")
    p.add_argument("--output", required=True, help="output image (float)")
    p.add_argument("--pw-linear", help='map "in1,out1,in2,out2,..."; -inf,s / inf,s give the slopes beyond the ends')
    p.add_argument("--truncate-above", type=float, help="clamp values above this")
    p.add_argument("--truncate-below", type=float, help="clamp values below this")
    p.add_argument("--scale", type=float, help="multiply by this, last")
    p.add_argument("--linear", help='"shift scale": (v + shift) * scale')
    from .parity_commands import add_matching_options

    add_matching_options(p)
    _output_type(p)
    p.set_defaults(func=_naming(run_adjust))

    p = _parser(subparsers, "scale", "multiply an image by a weight (float output)")
    p.add_argument("input", help="input image")
    p.add_argument("--weight", type=float, required=True, help="the factor")
    p.add_argument("--output", required=True, help="output image")
    p.set_defaults(func=_naming(run_scale))

    p = _parser(subparsers, "diff", "subtract two images: image_out = image_in_1 - image_in_2 (float)")
    p.add_argument("image_in_1")
    p.add_argument("image_in_2")
    p.add_argument("image_out")
    p.set_defaults(func=run_diff)


def _register_measures(subparsers) -> None:
    """compare, dice, stats, probe"""
    p = _parser(subparsers, "compare", "print statistics of the difference of two images")
    p.add_argument("inputs", nargs=2, help="two images, same grid")
    p.add_argument("--mask", help="compare only inside this mask")
    p.set_defaults(func=run_compare)

    p = _parser(subparsers, "dice", "Dice, Hausdorff and surface distances of two structures")
    p.add_argument("reference", help="mask image, or an RTSTRUCT with --reference-structure")
    p.add_argument("test", help="mask image, or an RTSTRUCT with --test-structure")
    p.add_argument("--reference-structure", help="ROI name when REFERENCE is an RTSTRUCT")
    p.add_argument("--test-structure", help="ROI name when TEST is an RTSTRUCT")
    p.add_argument(
        "--referenced-ct", help="grid for RTSTRUCT inputs (default: the other input's grid, else one spanning both)"
    )
    p.add_argument("--dice", action="store_true", help="Dice and overlap counts (default)")
    p.add_argument("--hausdorff", action="store_true", help="Hausdorff and surface distances")
    p.add_argument("--all", action="store_true", help="both")
    p.add_argument("--json", help="also write every number to this JSON file")
    p.add_argument(
        "--zcrop", help='"zsup zinf": leave out the reference\'s top zsup mm and bottom zinf mm (both images)'
    )
    p.set_defaults(func=run_dice)

    p = _parser(subparsers, "stats", "print image statistics, optionally inside a mask")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--mask", help="only non-zero voxels of this mask")
    p.add_argument("--outside", action="store_true", help="outside the mask instead")
    p.add_argument("--sigma", action="store_true", help="also the standard deviation")
    p.add_argument("--structure", action="store_true", help="voxels per structure of a structure-set image")
    p.set_defaults(func=run_stats)

    p = _parser(subparsers, "probe", "print values at voxel indices or mm positions (interpolated)")
    p.add_argument("input")
    p.add_argument("--index", "-i", help='"i j k;i j k;..." (fractional indices interpolate)')
    p.add_argument("--location", "-l", help='"x y z;x y z;..." in mm (LPS)')
    p.set_defaults(func=_naming(run_probe))


def _register_pictures(subparsers) -> None:
    """thumbnail, filter"""
    p = _parser(subparsers, "thumbnail", "one slice as a picture (PNG with window/level) or a 2D image")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True, help=".png for a picture, else a 2D image file")
    p.add_argument("--axis", choices=["x", "y", "z"], default="z")
    p.add_argument(
        "--loc", type=float, default=0.0, help="slice position along the axis, mm (default 0, as plastimatch)"
    )
    p.add_argument("--dim", type=int, help="square thumbnail of this many voxels, centred on 0 (plastimatch)")
    p.add_argument("--spacing", type=float, help="its voxel size, mm")
    p.add_argument("--window", type=float, help="window width for the PNG")
    p.add_argument("--level", type=float, help="window centre for the PNG")
    p.add_argument("--auto-adjust", action="store_true", help="window the 1-99 percent range (the default for PNG)")
    p.set_defaults(func=_naming(run_thumbnail))

    p = _parser(subparsers, "filter", "Gaussian, Gabor, gradient-magnitude or kernel-image filtering (float output)")
    p.add_argument("input")
    p.add_argument("--output", required=True)
    p.add_argument("--pattern", choices=["gauss", "gabor", "gm", "kernel"], default="gauss")
    p.add_argument("--gauss-width", type=float, help="Gaussian standard deviation, mm")
    p.add_argument("--kernel", help="kernel image (for --pattern kernel)")
    p.add_argument("--gabor-k-fib", help='Gabor direction i of a Fibonacci spiral of n: "i n"')
    p.add_argument("--output-kernel", help="also write the kernel used")
    p.set_defaults(func=_naming(run_filter))


def _register_synth(subparsers) -> None:
    from .synthetic import PATTERNS

    p = _parser(subparsers, "synth", "make a synthetic image (and a CT series, structures)")
    p.add_argument("--pattern", choices=PATTERNS, default="gauss")
    p.add_argument("--output", help="output image")
    p.add_argument("--output-dicom", help="output DICOM CT series folder")
    p.add_argument("--output-prefix", help="folder with one mask per structure (lung)")
    p.add_argument("--output-type", choices=PIXEL_TYPES, default="float")
    p.add_argument("--fixed", help="take the grid of this image")
    p.add_argument("--dim", help='"x [y z]" voxels (default 100)')
    p.add_argument("--spacing", help='"x [y z]" mm')
    p.add_argument("--origin", help='"x y z" mm')
    p.add_argument("--volume-size", help='"x [y z]" mm (default 500)')
    p.add_argument("--direction-cosines", "--direction", help='9 direction cosines or "identity"')
    p.add_argument("--foreground", type=float, default=0.0)
    p.add_argument("--background", type=float, default=-1000.0)
    p.add_argument("--rect-size", help='"x [y z]" widths or "x1 x2 y1 y2 z1 z2" corners, mm')
    p.add_argument("--center", help='sphere centre "x y z" mm')
    p.add_argument("--radius", help='sphere radius "r" or "rx ry rz" mm')
    p.add_argument("--gauss-center", help='"x y z" mm')
    p.add_argument("--gauss-std", help='"s" or "sx sy sz" mm')
    p.add_argument("--grid-pattern", help='grid line spacing in voxels "x [y z]"')
    p.add_argument("--lung-tumor-pos", help='tumour position "z" or "x y z" mm')
    p.add_argument("--patient-name", default="Synthetic^Phantom")
    p.add_argument("--patient-id", default="SYNTH001")
    p.add_argument("--series-description", default="imgsuite synth")
    from .parity_commands import add_synth_options

    add_synth_options(p)
    p.set_defaults(func=run_synth)


# --- runners -------------------------------------------------------------------------------------------------


def run_crop(args) -> int:
    from .grid import coordinates_to_voxels, crop, mask_bounding_box

    image = _read(args.input)
    ndim = image.GetDimension()
    if sum(x is not None for x in (args.voxels, args.coordinates, args.structure)) != 1:
        raise ImgSuiteError("crop needs exactly one of --voxels, --coordinates or --structure")
    if args.voxels:
        voxels = parse_numbers(args.voxels, None, "--voxels", int)
        if ndim == 2 and len(voxels) == 6 and voxels[4:] == [0, 0]:
            voxels = voxels[:4]  # plastimatch treats a 2D image as one slice and always wants six numbers
        if len(voxels) != 2 * ndim:
            raise ImgSuiteError(f"--voxels expects {2 * ndim} numbers (x1 x2 y1 y2 ...), got {len(voxels)}")
    elif args.coordinates:
        voxels = coordinates_to_voxels(image, parse_numbers(args.coordinates, 2 * ndim, "--coordinates"))
    else:
        from ..geometry import require_same_grid

        mask = _read(args.structure, "structure")
        require_same_grid(image, mask, args.input, args.structure)
        try:
            voxels = mask_bounding_box(mask)
        except ImgSuiteError as exc:
            raise ImgSuiteError(exc.problem, args.structure) from None
    if args.zcrop:
        from .grid import zcrop_voxels

        voxels = zcrop_voxels(image, voxels, *parse_numbers(args.zcrop, 2, "--zcrop"))
    write_image(crop(image, voxels), args.output, args.output_type)
    return 0


def _direction(value, ndim):
    return direction_cosines(value, ndim)


def run_resample(args) -> int:
    from .grid import resample

    image = _read(args.input)
    ndim = image.GetDimension()
    reference = _read(args.fixed, "fixed") if args.fixed else None
    if reference is not None and reference.GetDimension() != ndim:  # SimpleITK's Resample: a traceback
        raise ImgSuiteError(f"--fixed is a {reference.GetDimension()}D image; --input is {ndim}D", args.fixed)
    out = resample(
        image,
        reference,
        origin=_numbers(args.origin, ndim, "--origin"),
        dim=_numbers(args.dim, ndim, "--dim", int),
        spacing=_numbers(args.spacing, ndim, "--spacing"),
        direction=_direction(args.direction_cosines, ndim),
        subsample=_numbers(args.subsample, ndim, "--subsample", int),
        interpolation=args.interpolation,
        default_value=args.default_value,
        progress=progress_for(args),
    )
    write_image(out, args.output, args.output_type)
    return 0


def run_mask(args) -> int:
    from .masks import fill_image, mask_image

    image = _read(args.input)
    mask = _read(args.mask, "mask")
    from ..geometry import require_same_grid

    require_same_grid(image, mask, args.input, args.mask)
    out = (fill_image if args.fill else mask_image)(image, mask, args.mask_value)
    if args.output_format == "dicom":
        from .dicom import write_derived_series

        if args.output_type:
            raise ImgSuiteError("--output-type does not apply to --output-format dicom (16-bit CT pixels)")
        write_derived_series(out, args.output, args.input, "filled" if args.fill else "masked")
        return 0
    write_image(out, args.output, args.output_type)
    return 0


def run_threshold(args) -> int:
    from .masks import threshold

    image = _read(args.input)
    ranges = _numbers(args.range, None, "--range", allow_inf=True)
    write_image(threshold(image, args.above, args.below, ranges), args.output)
    return 0


def run_add(args) -> int:
    from .arithmetic import add

    images = [_read(path) for path in args.inputs]
    weights = _numbers(args.weight, len(images), "--weight")
    write_image(add(images, weights, args.average, names=args.inputs), args.output)
    return 0


def run_adjust(args) -> int:
    from .arithmetic import adjust

    image = _read(args.input)
    from .parity_commands import run_matching

    image = run_matching(args, image)  # --hist-match, --linear-match, --local-match
    out = adjust(
        image,
        pw_linear_points=_numbers(args.pw_linear, None, "--pw-linear", allow_inf=True),
        truncate_above=args.truncate_above,
        truncate_below=args.truncate_below,
        scale=args.scale,
        linear=_numbers(args.linear, 2, "--linear"),
    )
    from .parity_commands import write_adjusted

    write_adjusted(args, out)
    return 0


def run_scale(args) -> int:
    from .arithmetic import scale

    write_image(scale(_read(args.input), args.weight), args.output)
    return 0


def run_diff(args) -> int:
    from .measure import diff

    a, b = _read(args.image_in_1), _read(args.image_in_2)
    write_image(diff(a, b, (args.image_in_1, args.image_in_2)), args.image_out)
    return 0


def run_compare(args) -> int:
    from .measure import compare

    a, b = (_read(p) for p in args.inputs)
    mask = _read(args.mask, "mask") if args.mask else None
    if mask is not None:
        from ..geometry import require_same_grid

        require_same_grid(a, mask, args.inputs[0], args.mask)
    print(compare_text(compare(a, b, mask, args.inputs)))
    return 0


def run_dice(args) -> int:
    from .job import dice

    s = dice(
        args.reference, args.test, reference_structure=args.reference_structure, test_structure=args.test_structure,
        referenced_ct=args.referenced_ct, output_json=args.json, zcrop=_numbers(args.zcrop, 2, "--zcrop"),
    )  # fmt: skip
    print(dice_text(s, args.dice or args.all or not args.hausdorff, args.hausdorff or args.all))
    return 0


def run_boundary(args) -> int:
    from .distance import boundary

    write_image(boundary(_read(args.input), args.boundary_behavior, args.boundary_type), args.output)
    return 0


def run_dmap(args) -> int:
    from .distance import distance_map

    out = distance_map(
        _read(args.input),
        inside_positive=args.inside_positive,
        absolute=args.absolute_distance,
        squared=args.squared_distance,
        maximum_distance=args.maximum_distance,
        behavior=args.boundary_behavior,
        progress=progress_for(args),
    )
    write_image(out, args.output)
    return 0


def run_union(args) -> int:
    from .masks import union

    write_image(union([_read(p) for p in args.inputs], args.inputs), args.output)
    return 0


def run_stats(args) -> int:
    from ..geometry import require_same_grid
    from .measure import image_stats

    if args.structure:
        return _structure_stats(args)
    mask = _read(args.mask, "mask") if args.mask else None
    for path in args.inputs:
        image = _read(path)
        if mask is not None:
            require_same_grid(image, mask, path, args.mask)
        if image.GetNumberOfComponentsPerPixel() > 1:  # a vector field: plastimatch's per-component table
            print(_vector_stats_text(image, mask, args.outside))
            continue
        print(stats_text(image_stats(image, mask, args.outside), args.sigma))
    return 0


def _structure_stats(args) -> int:
    """``stats --structure``: plastimatch's ss-image lines (which 1.9.4 prints only without the option)."""
    from .measure import structure_voxel_counts

    if args.mask or args.outside or args.sigma:
        raise ImgSuiteError("stats --structure counts voxels per structure: it takes no --mask, --outside or --sigma")
    for path in args.inputs:
        try:
            counts = structure_voxel_counts(_read(path))
        except ImgSuiteError as exc:
            raise ImgSuiteError(exc.problem, path) from None
        print(f"SS_IMAGE: At most {len(counts)} structures")
        print("\n".join(f"S {n:4d}  NVOX {c:10d}" for n, c in enumerate(counts)))
    return 0


def _vector_stats_text(image, mask, outside: bool) -> str:
    """plastimatch ``stats`` of a vector field: Min/Mean/Max/Mean abs per component, Ave len (mean magnitude)."""
    from .measure import vector_stats

    s = vector_stats(image, mask, outside)
    rows = [
        (f"{k}:", s[key]) for k, key in (("Min", "min"), ("Mean", "mean"), ("Max", "max"), ("Mean abs", "mean_abs"))
    ]
    lines = [f"{label:<16}" + "".join(f"{v:>11.3f}" for v in values) for label, values in rows]
    return "\n".join(lines + [f"{'Ave len:':<16}{s['mean_length']:>11.3f}"])


def _points(text, ndim, option):
    if not text:
        return []
    return [parse_numbers(part, ndim, option) for part in text.split(";") if part.strip()]


def run_probe(args) -> int:
    from .measure import probe

    image = _read(args.input)
    ndim = image.GetDimension()
    rows = probe(image, _points(args.index, ndim, "--index"), _points(args.location, ndim, "--location"))
    if rows:
        print(probe_text(rows))
    return 0


def run_synth(args) -> int:
    from .parity_commands import synth_options, synth_outputs
    from .synthetic import synth, synth_grid

    if not (args.output or args.output_dicom or args.output_prefix or args.output_ss_img or args.output_dose_img):
        raise ImgSuiteError("nothing to write: give --output, --output-dicom, --output-prefix, --output-ss-img ...")
    if args.fixed:
        grid = _read(args.fixed, "fixed")
    else:
        dim = _numbers(args.dim, None, "--dim", int)
        ndim = len(dim) if dim and len(dim) in (2, 3) else 3
        grid = synth_grid(
            dim=_numbers(args.dim, ndim, "--dim", int),
            spacing=_numbers(args.spacing, ndim, "--spacing"),
            origin=_numbers(args.origin, ndim, "--origin"),
            volume_size=_numbers(args.volume_size, ndim, "--volume-size"),
            direction=_direction(args.direction_cosines, ndim),
            ndim=ndim,
        )
    tumor = _numbers(args.lung_tumor_pos, None, "--lung-tumor-pos")
    if tumor is not None and len(tumor) not in (1, 3):
        raise ImgSuiteError(f'--lung-tumor-pos expects "z" or "x y z", got {tumor}')
    result = synth(
        args.pattern,
        grid,
        foreground=args.foreground,
        background=args.background,
        rect_size=_numbers(args.rect_size, None, "--rect-size"),
        center=_numbers(args.center, None, "--center"),
        radius=_numbers(args.radius, None, "--radius"),
        gauss_center=_numbers(args.gauss_center, None, "--gauss-center"),
        gauss_std=_numbers(args.gauss_std, None, "--gauss-std"),
        grid_pattern=_numbers(args.grid_pattern, None, "--grid-pattern", int),
        lung_tumor_pos=tumor,
        output_type=args.output_type,
        **synth_options(args),
    )
    from ..io.atomic import write_together

    def dicom_into(tmp):  # pydicom is imported only when a DICOM output is asked for
        from .dicom import write_synthetic_dicom_into

        write_synthetic_dicom_into(result, tmp, args.patient_name, args.patient_id, args.series_description)

    write_together(
        [
            (args.output, _image_writer(result.image, args.output), False),
            (args.output_prefix, lambda tmp: _write_structures(result.structures, tmp), True),
            (args.output_dicom, dicom_into, True),
            *synth_outputs(args, result),
        ]
    )
    return 0


def _write_structures(structures, folder: Path) -> None:
    from ..io.images import save_image

    for name, mask in structures.items():
        save_image(mask, folder / f"{name}.nrrd")


def run_thumbnail(args) -> int:
    from .slices import thumbnail, write_png

    image = _read(args.input)
    t = thumbnail(image, args.axis, args.loc, args.dim, args.spacing)
    if Path(args.output).suffix.lower() == ".png":
        write_png(t, args.output, args.window, args.level, flip_rows=args.axis != "z")
    else:
        write_image(t, args.output)
    return 0


def run_filter(args) -> int:
    from . import filters

    image = _read(args.input)
    kernel = None
    if args.pattern == "gauss":
        if args.gauss_width is None:
            raise ImgSuiteError("--pattern gauss needs --gauss-width (mm)")
        out = filters.gauss_filter(image, args.gauss_width)
    elif args.pattern == "gm":
        out = filters.gradient_magnitude(image)
    elif args.pattern == "kernel":
        if not args.kernel:
            raise ImgSuiteError("--pattern kernel needs --kernel IMAGE")
        kernel = _read(args.kernel, "kernel")
        out = filters.kernel_filter(image, kernel)
    else:
        i, n = _numbers(args.gabor_k_fib, 2, "--gabor-k-fib", int) if args.gabor_k_fib else (0, 1)
        out = filters.gabor_filter(image, (i, n))
        if args.output_kernel:
            import SimpleITK as sitk

            k = filters.gabor_kernel(image.GetSpacing(), filters.fibonacci_direction(i, n))
            kernel = sitk.GetImageFromArray(k.astype("float32"))
            kernel.SetSpacing(image.GetSpacing())
    from ..io.atomic import write_together

    outputs = [(args.output, _image_writer(out, args.output), False)]
    if args.output_kernel and kernel is not None:
        outputs.append((args.output_kernel, _image_writer(kernel, args.output_kernel), False))
    write_together(outputs)
    return 0
