"""The extended ENVI header (``.hdr``): parse, check, write.

A header is an :class:`EnviHeader`: an ordered ``dict`` of lower-case field names to raw values,
a ``str`` for plain values and a ``list[str]`` for ``{}`` lists (nested braces, as in
``read procedures``, stay inside one item). Text fields such as ``description`` keep their braces'
content as one string. Parsing then writing gives back the same fields and values.

:func:`layout` turns the mandatory fields into a :class:`Layout` (shape, numpy dtype, interleave,
offset). ``strict=True`` raises :class:`~SlicerImgSuite.errors.ImgSuiteError` for anything missing or
odd; ``strict=False`` warns (:class:`EnviHeaderWarning`) and decides.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError

# ENVI data type codes -> numpy (native order; byte order is applied by Layout.dtype)
DATA_TYPES = {
    1: np.uint8,
    2: np.int16,
    3: np.int32,
    4: np.float32,
    5: np.float64,
    6: np.complex64,
    9: np.complex128,
    12: np.uint16,
    13: np.uint32,
    14: np.int64,
    15: np.uint64,
}
DATA_TYPE_OF = {np.dtype(v): k for k, v in DATA_TYPES.items()}
INTERLEAVES = ("bsq", "bil", "bip")
MANDATORY = ("samples", "lines", "bands", "byte order", "data type", "file type", "interleave", "header offset")
# Fields whose braces hold free text, not a list: written back as one string in braces.
TEXT_FIELDS = {"description", "coordinate system string", "target info", "problem", "measurement"}
# Preferred order when writing; other fields follow in their own order.
FIELD_ORDER = (
    "description",
    "samples",
    "lines",
    "bands",
    "header offset",
    "file type",
    "data type",
    "interleave",
    "byte order",
    "wavelength units",
    "wavelength",
    "fwhm",
    "band names",
    "default bands",
)


class EnviHeaderWarning(UserWarning):
    """A tolerant read met something odd in a header and made a decision (the message says which)."""


class EnviHeader(dict):
    """Header fields, lower-case names -> ``str`` or ``list[str]``; ``comments`` keeps ``;`` lines.

    Examples
    --------
    >>> h = parse_header("ENVI\\nSamples = 2\\nwavelength = {400, 500}\\n")
    >>> h["samples"], h["wavelength"]
    ('2', ['400', '500'])
    """

    def __init__(self, *args, comments: list[str] | None = None, **kwargs):
        super().__init__()
        self.comments = list(comments or [])
        self.update(*args, **kwargs)

    def __setitem__(self, key, value):
        super().__setitem__(key.strip().lower(), _to_text(value))

    def __getitem__(self, key):
        return super().__getitem__(key.strip().lower())

    def __contains__(self, key):
        return super().__contains__(key.strip().lower())

    def get(self, key, default=None):
        return super().get(key.strip().lower(), default)

    def pop(self, key, *default):
        return super().pop(key.strip().lower(), *default)

    def update(self, *args, **kwargs):
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def copy(self) -> EnviHeader:
        return EnviHeader(self, comments=self.comments)

    def set(self, key: str, value) -> None:
        """Store a Python value: numbers and lists are turned into header text (as ``[]`` does)."""
        self[key] = value

    def numbers(self, key: str, default=None) -> list[float] | None:
        """A list field as floats (``None``/``default`` when absent)."""
        value = self.get(key)
        if value is None:
            return default
        items = value if isinstance(value, list) else [value]
        return [float(v) for v in items if v != ""]

    @property
    def wavelengths(self) -> np.ndarray | None:
        values = self.numbers("wavelength")
        return None if values is None else np.array(values, dtype=float)


@dataclass(frozen=True)
class Layout:
    """Where a cube's numbers are in its binary file."""

    samples: int
    lines: int
    bands: int
    data_type: int
    interleave: str
    byte_order: int
    header_offset: int = 0

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DATA_TYPES[self.data_type]).newbyteorder(">" if self.byte_order else "<")

    @property
    def file_shape(self) -> tuple[int, int, int]:
        """Array shape in file order (slowest axis first)."""
        s, ln, b = self.samples, self.lines, self.bands
        return {"bsq": (b, ln, s), "bil": (ln, b, s), "bip": (ln, s, b)}[self.interleave]

    @property
    def nbytes(self) -> int:
        return self.samples * self.lines * self.bands * self.dtype.itemsize


def parse_header(text: str, path: str | os.PathLike | None = None, strict: bool = False) -> EnviHeader:
    """Parse ENVI header text.

    Parameters
    ----------
    text : str
        The header file's content.
    path : path, optional
        Named in errors and warnings.
    strict : bool
        Raise on an unparsable line or a non-ENVI (ESRI/ArcGIS) header; otherwise warn and go on.
        A tolerant parse translates ESRI ``.hdr`` keys (NROWS, NCOLS, NBANDS, NBITS, LAYOUT,
        BYTEORDER, SKIPBYTES, WAVELENGTHS) into ENVI fields.

    Returns
    -------
    EnviHeader
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = lines[0].strip().lstrip("\ufeff") if lines else ""
    if first != "ENVI":
        if _looks_esri(lines):
            if strict:
                raise ImgSuiteError(
                    "not an ENVI header: ESRI/ArcGIS .hdr keys (NROWS, NCOLS, ...) without 'ENVI'", path
                )
            _warn(path, "ESRI/ArcGIS-style header: translating NROWS/NCOLS/NBANDS/NBITS/LAYOUT/BYTEORDER to ENVI")
            return _from_esri(lines, path)
        raise ImgSuiteError("not an ENVI header (the first line must be 'ENVI')", path)
    header = EnviHeader()
    i = 1
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line.startswith(";"):
            header.comments.append(line[1:].strip())
            continue
        if "=" not in line:
            if strict:
                raise ImgSuiteError(f"header line {i} is not 'field = value': {line[:60]!r}", path)
            _warn(path, f"ignoring header line {i} (no '='): {line[:60]!r}")
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if value.startswith("{"):
            depth = _depth(value)
            while depth > 0 and i < len(lines):  # a list spans lines until its brace closes
                value += "\n" + lines[i].strip()
                depth += _depth(lines[i])
                i += 1
            if depth != 0:
                if strict:
                    raise ImgSuiteError(f"field {key!r}: '{{' is never closed", path)
                _warn(path, f"field {key!r}: '{{' is never closed; taking the rest of the file")
                value += "}" * depth
            inner = value[1 : value.rindex("}")]
            header[key] = inner.strip() if key.lower() in TEXT_FIELDS else split_list(inner)
        else:
            header[key] = value
    return header


def split_list(inner: str) -> list[str]:
    """Split the inside of ``{...}`` at top-level commas (nested braces stay whole).

    Examples
    --------
    >>> split_list("resample:{2, 2, 1}, rotate:clockwise")
    ['resample:{2, 2, 1}', 'rotate:clockwise']
    """
    items, depth, current = [], 0, []
    for ch in inner:
        if ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current.append(ch)
    last = "".join(current).strip()
    if last or items:
        items.append(last)
    # a leading comma on a continuation line (",379.663") leaves an empty first item
    if items and items[0] == "" and len(items) > 1:
        items = items[1:]
    return items


def format_header(header: EnviHeader | dict) -> str:
    """Header text: ``ENVI`` first, lower-case field names, lists in braces, comments last."""
    out = ["ENVI"]
    keys = [k for k in FIELD_ORDER if k in header] + [k for k in header if k not in FIELD_ORDER]
    for key in keys:
        value = header[key]
        if isinstance(value, list):
            text = ", ".join(value)
            out.append(f"{key} = {{{text}}}" if len(text) < 80 else f"{key} = {{\n" + ",\n".join(value) + "}")
        elif key in TEXT_FIELDS:
            out.append(f"{key} = {{{value}}}")
        else:
            out.append(f"{key} = {value}")
    out += [f"; {c}" for c in getattr(header, "comments", [])]
    return "\n".join(out) + "\n"


def read_header(path: str | os.PathLike, strict: bool = False) -> EnviHeader:
    """Read and parse a ``.hdr`` file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise ImgSuiteError(f"cannot read header: {exc.strerror}", path) from None
    return parse_header(text, path, strict)


def layout(
    header: EnviHeader, path: str | os.PathLike | None = None, strict: bool = False, wavelengths: bool = True
) -> Layout:
    """Check the mandatory fields and return the binary layout.

    Tolerant decisions (each warned): no ``byte order`` -> 0 (little endian); no ``header offset``
    -> 0; no ``file type`` -> ENVI Standard; an unknown ``interleave`` -> bsq (ENVI's default).
    Strict mode raises instead. Sizes and the data type are always required. ``wavelengths=False``
    skips the wavelength checks (for label and reference files).
    """
    for key in MANDATORY:
        if key not in header:
            if strict or key in ("samples", "lines", "bands", "data type"):
                raise ImgSuiteError(f"header lacks the mandatory field {key!r}", path)
            _warn(path, f"header lacks {key!r}: assuming {_DEFAULTS[key]}")
    try:
        samples, lines, bands = (int(header[k]) for k in ("samples", "lines", "bands"))
        data_type = int(header["data type"])
        byte_order = int(header.get("byte order", 0))
        offset = int(header.get("header offset", 0))
    except (TypeError, ValueError) as exc:
        raise ImgSuiteError(f"header has a non-integer size, data type, byte order or offset ({exc})", path) from None
    if min(samples, lines, bands) < 1:
        raise ImgSuiteError(f"header sizes must be positive: samples={samples} lines={lines} bands={bands}", path)
    if data_type not in DATA_TYPES:
        raise ImgSuiteError(f"unsupported data type {data_type} (supported: {sorted(DATA_TYPES)})", path)
    if byte_order not in (0, 1):
        raise ImgSuiteError(f"byte order must be 0 or 1, not {byte_order}", path)
    if offset < 0:
        raise ImgSuiteError(f"header offset must be >= 0 bytes, not {offset}", path)
    interleave = str(header.get("interleave", "bsq")).strip().lower()
    if interleave not in INTERLEAVES:
        if strict:
            raise ImgSuiteError(f"invalid interleave {interleave!r} (bsq, bil or bip)", path)
        _warn(path, f"invalid interleave {interleave!r}: assuming bsq")
        interleave = "bsq"
    check_file_type(header, path)
    if wavelengths:
        check_wavelengths(header, bands, path, strict)
    return Layout(
        samples=samples,
        lines=lines,
        bands=bands,
        data_type=data_type,
        interleave=interleave,
        byte_order=byte_order,
        header_offset=offset,
    )


def check_file_type(header: EnviHeader, path=None) -> None:
    """Refuse a ``file type`` whose binary is not raw samples (``JPEGXL``, ``TIFF``, ``HDF``, ...): reading it as
    samples would give noise. ENVI's raw types (``ENVI Standard``, ``ENVI Classification``, ``ENVI Spectral
    Library``, ...) all start with ``ENVI``.

    Examples
    --------
    >>> check_file_type(parse_header("ENVI\\nfile type = JPEGXL"), "scan.hdr")
    Traceback (most recent call last):
    ...
    SlicerImgSuite.errors.ImgSuiteError: scan.hdr: file type = JPEGXL: the binary is encoded (not raw samples), which this reader cannot decode; convert it to ENVI Standard
    """
    kind = str(header.get("file type", "ENVI Standard")).strip()
    if not kind.lower().startswith("envi"):
        raise ImgSuiteError(
            f"file type = {kind}: the binary is encoded (not raw samples), which this reader cannot decode; "
            "convert it to ENVI Standard",
            path,
        )


def check_wavelengths(header: EnviHeader, bands: int, path=None, strict: bool = False) -> None:
    """Wavelengths: present, one per band, with units, not all equal. Tolerant mode warns (and
    drops a list of the wrong length)."""

    def problem(text: str, decision: str = "") -> None:
        if strict:
            raise ImgSuiteError(text, path)
        _warn(path, text + decision)

    if "wavelength" not in header:
        problem("header has no 'wavelength' list")
        return
    try:
        values = header.numbers("wavelength")
    except ValueError:
        problem("'wavelength' holds non-numbers", "; ignoring it")
        header.pop("wavelength")
        return
    if len(values) != bands:
        problem(f"'wavelength' has {len(values)} values for {bands} bands", "; ignoring it")
        header.pop("wavelength")
        return
    if "wavelength units" not in header:
        problem("header has 'wavelength' but no 'wavelength units'")
    if bands > 1 and len(set(values)) == 1:
        problem(f"all {bands} wavelengths are equal ({values[0]})")


def header_to_json(header: EnviHeader) -> dict:
    """A JSON-ready dict: keys as in the header, numbers as numbers, lists as lists.

    Examples
    --------
    >>> header_to_json(parse_header("ENVI\\nbands = 2\\nwavelength = {400, 500.5}\\nfile type = ENVI Standard"))
    {'bands': 2, 'wavelength': [400, 500.5], 'file type': 'ENVI Standard'}
    """
    out = {
        key: [_number(v) for v in value] if isinstance(value, list) else _number(value) for key, value in header.items()
    }
    if header.comments:
        out.setdefault("comments", header.comments)
    return json.loads(json.dumps(out))


def header_from_fields(**fields) -> EnviHeader:
    """Build a header from Python values (``data_type=12``, ``wavelength=[...]``; ``_`` -> space)."""
    header = EnviHeader()
    for key, value in fields.items():
        header.set(key.replace("_", " "), value)
    return header


_DEFAULTS = {"byte order": "0 (little endian)", "header offset": "0", "file type": "ENVI Standard", "interleave": "bsq"}


def _depth(text: str) -> int:
    return text.count("{") - text.count("}")


def _number(text: str):
    if re.fullmatch(r"[+-]?\d+", text.strip()):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    return value if np.isfinite(value) else text


def _to_text(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_to_text(v) for v in value]
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _warn(path, message: str) -> None:
    warnings.warn(f"{path}: {message}" if path else message, EnviHeaderWarning, stacklevel=3)


def _looks_esri(lines: list[str]) -> bool:
    keys = {line.split()[0].upper() for line in lines if line.strip()}
    return {"NROWS", "NCOLS"} <= keys


def _from_esri(lines: list[str], path) -> EnviHeader:
    raw, wavelengths, in_wavelengths = {}, [], False
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if in_wavelengths and _is_float(parts[0]):
            wavelengths.append(parts[0])
            continue
        in_wavelengths = parts[0].upper() == "WAVELENGTHS"
        if len(parts) >= 2:
            raw[parts[0].upper()] = " ".join(parts[1:])
    nbits = int(raw.get("NBITS", 8))
    pixel_type = raw.get("PIXELTYPE", "UNSIGNEDINT").upper()
    if pixel_type.startswith("FLOAT"):
        data_type = {32: 4, 64: 5}.get(nbits)
    elif pixel_type.startswith("SIGNED"):
        data_type = {8: None, 16: 2, 32: 3, 64: 14}.get(nbits)
    else:
        data_type = {8: 1, 16: 12, 32: 13, 64: 15}.get(nbits)
    if data_type is None:
        raise ImgSuiteError(f"ESRI header: unsupported NBITS={nbits} PIXELTYPE={pixel_type}", path)
    header = EnviHeader()
    header["samples"] = raw["NCOLS"]
    header["lines"] = raw["NROWS"]
    header["bands"] = raw.get("NBANDS", "1")
    header["header offset"] = raw.get("SKIPBYTES", "0")
    header["file type"] = "ENVI Standard"
    header["data type"] = str(data_type)
    header["interleave"] = raw.get("LAYOUT", "BIL").lower()
    header["byte order"] = "1" if raw.get("BYTEORDER", "I").upper().startswith("M") else "0"
    if wavelengths:
        header["wavelength units"] = "nm"
        header["wavelength"] = wavelengths
    expected = int(header["samples"]) * nbits // 8
    if "BANDROWBYTES" in raw and int(raw["BANDROWBYTES"]) != expected:
        _warn(path, f"ESRI BANDROWBYTES={raw['BANDROWBYTES']} disagrees with NCOLS*NBITS/8={expected}; using NCOLS")
    return header


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
