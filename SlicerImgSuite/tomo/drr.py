"""Digitally reconstructed radiographs (DRRs) from a CT, in plastimatch ``drr``'s units.

plastimatch maps HU to attenuation as ``0.022 (1 + HU/1000)`` per mm (water at about 50 keV; zero at
or below -800 HU) and writes a tenth of the line integral (lengths counted in cm). We do the same so
DRRs and reconstructions are interchangeable with plastimatch's.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError, check_number
from ..io.images import require_hu, warn_if_no_air
from ..progress import ProgressCallback
from .geometry import Geometry
from .project import forward_project
from .projset import ProjectionSet

MU_WATER = 0.022  # per mm, plastimatch's constant
AIR_HU = -800.0  # plastimatch sets everything at or below this to zero attenuation
DRR_UNIT = 0.1  # plastimatch's output unit: line integrals with lengths in cm


def hu_to_attenuation(hu: np.ndarray) -> np.ndarray:
    """plastimatch's HU to attenuation (per mm) conversion.

    Examples
    --------
    >>> [round(float(v), 4) for v in hu_to_attenuation(np.array([-1000.0, 0.0, 1000.0]))]
    [0.0, 0.022, 0.044]
    """
    hu = np.asarray(hu)
    if hu.dtype in (np.int16, np.uint16):
        return _table(hu.dtype)[hu.view(np.uint16)]
    out = np.asarray(hu, np.float32) * np.float32(MU_WATER / 1000.0)
    out += np.float32(MU_WATER)
    out[hu <= AIR_HU] = 0.0
    return out


def _table(dtype) -> np.ndarray:
    """:func:`hu_to_attenuation` of every 16-bit value, indexed by its bits (65536 float32)."""
    hu = np.arange(65536, dtype=np.int64).astype(dtype).astype(np.float32)
    return np.where(hu <= AIR_HU, 0.0, MU_WATER * (1.0 + hu / 1000.0)).astype(np.float32)


def drr(
    ct: sitk.Image,
    geometry: Geometry,
    *,
    hu_conversion: str = "preprocess",
    exponential: bool = False,
    intensity_scale: float = 1.0,
    progress: ProgressCallback | None = None,
) -> ProjectionSet:
    """Project ``ct`` (HU) through every view of ``geometry``.

    Parameters
    ----------
    ct : SimpleITK.Image
        3D CT in HU (LPS). With HU conversion, a dose or a non-CT modality is refused and values with none
        below 0 (no air: an MR, a CT stored without its rescale) warn.
    geometry : Geometry
        The views (sources, panels) to project onto.
    hu_conversion : ``preprocess``/``inline`` (HU to attenuation, same result) or ``none`` (integrate
        the voxel values as they are).
    exponential : write ``exp(-integral)`` (a radiograph) instead of the integral.
    intensity_scale : multiply the output by this factor (plastimatch ``-s``, ``--intensity-scale``).
    progress : callable, optional
        ``(fraction, message)`` per view.

    Returns
    -------
    ProjectionSet
        One line-integral image (or radiograph) per view, with ``geometry``.

    Examples
    --------
    >>> from SlicerImgSuite.geometry import grid_image
    >>> from SlicerImgSuite.tomo.geometry import circular
    >>> ct = sitk.Image([20, 20, 20], sitk.sitkInt16)  # 20 mm of water
    >>> ct.SetOrigin((-9.5, -9.5, -9.5))
    >>> g = circular(1, sad=1e5, sid=1e5 + 1, dims=(3, 3), pixel_size=(1, 1))
    >>> round(float(drr(ct, g).images[0, 1, 1]), 3)
    0.044
    """
    if ct.GetDimension() != 3:
        raise ImgSuiteError(f"a DRR needs a 3-D CT, got a {ct.GetDimension()}-D image")
    if hu_conversion not in ("preprocess", "inline", "none"):
        raise ImgSuiteError(f"unknown HU conversion {hu_conversion!r}; use preprocess, inline or none")
    check_number(intensity_scale, "--intensity-scale")
    values = sitk.GetArrayViewFromImage(ct)
    if hu_conversion != "none":
        require_hu(ct, "a DRR")  # a dose or an MR read as HU gives a picture of nothing real
        warn_if_no_air(ct, "a DRR", "Values that are already attenuation: --hu-conversion none")
    if hu_conversion != "none" and values.dtype in (np.int16, np.uint16):
        # 16-bit CT: HU to attenuation inside the projector, no float copy of the CT
        images = forward_project(values, ct, geometry, progress, table=_table(values.dtype))
    else:
        values = hu_to_attenuation(values) if hu_conversion != "none" else values
        images = forward_project(values, ct, geometry, progress)
    images *= np.float32(DRR_UNIT)
    if exponential:
        images = np.exp(-images)
    if intensity_scale != 1.0:
        images *= np.float32(intensity_scale)
    return ProjectionSet(images.astype(np.float32), geometry)


def autoscale(images: np.ndarray, low: float = 0.0, high: float = 255.0) -> np.ndarray:
    """Map each image's min..max linearly onto ``low..high`` in place (``plastimatch drr --autoscale``);
    a flat image becomes ``low``.

    plastimatch 1.9.4 also subtracts the image minimum from every pixel (its offset is ``low - min``
    added to ``slope (v - min)``); we do not, so the output spans ``low..high`` exactly. The two agree
    whenever some ray misses the CT (minimum 0).

    Examples
    --------
    >>> autoscale(np.array([[[1.0, 2.0], [3.0, 5.0]]], np.float32)).tolist()
    [[[0.0, 63.75], [127.5, 255.0]]]
    """
    for image in images:
        lo, hi = float(image.min()), float(image.max())
        slope = (high - low) / (hi - lo) if hi - lo > 1e-6 else 0.0
        image -= np.float32(lo)
        image *= np.float32(slope)
        image += np.float32(low)
    return images
