"""Vector (displacement) fields: from transforms, Jacobian determinant, statistics, synthetic fields."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError


def transform_to_field(transform: sitk.Transform, reference: sitk.Image) -> sitk.Image:
    """Displacement field (float64 3-vector image, mm, LPS) of ``transform`` on ``reference``'s grid.

    Examples
    --------
    >>> ref = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    >>> vf = transform_to_field(sitk.TranslationTransform(3, [1, 2, 3]), ref)
    >>> vf[0, 0, 0]
    (1.0, 2.0, 3.0)
    """
    f = sitk.TransformToDisplacementFieldFilter()
    f.SetReferenceImage(reference)
    f.SetOutputPixelType(sitk.sitkVectorFloat64)
    return f.Execute(transform)


def field_transform(field: sitk.Image) -> sitk.DisplacementFieldTransform:
    """A transform from a displacement field image (the image is copied, not consumed)."""
    if field.GetNumberOfComponentsPerPixel() != field.GetDimension():
        raise ImgSuiteError(
            f"a vector field needs {field.GetDimension()} components per voxel, got "
            f"{field.GetNumberOfComponentsPerPixel()}"
        )
    return sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))


def jacobian_determinant(transform_or_field, reference: sitk.Image | None = None) -> sitk.Image:
    """Jacobian determinant of ``x -> x + u(x)`` (float32 image on the field's grid); <= 0 where it folds.

    Central differences inside, one-sided at the border (``numpy.gradient``), direction cosines honoured.
    """
    if isinstance(transform_or_field, sitk.Image):
        field = transform_or_field
    else:
        if reference is None:
            raise ImgSuiteError("a reference grid is needed to evaluate a transform's Jacobian")
        field = transform_to_field(transform_or_field, reference)
    u = sitk.GetArrayViewFromImage(field).astype(np.float32)  # (z, y, x, 3)
    spacing = field.GetSpacing()
    d = np.array(field.GetDirection()).reshape(3, 3)
    # g[c][a]: derivative of component c along fixed axis a (x, y, z)
    g = [[np.gradient(u[..., c], spacing[a], axis=2 - a) if u.shape[2 - a] > 1 else np.zeros(u.shape[:3], np.float32)
          for a in range(3)] for c in range(3)]  # fmt: skip
    # J = I + G D^T (derivatives along physical axes)
    j = [[sum(g[c][a] * d[k, a] for a in range(3)) + (1.0 if c == k else 0.0) for k in range(3)] for c in range(3)]
    det = (
        j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
    )
    out = sitk.GetImageFromArray(np.asarray(det, np.float32))
    out.CopyInformation(field)
    return out


def vf_stats(field: sitk.Image, mask: sitk.Image | None = None) -> dict:
    """Per-component min/mean/max/mean-abs, magnitude mean/max, Jacobian min/max and folded voxels.

    Examples
    --------
    >>> ref = sitk.Image([5, 5, 5], sitk.sitkUInt8)
    >>> s = vf_stats(synth_vf(ref, "translation", translation=(2, 0, 0)))
    >>> s["x"]["mean"], s["jacobian_min"], s["folded_voxels"]
    (2.0, 1.0, 0)
    """
    arr = sitk.GetArrayViewFromImage(field)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ImgSuiteError(f"expected a 3D vector field with 3 components, got array shape {arr.shape}")
    sel = np.ones(arr.shape[:3], bool)
    if mask is not None:
        sel = sitk.GetArrayViewFromImage(mask) > 0
        if sel.shape != arr.shape[:3]:
            raise ImgSuiteError("the mask is not on the vector field's grid")
    vals = arr[sel]
    out = {}
    for c, name in enumerate("xyz"):
        v = vals[:, c]
        out[name] = {
            "min": float(v.min()),
            "mean": float(v.mean()),
            "max": float(v.max()),
            "mean_abs": float(np.abs(v).mean()),
        }
    mag = np.linalg.norm(vals, axis=1)
    out["magnitude_mean"] = float(mag.mean())
    out["magnitude_max"] = float(mag.max())
    jac = sitk.GetArrayFromImage(jacobian_determinant(field))[sel]
    out["jacobian_min"] = float(jac.min())
    out["jacobian_max"] = float(jac.max())
    out["folded_voxels"] = int(np.sum(jac <= 0))
    out["voxels"] = int(sel.sum())
    return out


def _check_widths(values, option: str) -> None:
    """A radius or width per axis: finite and > 0 (0 divides every distance into NaN or infinity)."""
    widths = np.asarray(values, float)
    if not (np.isfinite(widths).all() and (widths > 0).all()):
        raise ImgSuiteError(f"{option} must be finite numbers > 0 mm, got {' '.join(f'{w:g}' for w in widths.ravel())}")


def synth_vf(
    reference: sitk.Image,
    kind: str = "translation",
    translation=(0.0, 0.0, 0.0),
    center=None,
    radius=(20.0, 20.0, 20.0),
    magnitude=(5.0, 5.0, 5.0),
    std=(20.0, 20.0, 20.0),
) -> sitk.Image:
    """A synthetic displacement field on ``reference``'s grid (plastimatch ``synth-vf``).

    Parameters
    ----------
    kind : {"translation", "radial", "zero", "gaussian", "position", "index"}
        ``translation``: constant ``translation`` mm. ``position``/``index``: each voxel holds its centre's
        position (mm) or its index (i, j, k), plastimatch ``--xf-phys-pos``/``--xf-vox-num`` (test fields). ``radial``: points within ``radius`` of ``center`` move
        outwards by ``magnitude * r / radius`` (a smooth expansion, zero outside). ``gaussian``: a Gaussian
        bump of peak ``magnitude`` mm and width ``std`` mm centred on ``center``.
    center : 3 floats, optional
        LPS mm; the image centre by default.
    """
    if reference.GetDimension() != 3:  # a 2D --fixed: a numpy reshape traceback
        raise ImgSuiteError(f"a synthetic vector field needs a 3D grid; this one is {reference.GetDimension()}D")
    size = reference.GetSize()
    if center is None:
        center = reference.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in size])
    center = np.asarray(center, float)
    pts = _physical_points(reference)
    if kind == "zero":
        disp = np.zeros_like(pts)
    elif kind == "position":
        disp = pts
    elif kind == "index":
        disp = np.stack(np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij")[::-1], axis=-1).astype(float)
    elif kind == "translation":
        disp = np.broadcast_to(np.asarray(translation, float), pts.shape).copy()
    elif kind == "radial":
        _check_widths(radius, "--radial-radius")
        d = (pts - center) / np.asarray(radius, float)
        r = np.linalg.norm(d, axis=-1, keepdims=True)
        # smooth: u = m * d * (1 - r^2)^2 inside the ellipsoid, 0 outside (continuous derivative)
        disp = np.where(r < 1, np.asarray(magnitude, float) * d * (1 - r**2) ** 2, 0.0)
    elif kind == "gaussian":
        _check_widths(std, "--gauss-std")
        d = (pts - center) / np.asarray(std, float)
        g = np.exp(-0.5 * np.sum(d * d, axis=-1, keepdims=True))
        disp = np.asarray(magnitude, float) * g
    else:
        raise ImgSuiteError(
            f"unknown synthetic field {kind!r}; use translation, radial, zero, gaussian, position or index"
        )
    out = sitk.GetImageFromArray(disp, isVector=True)
    out.CopyInformation(reference)
    return out


def _physical_points(reference: sitk.Image) -> np.ndarray:
    size = reference.GetSize()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij")[::-1], axis=-1).astype(float)
    d = np.array(reference.GetDirection()).reshape(3, 3)
    return np.array(reference.GetOrigin()) + (idx * np.array(reference.GetSpacing())) @ d.T
