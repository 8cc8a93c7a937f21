"""``SimpleITK.Image`` <-> scalar, labelmap and vector volume nodes, with exact geometry (oblique too)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ._nodes import mrml_scene, numpy_matrix, vtk_matrix
from .ras import grid_from_ijk_to_ras, ijk_to_ras

# SlicerRT's mark of a dose volume (its DICOM-RT import sets it) and the values' units; set from an image's
# ``DoseUnits`` metadata (what the one RTDOSE reader and our dose images carry)
DOSE_VOLUME_ATTRIBUTE, DOSE_UNITS_ATTRIBUTE = "DicomRtImport.DoseVolume", "DicomRtImport.DoseUnitName"


def volume_node_from_image(scene, image: sitk.Image, name: str = "Volume", labelmap: bool = False, node=None):
    """Add a volume node holding ``image`` (copied) to ``scene``.

    Parameters
    ----------
    scene : SlicerScene or vtkMRMLScene
    image : SimpleITK.Image
        3D (2D images get one slice); several components make a vector volume.
    name : str
        Node name.
    labelmap : bool
        Make a ``vtkMRMLLabelMapVolumeNode`` (integer labels) instead of a scalar volume. Otherwise an
        image with ``DoseUnits`` metadata (a dose read by ``read_rtdose``) makes a node marked as a dose.
    node : vtkMRMLVolumeNode, optional
        Update this node instead of adding one.

    Returns
    -------
    vtkMRMLVolumeNode
    """
    if image.GetDimension() not in (2, 3):
        raise ImgSuiteError(f"a volume node holds a 2D or 3D image, not {image.GetDimension()}D ({name!r})")
    if "complex" in image.GetPixelIDTypeAsString():  # VTK would keep the real part only, silently
        raise ImgSuiteError(f"a volume node cannot hold complex voxels ({name!r}): pass the magnitude or parts")
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    components = image.GetNumberOfComponentsPerPixel()
    if node is None:
        if labelmap:
            class_name = "vtkMRMLLabelMapVolumeNode"
        elif components > 1:
            class_name = "vtkMRMLVectorVolumeNode"
        else:
            class_name = "vtkMRMLScalarVolumeNode"
        node = mrml_scene(scene).AddNewNodeByClass(class_name, name)
    array = sitk.GetArrayFromImage(image)  # (k, j, i[, c])
    node.SetAndObserveImageData(_image_data(array, components))
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras(image)))
    node.CreateDefaultDisplayNodes()
    if image.HasMetaDataKey("DoseUnits") and not labelmap:
        node.SetAttribute(DOSE_VOLUME_ATTRIBUTE, "1")
        node.SetAttribute(DOSE_UNITS_ATTRIBUTE, image.GetMetaData("DoseUnits"))
    if components not in (1, 3) and node.GetStorageNode() is None:
        # Slicer's default volume writer stores only 1 or 3 components; the NRRD storage node keeps
        # every component (hyperspectral bands, vector fields) when the scene is saved.
        storage = node.GetScene().AddNewNodeByClass("vtkMRMLNRRDStorageNode")
        node.SetAndObserveStorageNodeID(storage.GetID())
    if labelmap and node.GetDisplayNode() is not None:
        node.GetDisplayNode().SetAndObserveColorNodeID("vtkMRMLColorTableNodeLabels")
    return node


def image_from_volume_node(node) -> sitk.Image:
    """A ``SimpleITK.Image`` copy of a volume node's voxels and grid (LPS), where Slicer shows it.

    A linear parent transform is applied to the grid (as hardening it would); under a non-linear one the
    voxels would have to be resampled, so that is refused.
    """
    from vtkmodules.util import numpy_support

    data = node.GetImageData()
    if data is None:
        raise ValueError(f"volume node {node.GetName()!r} holds no image data")
    dims = data.GetDimensions()
    scalars = numpy_support.vtk_to_numpy(data.GetPointData().GetScalars())
    components = data.GetNumberOfScalarComponents()
    shape = (dims[2], dims[1], dims[0]) + ((components,) if components > 1 else ())
    image = sitk.GetImageFromArray(scalars.reshape(shape).copy(), isVector=components > 1)
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    m = vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    ijk_to_world = numpy_matrix(m)
    parent = node.GetParentTransformNode()
    if parent is not None:  # the grid Slicer displays (and its other modules use) is the transformed one
        if not parent.IsTransformToWorldLinear():
            raise ImgSuiteError(f"volume node {node.GetName()!r} is under the non-linear transform "
                                f"{parent.GetName()!r}: harden the transform (Data module) first")
        to_world = vtkMatrix4x4()
        parent.GetMatrixTransformToWorld(to_world)
        ijk_to_world = numpy_matrix(to_world) @ ijk_to_world
    origin, spacing, direction = grid_from_ijk_to_ras(ijk_to_world)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def _image_data(array: np.ndarray, components: int):
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonDataModel import vtkImageData

    k, j, i = array.shape[:3]
    data = vtkImageData()
    data.SetDimensions(i, j, k)
    flat = np.ascontiguousarray(array).reshape(-1, components) if components > 1 else np.ascontiguousarray(array).ravel()
    scalars = numpy_support.numpy_to_vtk(flat, deep=True)
    scalars.SetName("ImageScalars")
    data.GetPointData().SetScalars(scalars)
    return data
