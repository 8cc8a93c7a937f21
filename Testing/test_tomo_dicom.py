"""DICOM projection images: an arc of our DRRs written as RT Image files, read back, reconstructed."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.geometry import grid_image
from SlicerImgSuite.tomo.dicom import read_dicom_projections, write_rtimage_projections
from SlicerImgSuite.tomo.drr import DRR_UNIT, MU_WATER, drr
from SlicerImgSuite.tomo.geometry import arc_sweep
from SlicerImgSuite.tomo.phantom import bead_phantom
from SlicerImgSuite.tomo.projset import read_projections
from SlicerImgSuite.tomo.recon import fbp, tomo_grid


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    # +-20 degree arc about the superior axis: source anterior, panel posterior (SAD 1000, SID 1500)
    geometry = arc_sweep(15, 40.0, sad=1000, sid=1500, dims=(160, 120), pixel_size=(2.0, 2.0), rotation_axis=(0, 0, 1))
    phantom = bead_phantom(center=(0.0, 0.0, 0.0), bead_depths=(-45, 0, 45), sphere_depths=(-30, 0, 30))
    for e in phantom.ellipsoids:
        if e.kind == "bead":
            e.semi_axes = (1.5, 1.5, 1.5)
    grid = grid_image((-130.0, -80.0, -130.0), (131, 81, 131), (2.0, 2.0, 2.0), pixel_type=sitk.sitkFloat32)
    mu = sitk.GetArrayFromImage(phantom.voxelize(grid, supersample=2))
    ct = sitk.GetImageFromArray(np.rint((mu / MU_WATER - 1.0) * 1000.0).astype(np.int16))  # HU
    ct.CopyInformation(grid)
    projections = drr(ct, geometry)
    folder = tmp_path_factory.mktemp("rtimage") / "arc"
    write_rtimage_projections(projections, folder)
    return geometry, phantom, projections, folder


def test_rt_image_round_trip_keeps_pixels_and_geometry(sweep):
    geometry, _, projections, folder = sweep
    files = sorted(folder.glob("*.dcm"))
    assert len(files) == 15
    ds = pydicom.dcmread(files[0])
    assert ds.Modality == "RTIMAGE" and ds.RTImageSID == 1500 and ds.RadiationMachineSAD == 1000
    assert abs(((float(ds.GantryAngle) + 180) % 360 - 180) - (-20.0)) < 1e-6  # the first view of the arc
    back = read_projections(folder)  # a DICOM folder is a projection set like any other
    scale = projections.images.max()
    assert np.abs(back.images - projections.images).max() < 1e-4 * scale  # 16 bits + rescale slope
    cols, rows = np.meshgrid([0, 80, 159], [0, 60, 119])
    for view in (0, 7, 14):  # same source, same pixel positions
        np.testing.assert_allclose(back.geometry.sources[view], geometry.sources[view], atol=1e-6)
        np.testing.assert_allclose(
            back.geometry.pixel_positions(view, cols, rows), geometry.pixel_positions(view, cols, rows), atol=1e-5
        )


def test_beads_in_focus_at_their_depth_from_dicom(sweep):
    geometry, phantom, _, folder = sweep
    projections = read_dicom_projections(folder)
    # the panel is at y = +500 mm; the phantom centre is 500 mm above it
    grid = tomo_grid(projections.geometry, depth_range=(430, 570), slice_spacing=5.0, pixel_size=1.0)
    vol = sitk.GetArrayFromImage(fbp(projections, grid, filter="ramp"))
    assert DRR_UNIT > 0 and vol.shape[1] == 29  # (z, y depth planes, x)
    for bead in (e for e in phantom.ellipsoids if e.kind == "bead"):
        i, j, k = grid.TransformPhysicalPointToIndex(bead.center)
        profile = vol[k, :, i] - np.median(vol[k - 8 : k + 9, :, i - 8 : i + 9], axis=(0, 2))
        assert abs(int(np.argmax(profile)) - j) <= 1, bead.center


def test_missing_geometry_tag_names_the_file(sweep, tmp_path):
    _, _, _, folder = sweep
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in sorted(folder.glob("*.dcm"))[:3]:
        ds = pydicom.dcmread(f)
        if f.name.endswith("2.dcm"):
            del ds.RTImageSID
        ds.save_as(broken / f.name)
    with pytest.raises(ImgSuiteError, match="RTImageSID") as err:
        read_dicom_projections(broken)
    assert str(err.value.path).endswith("2.dcm")


def test_carm_projection_geometry(tmp_path):
    # an XA frame at LAO 90: detector on the patient's left, source on the right
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1"
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "XA"
    ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = 1200.0, 800.0
    ds.PositionerPrimaryAngle, ds.PositionerSecondaryAngle = 90.0, 0.0
    ds.ImagerPixelSpacing = [0.5, 0.4]
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 8, 10, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(80, dtype=np.uint16).reshape(8, 10).tobytes()
    ds.save_as(tmp_path / "xa.dcm", enforce_file_format=True)
    ps = read_dicom_projections(tmp_path)
    g = ps.geometry
    np.testing.assert_allclose(g.sources[0], [-800.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(g.centers[0], [400.0, 0.0, 0.0], atol=1e-9)
    assert g.pixel_size == (0.4, 0.5) and g.dims == (10, 8)
    np.testing.assert_allclose(g.v_axes[0], [0.0, 0.0, -1.0], atol=1e-12)  # rows run to the feet
    assert ps.images[0, 1, 2] == 12.0
    del ds.DistanceSourceToPatient
    ds.save_as(tmp_path / "xa.dcm", enforce_file_format=True)
    with pytest.raises(ImgSuiteError, match="DistanceSourceToPatient"):
        read_dicom_projections(tmp_path)


def test_swapped_source_distances_are_refused(sweep, tmp_path, capsys):
    """RTImageSID < RadiationMachineSAD (the two tags swapped) put the panel between the source and the patient:
    the set read and reconstructed with a magnification off by (1500/1000)^2, without a word. The plastimatch
    reader refused that already; the DICOM reader now does too, naming the file and both tags."""
    from SlicerImgSuite.cli import main

    _, _, _, folder = sweep
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for f in sorted(folder.glob("*.dcm"))[:3]:
        ds = pydicom.dcmread(f)
        if f.name.endswith("2.dcm"):
            ds.RadiationMachineSAD, ds.RTImageSID = ds.RTImageSID, ds.RadiationMachineSAD
        ds.save_as(swapped / f.name)
    out = tmp_path / "planes.nrrd"
    assert main(["tomo", "--input", str(swapped), "--output", str(out), "--depth-range", "0", "50"]) == 2
    err = capsys.readouterr().err
    assert "2.dcm: need 0 < RadiationMachineSAD <= RTImageSID, got 1500 and 1000 mm" in err
    assert "Traceback" not in err and not out.exists()
