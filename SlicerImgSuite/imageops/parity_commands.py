"""``imgsuite`` subcommands that plastimatch has and the first image tools lacked: bbox, maximum, multiply,
intersect, jacobian. Option names and printed lines follow plastimatch 1.9.4; the work is done by the functions
in :mod:`.bbox`, :mod:`.combine` and :func:`SlicerImgSuite.registration.vf.jacobian_determinant`.
"""

from __future__ import annotations

from pathlib import Path

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
