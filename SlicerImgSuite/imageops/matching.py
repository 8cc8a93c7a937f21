"""Intensity matching of one image to another (plastimatch ``adjust --hist-match`` / ``--linear-match``).

The use: bring a cone-beam CT's numbers onto the planning CT's scale before dose calculation on the CBCT.
Neither method needs the two images on one grid; a mask, when given, must be on its own image's grid.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import require_same_grid
from ._util import array_of, to_image


def histogram_match(
    image: sitk.Image,
    reference: sitk.Image,
    *,
    levels: int = 1024,
    points: int = 10,
    threshold: bool = False,
) -> sitk.Image:
    """Map ``image``'s intensities so that its histogram matches ``reference``'s; float32 output.

    ITK's histogram matching (as plastimatch): ``points`` quantiles of both histograms of ``levels`` bins, plus
    the minimum and maximum, are matched and intensities between them mapped linearly. ``threshold`` leaves out
    voxels below each image's mean (a simple way to ignore the air around the patient).

    Parameters
    ----------
    image, reference : SimpleITK.Image
        Scalar images; their grids may differ.
    levels : int
        Histogram bins (plastimatch ``--hist-levels``; its help says 1024 by default).
    points : int
        Match points (``--hist-points``, 10).
    threshold : bool
        ``--hist-threshold``.

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.linspace(0, 1, 1000, dtype=np.float32).reshape(10, 10, 10))
    >>> ref = sitk.GetImageFromArray(np.linspace(-1000, 1000, 1000, dtype=np.float32).reshape(10, 10, 10))
    >>> v = sitk.GetArrayFromImage(histogram_match(img, ref, levels=256, points=8))
    >>> bool(abs(v.min() + 1000) < 1 and abs(v.max() - 1000) < 1)
    True
    """
    if levels < 2 or points < 1:
        raise ImgSuiteError(f"--hist-levels must be at least 2 and --hist-points at least 1, got {levels}, {points}")
    array_of(image, "input"), array_of(reference, "reference")  # scalar images only
    f = sitk.HistogramMatchingImageFilter()
    f.SetNumberOfHistogramLevels(int(levels))
    f.SetNumberOfMatchPoints(int(points))
    f.SetThresholdAtMeanIntensity(bool(threshold))
    source, ref = sitk.Cast(image, sitk.sitkFloat32), sitk.Cast(reference, sitk.sitkFloat32)
    if image.GetDimension() != reference.GetDimension():
        raise ImgSuiteError(f"the input is {image.GetDimension()}D and the reference {reference.GetDimension()}D")
    return f.Execute(source, ref)


def _mean_std(image: sitk.Image, mask: sitk.Image | None, what: str, what_mask: str) -> tuple[float, float]:
    values = array_of(image, what).astype(np.float64)
    if mask is not None:
        require_same_grid(image, mask, what, what_mask)
        values = values[array_of(mask, what_mask) != 0]
        if not values.size:
            raise ImgSuiteError("the mask is empty", what_mask)
    return float(values.mean()), float(values.std())


def linear_match_coefficients(
    image: sitk.Image,
    reference: sitk.Image,
    *,
    image_mask: sitk.Image | None = None,
    reference_mask: sitk.Image | None = None,
    names: tuple[str, str, str, str] = ("input", "reference", "input mask", "reference mask"),
) -> tuple[float, float]:
    """``(shift, scale)`` that give ``image * scale + shift`` the reference's mean and standard deviation.

    Each mask, when given, limits the statistics of its own image (plastimatch ``--input-mask`` and
    ``--ref-mask``); the standard deviation is the population one (divide by n), as plastimatch. ``names``
    (input, reference and their masks: file names) label the errors.

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.array([[0.0, 1.0, 2.0]]))
    >>> ref = sitk.GetImageFromArray(np.array([[10.0, 30.0, 50.0]]))
    >>> linear_match_coefficients(img, ref)
    (10.0, 20.0)
    """
    mean_in, std_in = _mean_std(image, image_mask, names[0], names[2])
    mean_ref, std_ref = _mean_std(reference, reference_mask, names[1], names[3])
    if std_in == 0:
        raise ImgSuiteError("--linear-match: the input is constant (inside its mask); no scale can be found", names[0])
    scale = std_ref / std_in
    return mean_ref - mean_in * scale, scale


def linear_match(
    image: sitk.Image,
    reference: sitk.Image,
    *,
    image_mask: sitk.Image | None = None,
    reference_mask: sitk.Image | None = None,
    names: tuple[str, str, str, str] = ("input", "reference", "input mask", "reference mask"),
) -> sitk.Image:
    """Shift and scale ``image`` to the reference's mean and standard deviation (plastimatch ``--linear-match``).

    See :func:`linear_match_coefficients`; float32 output.

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.array([[0.0, 1.0, 2.0]]))
    >>> ref = sitk.GetImageFromArray(np.array([[10.0, 30.0, 50.0]]))
    >>> sitk.GetArrayFromImage(linear_match(img, ref)).tolist()
    [[10.0, 30.0, 50.0]]
    """
    shift, scale = linear_match_coefficients(
        image, reference, image_mask=image_mask, reference_mask=reference_mask, names=names
    )
    values = array_of(image, names[0]).astype(np.float32)
    return to_image(values * np.float32(scale) + np.float32(shift), image)
