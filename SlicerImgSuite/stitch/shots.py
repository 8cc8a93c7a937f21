"""The shots of a panoramic acquisition: pixels, pixel pitch and, where known, the cone-beam view.

Coordinates are LPS millimetres, as in :mod:`SlicerImgSuite.tomo.geometry`. A standing or supine patient's
long axis is ``z`` (head +z); shots go top to bottom, so a panel's rows grow towards the feet (``v = -z``)
and its columns towards patient left (``u = +x``). The source is anterior (``-y``) of the panel.

Geometry comes from, in this order: a projection set of ``imgsuite drr`` (every view known); a JSON sidecar
next to a PNG/TIFF/DICOM file (``<stem>.json``); the DICOM tags DistanceSourceToDetector, ImagerPixelSpacing
(or PixelSpacing) and ImagePositionPatient/ImageOrientationPatient. Without a position a shot has no view and
can only be placed on the image (``--method image``).

Sidecar keys: ``pixel_size`` ``[du, dv]`` (mm at the panel), ``sid`` (source to panel, mm),
``panel_position`` (panel centre along the long axis, mm, growing towards the feet), optionally
``source_position`` (the tube focus along the long axis; the panel's own position in parallel mode, required
in angled mode unless every shot gives it), ``panel_lateral`` (mm), ``sod`` (source to the measurement plane),
or a full ``view`` (``source``, ``center``, ``u``, ``v``, ``image_center``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..tomo.geometry import Geometry

U_AXIS = (1.0, 0.0, 0.0)  # panel columns: towards patient left
V_AXIS = (0.0, 0.0, -1.0)  # panel rows: towards the feet
TO_PANEL = (0.0, 1.0, 0.0)  # from the source (anterior) to the panel
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


@dataclass
class Shot:
    """One exposure: ``image`` (rows, columns) float32 as acquired, its panel pitch and, if known, its view."""

    image: np.ndarray
    pixel_size: tuple[float, float]
    view: Geometry | None = None
    path: str = ""
    sod: float | None = None  # source to the plane the file says was measured (DistanceSourceToPatient)
    meta: dict = field(default_factory=dict)
    photometric: str = "MONOCHROME2"  # MONOCHROME1 for intensities (high = transmitted, shown dark)

    def __post_init__(self):
        self.image = np.asarray(self.image, np.float32)
        if self.image.ndim != 2 or min(self.image.shape) < 2:
            raise ImgSuiteError(f"a shot must be a 2-D image, got shape {self.image.shape}", self.path or None)
        if not np.all(np.isfinite(self.image)):
            raise ImgSuiteError("the image holds NaN or infinite pixels", self.path or None)
        if not (np.all(np.isfinite(self.pixel_size)) and min(self.pixel_size) > 0):
            raise ImgSuiteError(f"pixel size must be positive, got {self.pixel_size}", self.path or None)


def panel_view(
    dims: tuple[int, int],
    pixel_size: tuple[float, float],
    sid: float,
    panel_position: float,
    source_position: float,
    panel_lateral: float = 0.0,
) -> Geometry:
    """The view of a coronal panel centred ``panel_position`` mm down the long axis, its focus at
    ``source_position``, ``sid`` mm in front of the panel plane.

    Examples
    --------
    >>> g = panel_view((4, 6), (1.0, 1.0), 1800.0, 100.0, 50.0)
    >>> g.centers[0].tolist(), g.sources[0].tolist()
    ([0.0, 0.0, -100.0], [0.0, -1800.0, -50.0])
    """
    if not (np.isfinite(sid) and sid > 0):
        raise ImgSuiteError(f"source-to-panel distance must be positive, got {sid}")
    center = np.array([panel_lateral, 0.0, -panel_position])
    source = np.array([panel_lateral, -sid, -source_position])
    return Geometry(source, center, U_AXIS, V_AXIS, pixel_size, dims)


def read_shots(paths, *, mode: str = "parallel", pixel_size=None, sid=None) -> list[Shot]:
    """Read the shots named by ``paths`` (top to bottom): image files, DICOM files, or one projection set.

    ``pixel_size`` and ``sid`` fill in what neither a sidecar nor the DICOM header gives.
    """
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and _is_projection_set(paths[0]):
        return _from_projection_set(paths[0])
    shots = []
    for p in paths:
        if not p.exists():
            raise ImgSuiteError("no such file", p)
        meta = _sidecar(p)
        shots.append(_read_one(p, meta, pixel_size, sid))
    if len(shots) < 2:
        raise ImgSuiteError("stitching needs at least two shots")
    _place_from_sidecars(shots, mode)
    return shots


def _is_projection_set(path: Path) -> bool:
    from ..tomo.projset import is_stack

    return path.is_dir() or (path.suffix == ".json" and path.exists()) or is_stack(path)


def _from_projection_set(path: Path) -> list[Shot]:
    from ..tomo.projset import read_projections

    ps = read_projections(path)
    if len(ps.geometry) < 2:
        raise ImgSuiteError("stitching needs at least two views", path)
    return [
        Shot(
            np.exp(-ps.images[i]),
            ps.geometry.pixel_size,
            ps.geometry.subset([i]),
            f"{path}[{i}]",
            photometric="MONOCHROME1",
        )
        for i in range(len(ps.geometry))
    ]


def _sidecar(path: Path) -> dict:
    side = path.with_suffix(".json")
    if side == path or not side.exists():
        return {}
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise ImgSuiteError(f"not a JSON geometry sidecar ({exc})", side) from None
    if not isinstance(meta, dict):
        raise ImgSuiteError("a geometry sidecar must be a JSON object", side)
    meta["_path"] = os.fspath(side)
    return meta


def _read_one(path: Path, meta: dict, pixel_size, sid) -> Shot:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image, header = _read_picture(path), {}
    else:
        image, header = _read_dicom(path)
    pixel = meta.get("pixel_size", header.get("pixel_size", pixel_size))
    if pixel is None:
        raise ImgSuiteError("no pixel size: give it in a sidecar JSON or with --pixel-size", path)
    pixel = _numbers(pixel, 2, "pixel_size", meta.get("_path", path))
    merged = {**header, **meta}
    if sid is not None and "sid" not in merged:
        merged["sid"] = sid
    return Shot(image, pixel, None, os.fspath(path), merged.get("sod"), merged)


def _numbers(value, count: int, key: str, where) -> tuple:
    try:
        values = tuple(float(v) for v in (value if isinstance(value, list | tuple) else [value] * count))
    except (TypeError, ValueError):
        raise ImgSuiteError(f"{key} must be {count} numbers, got {value!r}", where) from None
    if len(values) != count or not all(np.isfinite(values)):
        raise ImgSuiteError(f"{key} must be {count} finite numbers, got {value!r}", where)
    return values


def _read_picture(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            image = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                image = np.asarray(im.convert("I;16") if im.mode.startswith("I;16") else im)
    except Exception as exc:  # noqa: BLE001 (any decoder failure is a bad file)
        raise ImgSuiteError(f"cannot read the image ({type(exc).__name__}: {exc})", path) from None
    if image.ndim == 3:  # RGB(A) export of a grey radiograph
        image = image[..., :3].mean(axis=-1)
    return np.asarray(image, np.float32)


def _read_dicom(path: Path) -> tuple[np.ndarray, dict]:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        image = ds.pixel_array.astype(np.float32)
    except Exception as exc:  # noqa: BLE001 (pydicom raises many kinds on damaged files)
        raise ImgSuiteError(f"not a readable DICOM radiograph ({type(exc).__name__}: {exc})", path) from None
    if image.ndim != 2:
        raise ImgSuiteError(f"a radiograph must be one 2-D frame, got shape {image.shape}", path)
    image = image * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        image = image.max() - image  # as MONOCHROME2: high values shown bright
    header: dict = {}
    spacing = getattr(ds, "ImagerPixelSpacing", None) or getattr(ds, "PixelSpacing", None)
    if spacing is not None:  # DICOM gives (row pitch, column pitch); we keep (du, dv)
        header["pixel_size"] = [float(spacing[1]), float(spacing[0])]
    for key, tag in (("sid", "DistanceSourceToDetector"), ("sod", "DistanceSourceToPatient")):
        if getattr(ds, tag, None) not in (None, ""):
            header[key] = float(getattr(ds, tag))
    image, first = _upright(ds, image, path)
    if first is not None:
        # position of the first pixel; the panel's centre follows from the pitch and the size
        header["first_pixel_z"], header["first_pixel_x"] = float(first[2]), float(first[0])
    return image, header


def _upright(ds, image: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The shot flipped to rows towards the feet (and an AP/PA shot's columns towards patient left), and its first
    pixel's position.

    A shot stored upside down or mirrored (ImageOrientationPatient) was placed as if it were upright: a seam
    off by the panel's height, or "no overlap". Columns not along head-feet (rotated by 90 degrees, oblique) are
    refused; a lateral shot (rows front-back) is kept as stored across.
    """
    ipp = getattr(ds, "ImagePositionPatient", None)
    first = np.array([float(x) for x in ipp]) if ipp is not None and len(ipp) == 3 else None
    iop = getattr(ds, "ImageOrientationPatient", None)
    if iop is None or len(iop) != 6:
        return image, first
    row, col = np.array([float(x) for x in iop[:3]]), np.array([float(x) for x in iop[3:]])
    if abs(col[2]) < 0.99 or max(abs(row[0]), abs(row[1])) < 0.99:
        raise ImgSuiteError(
            f"ImageOrientationPatient {[round(float(x), 3) for x in iop]}: stitching needs columns along head-feet "
            "and rows across (left-right, or front-back for a lateral view; rotate the shot first)",
            path,
        )
    spacing = getattr(ds, "ImagerPixelSpacing", None) or getattr(ds, "PixelSpacing", None)
    dv, du = (float(spacing[0]), float(spacing[1])) if spacing is not None else (None, None)
    if row[0] <= -0.99:  # an AP/PA shot's columns run to the patient's right
        image = image[:, ::-1]
        first = None if first is None or du is None else first + (image.shape[1] - 1) * du * row
    if col[2] > 0:  # rows run to the head
        image = image[::-1]
        first = None if first is None or dv is None else first + (image.shape[0] - 1) * dv * col
    return np.ascontiguousarray(image), first


def _place_from_sidecars(shots: list[Shot], mode: str) -> None:
    """Give each shot its view where its metadata allow; all shots or none."""
    known = [_checked_view(s, mode) for s in shots]
    if all(v is not None for v in known):
        for shot, view in zip(shots, known):
            shot.view = view


def _checked_view(shot: Shot, mode: str) -> Geometry | None:
    """:func:`_view_from_meta`, with any bad value reported against the file that gave it."""
    where = shot.meta.get("_path") or shot.path
    try:
        return _view_from_meta(shot, mode)
    except (TypeError, ValueError) as exc:
        raise ImgSuiteError(f"bad geometry value ({exc})", where) from None
    except ImgSuiteError as exc:
        if exc.path:
            raise
        raise ImgSuiteError(exc.problem, where) from None


def _view_from_meta(shot: Shot, mode: str) -> Geometry | None:
    m = shot.meta
    rows, cols = shot.image.shape
    if "view" in m:
        v = m["view"]
        try:
            return Geometry(
                v["source"], v["center"], v["u"], v["v"],
                pixel_size=shot.pixel_size, dims=(cols, rows), image_center=v.get("image_center"),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ImgSuiteError(f"view in the sidecar is incomplete ({exc})", shot.path) from None
    if "sid" not in m:
        return None
    if "panel_position" in m:
        panel = float(m["panel_position"])
    elif "first_pixel_z" in m:
        panel = -m["first_pixel_z"] + (rows - 1) / 2.0 * shot.pixel_size[1]
    else:
        return None
    if "panel_lateral" in m:
        lateral = float(m["panel_lateral"])
    else:
        lateral = m.get("first_pixel_x", -(cols - 1) / 2.0 * shot.pixel_size[0]) + (cols - 1) / 2.0 * shot.pixel_size[0]
    if "source_position" in m:
        source = float(m["source_position"])
    elif mode == "parallel":
        source = panel
    else:
        raise ImgSuiteError("angled mode needs the tube focus position (source_position) of each shot", shot.path)
    return panel_view((cols, rows), shot.pixel_size, float(m["sid"]), panel, source, lateral)
