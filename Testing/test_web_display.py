"""What the viewer shows by default, on real MRML: the planning CT behind the slices (not the largest volume),
the anatomy's structures (not 2D label images), a dose as a colour wash, Slicer's own layouts."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.demo.phantom import GTV_CENTRE
from SlicerImgSuite.web.display import anatomy_segmentations, dose_volume, main_volume


@pytest.fixture
def scene(phantom):
    from SlicerImgSuite.mrml.scene import new_scene

    scene = new_scene(set_global=False)
    yield scene
    scene.scene.Clear(1)


def _reconstruction(phantom) -> sitk.Image:
    """A tomosynthesis-like volume: larger than the CT (more voxels), attenuation values 0..0.5, not HU."""
    big = sitk.Image([2 * n for n in phantom.ct.GetSize()], sitk.sitkFloat32)
    big.SetSpacing([s / 2 for s in phantom.ct.GetSpacing()])
    big.SetOrigin(phantom.ct.GetOrigin())
    return big + 0.25


def test_background_is_the_ct_not_the_largest_volume(scene, phantom):
    from SlicerImgSuite.mrml.volumes import volume_node_from_image

    recon = volume_node_from_image(scene, _reconstruction(phantom), "Tomo SART")
    ct = volume_node_from_image(scene, phantom.ct, "Phantom CT")
    dose = volume_node_from_image(scene, phantom.dose, "Dose")
    dose.SetAttribute("DICOM.Modality", "RTDOSE")
    assert recon.GetImageData().GetNumberOfPoints() > ct.GetImageData().GetNumberOfPoints()
    assert main_volume(scene.scene) is ct  # the HU volume, though added after the larger one
    assert dose_volume(scene.scene) is dose
    copy = volume_node_from_image(scene, phantom.ct, "CT copy")
    assert main_volume(scene.scene) is ct  # the first HU volume
    copy.SetAttribute("DICOM.Modality", "CT")
    assert main_volume(scene.scene) is copy  # Modality CT wins
    copy.RemoveAttribute("DICOM.Modality")
    recon.AddNodeReferenceID("planningImage", copy.GetID())
    assert main_volume(scene.scene) is copy  # the volume another node references
    assert main_volume(scene.scene, "Tomo SART") is recon  # by name, as asked


def test_only_volumes_of_doses_are_never_the_background(scene, phantom):
    from SlicerImgSuite.mrml.volumes import volume_node_from_image

    dose = volume_node_from_image(scene, phantom.dose, "Dose")
    dose.SetAttribute("DICOM.Modality", "RTDOSE")
    assert main_volume(scene.scene) is None


def test_anatomy_leaves_out_2d_label_images(scene, phantom):
    from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
    from SlicerImgSuite.mrml.volumes import volume_node_from_image

    ct = volume_node_from_image(scene, phantom.ct, "Phantom CT")
    structures = segmentation_node_from_masks(scene, phantom.masks, phantom.colors, name="Structures")
    label = sitk.Image(40, 30, 1, sitk.sitkUInt8)
    label[5:20, 5:20, 0] = 1
    label.SetSpacing((0.2, 0.2, 1.0))
    label.SetOrigin((-4.0, -3.0, 0.0))  # on the patient, as a hyperspectral image's labels sat in the demo
    segmentation_node_from_masks(scene, {"lesion": label}, {"lesion": (255, 0, 0)}, name="HSI labels")
    assert anatomy_segmentations(scene.scene, ct) == [structures]


def test_dose_is_a_colour_wash_over_the_ct(phantom, tmp_path):
    """Rendered offscreen: at the GTV centre (60 Gy, the top of the scale) the pixel turns red; in the
    other lung (no dose) the CT is unchanged."""
    from SlicerImgSuite.mrml.mrb import save_mrb
    from SlicerImgSuite.mrml.scene import new_scene
    from SlicerImgSuite.mrml.volumes import volume_node_from_image
    from SlicerImgSuite.web.render import render_views

    scene = new_scene(set_global=False)
    volume_node_from_image(scene, phantom.ct, "Phantom CT")
    plain = save_mrb(scene, tmp_path / "plain.mrb")
    volume_node_from_image(scene, phantom.dose, "Dose").SetAttribute("DICOM.Modality", "RTDOSE")
    washed = save_mrb(scene, tmp_path / "dose.mrb")
    scene.scene.Clear(1)
    views = [render_views(p, layout=("axial",), size=(200, 200), focus_lps=GTV_CENTRE) for p in (plain, washed)]
    gtv = views[1].pixel("axial", GTV_CENTRE)
    other_lung = views[1].pixel("axial", (-GTV_CENTRE[0], GTV_CENTRE[1], GTV_CENTRE[2]))
    before, after = (v.images["axial"].astype(int) for v in views)
    r, g, b = after[gtv]
    assert r > 150 and r > g + 60 and r > b + 60, after[gtv]
    assert np.abs(before[gtv] - after[gtv]).sum() > 60
    assert np.abs(before[other_lung] - after[other_lung]).max() <= 2


def test_layouts_are_slicers():
    from SlicerImgSuite.web.page import slicer_layouts

    layouts = slicer_layouts()
    four_up = layouts["Four-Up"]
    rows = [[view.singleton_tag for view in row.items] for row in four_up.items]
    assert rows == [["Red", "View1"], ["Green", "Yellow"]]  # as vtkMRMLLayoutNode describes Four-Up
    conventional = layouts["Conventional"]
    assert conventional.items[0].singleton_tag == "View1"  # 3D on top, the three slices below
    assert [v.singleton_tag for v in conventional.items[1].items] == ["Red", "Green", "Yellow"]
