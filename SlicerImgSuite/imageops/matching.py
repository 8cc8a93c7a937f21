"""Intensity matching of one image to another (plastimatch ``adjust --hist-match|--linear-match|--local-match``).

The use: bring a cone-beam CT's numbers onto the planning CT's scale before dose calculation on the CBCT.
Histogram and linear matching do not need the two images on one grid; a mask, when given, must be on its own
image's grid. Local matching resamples the reference (and masks) onto the input's grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..geometry import require_same_grid, same_grid
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


def _patch_sums(values: np.ndarray, patch: Sequence[int]) -> np.ndarray:
    """Sums of ``values`` (z, y, x) over patches of ``patch`` (x, y, z) voxels; the last patch on an axis may be short."""
    out = values
    for axis in sorted(range(3), key=lambda a: -patch[2 - a]):  # the largest reduction first: less to add later
        out = np.add.reduceat(out, np.arange(0, values.shape[axis], patch[2 - axis]), axis=axis)
    return out


def _per_voxel(patch_values: np.ndarray, patch: Sequence[int], shape) -> np.ndarray:
    """Each voxel gets the value of its patch (the inverse of :func:`_patch_sums`' grouping)."""
    out = patch_values
    for axis, p in enumerate(patch[::-1]):
        out = np.repeat(out, p, axis=axis)
    return out[: shape[0], : shape[1], : shape[2]]


def _patch_mean_spread(values, mask, patch):
    """Per patch: mean and mean absolute deviation of the masked voxels (0 and 0 where a patch has none).

    ``mask`` None: every voxel counts."""
    if mask is None:
        count = _count(values.shape, patch).astype(np.float64)
        masked = values
    else:
        count = _patch_sums(mask.astype(np.float64), patch)
        masked = np.where(mask, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, _patch_sums(masked, patch) / count, 0.0)
        deviation = np.abs(values - _per_voxel(mean, patch, values.shape))
        if mask is not None:
            deviation[~mask] = 0.0
        spread = np.where(count > 0, _patch_sums(deviation, patch) / count, 0.0)
    return mean, spread


def _count(shape, patch) -> np.ndarray:
    """Voxels per patch without a mask: the product of the patch lengths along each axis (short at the end)."""
    lengths = [np.diff(np.append(np.arange(0, n, p), n)) for n, p in zip(shape, patch[::-1])]
    return lengths[0][:, None, None] * lengths[1][None, :, None] * lengths[2][None, None, :]


def local_match(
    image: sitk.Image,
    reference: sitk.Image,
    patch_size: Sequence[int],
    *,
    image_mask: sitk.Image | None = None,
    reference_mask: sitk.Image | None = None,
    blending: bool = True,
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """Patch-wise shift and scale of ``image`` towards ``reference`` (plastimatch ``adjust --local-match``).

    The image is cut into patches of ``patch_size`` voxels (x, y, z). In each patch the scale is the ratio of the
    reference's to the input's mean absolute deviation from the patch mean (plastimatch's measure of spread; 1
    where either is 0) and the shift makes the patch means equal. The per-patch values, placed at the patch
    centre voxels (the lower of the two middle voxels for an even size, as plastimatch), are interpolated
    trilinearly to every voxel (nearest patch with ``blending=False``) and applied:
    ``out = v * scale + shift``. Masks (each on its own image's grid) limit the statistics; outside the input mask
    the input is left as it is. A reference on another grid is resampled (linear) onto the input's first.

    Returns
    -------
    (SimpleITK.Image, SimpleITK.Image, SimpleITK.Image)
        The matched image, the per-voxel shift and the per-voxel scale, float32 on the input's grid.

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.tile(np.arange(8, dtype=np.float32), (4, 4, 1)))
    >>> ref = sitk.GetImageFromArray(np.tile(np.arange(8, dtype=np.float32) * 2 + 5, (4, 4, 1)))
    >>> out, shift, scale = local_match(img, ref, (8, 4, 4))
    >>> sitk.GetArrayFromImage(out)[0, 0].tolist()
    [5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0]
    """
    n = image.GetDimension()
    patch = [int(p) for p in patch_size]
    if n != 3 or len(patch) != 3 or min(patch) < 1:
        raise ImgSuiteError(f"--local-match needs a 3D image and a patch size of 3 positive integers, got {patch}")
    source = sitk.Cast(image, sitk.sitkFloat32)
    if reference.GetDimension() != 3:
        raise ImgSuiteError("--local-match: the reference must be a 3D image")
    if not same_grid(reference, source):
        reference = sitk.Resample(reference, source, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    masks = [
        None
        if mask is None
        else sitk.GetArrayFromImage(sitk.Resample(mask, source, sitk.Transform(), sitk.sitkNearestNeighbor)) != 0
        for mask in (image_mask, reference_mask)
    ]
    v = sitk.GetArrayFromImage(source).astype(np.float64)
    mean_in, spread_in = _patch_mean_spread(v, masks[0], patch)
    mean_ref, spread_ref = _patch_mean_spread(sitk.GetArrayFromImage(reference).astype(np.float64), masks[1], patch)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where((spread_in == 0) | (spread_ref == 0), 1.0, spread_ref / spread_in).astype(np.float32)
    shift = (mean_ref - mean_in * scale.astype(np.float64)).astype(np.float32)
    fields = []
    for values, outside in ((shift, 0.0), (scale, 1.0)):
        field = _blend(values, source, patch, blending)
        if masks[0] is not None:
            field[~masks[0]] = outside
        fields.append(to_image(field.astype(np.float32, copy=False), source))
    shift_v, scale_v = (sitk.GetArrayViewFromImage(f) for f in fields)
    out = to_image(sitk.GetArrayViewFromImage(source) * scale_v + shift_v, source)
    return out, fields[0], fields[1]


def _blend(values: np.ndarray, source: sitk.Image, patch, blending: bool) -> np.ndarray:
    """Patch values (z, y, x) to every voxel of ``source``: each value sits on its patch's centre voxel."""
    centre = np.array([(p - 1) // 2 for p in patch], float) * np.array(source.GetSpacing())
    direction = np.array(source.GetDirection()).reshape(3, 3)
    field = sitk.GetImageFromArray(values)
    field.SetOrigin((np.array(source.GetOrigin()) + direction @ centre).tolist())
    field.SetDirection(source.GetDirection())
    field.SetSpacing([s * p for s, p in zip(source.GetSpacing(), patch)])
    interpolator = sitk.sitkLinear if blending else sitk.sitkNearestNeighbor
    # voxels past the last centre by half a patch or more (when the size is a multiple of the patch) keep the
    # edge value; plastimatch gives them scale 0 and shift 0 there, so their output is 0
    out = sitk.Resample(
        field,
        source,
        transform=sitk.Transform(),
        interpolator=interpolator,
        defaultPixelValue=0.0,
        outputPixelType=sitk.sitkFloat32,
        useNearestNeighborExtrapolator=True,
    )
    return sitk.GetArrayFromImage(out)
