"""Tomosynthesis in an MRML scene: what the Tomosynthesis module's logic calls.

Projections become a sequence of single-slice volume nodes placed on the detector in 3-D (so a sweep
can be played and seen next to the CT); reconstructions become volume nodes on their LPS grid, so they
overlay the CT they came from. Works with the real slicer-core scene (``SlicerImgSuite.mrml``).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..progress import ProgressCallback
from .drr import drr
from .geometry import Geometry, arc_sweep, linear_sweep
from .projset import ProjectionSet
from .recon import reconstruct, tomo_grid


def sweep_geometry(
    ct: sitk.Image,
    kind: str = "linear",
    views: int = 25,
    sweep_angle: float = 40.0,
    sid: float = 1800.0,
    pixel_size: float = 1.0,
    dims: tuple[int, int] | None = None,
) -> Geometry:
    """A coronal sweep (source anterior, panel just behind the CT) that covers ``ct``.

    The panel sits 20 mm posterior to the CT's extent; ``dims`` default to the CT's magnified footprint.
    """
    lo = np.array(ct.TransformContinuousIndexToPhysicalPoint([-0.5] * 3))
    hi = np.array(ct.TransformContinuousIndexToPhysicalPoint([s - 0.5 for s in ct.GetSize()]))
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    center = (lo + hi) / 2.0
    panel_y = hi[1] + 20.0
    detector = np.array([center[0], panel_y, center[2]])
    if dims is None:
        mag = sid / (sid - (panel_y - lo[1]))
        spread = sid * np.tan(np.radians(sweep_angle / 2.0)) * (panel_y - lo[1]) / sid if kind == "linear" else 0.0
        dims = (
            int(np.ceil(((hi[0] - lo[0]) * mag) / pixel_size)) + 8,
            int(np.ceil(((hi[2] - lo[2]) * mag + 2 * spread) / pixel_size)) + 8,
        )
    if kind == "linear":
        return linear_sweep(views, sweep_angle, sid, dims, (pixel_size, pixel_size), detector)
    if kind == "arc":
        sad = sid - (panel_y - center[1])
        return arc_sweep(
            views, sweep_angle, sad=sad, sid=sid, dims=dims, pixel_size=(pixel_size, pixel_size), isocenter=center
        )
    from ..errors import ImgSuiteError

    raise ImgSuiteError(f"unknown sweep {kind!r}; use linear or arc")


def simulate_sweep(ct: sitk.Image, geometry: Geometry, progress: ProgressCallback | None = None) -> ProjectionSet:
    """DRRs of ``ct`` (HU) for every view (plastimatch units)."""
    return drr(ct, geometry, progress=progress)


def projection_sequence_node(scene, projections: ProjectionSet, name: str = "Projections"):
    """A sequence node holding one single-slice volume per view, each placed on its detector (LPS)."""
    from ..mrml.volumes import volume_node_from_image

    mscene = scene.scene if hasattr(scene, "scene") else scene
    sequence = mscene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetIndexName("view")
    sequence.SetIndexUnit("")
    g = projections.geometry
    for view in range(len(g)):
        image = panel_image(projections, view)
        node = volume_node_from_image(scene, image, f"{name} {view}")
        sequence.SetDataNodeAtValue(node, str(view))
        mscene.RemoveNode(node)
    browser = mscene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{name} browser")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    return sequence


def panel_image(projections: ProjectionSet, view: int) -> sitk.Image:
    """View ``view`` as a one-slice image whose grid lies on the detector (LPS)."""
    g = projections.geometry
    image = sitk.GetImageFromArray(projections.images[view][None].astype(np.float32))
    image.SetSpacing((g.pixel_size[0], g.pixel_size[1], 1.0))
    corner = g.pixel_positions(view, 0.0, 0.0)
    image.SetOrigin(corner.tolist())
    n = np.cross(g.u_axes[view], g.v_axes[view])
    image.SetDirection(np.column_stack([g.u_axes[view], g.v_axes[view], n]).ravel().tolist())
    return image


def reconstruct_node(
    scene,
    projections: ProjectionSet,
    algorithm: str = "fbp",
    reference: sitk.Image | None = None,
    depth_range=None,
    slice_spacing: float = 5.0,
    name: str | None = None,
    progress: ProgressCallback | None = None,
    **options,
):
    """Reconstruct into a new volume node; on ``reference``'s grid (e.g. the CT) when given."""
    from ..mrml.volumes import volume_node_from_image

    grid = reference if reference is not None else tomo_grid(projections.geometry, depth_range, slice_spacing)
    if reference is not None:
        grid = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
        grid.CopyInformation(reference)
    volume = reconstruct(projections, grid, algorithm=algorithm, progress=progress, **options)
    return volume_node_from_image(scene, volume, name or f"Tomo {algorithm.upper()}")
