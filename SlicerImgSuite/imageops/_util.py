"""Small helpers shared by the image tools: pixel types, arrays back to images."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ..io.images import cast_values


def to_image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    """A SimpleITK image from a (z, y, x) array with the geometry of ``like``."""
    image = sitk.GetImageFromArray(array, isVector=False)
    image.CopyInformation(like)
    return image


def array_of(image: sitk.Image, what: str = "image") -> np.ndarray:
    """The voxels of a scalar image as a (z, y, x) numpy array (a copy)."""
    return np.array(array_view_of(image, what))


def array_view_of(image: sitk.Image, what: str = "image") -> np.ndarray:
    """The voxels of a scalar image as a read-only (z, y, x) numpy view (no copy; keep ``image`` alive)."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError(f"{what} has {image.GetNumberOfComponentsPerPixel()} components; a scalar image is needed")
    return sitk.GetArrayViewFromImage(image)


def cast_like(values: np.ndarray, dtype) -> np.ndarray:
    """Cast to ``dtype`` the way plastimatch/ITK does (one rule with ``--output-type``: see ``cast_values``)."""
    return cast_values(values, dtype)


def mask_array(mask: sitk.Image, image: sitk.Image | None = None, what_mask: str = "mask", what: str = "image"):
    """A boolean array of a mask's non-zero voxels, after checking it shares ``image``'s grid."""
    if image is not None:
        require_same_grid(image, mask, what, what_mask)
    return array_of(mask, what_mask) != 0


def run_filter(image_filter, *inputs, progress=None, message: str = ""):
    """Execute a SimpleITK filter object, forwarding its progress to ``progress(fraction, message)``.

    A callback that raises :class:`~SlicerImgSuite.progress.Cancelled` aborts the filter cleanly.
    """
    if progress is None:
        return image_filter.Execute(*inputs)
    from ..progress import Cancelled

    cancelled = []

    def report():
        try:
            progress(image_filter.GetProgress(), message)
        except Cancelled:
            cancelled.append(True)
            image_filter.Abort()

    image_filter.AddCommand(sitk.sitkProgressEvent, report)
    try:
        out = image_filter.Execute(*inputs)
    except RuntimeError:
        if cancelled:
            raise Cancelled() from None
        raise
    if cancelled:
        raise Cancelled()
    progress(1.0, message)
    return out
