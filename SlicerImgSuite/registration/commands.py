"""``imgsuite register | landmark-warp | warp | xf-convert | compose | vf-stats | synth-vf`` and ``convert --xf``.

Option names follow plastimatch (``register CMDFILE``, ``lm-warp``, ``warp --xf``, ``xf-convert``, ``compose``,
``synth-vf``), so scripts port by changing the program name.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..choices import PIXEL_TYPES
from ..cli_options import add_grid_options, grid_from_args, parse_numbers
from ..errors import ImgSuiteError
from ..io import atomic_path, read_image, write_image
from ..progress import progress_for, sub_progress

log = logging.getLogger("SlicerImgSuite.registration")
# an integer image with no negative value and at most this many distinct values is a labelmap
LABEL_MAX_VALUES = 256


def register(subparsers) -> None:
    common = [subparsers.common_parent]
    p = subparsers.add_parser(
        "register", parents=common, help="multi-stage registration from a plastimatch command file"
    )
    p.add_argument("command_file", help="[GLOBAL] + [STAGE] sections, plastimatch's format")
    p.set_defaults(func=run_register)

    for name in ("landmark-warp", "lm-warp"):
        p = subparsers.add_parser(name, parents=common, help="warp an image with landmark pairs (plastimatch lm-warp)")
        p.add_argument("-f", "--fixed-landmarks", required=True, help=".mrk.json, .fcsv or text (x y z, LPS)")
        p.add_argument("-m", "--moving-landmarks", required=True, help="same count and order as the fixed ones")
        p.add_argument(
            "-v", "--input-vf", help="transform applied before the landmark warp (moving landmarks in its output)"
        )
        p.add_argument("-I", "--input", "--input-image", dest="input", help="moving image to warp")
        p.add_argument("-O", "--output-img", "--output-image", dest="output_img", help="warped image")
        p.add_argument("-V", "--output-vf", help="vector field (fixed -> moving) on the output grid")
        p.add_argument("-L", "--output-landmarks", help="moving landmarks mapped into fixed space")
        p.add_argument(
            "-a", "--algorithm", default="gauss", choices=["tps", "gauss", "wendland"], help="(default gauss)"
        )
        p.add_argument("-r", "--radius", type=float, default=50.0, help="RBF radius, mm (default 50)")
        p.add_argument("-Y", "--stiffness", type=float, default=0.0, help="0 = exact at the landmarks (default 0)")
        p.add_argument("-d", "--default-value", type=float, default=0.0, help="value outside the input (default 0)")
        add_grid_options(p)
        p.set_defaults(func=run_landmark_warp)

    p = subparsers.add_parser("warp", parents=common, help="apply a transform to an image, labelmap, dose or points")
    add_warp_options(p)
    p.set_defaults(func=run_warp)

    p = subparsers.add_parser("xf-convert", parents=common, help="convert transforms (B-spline <-> vector field ...)")
    p.add_argument("--input", required=True, help="transform (.tfm/.h5) or vector field image")
    p.add_argument("--output", help=".tfm/.h5 or an image suffix for a vector field")
    p.add_argument("--output-type", choices=["vf", "bspline", "itk_bspline", "linear"], help="what to write")
    from ..imageops.parity_commands import add_sro_options

    add_sro_options(p)  # --output-dicom --fixed-rcs --moving-rcs --series-description
    p.add_argument("--grid-spacing", nargs="+", help='B-spline control point spacing, mm "x [y z]"')
    add_grid_options(p)
    p.set_defaults(func=run_xf_convert)

    p = subparsers.add_parser("compose", parents=common, help="compose two transforms (plastimatch compose)")
    p.add_argument("file_1", help="applied first")
    p.add_argument("file_2", help="applied second")
    p.add_argument("outfile", help=".h5/.tfm, or an image suffix for a vector field (needs a grid)")
    add_grid_options(p)
    p.set_defaults(func=run_compose)

    p = subparsers.add_parser("vf-stats", parents=common, help="vector field statistics, Jacobian and folding")
    p.add_argument("input", help="vector field image or transform file")
    p.add_argument("--mask", help="only voxels where this image is non-zero")
    p.add_argument("--output-json", help="write the statistics as JSON too")
    p.add_argument("--output-jacobian", help="write the Jacobian determinant image")
    add_grid_options(p)
    p.set_defaults(func=run_vf_stats)

    p = subparsers.add_parser("synth-vf", parents=common, help="synthetic vector field (plastimatch synth-vf)")
    p.add_argument("--output", required=True, help="vector field image")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--xf-trans", nargs="+", help='uniform translation, mm "x y z"')
    kind.add_argument("--xf-radial", action="store_true", help="radial expansion (negative magnitude: contraction)")
    kind.add_argument("--xf-zero", action="store_true", help="null field")
    kind.add_argument("--xf-gauss", action="store_true", help="gaussian bump")
    kind.add_argument("--xf-phys-pos", action="store_true", help="each voxel's vector is its centre's position, mm")
    kind.add_argument("--xf-vox-num", action="store_true", help="each voxel's vector is its index (i, j, k)")
    p.add_argument("--radial-center", nargs="+", help='mm "x y z" (default: image centre)')
    p.add_argument("--radial-mag", nargs="+", default=["5"], help='mm "x [y z]" (default 5)')
    p.add_argument("--radial-radius", nargs="+", default=["50"], help='mm "x [y z]" (default 50)')
    p.add_argument("--gauss-center", nargs="+", help='mm "x y z" (default: image centre)')
    p.add_argument("--gauss-mag", nargs="+", default=["5"], help='peak displacement, mm "x [y z]" (default 5)')
    p.add_argument("--gauss-std", nargs="+", default=["20"], help='width, mm "x [y z]" (default 20)')
    add_grid_options(p)
    p.set_defaults(func=run_synth_vf)


def add_warp_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", help="moving image (file or DICOM folder)")
    p.add_argument("--xf", required=True, help="transform (.tfm/.h5) or vector field, fixed -> moving")
    p.add_argument("--output-img", help="warped image")
    p.add_argument("--output-type", choices=PIXEL_TYPES, help="pixel type of --output-img")
    p.add_argument("--default-value", type=float, default=0.0, help="value outside the input (default 0)")
    p.add_argument(
        "--interpolation",
        choices=["nn", "linear", "bspline"],
        help=f"(default: nn for integer images with no negative value and <= {LABEL_MAX_VALUES} distinct values "
        "(128 for 8-bit), linear otherwise)",
    )
    add_grid_options(p)
    g = p.add_argument_group("more inputs")
    g.add_argument("--output-vf", help="write --xf as a vector field on the output grid")
    g.add_argument("--input-ss-img", help="structure-set image (bits) or labelmap: warped bit-exactly (nearest)")
    g.add_argument("--output-ss-img", help="the warped --input-ss-img")
    g.add_argument(
        "--input-dose-img", help="dose: RTDOSE file, or an image with --dose-units (warped linearly, float32 Gy)"
    )
    g.add_argument("--output-dose-img", help="the warped dose (Gy); with --output-dicom also an RTDOSE there")
    from ..rtstruct.commands import add_dose_options

    add_dose_options(g)
    g.add_argument("--input-landmarks", help="moving-space points (.mrk.json/.fcsv/text): mapped into fixed space")
    g.add_argument("--input-rtstruct", help="moving-space RTSTRUCT: rasterized, warped as masks onto the output grid")
    g.add_argument("--referenced-ct", help="with --input-rtstruct: the moving CT folder (its grid); guessed otherwise")
    g.add_argument("--output-labelmap", help="the warped structures as one labelmap (structure i -> i + 1)")
    g.add_argument("--output-prefix", help="folder: one warped 0/1 image per structure")
    g.add_argument(
        "--output-dicom",
        help="folder for the warped RTSTRUCT (RS.dcm) and dose (RD.dcm), in the study of --fixed FIXED_CT_FOLDER",
    )
    g.add_argument("--output-landmarks", help="the mapped points, same format rules")


def add_convert_options(parser: argparse.ArgumentParser) -> None:
    """``convert --xf XF [--output-vf VF]``: warp ``--input`` onto ``--fixed`` (or the input grid)."""
    g = parser.add_argument_group("registration (convert --xf = imgsuite warp)")
    g.add_argument("--xf", help="transform (.tfm/.h5) or vector field to apply (fixed -> moving)")
    g.add_argument("--output-vf", help="write --xf as a vector field on the output grid")


def convert(args: argparse.Namespace, progress) -> bool:
    """The convert hook: with ``--xf`` this is ``warp``."""
    if not getattr(args, "xf", None):
        return False
    run_warp(args, progress)
    return True


# --------------------------------------------------------------------------- register


def run_register(args: argparse.Namespace) -> int:
    from .cmdfile import read_command_file
    from .job import register_from_command_file

    cf = read_command_file(args.command_file)
    result = register_from_command_file(cf, progress_for(args))
    for report in result.stages:
        print(report.line())
    print(result.similarity)
    for w in result.warnings:
        print(f"imgsuite register: warning: {w}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- warp


def run_warp(args: argparse.Namespace, progress=None) -> int:
    """``imgsuite warp`` (and ``convert --xf``): every output is written together, all or nothing."""
    from ..geometry import warn_if_uncovered
    from ..io.atomic import write_together
    from ..rtstruct.commands import refuse_unused_dose_options
    from .engine import warp_image
    from .landmarks import invert_points, read_landmarks, write_landmarks
    from .xforms import read_transform, warn_if_partly_deformed, write_transform

    progress = progress or progress_for(args)
    if not getattr(args, "input_dose_img", None):
        refuse_unused_dose_options(args, "there is no --input-dose-img (--input is warped as an image)")
    transform = read_transform(args.xf)
    jobs = [
        (getattr(args, "input", None), getattr(args, "output_img", None), "image"),
        (getattr(args, "input_ss_img", None), getattr(args, "output_ss_img", None), "ss"),
        (getattr(args, "input_dose_img", None), getattr(args, "output_dose_img", None), "dose"),
    ]
    writes = []
    like = None
    for src, dst, kind in jobs:
        if src and not dst:
            if kind == "image" and (args.output_vf or getattr(args, "output_landmarks", None)):
                continue
            raise ImgSuiteError(
                f"an output is needed for {src} (--output-{'img' if kind == 'image' else kind + '-img'})"
            )
        if not src:
            continue
        image = _read_dose(args, src) if kind == "dose" else read_image(src)
        like = like or image
        reference = grid_from_args(args, like=image) or image
        interp = _interpolation(image, kind, getattr(args, "interpolation", None), src)
        progress(0.3, f"warping {Path(src).name}")
        try:
            out = warp_image(image, transform, reference, interp, args.default_value if kind != "ss" else 0)
        except ImgSuiteError as exc:  # a 2D picture with a 3D transform: name the file
            raise ImgSuiteError(exc.problem, exc.path or src) from None
        if out.GetDimension() == 3:
            warn_if_uncovered(image, reference, f"{src} through {Path(args.xf).name}", transform)
            warn_if_partly_deformed(transform, reference, args.xf)
        if kind == "dose":
            writes += _warped_dose_outputs(args, src, image, out)
            continue
        pixel_type = getattr(args, "output_type", None) if kind == "image" else None
        writes.append((dst, lambda tmp, out=out, pixel_type=pixel_type: write_image(out, tmp, pixel_type), False))
    if args.output_vf:
        reference = grid_from_args(args, like=like)
        if reference is None and like is not None:
            reference = like
        if reference is None:
            raise ImgSuiteError("--output-vf needs a grid: --fixed IMG, --origin/--dim/--spacing or an --input image")
        writes.append((args.output_vf, lambda tmp: write_transform(transform, tmp, reference), False))
    if getattr(args, "input_rtstruct", None):
        writes += _warp_rtstruct(args, transform, like, progress)
    if getattr(args, "input_landmarks", None):
        if not args.output_landmarks:
            raise ImgSuiteError("--input-landmarks needs --output-landmarks", args.input_landmarks)
        points, labels = read_landmarks(args.input_landmarks)
        moved = invert_points(transform, points)
        writes.append((args.output_landmarks, lambda tmp: write_landmarks(moved, tmp, labels), False))
    if not writes:
        raise ImgSuiteError("nothing to write: give --output-img, --output-vf, --output-ss-img, ...", args.xf)
    write_together(writes)
    progress(1.0, "warped")
    return 0


def _read_dose(args, src) -> sitk.Image:
    from ..rtstruct.dose import read_dose

    return read_dose(src, getattr(args, "dose_units", None), scale=getattr(args, "dose_scale", 1.0))


def _warped_dose_outputs(args, src, dose: sitk.Image, warped: sitk.Image) -> list:
    """The writers of --output-dose-img (Gy, the dose's attributes kept) and, with --output-dicom, of an RTDOSE in
    the fixed CT's study, for :func:`~SlicerImgSuite.io.atomic.write_together`."""
    from ..rtstruct.dose import FRAME_KEY, PLAN_KEY, dose_dicom_output, with_metadata

    warped = with_metadata(sitk.Cast(warped, sitk.sitkFloat32), dose)
    outputs = [(args.output_dose_img, lambda tmp: write_image(warped, tmp), False)]
    if getattr(args, "output_dicom", None):
        if not (getattr(args, "fixed", None) and Path(args.fixed).is_dir()):
            raise ImgSuiteError("--output-dicom needs --fixed FIXED_CT_FOLDER (the CT the warped dose lies on)", src)
        from ..io.dicom_write import study_from_series

        study = study_from_series(args.fixed)
        for key in (FRAME_KEY, PLAN_KEY):  # the moving plan does not lie in the fixed Frame of Reference
            if warped.HasMetaDataKey(key):
                warped.EraseMetaData(key)
        target = Path(args.output_dicom) / "RD.dcm"
        outputs.append(dose_dicom_output(warped, target, study, description="imgsuite warped dose"))
    return outputs


def _warp_rtstruct(args, transform, like, progress) -> list:
    """RTSTRUCT -> masks on the moving grid -> each warped (linear, >= 0.5) onto the output grid; the writers of
    the outputs asked for, for :func:`~SlicerImgSuite.io.atomic.write_together`."""
    from ..rtstruct import guess_grid, labelmap, rasterize, read_rtstruct, ss_image, write_prefix
    from ..rtstruct.rasterize import RoiMask
    from .engine import warp_image

    outputs = [getattr(args, k, None) for k in ("output_labelmap", "output_ss_img", "output_prefix", "output_dicom")]
    if not any(outputs):
        raise ImgSuiteError(
            "--input-rtstruct needs --output-labelmap, --output-ss-img, --output-prefix or --output-dicom"
        )
    if args.output_dicom and not (getattr(args, "fixed", None) and Path(args.fixed).is_dir()):
        raise ImgSuiteError("--output-dicom needs --fixed FIXED_CT_FOLDER (the CT the RTSTRUCT will point at)")
    ss = read_rtstruct(args.input_rtstruct)
    moving_grid = read_image(args.referenced_ct) if args.referenced_ct else guess_grid(ss)
    reference = grid_from_args(args, like=moving_grid) or like or moving_grid
    masks = rasterize(ss, moving_grid, progress=sub_progress(progress, 0.1, 0.5))
    warped, images = [], {}
    for n, m in enumerate(masks):
        full = sitk.GetImageFromArray(m.full(_grid_of(moving_grid), np.float32))
        full.CopyInformation(moving_grid)
        moved = sitk.GetArrayFromImage(warp_image(full, transform, reference, "linear", 0.0)) >= 0.5
        warped.append(RoiMask(m.roi, (0, 0, 0), moved))
        image = sitk.GetImageFromArray(moved.astype(np.uint8))
        image.CopyInformation(reference)
        images[m.roi.name] = image
        progress(0.5 + 0.4 * (n + 1) / len(masks), f"warped {m.roi.name}")

    def rtstruct(tmp):
        from ..rtstruct import write_rtstruct_from_masks

        colors = {m.roi.name: m.roi.color for m in masks}
        write_rtstruct_from_masks(Path(tmp) / "RS.dcm", args.fixed, images, colors=colors)

    ss_img = getattr(args, "output_ss_img", None) and not getattr(args, "input_ss_img", None)
    return [
        (args.output_labelmap, lambda tmp: write_image(labelmap(warped, reference), tmp), False),
        (args.output_ss_img if ss_img else None, lambda tmp: write_image(ss_image(warped, reference), tmp), False),
        (args.output_prefix, lambda tmp: write_prefix(warped, reference, tmp), True),
        (args.output_dicom, rtstruct, True),
    ]


def _grid_of(image: sitk.Image):
    from ..rtstruct import Grid

    return Grid.of(image)


def _interpolation(image: sitk.Image, kind: str, asked: str | None, src) -> str:
    """Nearest for ss-img and labelmaps (values kept exactly), linear for doses; ``--interpolation`` decides
    for a plain image. The choice and its reason go to the log."""
    if kind == "ss":
        interp, why = "nn", "--input-ss-img: labels and bit patterns kept"
    elif kind == "dose":
        interp, why = "linear", "dose"
    elif asked:
        interp, why = asked, "--interpolation"
    elif _is_label(image):
        interp, why = "nn", "integer, no negative value, few distinct values: a labelmap"
    else:
        interp, why = "linear", "not a labelmap"
    log.info(f"{src}: {interp} interpolation ({why})")
    return interp


def _is_label(image: sitk.Image) -> bool:
    """An integer image with no negative value and few distinct values (labelmap, mask, ss-img), whatever
    its pixel type. Few: at most LABEL_MAX_VALUES, and at most half of what the type holds, so an 8-bit grey
    image using most of its 256 levels stays linear; a CT in HU has negative values."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        return False
    arr = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(arr.dtype, np.integer) or arr.size == 0 or arr.min() < 0:
        return False
    info = np.iinfo(arr.dtype)
    limit = min(LABEL_MAX_VALUES, (int(info.max) - int(info.min) + 1) // 2)
    return len(np.unique(arr)) <= limit


# --------------------------------------------------------------------------- landmark warp


def run_landmark_warp(args: argparse.Namespace) -> int:
    from .engine import warp_image
    from .landmarks import LandmarkWarp, check_pairs, invert_points, read_landmarks, write_landmarks
    from .vf import field_transform
    from .xforms import write_transform

    progress = progress_for(args)
    f_pts, f_labels = read_landmarks(args.fixed_landmarks)
    m_pts, m_labels = read_landmarks(args.moving_landmarks)
    f_pts, m_pts = check_pairs(f_pts, m_pts, args.fixed_landmarks, args.moving_landmarks, f_labels, m_labels)
    if not (args.output_img or args.output_vf or args.output_landmarks):
        raise ImgSuiteError("nothing to write: give --output-img, --output-vf or --output-landmarks")
    warp = LandmarkWarp(f_pts, m_pts, args.algorithm, args.radius, args.stiffness)
    image = read_image(args.input) if args.input else None
    reference = grid_from_args(args, like=image) or image
    if reference is None and (args.output_img or args.output_vf):
        raise ImgSuiteError("a grid is needed: --input IMG, --fixed IMG or --origin/--dim/--spacing")
    progress(0.2, "evaluating the landmark field")
    transform = None
    if reference is not None:
        field = warp.field(reference)
        transform = field_transform(field)
        if args.input_vf:  # plastimatch 1.9.4 reads the option and ignores it
            from .engine import compose
            from .vf import transform_to_field
            from .xforms import read_transform

            total = compose([read_transform(args.input_vf), transform])  # the landmark warp first, then the field
            transform = field_transform(transform_to_field(total, reference))
    if args.output_img:
        if image is None:
            raise ImgSuiteError("--output-img needs --input IMG")
        interp = _interpolation(image, "image", None, args.input)
        write_image(warp_image(image, transform, reference, interp, args.default_value), args.output_img)
    if args.output_vf:
        write_transform(transform, args.output_vf, reference)
    if args.output_landmarks:
        from .landmarks import LandmarkTransform

        write_landmarks(invert_points(LandmarkTransform(warp), m_pts), args.output_landmarks, m_labels)
    progress(1.0, "done")
    return 0


# --------------------------------------------------------------------------- transform tools


def run_xf_convert(args: argparse.Namespace) -> int:
    from .xforms import field_to_bspline, linear_to_affine, read_transform, regrid_bspline, write_transform

    transform = read_transform(args.input)
    from ..imageops.parity_commands import write_sro

    if not write_sro(args, transform):  # --output-dicom written, and nothing else asked for
        return 0
    out_type = args.output_type
    if out_type is None:
        from .xforms import is_field_path

        out_type = "vf" if is_field_path(args.output) else None
    spacing = parse_numbers(args.grid_spacing, 3, "--grid-spacing") if args.grid_spacing else None
    name = transform.GetName()
    if out_type == "vf":
        like = _field_image(transform)
        reference = grid_from_args(args, like=like) or like  # a field keeps its own grid unless one is given
        if reference is None:
            raise ImgSuiteError(
                "a vector field output needs a grid: --fixed IMG or --origin/--dim/--spacing", args.input
            )
        write_transform(transform, args.output, reference)
    elif out_type in ("bspline", "itk_bspline"):
        if name == "DisplacementFieldTransform":
            if spacing is None:
                raise ImgSuiteError("vector field -> B-spline needs --grid-spacing", args.input)
            field = sitk.DisplacementFieldTransform(transform).GetDisplacementField()
            out = field_to_bspline(field, spacing)
        elif name == "BSplineTransform":
            out = regrid_bspline(transform, spacing) if spacing is not None else transform
        else:
            raise ImgSuiteError(f"cannot make a B-spline from a {name}", args.input)
        write_transform(out, args.output)
    elif out_type == "linear" or transform.IsLinear():
        write_transform(linear_to_affine(transform), args.output)
    else:
        if spacing is not None and name == "BSplineTransform":
            transform = regrid_bspline(transform, spacing)
        write_transform(transform, args.output, grid_from_args(args))
    return 0


def _field_image(transform: sitk.Transform):
    if transform.GetName() == "DisplacementFieldTransform":
        return sitk.DisplacementFieldTransform(transform).GetDisplacementField()
    return None


def run_compose(args: argparse.Namespace) -> int:
    from .engine import compose
    from .xforms import read_transform, write_transform

    t1, t2 = read_transform(args.file_1), read_transform(args.file_2)
    # plastimatch: file_1 is applied first, then file_2 -> x maps to t2(t1(x))
    out = compose([t2, t1])
    like = _field_image(t1) or _field_image(t2)
    write_transform(out, args.outfile, grid_from_args(args, like=like) or like)
    return 0


def run_vf_stats(args: argparse.Namespace) -> int:
    from .vf import jacobian_determinant, transform_to_field, vf_stats
    from .xforms import is_field_path, read_transform

    if is_field_path(args.input):
        field = read_image(args.input)
        if field.GetNumberOfComponentsPerPixel() != 3:
            raise ImgSuiteError("not a 3D vector field", args.input)
    else:
        reference = grid_from_args(args)
        if reference is None:
            raise ImgSuiteError("a transform file needs a grid: --fixed IMG or --origin/--dim/--spacing", args.input)
        field = transform_to_field(read_transform(args.input), reference)
    mask = read_image(args.mask) if args.mask else None
    if mask is not None:
        from ..geometry import require_same_grid

        require_same_grid(field, mask, "the vector field", args.mask)
    stats = vf_stats(field, mask)
    print(format_stats(stats))
    if args.output_json:
        with atomic_path(args.output_json) as tmp:
            Path(tmp).write_text(json.dumps(stats, indent=2))
    if args.output_jacobian:
        write_image(jacobian_determinant(field), args.output_jacobian)
    if stats["folded_voxels"]:
        print(f"imgsuite vf-stats: warning: {stats['folded_voxels']} folded voxels", file=sys.stderr)
    return 0


def format_stats(stats: dict) -> str:
    lines = [f"{'':4}{'min':>10}{'mean':>10}{'max':>10}{'mean|.|':>10}"]
    for c in "xyz":
        s = stats[c]
        lines.append(f"{c:<4}{s['min']:>10.4f}{s['mean']:>10.4f}{s['max']:>10.4f}{s['mean_abs']:>10.4f}")
    lines.append(f"magnitude mean {stats['magnitude_mean']:.4f} max {stats['magnitude_max']:.4f}")
    lines.append(
        f"jacobian min {stats['jacobian_min']:.4f} max {stats['jacobian_max']:.4f} "
        f"folded voxels {stats['folded_voxels']} of {stats['voxels']}"
    )
    return "\n".join(lines)


def run_synth_vf(args: argparse.Namespace) -> int:
    from .vf import synth_vf

    reference = grid_from_args(args)
    if reference is None:
        raise ImgSuiteError("synth-vf needs a grid: --fixed IMG or --origin/--dim/--spacing", args.output)
    if reference.GetDimension() != 3:
        raise ImgSuiteError(f"synth-vf needs a 3D grid; this one is {reference.GetDimension()}D", args.fixed)
    if args.xf_trans:
        field = synth_vf(reference, "translation", translation=parse_numbers(args.xf_trans, 3, "--xf-trans"))
    elif args.xf_zero or args.xf_phys_pos or args.xf_vox_num:
        field = synth_vf(reference, "zero" if args.xf_zero else "position" if args.xf_phys_pos else "index")
    elif args.xf_radial:
        field = synth_vf(
            reference,
            "radial",
            center=parse_numbers(args.radial_center, 3, "--radial-center") if args.radial_center else None,
            magnitude=parse_numbers(args.radial_mag, 3, "--radial-mag"),
            radius=parse_numbers(args.radial_radius, 3, "--radial-radius"),
        )
    else:
        field = synth_vf(
            reference,
            "gaussian",
            center=parse_numbers(args.gauss_center, 3, "--gauss-center") if args.gauss_center else None,
            magnitude=parse_numbers(args.gauss_mag, 3, "--gauss-mag"),
            std=parse_numbers(args.gauss_std, 3, "--gauss-std"),
        )
    write_image(sitk.Cast(field, sitk.sitkVectorFloat32), args.output)
    return 0
