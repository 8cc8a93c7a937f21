"""Registration on MRML nodes (what the Slicer module's logic calls): volumes and markups in, a transform
node (linear, B-spline or grid) and an optional warped volume out. All conversion goes through
:mod:`SlicerImgSuite.mrml`.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..progress import ProgressCallback
from .engine import RegistrationResult, register_images, warp_image
from .vf import field_transform, transform_to_field

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
        ``grid`` stores a displacement field on the fixed grid (Slicer's grid transform); ``linear``
        insists on a linear result; ``auto`` keeps what the stages produce.
    """
    from ..mrml import markups, transforms, volumes

    fixed = volumes.image_from_volume_node(fixed_node)
    moving = volumes.image_from_volume_node(moving_node)
    mask = volumes.image_from_volume_node(fixed_mask_node) if fixed_mask_node is not None else None
    f_lm = m_lm = None
    initial = None
    if (fixed_markups is None) != (moving_markups is None):
        raise ImgSuiteError("landmarks need both a fixed and a moving markups node")
    if fixed_markups is not None:
        f_lm = markups.points_from_fiducial_node(fixed_markups)[0]
        m_lm = markups.points_from_fiducial_node(moving_markups)[0]
        if len(f_lm) != len(m_lm):
            raise ImgSuiteError(f"landmark counts differ: {len(f_lm)} fixed and {len(m_lm)} moving")
        if len(f_lm) >= 3:
            initial = sitk.LandmarkBasedTransformInitializer(
                sitk.VersorRigid3DTransform(), f_lm.ravel().tolist(), m_lm.ravel().tolist()
            )
            stages = [s for s in stages if s.get("xform") not in ("align_center", "align_center_of_gravity")]
        stages = [
            {**s, "landmark_penalty": s.get("landmark_penalty", 1.0)} if s.get("xform") == "bspline" else s
            for s in stages
        ]
    result = register_images(fixed, moving, stages, progress, mask, None, initial, f_lm, m_lm)
    transform = result.transform
    if transform_kind == "grid":
        transform = field_transform(transform_to_field(transform, fixed))
    elif transform_kind == "linear" and not transform.IsLinear():
        raise ImgSuiteError("the stages produced a non-linear transform; choose B-spline or grid output")
    elif transform_kind == "linear":
        from .engine import _as_affine

        transform = _as_affine(transform)
    node = transforms.transform_node_from_sitk(scene, transform, transform_name)
    warped = None
    if warped_name:
        image = warp_image(moving, result.transform, fixed, "linear", float(np.min(sitk.GetArrayViewFromImage(moving))))
        warped = volumes.volume_node_from_image(scene, image, warped_name)
    return node, warped, result
