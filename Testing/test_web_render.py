"""Offscreen rendering of a real MRML scene (trame-slicer, Mesa EGL): what a physicist would see in Slicer.

The scene is the phantom patient's CT and true structures, built with the MRML adapters; pixel checks
use the CT's own HU values and the known structure geometry, so a wrong window, a flipped axis or a
missing outline fails.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from SlicerImgSuite.demo.phantom import GTV_CENTRE
from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.web.display import CT_WINDOW_LEVEL
from SlicerImgSuite.web.render import render_views, side_by_side

SIZE = 320
# in the left lung, on a CT slice centre, level with the GTV centre; the views are centred on it
MARKUP_LPS = (100.0, -10.0, 1.5)


@pytest.fixture(scope="module")
def phantom_scene(phantom):
    from SlicerImgSuite.mrml.markups import fiducial_node_from_points
    from SlicerImgSuite.mrml.scene import new_scene
    from SlicerImgSuite.mrml.segmentations import segmentation_node_from_masks
    from SlicerImgSuite.mrml.tables import table_node_from_rows
    from SlicerImgSuite.mrml.transforms import transform_node_from_sitk
    from SlicerImgSuite.mrml.volumes import volume_node_from_image

    scene = new_scene(set_global=False)
    volume_node_from_image(scene, phantom.ct, "Phantom CT")
    segmentation = segmentation_node_from_masks(scene, phantom.masks, phantom.colors, name="Structures")
    # what other jobs put in the demo scene: a fiducial, a table, a transform, a sequence of volumes
    # (a bundle with a node class the viewer's scene does not know fails to load)
    fiducial_node_from_points(scene, [MARKUP_LPS], ["iso"], name="Isocentre")
    table_node_from_rows(scene, ["dose", "volume"], [[1.0, 100.0], [2.0, 50.0]], name="DVH")
    transform_node_from_sitk(scene, sitk.TranslationTransform(3, (1.0, 2.0, 3.0)), name="Shift")
    sequence = scene.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "Sweep")
    for n in range(2):
        frame = volume_node_from_image(scene, sitk.Image(8, 8, 1, sitk.sitkFloat32) + n, f"frame {n}")
        sequence.SetDataNodeAtValue(frame, str(n))
        scene.scene.RemoveNode(frame)
    scene.scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", "Sweep browser").SetAndObserveMasterSequenceNodeID(
        sequence.GetID()
    )
    yield scene, segmentation
    scene.scene.Clear(1)


@pytest.fixture(scope="module")
def rendered(phantom_scene, tmp_path_factory):
    scene, _ = phantom_scene
    out = tmp_path_factory.mktemp("web") / "views.png"
    return render_views(scene, out, layout=("axial", "coronal", "3d"), size=(SIZE, SIZE), focus_lps=MARKUP_LPS)


def _expected_grey(hu: float) -> float:
    window, level = CT_WINDOW_LEVEL
    return 255.0 * float(np.clip((hu - (level - window / 2)) / window, 0.0, 1.0))


def _near(image, colour, tolerance=40):
    return np.abs(image.astype(int) - np.array(colour)).sum(axis=-1) <= tolerance


def test_png_holds_the_views_side_by_side(rendered):
    assert rendered.path.is_file()
    png = np.asarray(Image.open(rendered.path).convert("RGB"))
    assert png.shape == (SIZE + 4, 3 * SIZE + 2 * 2, 3)
    np.testing.assert_array_equal(png, side_by_side(rendered.images))
    for image in rendered.images.values():
        assert image.shape == (SIZE, SIZE, 3)
        assert image.std() > 10  # not a blank view


def test_axial_grey_levels_follow_the_ct_window(rendered, phantom):
    """Air, lung, soft tissue and couch read back at the grey level the CT window gives their HU."""
    image = rendered.images["axial"]
    ct = phantom.ct
    points = {"air": (0, -135, 0), "lung": (65, -5, 0), "soft tissue": (-30, 50, 0), "couch": (0, 117, 0)}
    greys = {}
    for name, point in points.items():
        row, column = rendered.pixel("axial", point)
        hu = ct[ct.TransformPhysicalPointToIndex(point)]
        greys[name] = image[row - 1 : row + 2, column - 1 : column + 2].mean()
        assert abs(greys[name] - _expected_grey(hu)) < 20, (name, hu, greys[name], _expected_grey(hu))
    assert greys["soft tissue"] > greys["lung"] + 60 > greys["air"] + 60


def test_gtv_outline_is_drawn_around_the_gtv_on_the_patient_right(rendered, phantom):
    """The GTV outline (red) encircles the GTV centre at its radius, on the image's left (radiological view)."""
    image = rendered.images["axial"]
    red = _near(image, phantom.colors["GTV"])
    rows, columns = np.nonzero(red)
    assert len(rows) > 40
    # back to millimetres through the view's own pixel -> RAS matrix
    xy = np.stack([columns, image.shape[0] - 1 - rows, np.zeros_like(rows), np.ones_like(rows)])
    ras = rendered.xy_to_ras["axial"] @ xy
    lps = ras[:3].T * [-1, -1, 1]
    distance = np.linalg.norm(lps[:, :2] - GTV_CENTRE[:2], axis=1)
    spacing = phantom.ct.GetSpacing()[0]
    assert np.all(np.abs(distance - 18.0) < 2 * spacing), (distance.min(), distance.max())
    centre_row, centre_column = rendered.pixel("axial", GTV_CENTRE)
    assert centre_column < image.shape[1] / 2  # patient right on screen left
    # inside the GTV there is CT (grey), not outline colour
    patch = image[centre_row - 2 : centre_row + 3, centre_column - 2 : centre_column + 3].astype(int)
    assert np.abs(patch[..., 0] - patch[..., 1]).max() < 10


def test_every_structure_outline_appears_in_the_axial_view(rendered, phantom):
    image = rendered.images["axial"]
    for name in ("BODY", "LUNG_L", "LUNG_R", "HEART", "SPINAL_CORD", "GTV", "PTV", "RING"):
        assert _near(image, phantom.colors[name], 30).sum() > 10, name


def test_coronal_view_shows_the_body_and_gtv(rendered, phantom):
    image = rendered.images["coronal"]
    assert _near(image, phantom.colors["GTV"]).sum() > 20
    posterior = -rendered.xy_to_ras["coronal"][1, 3]  # the plane's LPS y
    for x in (0.0, 65.0, -130.0):  # mediastinum, left lung, outside the body
        point = (x, posterior, 0.0)
        row, column = rendered.pixel("coronal", point)
        hu = phantom.ct[phantom.ct.TransformPhysicalPointToIndex(point)]
        assert abs(image[row - 1 : row + 2, column - 1 : column + 2].mean() - _expected_grey(hu)) < 20, (x, hu)


def test_3d_view_shows_the_structures_through_a_see_through_body(rendered):
    image = rendered.images["3d"].astype(int)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    blue = (b > r + 60) & (b > 120)  # the lungs (0, 151, 206) and (0, 151, 150), shaded
    assert blue.sum() > 2000
    yellow = (r > 150) & (g > 150) & (b < 80)  # spinal cord behind the body surface
    assert yellow.sum() > 50
    corner = image[:10, :10].reshape(-1, 3)
    assert np.ptp(corner, axis=1).max() < 8  # Slicer's grey gradient background


def test_views_pass_through_the_focus_point(rendered):
    assert rendered.xy_to_ras["axial"][2, 3] == pytest.approx(MARKUP_LPS[2])  # S = LPS z
    assert rendered.xy_to_ras["coronal"][1, 3] == pytest.approx(-MARKUP_LPS[1])  # A = -LPS y


def test_fiducial_is_drawn_where_it_is(rendered, phantom):
    image = rendered.images["axial"].astype(int)
    row, column = rendered.pixel("axial", MARKUP_LPS)
    hu = phantom.ct[phantom.ct.TransformPhysicalPointToIndex(MARKUP_LPS)]
    patch = image[row - 4 : row + 5, column - 4 : column + 5]
    plain = _expected_grey(hu)
    # the glyph changes the dark lung there, in colour (not grey)
    assert np.abs(patch - plain).max() > 60
    assert np.ptp(patch, axis=-1).max() > 60


def test_rendering_leaves_the_callers_scene_alone(phantom_scene, rendered):
    _, segmentation = phantom_scene
    display = segmentation.GetDisplayNode()
    assert display.GetVisibility2DFill()
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 8
    assert not segmentation.GetSegmentation().ContainsRepresentation("Closed surface")


def test_screenshot_command_renders_an_image_file(phantom, tmp_path):
    from SlicerImgSuite.cli import main

    nrrd = tmp_path / "ct.nrrd"
    sitk.WriteImage(phantom.ct, str(nrrd))
    png = tmp_path / "axial.png"
    assert main(["screenshot", str(nrrd), "--output", str(png), "--views", "axial", "--size", "160", "120"]) == 0
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape == (124, 160, 3)
    view = image[4:]
    # the body (bright) fills the middle, air (dark) the top corners
    assert view[50:70, 70:90].mean() > 120
    assert view[:8, :8].mean() < 40


def test_bad_input_names_the_file_and_writes_nothing(tmp_path):
    fake = tmp_path / "broken.mrb"
    fake.write_text("not a zip")
    out = tmp_path / "x.png"
    with pytest.raises(ImgSuiteError, match="broken.mrb"):
        render_views(fake, out)
    with pytest.raises(ImgSuiteError, match="missing"):
        render_views(tmp_path / "missing.mrb", out)
    with pytest.raises(ImgSuiteError, match="unknown views"):
        render_views(fake, out, layout=("axial", "oblique"))
    with pytest.raises(ImgSuiteError, match=r"\.png"):
        render_views(fake, tmp_path / "x.jpg")
    assert list(tmp_path.iterdir()) == [fake]
    # a zip file that holds no scene
    empty = tmp_path / "empty.mrb"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("notes.txt", "no scene here")
    with pytest.raises(ImgSuiteError, match="empty.mrb: cannot read the scene"):
        render_views(empty, out)
    assert not out.exists()
