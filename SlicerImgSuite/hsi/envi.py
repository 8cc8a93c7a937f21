"""Plain ENVI cubes (``.hdr`` + binary): memory-mapped reading, byte-exact writing.

A cube in memory is a numpy array shaped ``(lines, samples, bands)`` (rows, columns, spectrum), as
Spectral Python does; files keep their own interleave and byte order, and the reader returns a view
of the memory map in that order, so nothing is copied until it is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from .envi_header import DATA_TYPE_OF, EnviHeader, Layout, format_header, layout, read_header

DATA_SUFFIXES = ("", ".envi", ".raw", ".img", ".dat", ".bsq", ".bil", ".bip")


def to_cube(raw: np.ndarray, interleave: str) -> np.ndarray:
    """File-order array -> ``(lines, samples, bands)`` view (no copy)."""
    return raw.transpose({"bsq": (1, 2, 0), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave])


def from_cube(cube: np.ndarray, interleave: str) -> np.ndarray:
    """``(lines, samples, bands)`` -> file-order view (no copy)."""
    return cube.transpose({"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave])


def map_cube(path: str | os.PathLike, lay: Layout, offset: int = 0, available: int | None = None) -> np.ndarray:
    """Memory-map a cube's numbers at ``offset + header offset`` of ``path``; returns ``(lines, samples, bands)``.

    ``available`` is how many bytes after the header offset belong to the cube (the rest of the file when
    omitted). Raises ImgSuiteError when that is not what the layout says (see :func:`check_extent`).
    """
    path = Path(path)
    start = offset + lay.header_offset
    check_extent(path.stat().st_size - start if available is None else available, lay, path, start)
    raw = np.memmap(path, dtype=lay.dtype, mode="r", offset=start, shape=lay.file_shape)
    return to_cube(raw, lay.interleave)


def check_extent(available: int, lay: Layout, path, start: int = 0, what: str = "binary") -> None:
    """Refuse a binary that holds fewer or more bytes (after the header offset) than the header's layout.

    Fewer: the cube would be read past its end. More: samples, lines, bands or data type do not describe
    the file (a uint16 cube declared as bytes reads half of it as a cube of wrong numbers), so nothing
    read from it could be trusted.
    """
    if available == lay.nbytes:
        return
    sizes = (
        f"{lay.samples} samples x {lay.lines} lines x {lay.bands} bands x {lay.dtype.itemsize} bytes "
        f"(data type {lay.data_type})"
    )
    if available < lay.nbytes:
        raise ImgSuiteError(
            f"{what} holds {available} bytes after offset {start}, the header needs {lay.nbytes} ({sizes})", path
        )
    raise ImgSuiteError(
        f"{what} holds {available} bytes after offset {start}, {available - lay.nbytes} more than the header's "
        f"{lay.nbytes} ({sizes}): samples, lines, bands or data type do not match the file",
        path,
    )


def cube_from_bytes(buffer, lay: Layout, path=None) -> np.ndarray:
    """The cube from an in-memory buffer (a compressed member that had to be read)."""
    if len(buffer) < lay.header_offset + lay.nbytes:
        raise ImgSuiteError(f"member holds {len(buffer)} bytes, the header needs {lay.nbytes}", path)
    raw = np.frombuffer(buffer, dtype=lay.dtype, count=lay.nbytes // lay.dtype.itemsize, offset=lay.header_offset)
    return to_cube(raw.reshape(lay.file_shape), lay.interleave)


def find_data_file(header_path: str | os.PathLike) -> Path:
    """The binary beside a ``.hdr``: same stem with no suffix, ``.envi``, ``.raw``, ``.img``, ..."""
    header_path = Path(header_path)
    stem = header_path.with_suffix("")
    for suffix in DATA_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file() and candidate != header_path:
            return candidate
    raise ImgSuiteError(
        f"no binary file next to the header (tried {', '.join(s or '(none)' for s in DATA_SUFFIXES)})", header_path
    )


def read_envi(
    header_path: str | os.PathLike, data_path: str | os.PathLike | None = None, strict: bool = False
) -> tuple[np.ndarray, EnviHeader]:
    """Open an ENVI cube, memory-mapped.

    Parameters
    ----------
    header_path : path
        The ``.hdr`` file (or the binary, when its ``.hdr`` sits beside it).
    data_path : path, optional
        The binary; found beside the header when omitted.
    strict : bool
        See :func:`~SlicerImgSuite.hsi.envi_header.layout`.

    Returns
    -------
    cube : numpy.ndarray
        ``(lines, samples, bands)`` read-only view of the memory map.
    header : EnviHeader

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "c.envi"
    >>> _ = write_envi(f, np.arange(24, dtype=np.uint16).reshape(2, 3, 4), wavelength=[1, 2, 3, 4])
    >>> cube, header = read_envi(f.with_suffix(".hdr"))
    >>> int(cube[1, 2, 3]), header["interleave"]
    (23, 'bsq')
    """
    header_path = Path(header_path)
    if header_path.suffix.lower() != ".hdr":
        data_path = data_path or header_path
        header_path = header_path.with_suffix(".hdr")
    header = read_header(header_path, strict)
    lay = layout(header, header_path, strict)
    data_path = Path(data_path) if data_path else find_data_file(header_path)
    return map_cube(data_path, lay), header


def header_for(
    cube: np.ndarray,
    header: EnviHeader | dict | None = None,
    interleave: str = "bsq",
    byte_order: int = 0,
    **fields,
) -> EnviHeader:
    """The header that describes ``cube`` written with ``interleave`` and ``byte_order``.

    Fields of ``header`` and ``fields`` (``wavelength=[...]``, ``wavelength_units="nm"``) are kept;
    sizes, data type, interleave, byte order and offset are set from the cube.
    """
    if cube.ndim != 3:
        raise ImgSuiteError(f"a cube must be 3D (lines, samples, bands), not {cube.shape}")
    dtype = np.dtype(cube.dtype).newbyteorder("=")
    if dtype not in DATA_TYPE_OF:
        raise ImgSuiteError(f"ENVI cannot store {cube.dtype} (types: {sorted(str(np.dtype(t)) for t in DATA_TYPE_OF)})")
    out = EnviHeader(header or {}, comments=getattr(header, "comments", None))
    for key, value in fields.items():
        out.set(key.replace("_", " "), value)
    lines, samples, bands = cube.shape
    out.set("samples", samples)
    out.set("lines", lines)
    out.set("bands", bands)
    out.set("header offset", 0)
    if "file type" not in out:
        out["file type"] = "ENVI Standard"
    out.set("data type", DATA_TYPE_OF[dtype])
    out["interleave"] = interleave.lower()
    out.set("byte order", int(byte_order))
    if "wavelength" in out and "wavelength units" not in out:
        out["wavelength units"] = "nm"
    return out


def encoded_chunks(cube: np.ndarray, header: EnviHeader, chunk_bytes: int = 64 << 20):
    """The binary of ``cube`` as laid out by ``header``, in chunks of about ``chunk_bytes``."""
    lay = layout(header, strict=True, wavelengths=False)
    raw = from_cube(cube, lay.interleave)
    rows = max(1, chunk_bytes // max(1, raw[0].nbytes))
    for start in range(0, raw.shape[0], rows):
        yield np.ascontiguousarray(raw[start : start + rows], dtype=lay.dtype).tobytes()


def write_envi(
    path: str | os.PathLike,
    cube: np.ndarray,
    header: EnviHeader | dict | None = None,
    interleave: str = "bsq",
    byte_order: int = 0,
    **fields,
) -> EnviHeader:
    """Write ``cube`` ``(lines, samples, bands)`` as ``path`` (binary) + ``path.hdr`` (suffix replaced), atomically.

    Returns the header written.
    """
    from ..io.atomic import atomic_path  # imported here: reading must not pull in SimpleITK

    path = Path(path)
    if interleave.lower() not in ("bsq", "bil", "bip"):
        raise ImgSuiteError(f"invalid interleave {interleave!r} (bsq, bil or bip)", path)
    full = header_for(cube, header, interleave, byte_order, **fields)
    # both staged before either is renamed into place: a refused or failed header leaves no binary behind
    with atomic_path(path.with_suffix(".hdr")) as tmp_header, atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            for chunk in encoded_chunks(cube, full):
                f.write(chunk)
        tmp_header.write_text(format_header(full), encoding="utf-8")
    return full
