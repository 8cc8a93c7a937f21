"""Varian OBI ``.hnd`` projections: the header's geometry and the lossless "HND" pixel compression.

Layout (little-endian, as plastimatch's ``hnd_io`` and RTK's ``HndImageIO`` read it):

- a 1024-byte header of packed fields (:data:`HEADER_FIELDS`: strings, uint32 and float64), zero padded;
- a lookup table of 2-bit codes, four pixels a byte (lowest bits first), one code for each pixel after the
  first pixel of the second row: 0, 1, 2 = the pixel's difference is stored as int8, int16, int32;
- the first row and the first pixel of the second row as uint32;
- the differences, in pixel order: each pixel is ``left + upper - upper_left + difference`` (uint32
  arithmetic, the neighbours taken in the flat pixel order, so a row's first pixel predicts from the end of
  the row above).

Geometry from the header (no ``.txt``): gantry angle ``dCTProjectionAngle`` in degrees, with plastimatch's
convention (0 = source anterior, the source at ``SAD (sin a, -cos a, 0)``, rotation about the superior
axis); ``dSAD`` in mm; SID = ``dSFD`` (mm) when given, else ``dSAD - 10 dIDUPosVrt`` (the imager's vertical
position, cm, negative below the isocentre), else 1500 mm as plastimatch assumes (a warning says so); the
pixel pitch ``dIDUResolutionX/Y`` (mm), else plastimatch's 400 x 300 mm panel; the imager's lateral offset
``dIDUPosLat`` (cm) moves the panel along its rows (growing column index), as for a half-fan scan.
Pixels are raw intensities: line integrals are ``log(I0 / I)`` with plastimatch's and RTK's Varian air level
``I0 = 139000`` (plastimatch itself uses ``exp(1 - I / I0) - 1``, equal to third order).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError, check_memory
from .geometry import Geometry

HEADER_BYTES = 1024
I0 = 139000.0
#: (name, struct code) in file order; ``16s`` etc. are fixed-length strings
HEADER_FIELDS = (
    [("sFileType", "32s"), ("FileLength", "I"), ("sChecksumSpec", "4s"), ("nCheckSum", "I")]
    + [("sCreationDate", "8s"), ("sCreationTime", "8s"), ("sPatientID", "16s"), ("nPatientSer", "I")]
    + [("sSeriesID", "16s"), ("nSeriesSer", "I"), ("sSliceID", "16s"), ("nSliceSer", "I")]
    + [("SizeX", "I"), ("SizeY", "I"), ("dSliceZPos", "d"), ("sModality", "16s"), ("nWindow", "I")]
    + [("nLevel", "I"), ("nPixelOffset", "I"), ("sImageType", "4s")]
    + [
        (name, "d")
        for name in (
            "dGantryRtn dSAD dSFD dCollX1 dCollX2 dCollY1 dCollY2 dCollRtn dFieldX dFieldY dBladeX1 dBladeX2 "
            "dBladeY1 dBladeY2 dIDUPosLng dIDUPosLat dIDUPosVrt dIDUPosRtn dPatientSupportAngle "
            "dTableTopEccentricAngle dCouchVrt dCouchLng dCouchLat dIDUResolutionX dIDUResolutionY "
            "dImageResolutionX dImageResolutionY dEnergy dDoseRate dXRayKV dXRayMA dMetersetExposure "
            "dAcqAdjustment dCTProjectionAngle dCTNormChamber dGatingTimeTag dGating4DInfoX dGating4DInfoY "
            "dGating4DInfoZ dGating4DInfoTime"
        ).split()
    ]
)
_HEADER = struct.Struct("<" + "".join(code for _, code in HEADER_FIELDS))
MAX_SIDE = 16384  # the largest panel side believed (Varian's are 1024 x 768 or 2048 x 1536)
PLASTIMATCH_SID = 1500.0


def read_hnd_header(path: str | os.PathLike, data: bytes | None = None) -> dict:
    """The header fields of ``path`` as a dict (strings without their NUL padding).

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "short.hnd"
    >>> _ = f.write_bytes(b"x" * 122)
    >>> read_hnd_header(f)
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: ...short.hnd: header: 122 bytes, a .hnd header has 1024 (field SizeX cut off)
    """
    data = Path(path).read_bytes()[:HEADER_BYTES] if data is None else data
    if len(data) < HEADER_BYTES:
        cut = next(name for name, end in _field_ends() if end > len(data))
        raise ImgSuiteError(f"header: {len(data)} bytes, a .hnd header has {HEADER_BYTES} (field {cut} cut off)", path)
    values = _HEADER.unpack_from(data)
    header = {}
    for (name, _), value in zip(HEADER_FIELDS, values):
        header[name] = value.split(b"\0", 1)[0].decode("latin-1") if isinstance(value, bytes) else value
    return header


def _field_ends():
    end = 0
    for name, code in HEADER_FIELDS:
        end += struct.calcsize("<" + code)
        yield name, end


def _check_header(h: dict, path) -> None:
    nx, ny = h["SizeX"], h["SizeY"]
    for name, n in (("SizeX", nx), ("SizeY", ny)):
        if not 2 <= n <= MAX_SIDE:
            raise ImgSuiteError(f"header field {name} = {n}: a panel side is 2 to {MAX_SIDE} pixels", path)
    for name in ("dSAD", "dSFD", "dIDUPosLat", "dIDUPosVrt", "dIDUResolutionX", "dIDUResolutionY"):
        if not np.isfinite(h[name]):
            raise ImgSuiteError(f"header field {name} is {h[name]}, not a number", path)
    if not (np.isfinite(h["dCTProjectionAngle"]) and abs(h["dCTProjectionAngle"]) <= 3600):
        raise ImgSuiteError(f"header field dCTProjectionAngle = {h['dCTProjectionAngle']}: not an angle", path)
    if not h["dSAD"] > 0:
        raise ImgSuiteError(f"header field dSAD = {h['dSAD']:g}: the source-isocentre distance must be > 0 mm", path)
    if h["dSFD"] != 0 and not h["dSFD"] > h["dSAD"]:
        raise ImgSuiteError(
            f"header field dSFD = {h['dSFD']:g} mm: the panel must lie beyond dSAD = {h['dSAD']:g}", path
        )
    if h["dSFD"] == 0 and h["dIDUPosVrt"] > 0:
        raise ImgSuiteError(
            f"header field dIDUPosVrt = {h['dIDUPosVrt']:g} cm: the panel would be above the isocentre", path
        )
    for name in ("dIDUResolutionX", "dIDUResolutionY"):
        if h[name] < 0:
            raise ImgSuiteError(f"header field {name} = {h[name]:g}: a pixel pitch must be > 0 mm", path)


def decode_hnd(path: str | os.PathLike) -> tuple[dict, np.ndarray]:
    """The header and the raw pixels (uint32, rows x columns) of one ``.hnd`` file.

    Examples
    --------
    >>> import tempfile
    >>> h = dict.fromkeys((n for n, c in HEADER_FIELDS if not c.endswith("s")), 0)
    >>> h.update(SizeX=4, SizeY=2, dSAD=1000.0)
    >>> head = _HEADER.pack(*(h.get(n, b"") for n, _ in HEADER_FIELDS)).ljust(HEADER_BYTES, b"\\0")
    >>> lut = bytes([0b00000100])  # pixels 5, 6, 7: int8, int16, int8 (the fourth code is padding)
    >>> first = struct.pack("<5I", 10, 11, 12, 13, 20)
    >>> diffs = struct.pack("<bhbb", 1, -3, 2, 0)
    >>> f = Path(tempfile.mkdtemp()) / "a.hnd"
    >>> _ = f.write_bytes(head + lut + first + diffs)
    >>> decode_hnd(f)[1].tolist()
    [[10, 11, 12, 13], [20, 22, 20, 23]]
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImgSuiteError(f"cannot read: {exc.strerror}", path) from None
    header = read_hnd_header(path, data[:HEADER_BYTES])
    _check_header(header, path)
    nx, ny = header["SizeX"], header["SizeY"]
    check_memory(16 * nx * ny, "the .hnd pixels", path)
    coded = nx * ny - nx - 1  # pixels after the first pixel of the second row
    lut_bytes = -(-coded // 4)
    start = HEADER_BYTES + lut_bytes + 4 * (nx + 1)
    if len(data) < start:
        what = "lookup table" if len(data) < HEADER_BYTES + lut_bytes else "first row"
        raise ImgSuiteError(
            f"{what}: the file ends at byte {len(data)}, before byte {start} (SizeX {nx}, SizeY {ny})", path
        )
    lut = np.frombuffer(data, np.uint8, lut_bytes, HEADER_BYTES)
    codes = ((lut[:, None] >> np.array([0, 2, 4, 6], np.uint8)) & 3).ravel()[:coded]
    if np.any(codes == 3):
        bad = int(np.argmax(codes == 3))
        raise ImgSuiteError(f"lookup table: code 3 (no such difference size) for pixel {bad + nx + 1}", path)
    sizes = np.array([1, 2, 4], np.int64)[codes]
    offsets = start + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    end = start + int(sizes.sum())
    if len(data) < end:
        raise ImgSuiteError(f"pixel differences: the file ends at byte {len(data)}, they need {end} (truncated)", path)
    raw = np.frombuffer(data, np.uint8)
    diffs = raw[offsets].astype(np.int8).astype(np.int64)
    for code, dtype in ((1, "<i2"), (2, "<i4")):
        at = offsets[codes == code]
        width = np.dtype(dtype).itemsize
        diffs[codes == code] = raw[at[:, None] + np.arange(width)].copy().view(dtype).ravel()
    first = np.frombuffer(data, "<u4", nx + 1, HEADER_BYTES + lut_bytes).astype(np.int64)
    return header, _undo_prediction(first, diffs, nx, ny)


def _undo_prediction(first: np.ndarray, diffs: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """Pixels from the first row + 1 and the differences: with ``g[i] = p[i] - p[i-1]`` the prediction
    reads ``g[i] = g[i - nx] + diff[i]``, a running sum down each column of the flat order."""
    g = np.zeros(nx * ny, np.int64)
    g[1 : nx + 1] = np.diff(first)
    g[nx + 1 :] = diffs
    g = np.cumsum(g.reshape(ny, nx), axis=0).ravel()
    pixels = (first[0] + np.cumsum(g)) & 0xFFFFFFFF
    return pixels.astype(np.uint32).reshape(ny, nx)


def hnd_view(header: dict) -> tuple[dict, list]:
    """Source, panel and pixel pitch of one view from its header (see the module docstring), and warnings."""
    notes = []
    sad = header["dSAD"]
    if header["dSFD"] > 0:
        sid = header["dSFD"]
    elif header["dIDUPosVrt"] < 0:
        sid = sad - 10.0 * header["dIDUPosVrt"]
    else:
        sid = PLASTIMATCH_SID
        notes.append(f"neither dSFD nor dIDUPosVrt gives the panel distance: SID {sid:g} mm assumed (as plastimatch)")
    nx, ny = header["SizeX"], header["SizeY"]
    du = header["dIDUResolutionX"] or 400.0 / nx
    dv = header["dIDUResolutionY"] or 300.0 / ny
    a = np.radians(header["dCTProjectionAngle"])
    to_source = np.array([np.sin(a), -np.cos(a), 0.0])
    v = np.array([0.0, 0.0, -1.0])
    u = np.cross(v, -to_source)
    lateral = 10.0 * header["dIDUPosLat"]
    foot = -(sid - sad) * to_source
    ic = [(nx - 1) / 2.0 - lateral / du, (ny - 1) / 2.0]
    return {"source": sad * to_source, "center": foot, "u": u, "v": v, "pitch": (du, dv), "ic": ic}, notes


def read_hnd_projections(files: list):
    """A :class:`ProjectionSet` of line integrals ``log(I0 / I)`` from ``.hnd`` files (in this order).

    An assumed SID is a warning (once per set).
    """
    import warnings

    from .projset import ProjectionSet

    images, views, seen = None, [], set()
    for n, f in enumerate(files):
        header, pixels = decode_hnd(f)
        view, notes = hnd_view(header)
        for note in notes:
            if note not in seen:
                warnings.warn(f"{f}: {note}", stacklevel=2)
            seen.add(note)
        if images is None:
            images = np.empty((len(files),) + pixels.shape, np.float32)
            pitch = view["pitch"]
        elif pixels.shape != images.shape[1:]:
            field = "SizeX" if pixels.shape[1] != images.shape[2] else "SizeY"
            raise ImgSuiteError(f"header field {field}: {pixels.shape[::-1]} differs from the first view's", f)
        elif not np.allclose(view["pitch"], pitch, rtol=1e-6):
            raise ImgSuiteError(f"header field dIDUResolutionX/Y: {view['pitch']} differs from the first view's", f)
        images[n] = np.log(I0 / np.clip(pixels.astype(np.float64), 1e-3, None))
        views.append(view)
    geometry = Geometry(
        sources=[w["source"] for w in views],
        centers=[w["center"] for w in views],
        u_axes=[w["u"] for w in views],
        v_axes=[w["v"] for w in views],
        pixel_size=pitch,
        dims=images.shape[:0:-1],
        image_center=[w["ic"] for w in views],
    )
    return ProjectionSet(images, geometry)


def hnd_files(folder: Path) -> list:
    """The ``.hnd`` files of ``folder`` in name order (numbers compared as numbers)."""
    import re

    def key(f: Path):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f.name.lower())]

    return sorted((f for f in folder.iterdir() if f.suffix.lower() == ".hnd" and f.is_file()), key=key)
