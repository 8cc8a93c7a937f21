"""Water-equivalent depth (``imgsuite wed``): for each CT voxel, the proton-stopping-power-weighted path length
from where the beam enters the CT to the voxel centre, along the ray from the source.

Relative stopping power from HU is plastimatch's (Schneider et al., Phys. Med. Biol. 41 (1996) 111): 0.00106
at -1000 HU and below, linear to 1 at 0 HU, ``1 + 0.001174 HU`` up to 41.46 HU, ``1.0279 + 0.0005011 HU`` above.
Each voxel is a box of constant stopping power and every voxel's ray is walked voxel by voxel (exact path
lengths, compiled with numba), so ``ray_step`` (plastimatch's sampling step) is accepted and not needed.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..io.images import require_hu, warn_if_no_air
from ..progress import ProgressCallback, no_progress


def stopping_power_ratio(hu: np.ndarray) -> np.ndarray:
    """Proton stopping power relative to water from HU (plastimatch's Schneider curve).

    Examples
    --------
    >>> stopping_power_ratio(np.array([-2000.0, -1000.0, 0.0, 1000.0])).round(5).tolist()
    [0.00106, 0.00106, 1.0, 1.529]
    """
    hu = np.asarray(hu, np.float64)
    return np.select(
        [hu <= -1000, hu <= 0, hu <= 41.46],
        [0.00106, (1 - 0.00106) / 1000 * hu + 1, 0.001174 * hu + 1],
        0.0005011 * hu + 1.0279,
    )


def water_equivalent_depth(
    ct: sitk.Image,
    source,
    *,
    ray_step: float = 1.0,
    progress: ProgressCallback | None = None,
) -> sitk.Image:
    """Water-equivalent depth (mm) of every voxel centre of ``ct`` for a beam from the point ``source`` (LPS mm).

    The depth counts from where the ray enters the CT's volume (its outer voxel faces); voxels the ray reaches
    without crossing the CT (the source inside the CT) count from the source.

    Parameters
    ----------
    ct : SimpleITK.Image
        3D CT in HU (plastimatch's HU to stopping-power table).
    source : (x, y, z)
        The beam's source point, LPS mm.
    ray_step : float
        Sampling step along each ray, mm.
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    SimpleITK.Image
        Water-equivalent depth in mm (float32) on the CT's grid.

    Examples
    --------
    >>> water = sitk.Image([10, 1, 1], sitk.sitkInt16)  # 0 HU, 1 mm voxels along x, centres 0..9
    >>> d = water_equivalent_depth(water, (-1000.0, 0.0, 0.0))
    >>> np.round(sitk.GetArrayFromImage(d)[0, 0, :3], 3).tolist()
    [0.5, 1.5, 2.5]
    """
    progress = progress or no_progress
    if ct.GetDimension() != 3 or ct.GetNumberOfComponentsPerPixel() != 1:
        raise ImgSuiteError("wed needs a 3D CT")
    require_hu(ct, "wed")  # stopping powers come from HU: a dose grid would give depths of nothing
    warn_if_no_air(ct, "wed")  # an MR's or an unrescaled CT's air would count as water
    if not (np.isfinite(ray_step) and ray_step > 0):
        raise ImgSuiteError(f"--ray-step must be a positive number of mm, got {ray_step}")
    source = np.asarray(source, np.float64)
    if source.shape != (3,) or not np.all(np.isfinite(source)):
        raise ImgSuiteError(f"the beam source needs three finite coordinates, got {source.tolist()}")
    from .wed_kernel import depths

    rsp = np.ascontiguousarray(stopping_power_ratio(sitk.GetArrayViewFromImage(ct)))
    scaled = np.array(ct.GetDirection()).reshape(3, 3) * np.array(ct.GetSpacing())
    s_index = np.linalg.solve(scaled, source - np.array(ct.GetOrigin()))  # continuous index (x, y, z)
    out = np.empty(rsp.shape, np.float64)
    progress(0.0, "water-equivalent depth")
    depths(rsp, s_index, np.ascontiguousarray(scaled), out)
    progress(1.0, "water-equivalent depth")
    image = sitk.GetImageFromArray(out.astype(np.float32))
    image.CopyInformation(ct)
    return image


def read_wed_command_file(path) -> dict:
    """The keys ``imgsuite wed`` takes from a plastimatch wed command file: ``ct`` (relative to the file),
    ``pos`` and ``ray_step``; ``ignored`` lists the [OUTPUT SETTINGS] keys (plastimatch's beam's-eye volumes).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "wed.cfg"
    >>> _ = f.write_text("[INPUT SETTINGS]\\nct=ct.mha\\n[OUTPUT SETTINGS]\\nproj_wed=p.mha\\n[BEAM]\\npos=-900 0 0\\n")
    >>> s = read_wed_command_file(f)
    >>> s["pos"], s["ignored"], s["ct"].endswith("ct.mha")
    ([-900.0, 0.0, 0.0], ['proj_wed'], True)
    """
    from pathlib import Path

    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImgSuiteError(f"cannot read the wed command file ({exc})", path) from None
    section, settings, ignored = "", {}, []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]").strip().upper()
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        if section == "INPUT SETTINGS" and key in ("ct", "patient"):
            settings["ct"] = str(path.parent / value) if not Path(value).is_absolute() else value
        elif section == "OUTPUT SETTINGS" and value:
            ignored.append(key)
        elif section == "BEAM" and key in ("pos", "ray_step"):
            try:
                numbers = [float(v) for v in value.split()]
            except ValueError:
                numbers = []
            if len(numbers) != (3 if key == "pos" else 1):
                raise ImgSuiteError(
                    f"line {number}: [BEAM] {key} = {value!r} is not {'x y z' if key == 'pos' else 'a number'}", path
                )
            settings[key] = numbers if key == "pos" else numbers[0]
    settings["ignored"] = ignored
    return settings
