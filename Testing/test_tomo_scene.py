"""The Tomosynthesis module's work below Qt: a sweep from a CT volume node, projections as a sequence,
a reconstruction node that overlays the CT (real slicer-core MRML)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from SlicerImgSuite.mrml.volumes import image_from_volume_node, volume_node_from_image
from SlicerImgSuite.tomo.nodes import projection_sequence_node, reconstruct_node, simulate_sweep, sweep_geometry


def _ct_with_bead():
    a = np.full((24, 40, 48), -1000, np.int16)
    a[4:20, 8:32, 6:42] = 0
    a[15, 12, 30] = 3000  # one dense voxel, anterior, left of centre, high
    image = sitk.GetImageFromArray(a)
    image.SetSpacing((3.0, 3.0, 3.0))
    image.SetOrigin((-60.0, 10.0, 300.0))
    return image


def test_sweep_sequence_and_reconstruction_overlay_the_ct(mrml):
    ct = _ct_with_bead()
    ct_node = volume_node_from_image(mrml, ct, "CT")
    ct_back = image_from_volume_node(ct_node)
    geometry = sweep_geometry(ct_back, "linear", views=9, sweep_angle=40, pixel_size=3.0)
    projections = simulate_sweep(ct_back, geometry)
    assert projections.images.shape[0] == 9 and projections.images.max() > 0

    sequence = projection_sequence_node(mrml, projections, "Sweep")
    assert sequence.GetNumberOfDataNodes() == 9
    first = image_from_volume_node(sequence.GetNthDataNode(0))
    # each projection sits on its detector plane (behind the patient), in LPS
    assert np.isclose(first.GetOrigin()[1], geometry.centers[0][1], atol=1e-3)

    node = reconstruct_node(mrml, projections, "fbp", reference=ct_back, name="FBP")
    volume = image_from_volume_node(node)
    assert volume.GetSize() == ct.GetSize()
    np.testing.assert_allclose(volume.GetOrigin(), ct.GetOrigin(), atol=1e-4)
    # the bead comes back at its voxel in the CT's own grid: reconstruction is linear, so subtract the
    # reconstruction of the same CT without the bead
    plain = sitk.GetArrayFromImage(ct_back)
    plain[15, 12, 30] = 0
    no_bead = sitk.GetImageFromArray(plain)
    no_bead.CopyInformation(ct_back)
    other = image_from_volume_node(reconstruct_node(mrml, simulate_sweep(no_bead, geometry), "fbp", reference=ct_back))
    detail = sitk.GetArrayFromImage(volume) - sitk.GetArrayFromImage(other)
    k, j, i = np.unravel_index(np.argmax(detail), detail.shape)
    assert abs(k - 15) <= 1 and abs(i - 30) <= 1 and abs(j - 12) <= 2, (k, j, i)
    assert mrml.scene.GetFirstNodeByName("FBP") is node
