"""``imgsuite`` subcommands that plastimatch has and the first image tools lacked: bbox, maximum, multiply,
intersect, jacobian, xf-invert, wed. Option names and printed lines follow plastimatch 1.9.4; the work is done by the functions
in :mod:`.bbox`, :mod:`.combine` and :func:`SlicerImgSuite.registration.vf.jacobian_determinant`.
"""

from __future__ import annotations

from pathlib import Path

from ..cli_options import add_grid_options
from ..errors import ImgSuiteError


def _parser(subparsers, name: str, help: str):
    return subparsers.add_parser(name, parents=[subparsers.common_parent], help=help, description=help)


def _read_all(paths):
    from ..io import read_image

    return [read_image(p) for p in paths]


def register(subparsers) -> None:
    p = _parser(subparsers, "bbox", "print the mm bounding box of a structure's non-zero voxels; optionally a box mask")
    p.add_argument("input", help="structure mask (non-zero = inside)")
    p.add_argument("--margin", type=float, default=0.0, help="grow the box by this many mm (negative shrinks)")
    p.add_argument("--output", help="write a uchar mask: 1 where the voxel centre is in the box")
    p.add_argument("--z-only", action="store_true", help="for --output, limit the mask along z only (whole slices)")
    p.set_defaults(func=run_bbox)

    for name, help in (
        ("maximum", "voxel-wise maximum of images (first image's pixel type)"),
        ("multiply", "voxel-wise product of images (first image's pixel type)"),
        ("intersect", "1 where every input mask is non-zero (uchar)"),
    ):
        p = _parser(subparsers, name, help)
        p.add_argument("inputs", nargs="+", help="input images, same grid")
        p.add_argument("--output", required=True, help="output image")
        p.set_defaults(func=run_combine, operation=name)

    p = _parser(subparsers, "jacobian", "Jacobian determinant of a vector field (as vf-stats --output-jacobian)")
    p.add_argument("--input", required=True, help="vector field image (mha, nrrd, nii)")
    p.add_argument("--output-img", help="Jacobian determinant image (float)")
    p.add_argument("--output-stats", help='text file "Min Jacobian: ..." / "Max Jacobian: ..."')
    p.set_defaults(func=run_jacobian)

    p = _parser(subparsers, "xf-invert", "invert a transform: linear exactly, a vector field iteratively")
    p.add_argument("input_file", nargs="?", help="transform (.tfm/.h5) or vector field (same as --input)")
    p.add_argument("--input", help="transform (.tfm/.h5) or vector field image")
    p.add_argument("--output", required=True, help=".tfm/.h5, or an image suffix for a vector field")
    p.add_argument("--iterations", type=int, default=20, help="vector field inversion rounds (default 20)")
    add_grid_options(p)
    p.set_defaults(func=run_xf_invert)

    p = _parser(subparsers, "wed", "water-equivalent depth of every CT voxel for a beam from a point (plastimatch wed)")
    p.add_argument("--input-ct", help="CT (HU): image file or DICOM folder")
    p.add_argument("--command-file", help="plastimatch wed file: [INPUT SETTINGS] ct, [BEAM] pos and ray_step")
    p.add_argument("--pos", help='beam source "x y z", LPS mm (plastimatch [BEAM] pos; default -1000 0 0)')
    p.add_argument("--ray-step", type=float, help="sampling step along the rays, mm (default 1)")
    p.add_argument("--output", required=True, help="depth image (float, mm) on the CT grid")
    p.set_defaults(func=run_wed)


def run_wed(args) -> int:
    import sys

    from ..cli_options import parse_numbers
    from ..io import read_image, write_image
    from ..progress import progress_for
    from .wed import read_wed_command_file, water_equivalent_depth

    settings = read_wed_command_file(args.command_file) if args.command_file else {}
    for key in settings.pop("ignored", []):
        print(f"imgsuite wed: warning: [OUTPUT SETTINGS] {key}: plastimatch's beam's-eye volume, not written "
              "(the depth on the CT grid goes to --output)", file=sys.stderr)  # fmt: skip
    ct_path = args.input_ct or settings.get("ct")
    if not ct_path:
        raise ImgSuiteError("wed needs a CT: --input-ct or [INPUT SETTINGS] ct in --command-file")
    pos = parse_numbers(args.pos, 3, "--pos") if args.pos else settings.get("pos", [-1000.0, 0.0, 0.0])
    step = args.ray_step if args.ray_step is not None else settings.get("ray_step", 1.0)
    try:
        depth = water_equivalent_depth(read_image(ct_path), pos, ray_step=step, progress=progress_for(args))
    except ImgSuiteError as exc:  # name the CT in the one-line error
        raise ImgSuiteError(exc.problem, exc.path or ct_path) from None
    write_image(depth, args.output)
    return 0


def run_bbox(args) -> int:
    from ..io.atomic import write_together
    from ..io.images import save_image
    from .bbox import bounding_box, bounding_box_mask

    (image,) = _read_all([args.input])
    try:
        box = bounding_box(image, margin=args.margin)
    except ImgSuiteError as exc:
        raise ImgSuiteError(exc.problem, args.input) from None
    print("coordinates: " + " ".join(f"{v:f}" for v in box.coordinates))
    print("indices (no margin): " + " ".join(str(v) for v in box.indices))
    if args.output:
        mask = bounding_box_mask(image, box, z_only=args.z_only)
        write_together([(args.output, lambda tmp: save_image(mask, tmp, shown_as=args.output), False)])
    return 0


def run_combine(args) -> int:
    from ..io import write_image
    from . import combine

    images = _read_all(args.inputs)
    write_image(getattr(combine, args.operation)(images, names=args.inputs), args.output)
    return 0


def run_jacobian(args) -> int:
    import numpy as np
    import SimpleITK as sitk

    from ..io.atomic import write_together
    from ..io.images import save_image
    from ..registration.vf import jacobian_determinant

    (field,) = _read_all([args.input])
    if field.GetDimension() != 3 or field.GetNumberOfComponentsPerPixel() != 3:
        raise ImgSuiteError("jacobian needs a 3D vector field with 3 components per voxel", args.input)
    jac = jacobian_determinant(field)
    values = sitk.GetArrayViewFromImage(jac)
    low, high = float(np.min(values)), float(np.max(values))
    print(f"Minimum of the determinant of the Jacobian of the warp: {low:g}")
    print(f"Maximum of the determinant of the Jacobian of the warp: {high:g}")
    stats = f"Min Jacobian: {low:f}\nMax Jacobian: {high:f}\n"
    write_together(
        [
            (args.output_img, lambda tmp: save_image(jac, tmp, shown_as=args.output_img), False),
            (args.output_stats, lambda tmp: Path(tmp).write_text(stats), False),
        ]
    )
    return 0


def run_xf_invert(args) -> int:
    from ..cli_options import grid_from_args
    from ..registration.invert import invert_transform
    from ..registration.xforms import is_field_path, read_transform, write_transform

    path = args.input or args.input_file
    if not path or (args.input and args.input_file):
        raise ImgSuiteError("xf-invert needs one input transform: --input FILE (or FILE)")
    transform = read_transform(path)
    field = None
    if transform.GetName() == "DisplacementFieldTransform":
        import SimpleITK as sitk

        field = sitk.DisplacementFieldTransform(transform).GetDisplacementField()
    reference = grid_from_args(args, like=field)
    try:
        inverse = invert_transform(transform, reference, iterations=args.iterations)
    except ImgSuiteError as exc:
        raise ImgSuiteError(exc.problem, exc.path or path) from None
    if is_field_path(args.output) and reference is None:
        reference = field
        if reference is None:
            raise ImgSuiteError("a vector field output needs a grid: --fixed IMG or --origin/--dim/--spacing", path)
    write_transform(inverse, args.output, reference)
    return 0


# --- adjust: intensity matching (options added to the existing ``adjust`` command) -------------------------------


def add_matching_options(p) -> None:
    p.add_argument("--hist-match", metavar="REF", help="reference image: match the input's histogram to it")
    p.add_argument("--hist-levels", type=int, default=1024, help="histogram bins for --hist-match (default 1024)")
    p.add_argument("--hist-points", type=int, default=10, help="match points for --hist-match (default 10)")
    p.add_argument("--hist-threshold", action="store_true", help="--hist-match ignores voxels below each image's mean")
    p.add_argument("--linear-match", metavar="REF", help="reference image: shift and scale to its mean and std")
    p.add_argument("--local-match", metavar="REF", help="reference image: patch-wise shift and scale (--patch-size)")
    p.add_argument("--patch-size", help='--local-match patch size in voxels: "n" or "nx ny nz"')
    p.add_argument("--local-blending-off", action="store_true", help="--local-match: nearest patch, no trilinear")
    p.add_argument("--local-shift-out", help="--local-match: also write the per-voxel shifts")
    p.add_argument("--local-scale-out", help="--local-match: also write the per-voxel scales")
    p.add_argument("--input-mask", help="--linear/--local-match: input statistics inside this mask")
    p.add_argument(
        "--ref-mask",
        help="--linear/--local-match: reference statistics inside this mask (--local-match: one "
        "mask alone serves both images)",
    )


def run_matching(args, image):
    """``adjust``'s matching step: the matched image, or ``image`` unchanged when no matching was asked for.

    ``--local-match``'s extra outputs wait in ``args.matching_outputs`` for :func:`write_adjusted`.
    """
    from ..io import read_image
    from .matching import histogram_match, linear_match

    methods = [m for m in (args.hist_match, args.linear_match, args.local_match) if m]
    if (args.input_mask or args.ref_mask) and not (args.linear_match or args.local_match):
        raise ImgSuiteError("--input-mask and --ref-mask go with --linear-match or --local-match")
    if not methods:
        return image
    others = [args.pw_linear, args.truncate_above, args.truncate_below, args.scale, args.linear]
    if len(methods) > 1 or any(v is not None for v in others):
        raise ImgSuiteError("use one of --hist-match, --linear-match, --local-match or the other adjustments at a time")
    if args.hist_match:
        reference = read_image(args.hist_match)
        try:
            return histogram_match(
                image, reference, levels=args.hist_levels, points=args.hist_points, threshold=args.hist_threshold
            )
        except ImgSuiteError as exc:
            raise ImgSuiteError(exc.problem, exc.path or args.hist_match) from None
    masks = [read_image(m) if m else None for m in (args.input_mask, args.ref_mask)]
    if args.local_match:
        return _local_match(args, image, read_image(args.local_match), masks)
    reference = read_image(args.linear_match)
    names = (args.input, args.linear_match, args.input_mask, args.ref_mask)
    return linear_match(image, reference, image_mask=masks[0], reference_mask=masks[1], names=names)


def _local_match(args, image, reference, masks):
    from ..cli_options import parse_numbers
    from ..io.images import save_image
    from .matching import local_match

    if not args.patch_size:
        raise ImgSuiteError("--local-match needs --patch-size")
    patch = parse_numbers(args.patch_size, 3, "--patch-size", int)
    if (masks[0] is None) != (masks[1] is None):  # plastimatch: one mask given serves both images
        masks = [masks[0] if masks[0] is not None else masks[1]] * 2
    try:
        out, shift, scale = local_match(
            image, reference, patch, image_mask=masks[0], reference_mask=masks[1], blending=not args.local_blending_off
        )
    except ImgSuiteError as exc:
        raise ImgSuiteError(exc.problem, exc.path or args.input) from None
    args.matching_outputs = [
        (args.local_shift_out, lambda tmp: save_image(shift, tmp, shown_as=args.local_shift_out), False),
        (args.local_scale_out, lambda tmp: save_image(scale, tmp, shown_as=args.local_scale_out), False),
    ]
    return out


def write_adjusted(args, image) -> None:
    """Write ``adjust``'s output (cast to ``--output-type``) together with any ``--local-*-out`` files."""
    from ..io.atomic import write_together
    from ..io.images import cast_image, save_image

    if args.output_type:
        image = cast_image(image, args.output_type)
    outputs = [(args.output, lambda tmp: save_image(image, tmp, shown_as=args.output), False)]
    write_together(outputs + getattr(args, "matching_outputs", []))


# --- synth: more patterns and outputs (options added to the existing ``synth`` command) ----------------------------


def add_synth_options(p) -> None:
    p.add_argument("--donut-center", help='donut centre "x y z" mm')
    p.add_argument("--donut-radius", help='donut size "r" or "rx ry rz" mm')
    p.add_argument("--donut-rings", type=int, help="number of rings (2: a traditional donut)")
    p.add_argument("--dose-center", help='dose field centre "x y z" mm')
    p.add_argument("--dose-size", help='dose field "x y z" widths or "x1 x2 y1 y2 z1 z2" corners, mm (default 100)')
    p.add_argument("--penumbra", type=float, help="dose field penumbra width, mm (default 5)")
    p.add_argument("--noise-mean", type=float, help="mean of the Gaussian noise (default 0)")
    p.add_argument("--noise-std", type=float, help="standard deviation of the Gaussian noise (default 1)")
    p.add_argument("--gabor-k-fib", help='gabor direction: point i of an n-point Fibonacci spiral, "i n" (default x)')
    p.add_argument("--output-ss-img", help="structure-set image: bit i for structure i (uint32)")
    p.add_argument("--output-ss-list", help="its structure list (index|r g b|name)")
    p.add_argument("--output-dose-img", help="plastimatch's test dose: 15 Gy past half-way to the foreground")


def synth_options(args) -> dict:
    """The new patterns' options that were given, for :func:`.synthetic.synth`."""
    from ..cli_options import parse_numbers

    out = {}
    for name in ("donut_center", "donut_radius", "dose_center", "dose_size", "gabor_k_fib"):
        value = getattr(args, name, None)
        if value is not None:
            out[name] = parse_numbers(value, None, "--" + name.replace("_", "-"))
    for name in ("donut_rings", "penumbra", "noise_mean", "noise_std"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    return out


def synth_outputs(args, result) -> list:
    """``--output-ss-img``, ``--output-ss-list``, ``--output-dose-img`` as outputs for ``write_together``."""
    import numpy as np
    import SimpleITK as sitk

    from ..io.images import save_image
    from .synth_patterns import dose_image

    if not (args.output_ss_img or args.output_ss_list or args.output_dose_img):
        return []
    ss = dose = None
    if args.output_ss_img or args.output_ss_list:  # each volume only when its file is asked for
        structures = dict(result.structures) or {"Foreground": _foreground(args, result.image)}
        colors = [result.colors.get(name, (255, 0, 0)) for name in structures]
        listing = "".join(f"{n}|{r} {g} {b}|{name}\n" for n, (name, (r, g, b)) in enumerate(zip(structures, colors)))
    if args.output_ss_img:
        bits = np.zeros(sitk.GetArrayViewFromImage(result.image).shape, np.uint32)
        for n, mask in enumerate(structures.values()):
            bits |= (sitk.GetArrayViewFromImage(mask) != 0).astype(np.uint32) << np.uint32(n)
        ss = sitk.GetImageFromArray(bits)
        ss.CopyInformation(result.image)
    if args.output_dose_img:
        dose = sitk.GetImageFromArray(
            dose_image(sitk.GetArrayViewFromImage(result.image), args.foreground, args.background)
        )
        dose.CopyInformation(result.image)
    return [
        (args.output_ss_img, lambda tmp: save_image(ss, tmp, shown_as=args.output_ss_img), False),
        (args.output_ss_list, lambda tmp: Path(tmp).write_text(listing), False),
        (args.output_dose_img, lambda tmp: save_image(dose, tmp, shown_as=args.output_dose_img), False),
    ]


def _foreground(args, image):
    """plastimatch's label for the patterns without structures: the foreground voxels (rect, sphere, grid), the
    gauss above 0.2 of the way to the foreground, nothing for the ramps."""
    import numpy as np
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    fg, bg = args.foreground, args.background
    if args.pattern == "gauss" and fg != bg:
        inside = (values - bg) / (fg - bg) > 0.2
    elif args.pattern in ("rect", "sphere", "grid"):
        inside = values == np.float64(np.float32(fg))
    else:
        inside = np.zeros(values.shape, bool)
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(image)
    return mask


# --- xf-convert --output-dicom (options added to the existing ``xf-convert`` command) -----------------------------


def add_sro_options(p) -> None:
    p.add_argument(
        "--output-dicom",
        help="folder for a DICOM Spatial Registration object (linear transform) or a Deformable Spatial Registration "
        "object (vector field; a B-spline is sampled on --fixed or --origin/--dim/--spacing)",
    )
    p.add_argument("--fixed-rcs", help="folder with the fixed image's DICOM series (its frame of reference)")
    p.add_argument("--moving-rcs", help="folder with the moving image's DICOM series (its frame of reference)")
    p.add_argument("--series-description", default="imgsuite registration", help="of the registration object")


def write_sro(args, transform) -> bool:
    """Write ``--output-dicom`` if asked; True when ``xf-convert`` still has ``--output`` to write."""
    if not args.output_dicom:
        if not args.output:
            raise ImgSuiteError("xf-convert needs --output or --output-dicom", args.input)
        return True
    from ..registration.dicom_sro import write_spatial_registration

    if not (args.fixed_rcs and args.moving_rcs):
        raise ImgSuiteError("--output-dicom needs --fixed-rcs and --moving-rcs (the two DICOM series)")
    grid = None
    if not transform.IsLinear() and transform.GetName() != "DisplacementFieldTransform":
        from ..cli_options import grid_from_args

        grid = grid_from_args(args)
    write_spatial_registration(
        transform,
        args.output_dicom,
        args.fixed_rcs,
        args.moving_rcs,
        series_description=args.series_description,
        grid=grid,
    )
    return bool(args.output)
