"""Inverse of a transform (plastimatch ``xf-invert``): exact for a linear transform, iterative for a field."""

from __future__ import annotations

import SimpleITK as sitk

from ..errors import ImgSuiteError
from .vf import field_transform, transform_to_field
from .xforms import unwrap


def invert_transform(
    transform: sitk.Transform,
    reference: sitk.Image | None = None,
    *,
    iterations: int = 20,
    tolerance: float = 1e-3,
) -> sitk.Transform:
    """The inverse of ``transform`` (fixed -> moving becomes moving -> fixed).

    A linear transform (rigid, affine, ...) is inverted exactly and keeps its class. Anything else (a vector
    field, a B-spline, a composite) is sampled as a displacement field on ``reference``'s grid (default: the
    field's own grid) and inverted there by fixed-point iteration (ITK's ``InvertDisplacementFieldImageFilter``):
    at most ``iterations`` rounds, stopping once every voxel's inverse-consistency error is below ``tolerance`` mm.

    Parameters
    ----------
    transform : SimpleITK.Transform
    reference : SimpleITK.Image, optional
        Grid of the inverse field (plastimatch ``--fixed`` or ``--origin/--dim/--spacing``).
    iterations : int
        plastimatch ``--iterations`` (20).
    tolerance : float
        mm; the largest inverse-consistency error accepted before ``iterations`` are spent.

    Examples
    --------
    >>> t = sitk.AffineTransform(3); t.SetMatrix((2, 0, 0, 0, 1, 0, 0, 0, 1)); t.SetTranslation((1, 0, 0))
    >>> invert_transform(t).TransformPoint((5.0, 1.0, 1.0))
    (2.0, 1.0, 1.0)
    >>> ref = sitk.Image([8, 8, 8], sitk.sitkUInt8)
    >>> inv = invert_transform(field_transform(transform_to_field(sitk.TranslationTransform(3, (1, 0, 0)), ref)))
    >>> [round(v, 3) for v in inv.TransformPoint((4.0, 4.0, 4.0))]
    [3.0, 4.0, 4.0]
    """
    transform = unwrap(transform)
    if transform.IsLinear() and transform.GetName() != "CompositeTransform":
        try:
            return unwrap(transform.GetInverse())
        except RuntimeError:
            raise ImgSuiteError(f"the {transform.GetName()} is singular: it has no inverse") from None
    if iterations < 1:
        raise ImgSuiteError(f"--iterations must be at least 1, got {iterations}")
    if reference is None:
        if transform.GetName() != "DisplacementFieldTransform":
            raise ImgSuiteError(
                f"inverting a {transform.GetName()} needs a grid: --fixed IMG or --origin/--dim/--spacing"
            )
        field = sitk.DisplacementFieldTransform(transform).GetDisplacementField()
    else:
        field = transform_to_field(transform, reference)
    inverse = sitk.InvertDisplacementField(
        sitk.Cast(field, sitk.sitkVectorFloat64),
        maximumNumberOfIterations=int(iterations),
        maxErrorToleranceThreshold=float(tolerance),
        meanErrorToleranceThreshold=float(tolerance) / 10,
        enforceBoundaryCondition=False,
    )
    return field_transform(inverse)
