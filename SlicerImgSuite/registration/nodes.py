"""Registration on MRML nodes (what the Slicer module's logic calls): volumes and markups in, a transform
node (linear, B-spline or grid) and an optional warped volume out. All conversion goes through
:mod:`SlicerImgSuite.mrml`.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..choices import TRANSFORM_KINDS
from ..errors import ImgSuiteError
from ..progress import ProgressCallback
from .engine import DEFAULTS, RegistrationResult, _as_affine, compose, fill_value, register_images, warp_image
from .vf import field_transform, transform_to_field

KINDS = TRANSFORM_KINDS
DEFAULT_BSPLINE_SPACING = 10.0  # mm, fitting a field (demons) when no B-spline stage sets grid_spac
FIT_WARN_MM = 0.5  # a fitted B-spline further than this from the field somewhere is reported

PRESETS = {
    "rigid": [{"xform": "align_center"}, {"xform": "rigid", "res": [4, 4, 2], "max_its": 100},
              {"xform": "rigid", "res": [2, 2, 1], "max_its": 50}],
    "affine": [{"xform": "align_center"}, {"xform": "rigid", "res": [4, 4, 2], "max_its": 100},
               {"xform": "affine", "res": [2, 2, 1], "max_its": 100}],
    "deformable": [{"xform": "align_center"}, {"xform": "rigid", "res": [4, 4, 2], "max_its": 100},
                   {"xform": "bspline", "res": [4, 4, 2], "grid_spac": [40, 40, 40], "max_its": 50},
                   {"xform": "bspline", "res": [2, 2, 1], "grid_spac": [20, 20, 20], "max_its": 50},
                   {"xform": "bspline", "res": [1, 1, 1], "grid_spac": [15, 15, 15], "max_its": 30}],
}  # fmt: skip


def module_stages(text: str) -> tuple[list[dict], list[str]]:
    """The stages of the Registration module's command text and what to warn about: the keys the parser
    ignores, and ``[GLOBAL]`` keys (``fixed_roi``, ``xform_in``, ``default_value`` ...) of a loaded plastimatch
    file, which the module does not read (its volumes, landmarks and choices are the inputs): both were dropped
    unsaid, so a ``fixed_roi`` restricted nothing."""
    from .cmdfile import parse_command_file

    cf = parse_command_file(text, "command file")
    said = list(cf.warnings)
    if cf.globals:
        said.append(f"[GLOBAL] {', '.join(sorted(cf.globals))} not used by the module (its volumes, landmarks and "
                    "output choices are the inputs); imgsuite register reads them")  # fmt: skip
    return cf.stages, said


def register_nodes(
    scene,
    fixed_node,
    moving_node,
    stages: list[dict],
    progress: ProgressCallback | None = None,
    fixed_markups=None,
    moving_markups=None,
    transform_kind: str = "auto",
    transform_name: str = "Registration",
    warped_name: str | None = None,
    fixed_mask_node=None,
    bspline_spacing=None,
) -> tuple[object, object | None, RegistrationResult]:
    """Register two volume nodes; returns (transform node, warped volume node or None, result).

    Parameters
    ----------
    stages : list of dict
        Command-file stages (see :data:`PRESETS`).
    fixed_markups, moving_markups : markups fiducial nodes, optional
        Corresponding points: three or more pairs start the registration from their rigid fit, and
        B-spline stages add ``landmark_penalty`` (1.0 unless the stage sets it).
    transform_kind : {"auto", "linear", "bspline", "grid"}
        The class of the transform node, so that Slicer's transform tools apply to it (see
        :func:`transform_node_for_kind`); ``auto`` keeps what the stages produce.
    bspline_spacing : float or 3 floats, optional
        Control-point spacing (mm) when a ``bspline`` output has to be fitted to a displacement field; by
        default the finest ``grid_spac`` of the B-spline stages (20 mm where unset), else :data:`DEFAULT_BSPLINE_SPACING`.
    """
    from ..mrml import markups, volumes

    kind = _check_kind(transform_kind)  # before registering: a typo costs nothing
    fixed = volumes.image_from_volume_node(fixed_node)
    moving = volumes.image_from_volume_node(moving_node)
    mask = volumes.image_from_volume_node(fixed_mask_node) if fixed_mask_node is not None else None
    f_lm = m_lm = None
    initial = None
    if (fixed_markups is None) != (moving_markups is None):
        raise ImgSuiteError("landmarks need both a fixed and a moving markups node")
    if fixed_markups is not None:
        from .landmarks import check_pairs

        f_lm, f_labels = markups.points_from_fiducial_node(fixed_markups)
        m_lm, m_labels = markups.points_from_fiducial_node(moving_markups)
        f_lm, m_lm = check_pairs(f_lm, m_lm, fixed_markups.GetName(), moving_markups.GetName(), f_labels, m_labels)
        if len(f_lm) >= 3:
            initial = sitk.LandmarkBasedTransformInitializer(
                sitk.VersorRigid3DTransform(), f_lm.ravel().tolist(), m_lm.ravel().tolist()
            )
            stages = [s for s in stages if s.get("xform") not in ("align_center", "align_center_of_gravity")]
        stages = [
            {**s, "landmark_penalty": s.get("landmark_penalty", 1.0)} if s.get("xform") == "bspline" else s
            for s in stages
        ]
    result = register_images(
        fixed,
        moving,
        stages,
        progress=progress,
        fixed_mask=mask,
        moving_mask=None,
        initial_transform=initial,
        fixed_landmarks=f_lm,
        moving_landmarks=m_lm,
    )
    if bspline_spacing is None:
        spacings = [s.get("grid_spac", DEFAULTS["grid_spac"]) for s in stages if s.get("xform") == "bspline"]
        bspline_spacing = min(spacings, key=lambda g: float(np.min(g))) if spacings else DEFAULT_BSPLINE_SPACING
    node = transform_node_for_kind(
        scene,
        result.transform,
        kind=kind,
        fixed=fixed,
        name=transform_name,
        bspline_spacing=bspline_spacing,
        warnings=result.warnings,
    )
    warped = None
    if warped_name:
        image = warp_image(moving, result.transform, fixed, "linear", fill_value(moving))
        warped = volumes.volume_node_from_image(scene, image, warped_name)
    return node, warped, result


def _check_kind(kind: str) -> str:
    kind = str(kind).strip().lower()
    if kind not in KINDS:
        raise ImgSuiteError(f"unknown output transform kind {kind!r}; use {', '.join(KINDS)}")
    return kind


def transform_node_for_kind(
    scene,
    transform: sitk.Transform,
    kind: str,
    fixed: sitk.Image,
    name: str = "Registration",
    bspline_spacing=DEFAULT_BSPLINE_SPACING,
    warnings: list[str] | None = None,
):
    """A transform node of the asked class holding ``transform`` (fixed -> moving, Slicer's "from parent").

    - ``linear``: a ``vtkMRMLLinearTransformNode``; a transform with a deformable part is refused.
    - ``bspline``: a ``vtkMRMLBSplineTransformNode`` whose bulk part is the leading linear stages. Linear stages
      then one B-spline are stored exactly; any other deformable part (a demons field, several ITK B-spline
      stages) is sampled on the ``fixed`` grid and fitted with control points ``bspline_spacing`` mm apart
      (:func:`~SlicerImgSuite.registration.xforms.field_to_bspline`); a fit error above :data:`FIT_WARN_MM`
      is appended to ``warnings``. A purely linear result gives a zero B-spline on the fixed grid plus its bulk.
    - ``grid``: a ``vtkMRMLGridTransformNode``, the displacement field sampled on the ``fixed`` grid.
    - ``auto``: the node class that fits what ``transform`` is (a general one for a composite).
    """
    from ..mrml import transforms

    kind = _check_kind(kind)
    if kind == "grid":
        transform = field_transform(transform_to_field(transform, fixed))
    elif kind == "linear":
        if not transform.IsLinear():
            raise ImgSuiteError(
                "the registration has a deformable part (B-spline or vector field) that a linear transform "
                "cannot hold; choose B-spline or grid output, or use linear stages only"
            )
        transform = _as_affine(transform)
    elif kind == "bspline":
        linear, deformable = _split_linear(transform)
        spline = _as_bspline(deformable, fixed, bspline_spacing, warnings)
        return transforms.bspline_node_from_sitk(scene, spline, linear, name)
    return transforms.transform_node_from_sitk(scene, transform, name)


def _flatten(transform: sitk.Transform) -> list[sitk.Transform]:
    """A composite's parts in ``compose`` order (the last applies first), nested composites opened."""
    if transform.GetName() != "CompositeTransform":
        return [transform]
    composite = sitk.CompositeTransform(transform)
    out: list[sitk.Transform] = []
    for i in range(composite.GetNumberOfTransforms()):
        out += _flatten(composite.GetNthTransform(i))
    return out


def _split_linear(transform: sitk.Transform) -> tuple[sitk.Transform | None, list[sitk.Transform]]:
    """(the leading linear parts as one affine or None, the rest): ``transform = linear o rest``."""
    parts = _flatten(transform)
    n = 0
    while n < len(parts) and parts[n].IsLinear():
        n += 1
    linear = _as_affine(compose(parts[:n])) if n else None
    return linear, parts[n:]


def _as_bspline(parts: list[sitk.Transform], fixed: sitk.Image, spacing, warnings) -> sitk.BSplineTransform:
    """The deformable remainder as one B-spline: itself when it is one, else fitted to its field on ``fixed``."""
    from .bspline import ControlGrid
    from .xforms import field_to_bspline

    spacing = np.broadcast_to(np.asarray(spacing, float), 3)
    if not parts:
        grid = ControlGrid.covering(fixed, spacing)
        return grid.to_sitk(np.zeros((3, *grid.shape_zyx)))
    if len(parts) == 1 and parts[0].GetName() == "BSplineTransform":
        return sitk.BSplineTransform(parts[0])
    field = transform_to_field(compose(parts), fixed)
    spline = field_to_bspline(field, spacing)
    # a copy: a view of the temporary field image would read its freed buffer
    err = sitk.GetArrayFromImage(transform_to_field(spline, fixed)) - sitk.GetArrayViewFromImage(field)
    err = np.linalg.norm(err, axis=-1)
    if warnings is not None and float(err.max()) > FIT_WARN_MM:
        warnings.append(
            f"B-spline output: the fitted spline ({' x '.join(f'{g:g}' for g in spacing)} mm control points) "
            f"differs from the registration's displacement field by up to {err.max():.2f} mm "
            f"(mean {err.mean():.2f} mm); choose grid output to keep the field as it is"
        )
    return spline
