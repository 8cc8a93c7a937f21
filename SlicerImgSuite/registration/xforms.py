"""Transform files: read and write ITK transforms (.tfm/.txt/.h5) and displacement fields (.nrrd/.mha/.nii).

Conversions: B-spline <-> vector field, B-spline grid spacing change, linear -> .tfm, composition.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import coarse_grid
from ..io import atomic_path, read_image, write_image
from .bspline import ControlGrid, refit
from .engine import _as_affine, compose
from .vf import field_transform, transform_to_field

TRANSFORM_SUFFIXES = (".tfm", ".txt", ".h5", ".hdf5", ".mat", ".xform")
FIELD_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".nii", ".nii.gz", ".vtk")


def is_field_path(path: str | os.PathLike) -> bool:
    """True when ``path``'s suffix is an image format (so the transform is stored as a vector field)."""
    name = str(path).lower()
    return name.endswith(FIELD_SUFFIXES)


def read_transform(path: str | os.PathLike) -> sitk.Transform:
    """Read an ITK transform file, a displacement-field image or a DICOM registration object as a transform
    (fixed -> moving).

    A composite with a single transform is unwrapped.
    """
    path = Path(path)
    if not path.exists():
        raise ImgSuiteError("no such transform file", path)
    if path.is_dir():  # ITK's HDF5 probe of a folder printed 25 lines of HDF5 diagnostics before the error
        raise ImgSuiteError(
            "is a folder; a transform is a file (.tfm, .h5, a vector field image, or a DICOM registration object)",
            path,
        )
    from ..io.dicom_series import is_dicom_file

    if path.is_file() and is_dicom_file(path):
        from .dicom_sro import read_spatial_registration

        return read_spatial_registration(path)
    if is_field_path(path):
        image = read_image(path)
        if image.GetNumberOfComponentsPerPixel() != image.GetDimension():
            raise ImgSuiteError(
                f"not a vector field: {image.GetNumberOfComponentsPerPixel()} component(s) per voxel in a "
                f"{image.GetDimension()}D image",
                path,
            )
        return field_transform(image)
    try:
        t = sitk.ReadTransform(str(path))
    except RuntimeError as exc:
        text = path.read_bytes()[:200]
        if b"MGH_GPUIT_BSP" in text or b"ObjectType = MGH_XFORM" in text:
            raise ImgSuiteError(
                "plastimatch native transform: write it as .tfm/.h5 or a vector field (plastimatch xf-convert)", path
            ) from None
        unknown = re.search(r'Could not create an instance of "([^"]+)"', str(exc))
        if unknown:  # the last line of ITK's message was one name from its list of known classes
            raise ImgSuiteError(
                f"cannot read transform: SimpleITK has no class {unknown.group(1)} (Slicer's B-spline with a bulk "
                "transform and plastimatch's xf_out_itk write BSplineDeformableTransform): save it as a vector field",
                path,
            ) from None
        raise ImgSuiteError(f"cannot read transform: {str(exc).strip().splitlines()[-1]}", path) from None
    return unwrap(t)


def unwrap(t: sitk.Transform) -> sitk.Transform:
    """The concrete transform class (BSplineTransform, AffineTransform ...) instead of a generic Transform."""
    name = t.GetName()
    if name == "CompositeTransform":
        c = sitk.CompositeTransform(t)
        if c.GetNumberOfTransforms() == 1:
            return unwrap(c.GetNthTransform(0))
        return c
    concrete = {
        "BSplineTransform": sitk.BSplineTransform,
        "AffineTransform": sitk.AffineTransform,
        "DisplacementFieldTransform": sitk.DisplacementFieldTransform,
        "TranslationTransform": sitk.TranslationTransform,
        "VersorRigid3DTransform": sitk.VersorRigid3DTransform,
        "Euler3DTransform": sitk.Euler3DTransform,
        "Similarity3DTransform": sitk.Similarity3DTransform,
    }.get(name)
    return concrete(t) if concrete else t


def write_transform(transform: sitk.Transform, path: str | os.PathLike, reference: sitk.Image | None = None) -> None:
    """Write ``transform`` atomically: an ITK file (.tfm/.h5) or, for image suffixes, a displacement field on
    ``reference``'s grid (what Slicer and plastimatch load as a grid transform)."""
    path = Path(path)
    if is_field_path(path):
        if reference is None:
            raise ImgSuiteError("a vector field output needs a reference grid (the fixed image)", path)
        write_image(sitk.Cast(transform_to_field(transform, reference), sitk.sitkVectorFloat32), path)
        return
    if not str(path).lower().endswith(TRANSFORM_SUFFIXES):
        raise ImgSuiteError(f"unknown transform file type; use {', '.join(TRANSFORM_SUFFIXES + FIELD_SUFFIXES)}", path)
    if str(path).lower().endswith((".tfm", ".txt")) and _has_field(transform):
        raise ImgSuiteError("a displacement field does not fit a text .tfm: write .h5 or a vector field", path)
    with atomic_path(path) as tmp:
        try:
            sitk.WriteTransform(transform, str(tmp))
        except RuntimeError as exc:
            raise ImgSuiteError(f"cannot write transform: {str(exc).strip().splitlines()[-1]}", path) from None


def _has_field(t: sitk.Transform) -> bool:
    if t.GetName() == "CompositeTransform":
        c = sitk.CompositeTransform(t)
        return any(_has_field(c.GetNthTransform(i)) for i in range(c.GetNumberOfTransforms()))
    return t.GetName() == "DisplacementFieldTransform"


def bspline_to_field(transform: sitk.Transform, reference: sitk.Image) -> sitk.Image:
    """Any transform (B-spline, composite ...) sampled as a displacement field on ``reference``."""
    return transform_to_field(transform, reference)


def field_to_bspline(field: sitk.Image, grid_spacing) -> sitk.BSplineTransform:
    """The cubic B-spline (control points ``grid_spacing`` mm apart) closest to a displacement field (least squares)."""
    grid = ControlGrid.covering(field, np.broadcast_to(np.asarray(grid_spacing, float), 3))
    arr = sitk.GetArrayFromImage(field).astype(np.float32)
    rel0 = grid.direction.T @ (np.array(field.GetOrigin()) - grid.origin)
    axes = [rel0[d] + np.arange(field.GetSize()[d]) * field.GetSpacing()[d] for d in range(3)]
    pinv = [np.linalg.pinv(grid.basis(d, axes[d]).astype(float)).astype(np.float32) for d in range(3)]
    from .bspline import tensor_apply

    coef = np.stack([tensor_apply(arr[..., c], pinv[2], pinv[1], pinv[0]) for c in range(3)])
    return grid.to_sitk(coef)


def regrid_bspline(transform: sitk.BSplineTransform, grid_spacing) -> sitk.BSplineTransform:
    """The same B-spline on a grid with another control-point spacing (exact when refining by an integer)."""
    old, _ = ControlGrid.from_sitk(transform)
    extent = old.mesh * old.spacing
    g = np.broadcast_to(np.asarray(grid_spacing, float), 3)
    mesh = np.maximum(1, np.ceil(extent / g - 1e-6)).astype(int)
    origin = old.origin + old.direction @ (-(mesh * g - extent) / 2.0)
    grid = ControlGrid(origin, old.direction, g, mesh)
    return grid.to_sitk(refit(transform, grid))


def linear_to_affine(transform: sitk.Transform) -> sitk.AffineTransform:
    """A linear transform (or a composite of linear ones) as one AffineTransform."""
    if not transform.IsLinear():
        raise ImgSuiteError(f"{transform.GetName()} is not linear")
    return _as_affine(transform)


def compose_files(paths: list[str | os.PathLike]) -> sitk.Transform:
    """plastimatch compose order: ``compose A B`` = apply B's mapping to points first? No: returns A then B,
    i.e. x -> A(B(x)) in fixed->moving terms, so registering with A then refining with B composes as [A, B]."""
    return compose([read_transform(p) for p in paths])


def deformable_coverage(transform: sitk.Transform, reference: sitk.Image) -> list[tuple[str, float]]:
    """For each B-spline or vector-field part of ``transform``: its class and the fraction of ``reference``'s
    grid (a coarse look) whose points, as the parts applied before it place them, fall inside its domain.

    Outside its domain such a part moves nothing (ITK gives zero displacement), so a B-spline or field made for
    another grid warps part of an image and leaves the rest where it was, with a seam between.

    Examples
    --------
    >>> small = sitk.Image([5, 5, 5], sitk.sitkFloat32)
    >>> t = sitk.BSplineTransformInitializer(small, [2, 2, 2])
    >>> [(name, round(f, 2)) for name, f in deformable_coverage(t, sitk.Image([10, 5, 5], sitk.sitkUInt8))]
    [('BSplineTransform', 0.5)]
    """
    t = unwrap(transform)
    parts = [unwrap(t.GetNthTransform(i)) for i in range(t.GetNumberOfTransforms())] if isinstance(
        t, sitk.CompositeTransform
    ) else [t]
    grid = coarse_grid(reference, 20_000)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in grid.GetSize()], indexing="ij"), -1).reshape(-1, 3)
    d, sp = np.array(grid.GetDirection()).reshape(3, 3), np.array(grid.GetSpacing())
    points = np.array(grid.GetOrigin()) + (idx * sp) @ d.T
    out = []
    for k in range(len(parts) - 1, -1, -1):  # the last part is applied first
        part = parts[k]
        name = part.GetName()
        if name in ("BSplineTransform", "DisplacementFieldTransform"):
            later = compose(parts[k + 1 :]) if k + 1 < len(parts) else None
            placed = points if later is None else np.array([later.TransformPoint(p) for p in points.tolist()])
            out.append((name, float(np.mean(_inside_domain(part, placed)))))
    return out


def warn_if_partly_deformed(transform: sitk.Transform, reference: sitk.Image, name, what="the output grid") -> None:
    """Warn when a B-spline or field part of ``transform`` (file ``name``) reaches under 99.9 % of ``reference``."""
    for kind, fraction in deformable_coverage(transform, reference):
        if fraction < 0.999:
            warnings.warn(
                f"{name}: its {kind} reaches only {100 * fraction:.1f} % of {what} and moves nothing elsewhere "
                "(made for another grid?): the result is warped in part, with a seam",
                stacklevel=3,
            )


def _inside_domain(part: sitk.Transform, points: np.ndarray) -> np.ndarray:
    if part.GetName() == "BSplineTransform":
        origin, d = np.array(part.GetTransformDomainOrigin()), np.array(part.GetTransformDomainDirection())
        size, lo, hi = np.array(part.GetTransformDomainPhysicalDimensions()), 0.0, 0.0
        scale = np.ones(3)
    else:  # a field's linear interpolation reaches half a voxel past its first and last centres
        fp = np.array(part.GetFixedParameters())
        size, origin, scale, d = fp[0:3] - 1, fp[3:6], fp[6:9], fp[9:18]
        lo = hi = 0.5
    local = ((points - origin) @ d.reshape(3, 3)) / scale
    tol = 1e-3
    return np.all((local >= -lo - tol) & (local <= size + hi + tol), axis=1)
