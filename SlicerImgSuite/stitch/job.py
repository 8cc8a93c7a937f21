"""``stitch_radiographs``: overlapping shots → one radiograph on the measurement plane, with its seams reported."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress
from . import BLENDS, METHODS, MODES
from .align import MAX_SEAM_ERROR, SeamFit, register_on_image, register_on_ruler
from .blend import Canvas, match_exposure
from .plane import Plane, footprint_box, measurement_plane, resample
from .shots import Shot, panel_view, read_shots

ORTHOGRAPHIC_SID = 1.0e6  # shots with no geometry: placed as if seen from very far (magnification 1)
OUTPUT_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".nii", ".nii.gz", ".png", ".dcm")


@dataclass
class StitchResult:
    """The stitched radiograph and how it was made."""

    image: np.ndarray  # (rows, columns) float32 on the measurement plane
    plane: Plane
    seams: list[dict] = field(default_factory=list)
    measurements: list[dict] = field(default_factory=list)
    geometry_known: bool = True
    photometric: str = "MONOCHROME2"  # MONOCHROME1: high values are transmitted x-rays (shown dark)

    @property
    def spacing(self) -> tuple[float, float]:
        return self.plane.spacing

    def summary(self) -> dict:
        return {
            "rows": int(self.image.shape[0]),
            "columns": int(self.image.shape[1]),
            "pixel_spacing_mm": list(self.plane.spacing),
            "plane_distance_mm": None if not self.geometry_known else round(self.plane.distance, 3),
            "magnification_at_plane": None if not self.geometry_known else round(self.plane.magnification, 5),
            "seams": self.seams,
            "measurements": self.measurements,
        }


def stitch_radiographs(
    inputs,
    output: str | os.PathLike | None = None,
    *,
    mode: str = "parallel",
    method: str = "image",
    plane_distance: float | None = None,
    spacing: float | None = None,
    pixel_size=None,
    sid: float | None = None,
    ruler_spacing: float = 10.0,
    max_shift: float = 20.0,
    max_seam_error: float = MAX_SEAM_ERROR,
    overlap: float = 0.25,
    match_exposures: bool = True,
    blend: str = "linear",
    measure=(),
    output_json: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
) -> StitchResult:
    """Stitch overlapping radiographs (top to bottom) into one image on the measurement plane.

    Parameters
    ----------
    inputs : list of paths or of :class:`~SlicerImgSuite.stitch.shots.Shot`
        The shots in acquisition order (image files with sidecars, DICOM DX/CR, or one projection set).
    output : path, optional
        ``.nrrd``/``.mha``/``.nii`` (spacing at the plane, for Slicer), ``.png`` (16-bit) or ``.dcm`` (DICOM DX).
    mode : ``parallel`` or ``angled``
        How the tube moved; used where the geometry is given as panel/source positions.
    method : ``geometry``, ``image`` or ``ruler``
        Place the overlaps from the geometry alone, refine them on the anatomy, or on a ruler's marks.
    plane_distance : float, optional
        Source to measurement plane (mm); default the files' DistanceSourceToPatient, else 90 % of the SID.
    spacing : float, optional
        Output pixel size at the plane (mm); default the panel pitch divided by the magnification.
    pixel_size, sid : optional
        Panel pitch ``(du, dv)`` and source-to-panel distance (mm) for files that do not give them.
    ruler_spacing : float
        Distance between the ruler's graduation marks (mm, in the measurement plane).
    max_shift : float
        How far (mm) the image or ruler may move a shot from where the geometry puts it.
    max_seam_error : float
        ``image`` method: refuse a seam whose expected error (2 SD, output pixels, estimated from the overlap's
        structure and noise, and from the search repeated on fresh noise for weak seams; reported per seam) is
        larger (default 0.5 px).
    overlap : float
        Shots with no geometry: the overlap (fraction of a panel) to start the search from.
    match_exposures : bool
        Scale each shot's intensities to match its neighbour's in their overlap.
    blend : ``linear`` or ``multiband``
        Join the overlaps with a linear feather, or band by band (fine detail switches over a few pixels,
        broad intensity over the whole overlap).
    measure : iterable of (x1, y1, x2, y2)
        Output pixel positions (column, row) whose distance in mm is reported.
    output_json : path, optional
        The seams, residuals, magnification and measurements as JSON (written with ``output``, all or nothing).
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    StitchResult
        The stitched image on the measurement plane, its plane, each seam's offset and the measurements.

    Examples
    --------
    >>> from SlicerImgSuite.stitch.phantom import render_shots
    >>> shots, truth = render_shots(mode="parallel", panel=(96, 120), pixel=2.0, shots=2, overlap_mm=60.0)
    >>> result = stitch_radiographs(shots, method="geometry")
    >>> round(result.plane.magnification, 2)
    1.2
    """
    _check_options(mode, method, blend, max_shift=max_shift, ruler_spacing=ruler_spacing, max_seam_error=max_seam_error)
    progress = progress or no_progress
    _check_outputs(output, output_json, inputs)
    shots = (
        inputs
        if inputs and isinstance(inputs[0], Shot)
        else read_shots(inputs, mode=mode, pixel_size=pixel_size, sid=sid)
    )
    if len(shots) < 2:
        raise ImgSuiteError("stitching needs at least two shots")
    known = all(s.view is not None for s in shots)
    if not known:
        if method == "geometry":
            raise ImgSuiteError("the shots carry no geometry (sidecar or DICOM positions): use --method image or ruler")
        _place_by_image(shots, overlap)
    if plane_distance is None and known:
        plane_distance = shots[0].sod
    if not known:
        plane_distance = ORTHOGRAPHIC_SID
    plane = measurement_plane([s.view for s in shots], plane_distance, spacing)
    limits = (ruler_spacing, max_shift, max_seam_error)
    result = _join(shots, plane, method, limits, match_exposures=match_exposures, progress=progress, blend=blend)
    result.geometry_known = known
    result.measurements = [measure_distance(result, *m) for m in measure]
    _write_outputs(result, output, output_json)
    progress(1.0, "stitched")
    return result


def _check_options(mode: str, method: str, blend: str, **limits: float) -> None:
    """The choices and the positive limits of :func:`stitch_radiographs`, named as the CLI names them."""
    for option, value, allowed in (("--mode", mode, MODES), ("--method", method, METHODS), ("--blend", blend, BLENDS)):
        if value not in allowed:
            raise ImgSuiteError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    for name, value in limits.items():
        if not (np.isfinite(value) and value > 0):
            raise ImgSuiteError(f"--{name.replace('_', '-')} must be positive, got {value}")


def _check_outputs(output, output_json, inputs) -> None:
    """A known output format, and no output over an input shot (the one guard the CLI also uses)."""
    from ..io.atomic import check_outputs_against_inputs

    if output is not None and not str(output).lower().endswith(OUTPUT_SUFFIXES):
        raise ImgSuiteError(f"unknown output format; use one of {', '.join(OUTPUT_SUFFIXES)}", output)
    paths = [str(p) for p in inputs if not isinstance(p, Shot)]
    check_outputs_against_inputs({"output": output, "output_json": output_json, "inputs": paths})


def _place_by_image(shots: list[Shot], overlap: float) -> None:
    """Shots with no geometry: find each shot's offset on the previous one over the whole image."""
    if not 0 < overlap < 1:
        raise ImgSuiteError(f"--overlap must be a fraction between 0 and 1, got {overlap}")
    du, dv = shots[0].pixel_size
    for i, shot in enumerate(shots[1:], 2):
        # without positions the shots are matched pixel for pixel: another pitch would only be refused later
        # as "too little structure", or matched at the wrong scale
        if not np.allclose(shot.pixel_size, (du, dv), rtol=1e-3):
            raise ImgSuiteError(
                f"pixels of {shot.pixel_size[0]:g} x {shot.pixel_size[1]:g} mm, shot 1 has {du:g} x {dv:g} mm: shots "
                "without geometry are matched pixel for pixel (resample them to one pitch, or give their positions)",
                shot.path or f"shot {i}",
            )
    position = 0.0
    lateral = 0.0
    for i, shot in enumerate(shots):
        rows, cols = shot.image.shape
        if i:
            prev = shots[i - 1]
            a, b = prev.image, shot.image
            fit = _search_raw(a, b, overlap, f"shots {i} and {i + 1}: ", dv)
            # b(x + s) = a(x): b's first row sits s rows above a's row 0 ... in a's frame b starts at -s
            position += -fit.shift[0] * dv + (rows - prev.image.shape[0]) / 2.0 * dv
            lateral += -fit.shift[1] * du + (cols - prev.image.shape[1]) / 2.0 * du
        shot.view = panel_view((cols, rows), (du, dv), ORTHOGRAPHIC_SID, position, position, lateral)


def _search_raw(a: np.ndarray, b: np.ndarray, overlap: float, where: str, spacing: float) -> SeamFit:
    """Register two whole shots: ``b`` is expected below ``a`` with about ``overlap`` of a panel in common."""
    rows = max(a.shape[0], b.shape[0])
    cols = max(a.shape[1], b.shape[1])
    pa, pb = np.zeros((rows, cols)), np.zeros((rows, cols))
    ma, mb = np.zeros((rows, cols), bool), np.zeros((rows, cols), bool)
    pa[: a.shape[0], : a.shape[1]], ma[: a.shape[0], : a.shape[1]] = a, True
    pb[: b.shape[0], : b.shape[1]], mb[: b.shape[0], : b.shape[1]] = b, True
    fit = register_on_image(
        pa, ma, pb, mb, (int(0.9 * rows), int(0.25 * cols)), where, min_overlap=0.5 * overlap, spacing=spacing
    )
    if fit.shift[0] > -0.05 * rows:
        raise ImgSuiteError(
            f"{where}the next shot does not continue downwards (best match {fit.shift[0]:.0f} rows): check the order"
        )
    return fit


def _join(shots, plane, method, limits, *, match_exposures, progress, blend="linear") -> StitchResult:
    canvas = Canvas(plane.shape, blend)
    seams = []
    prev = None  # (values, weights, box) of the shot placed last
    for i, shot in enumerate(shots):
        progress(i / len(shots), f"placing shot {i + 1} of {len(shots)}")
        offset = (0.0, 0.0)
        if prev is not None and method != "geometry":
            fit = _fit_seam(shot, plane, prev, method, limits, f"shots {i} and {i + 1}: ")
            offset = (-fit.shift[1] * plane.spacing[0], -fit.shift[0] * plane.spacing[1])
            seams.append(_seam_row(i, fit, offset))
        elif prev is not None:
            seams.append({"shots": [i, i + 1], "method": "geometry", "shift_mm": [0.0, 0.0]})
        box = footprint_box(shot.view, plane, offset)
        values, weights = resample(shot.image, shot.view, plane, box, offset)
        if prev is not None and match_exposures:
            gain, bias = match_exposure(*_common(prev, (values, weights, box)), f"shots {i} and {i + 1}: ")
            values = values * np.float32(gain) + np.float32(bias)
            seams[-1]["exposure_gain"] = round(gain, 6)
        canvas.add(values, weights, box)
        prev = (values, weights, box)
    image, _ = canvas.image()
    return StitchResult(image, plane, seams, photometric=shots[0].photometric)


def _seam_row(i: int, fit: SeamFit, offset) -> dict:
    return {
        "shots": [i, i + 1],
        "method": fit.method,
        "shift_mm": [round(-offset[0], 4), round(-offset[1], 4)],
        "shift_px": [round(fit.shift[1], 4), round(fit.shift[0], 4)],
        "ncc": round(fit.score, 4),
        "runner_up_ncc": round(fit.runner_up, 4),
        "overlap_rows": fit.overlap_px,
        **({"expected_error_px": round(2.0 * fit.precision, 4)} if fit.method == "image" else {}),
    }


def seam_text(seam: dict) -> str:
    """One seam of :meth:`StitchResult.summary` in words (the CLI's log and the Slicer module's result box).

    Parameters
    ----------
    seam : dict
        One entry of the summary's seams: ``shots``, ``method``, ``shift_mm``, optionally ``ncc`` and
        ``expected_error_px``.

    Returns
    -------
    str
        The seam in one line.

    Examples
    --------
    >>> seam_text({"shots": [1, 2], "method": "image", "shift_mm": [0.0, 3.3], "ncc": 0.99, "expected_error_px": 0.3})
    'seam 1-2 (image): moved [0.0, 3.3] mm, NCC 0.99, expected error 0.3 px (2 SD)'
    """
    extra = f", NCC {seam['ncc']}" if "ncc" in seam else ""
    extra += f", expected error {seam['expected_error_px']} px (2 SD)" if "expected_error_px" in seam else ""
    return f"seam {seam['shots'][0]}-{seam['shots'][1]} ({seam['method']}): moved {seam['shift_mm']} mm{extra}"


def _common(first, second):
    """Both shots' values and weights on the rows and columns they share."""
    (va, wa, ba), (vb, wb, bb) = first, second
    r0, r1 = max(ba[0], bb[0]), min(ba[1], bb[1])
    c0, c1 = max(ba[2], bb[2]), min(ba[3], bb[3])
    if r1 - r0 < 2 or c1 - c0 < 2:
        raise ImgSuiteError("two consecutive shots do not overlap on the measurement plane")
    sa = (slice(r0 - ba[0], r1 - ba[0]), slice(c0 - ba[2], c1 - ba[2]))
    sb = (slice(r0 - bb[0], r1 - bb[0]), slice(c0 - bb[2], c1 - bb[2]))
    return va[sa], wa[sa], vb[sb], wb[sb]


def _fit_seam(shot, plane, prev, method, limits, where) -> SeamFit:
    ruler_spacing, max_shift, max_seam_error = limits
    shift_px = (int(np.ceil(max_shift / plane.spacing[1])), int(np.ceil(max_shift / plane.spacing[0])))
    nominal, above = footprint_box(shot.view, plane), prev[2]
    box = (max(nominal[0], above[0]), min(nominal[1], above[1]), max(nominal[2], above[2]), min(nominal[3], above[3]))
    if box[1] - box[0] < 8 or box[3] - box[2] < 8:
        raise ImgSuiteError(f"{where}the shots do not overlap on the measurement plane")
    values, weights = resample(shot.image, shot.view, plane, box)  # only where the shot above is
    va, wa, vb, wb = _common(prev, (values, weights, box))
    ma, mb = wa > 0, wb > 0
    if ma.any(axis=1).sum() < 8:
        raise ImgSuiteError(f"{where}the overlap is too small to register (under 8 rows)")
    if method == "ruler":
        return register_on_ruler(va, ma, vb, mb, period_px=ruler_spacing / plane.spacing[1], coarse=(0.0, 0.0), where=where)
    return register_on_image(va, ma, vb, mb, shift_px, where, spacing=plane.spacing[1], max_error=max_seam_error)


def measure_distance(result: StitchResult, x1, y1, x2, y2) -> dict:
    """Distance in mm on the measurement plane between output pixels (x1, y1) and (x2, y2) (column, row).

    Examples
    --------
    >>> r = StitchResult(np.zeros((10, 10)), None)
    >>> r.plane = type("P", (), {"spacing": (0.5, 0.25)})()
    >>> measure_distance(r, 0, 0, 6, 8)["distance_mm"]
    3.6056
    """
    sx, sy = result.plane.spacing
    dist = float(np.hypot((x2 - x1) * sx, (y2 - y1) * sy))
    return {"from": [x1, y1], "to": [x2, y2], "distance_mm": round(dist, 4)}


def _write_outputs(result: StitchResult, output, output_json) -> None:
    from ..io.atomic import write_together
    from .outputs import write_stitched

    outputs = []
    if output is not None:
        outputs.append((Path(output), lambda tmp: write_stitched(result, tmp, Path(output).name), False))
    if output_json is not None:
        text = json.dumps(result.summary(), indent=1)
        outputs.append((Path(output_json), lambda tmp: Path(tmp).write_text(text), False))
    write_together(outputs)
