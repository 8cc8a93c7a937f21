"""The ``.hsi`` container: an uncompressed ZIP around an ENVI cube and its companions.

Layout (names inside the ZIP)::

    data.hdr, data.envi                 the cube (mandatory)
    thumbnail.jpg                       RGB composite, at most 256 px
    preview.hdr, preview.envi           3-band RGB proxy (default bands), full resolution
    preview_<lod>.hdr/.envi             all bands, binned 2**lod x 2**lod (mean)
    Reference/white.*, Reference/black.* calibration frames (1 or N lines: push-broom; all lines: snapshot)
    Reference/white_after.*             optional white taken after the scan (see calibrate)
    Exploration/classification.*        ENVI Classification (class names, class lookup)
    Exploration/masks/<name>.*          binary class masks (header field ``class = <name>``)
    Exploration/boxes.csv               bounding boxes: name, left, top, width, height
    Metadata/...                        sensor and device files, kept as they are

``open_hsi`` memory-maps ``data.envi`` straight out of the ZIP: the member's data offset is read from
its local file header; nothing is extracted. Writing stores every member (no deflate) and pads the
local header of each binary so its numbers start on a 4096-byte boundary; a cube of 64 MiB or more
is written first, on a 2 MiB boundary (see ``write_hsi``).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import ImgSuiteError, check_memory
from ..progress import ProgressCallback, no_progress
from ..units import length_in
from .envi import check_extent, cube_from_bytes, encoded_chunks, from_cube, header_for, map_cube, to_cube
from .envi_header import EnviHeader, format_header, layout, parse_header
from .labels import Labels, classes_from_header, classification_fields, format_boxes_csv, parse_boxes_csv

DATA = "data"
WHITE, BLACK, WHITE_AFTER = "Reference/white", "Reference/black", "Reference/white_after"
CLASSIFICATION, MASKS, BOXES = "Exploration/classification", "Exploration/masks/", "Exploration/boxes.csv"
ALIGN = 4096  # every binary member starts on a page boundary
SMALL_MEMBER_LIMIT = 256 << 20  # headers, CSV, thumbnails, metadata: a larger one is damage
HUGE_ALIGN, LARGE = 2 << 20, 64 << 20  # a cube of 64 MiB or more starts on a 2 MiB (huge page) boundary
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature ... name length, extra length (30 bytes)


class HsiFile:
    """An open ``.hsi`` container.

    Parameters
    ----------
    path : path
        The ``.hsi`` file.
    strict : bool
        Header checks (see :func:`~SlicerImgSuite.hsi.envi_header.layout`).
    allow_compressed : bool
        Read deflated members into memory instead of refusing them.

    Attributes
    ----------
    header : EnviHeader
        ``data.hdr``.
    cube : numpy.ndarray
        ``(lines, samples, bands)`` read-only view of ``data.envi``, memory-mapped from the ZIP.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.hsi"
    >>> _ = write_hsi(f, np.ones((4, 5, 3), np.uint16), wavelength=[500, 600, 700])
    >>> with open_hsi(f) as hsi:
    ...     hsi.cube.shape, hsi.wavelengths.tolist()
    ((4, 5, 3), [500.0, 600.0, 700.0])
    """

    def __init__(self, path: str | os.PathLike, strict: bool = False, allow_compressed: bool = False):
        self.path = Path(path)
        self.strict = strict
        self.allow_compressed = allow_compressed
        if not self.path.is_file():
            raise ImgSuiteError("no such file", self.path)
        try:
            with zipfile.ZipFile(self.path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImgSuiteError(f"not a .hsi container (not a readable ZIP: {exc})", self.path) from None
        self._infos = {}
        for info in infos:
            name = safe_member_name(info.filename, self.path)
            if name in self._infos:
                raise ImgSuiteError(f"member {name!r} appears twice", self.path)
            self._infos[name] = info
        for required in (f"{DATA}.hdr", f"{DATA}.envi"):
            if required not in self._infos:
                raise ImgSuiteError(f"not a .hsi container: no {required} inside", self.path)
        self.cube, self.header, self.layout = self._envi_member(DATA, True)

    # ---- members -------------------------------------------------------------------------
    def __enter__(self) -> HsiFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drop the memory map (arrays already taken from it stay valid while referenced)."""
        self.cube = None

    @property
    def names(self) -> list[str]:
        """Member names, in ZIP order."""
        return list(self._infos)

    def has(self, name: str) -> bool:
        return name in self._infos

    def read_bytes(self, name: str, limit: int = SMALL_MEMBER_LIMIT) -> bytes:
        """A member's bytes (for small members: headers, CSV, thumbnails, metadata), at most ``limit`` of them."""
        info = self._info(name)
        return bytes(self._inflate(info, min(info.file_size, limit), exact=False))

    def _inflate(self, info: zipfile.ZipInfo, size: int, exact: bool = True) -> bytearray:
        """Stream a member into a buffer of ``size`` bytes, never more.

        The ZIP directory's sizes are claims, not facts: a deflated member may inflate far beyond them.
        Reading stops at ``size`` bytes; a member that would inflate further is an error, as is (with
        ``exact``) one that ends short.
        """
        name = info.filename
        if info.flag_bits & 0x1:
            raise ImgSuiteError(f"member {name!r} is encrypted; .hsi members cannot be", self.path)
        if info.file_size > size and not exact:
            raise ImgSuiteError(f"member {name!r} declares {info.file_size} bytes, more than {size} allowed", self.path)
        # deflate cannot expand more than ~1032:1: a member too small for what is asked ends short
        most = (
            info.file_size
            if info.compress_type != zipfile.ZIP_DEFLATED
            else min(info.file_size, info.compress_size * 1032 + 1024)
        )
        if exact and most < size:
            raise ImgSuiteError(f"member {name!r} holds at most {most} bytes, its header needs {size}", self.path)
        check_memory(size, f"member {name!r} (repack it stored, to be memory-mapped)", self.path)
        buffer = bytearray(size)
        view, done = memoryview(buffer), 0
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(info) as stream:
                while done < size:
                    n = stream.readinto(view[done : done + (1 << 22)])
                    if not n:
                        break
                    done += n
                extra = stream.read(1)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise ImgSuiteError(f"member {name!r} cannot be read ({type(exc).__name__}: {exc})", self.path) from None
        except zlib.error as exc:
            raise ImgSuiteError(f"member {name!r} is damaged (zlib: {exc})", self.path) from None
        if extra:
            raise ImgSuiteError(f"member {name!r} inflates beyond the {size} bytes it may hold", self.path)
        if exact and done < size:
            raise ImgSuiteError(f"member {name!r} holds {done} bytes, its header needs {size}", self.path)
        return buffer[:done] if done < size else buffer

    def data_offset(self, name: str) -> int:
        """Byte offset of a stored member's data in the ``.hsi`` file (from its local file header)."""
        info = self._info(name)
        if not 0 <= info.header_offset <= self.path.stat().st_size - _LOCAL_HEADER.size:
            raise ImgSuiteError(
                f"member {name!r}: local header offset {info.header_offset} is outside the file", self.path
            )
        with open(self.path, "rb") as f:
            f.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
        if fields[0] != b"PK\x03\x04":
            raise ImgSuiteError(f"member {name!r}: damaged local file header", self.path)
        return info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]

    def read_envi_member(self, stem: str, wavelengths: bool = True) -> tuple[np.ndarray, EnviHeader]:
        """An ENVI pair ``<stem>.hdr`` + ``<stem>.envi`` (or ``.raw``/``.img``): memory-mapped when stored."""
        return self._envi_member(stem, wavelengths)[:2]

    def _envi_member(self, stem: str, wavelengths: bool):
        header_name = f"{stem}.hdr"
        label = f"{self.path}:{header_name}"
        header = parse_header(self.read_bytes(header_name).decode("utf-8", errors="replace"), label, self.strict)
        lay = layout(header, label, self.strict, wavelengths=wavelengths)
        data_name = next((f"{stem}{s}" for s in (".envi", ".raw", ".img", "") if f"{stem}{s}" in self._infos), None)
        if data_name is None or data_name == header_name:
            raise ImgSuiteError(f"{header_name} has no binary member ({stem}.envi)", self.path)
        info = self._infos[data_name]
        if info.flag_bits & 0x1:
            raise ImgSuiteError(f"member {data_name!r} is encrypted", self.path)
        if info.compress_type != zipfile.ZIP_STORED:
            if not self.allow_compressed:
                raise ImgSuiteError(
                    f"member {data_name!r} is compressed ({_method(info)}); .hsi members must be stored so they can "
                    "be memory-mapped. Repack it stored, or allow compressed members (allow_compressed=True, "
                    "--allow-compressed) to read it into memory",
                    self.path,
                )
            need = lay.header_offset + lay.nbytes  # what the ENVI header justifies: inflate no more
            return cube_from_bytes(self._inflate(info, need), lay, self.path), header, lay
        available = info.file_size - lay.header_offset
        check_extent(available, lay, self.path, lay.header_offset, f"member {data_name!r}")
        return map_cube(self.path, lay, offset=self.data_offset(data_name), available=available), header, lay

    def optional_envi(self, stem: str, wavelengths: bool = False):
        """``read_envi_member`` or ``(None, None)`` when the member is absent."""
        if f"{stem}.hdr" not in self._infos:
            return None, None
        return self.read_envi_member(stem, wavelengths)

    # ---- convenience ---------------------------------------------------------------------
    @property
    def wavelengths(self) -> np.ndarray | None:
        return self.header.wavelengths

    @property
    def white(self) -> np.ndarray | None:
        return self.optional_envi(WHITE)[0]

    @property
    def black(self) -> np.ndarray | None:
        return self.optional_envi(BLACK)[0]

    @property
    def white_after(self) -> np.ndarray | None:
        return self.optional_envi(WHITE_AFTER)[0]

    def read(self, bands: slice | None = None) -> np.ndarray:
        """An in-memory copy of the cube ``(lines, samples, bands)``, native byte order.

        The copy keeps the file's interleave (one sequential pass over the file) and is returned
        as a ``(lines, samples, bands)`` view of it, as Spectral Python's ``load`` does.
        """
        interleave = self.layout.interleave
        view = self.cube if bands is None else self.cube[:, :, bands]
        raw = from_cube(view, interleave)
        # np.array(x) of a native-order map is one memcpy; asking for a dtype takes a slower casting loop
        raw = np.array(raw) if raw.dtype.isnative else raw.astype(raw.dtype.newbyteorder("="))
        return to_cube(raw, interleave)

    def labels(self) -> Labels:
        """Classification, masks and boxes under ``Exploration/`` (header fields may point elsewhere)."""
        out = Labels()
        stem = _stem(self.header.get("classification file") or CLASSIFICATION)
        if f"{stem}.hdr" in self._infos:
            classes, header = self.read_envi_member(stem, wavelengths=False)
            out.classification = np.asarray(classes[:, :, 0])
            out.class_names, out.class_colors = classes_from_header(header, f"{self.path}:{stem}.hdr")
        for name in self._infos:
            if name.startswith(MASKS) and name.endswith(".hdr"):
                mask, header = self.read_envi_member(name[:-4], wavelengths=False)
                out.masks[str(header.get("class") or PurePosixPath(name).stem)] = np.asarray(mask[:, :, 0]) != 0
        boxes = self.header.get("bounding boxes") or BOXES
        if boxes in self._infos:
            out.boxes = parse_boxes_csv(self.read_bytes(boxes).decode("utf-8"), f"{self.path}:{boxes}")
        return out

    def _info(self, name: str) -> zipfile.ZipInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise ImgSuiteError(f"no member {name!r} in the container", self.path) from None


def open_hsi(path: str | os.PathLike, strict: bool = False, allow_compressed: bool = False) -> HsiFile:
    """Open a ``.hsi`` container; see :class:`HsiFile`."""
    return HsiFile(path, strict, allow_compressed)


def safe_member_name(name: str, path=None) -> str:
    """Refuse member names that could escape a folder (absolute, ``..``, drive letters, backslashes)."""
    posix = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or posix.is_absolute()
        or ".." in posix.parts
        or (len(name) > 1 and name[1] == ":")
    ):
        raise ImgSuiteError(f"unsafe member name {name!r} in the container (absolute or '..')", path)
    return name


def _reference_and_label_members(path, cube, header, frames, *, reference_headers, labels, interleave, byte_order):
    """The calibration frames' and the labels' members of :func:`write_hsi` (``header`` names the labels' files)."""
    if labels is not None:
        if labels.classification is not None:
            header["classification file"] = f"{CLASSIFICATION}.envi"
        if labels.boxes:
            header["bounding boxes"] = BOXES
    members: list[tuple[str, np.ndarray, EnviHeader]] = []
    refs = reference_headers or {}
    for stem, frame in frames.items():
        if frame is not None:
            frame = _as_frame(frame, cube, stem, path)
            members.append((stem, frame, header_for(frame, refs.get(stem.split("/")[-1]), interleave, byte_order)))
    if labels is not None:
        members += _label_members(labels, cube, path)
    return members


def write_hsi(
    path: str | os.PathLike,
    cube: np.ndarray,
    header: EnviHeader | dict | None = None,
    *,
    interleave: str = "bil",
    byte_order: int = 0,
    white: np.ndarray | None = None,
    black: np.ndarray | None = None,
    white_after: np.ndarray | None = None,
    reference_headers: dict[str, dict] | None = None,
    labels: Labels | None = None,
    metadata: dict[str, bytes] | None = None,
    previews: tuple[int, ...] = (1, 2),
    thumbnail: bool = True,
    progress: ProgressCallback | None = None,
    **fields,
) -> EnviHeader:
    """Write a ``.hsi`` container (atomically; every member stored, not deflated).

    Parameters
    ----------
    path : path
        The ``.hsi`` to write.
    cube : numpy.ndarray
        ``(lines, samples, bands)``; its dtype becomes the ENVI data type.
    header : EnviHeader or dict, optional
        Fields to keep (sizes, type, interleave, byte order are set from the cube).
    interleave, byte_order :
        How ``data.envi`` is laid out.
    white, black, white_after : numpy.ndarray, optional
        Calibration frames ``(lines or 1, samples, bands)``.
    reference_headers : dict, optional
        Extra header fields per reference (``{"white": {"acquisition time": ...}}``).
    labels : Labels, optional
        Classification, masks and boxes for ``Exploration/``.
    metadata : dict, optional
        ``name -> bytes`` stored under ``Metadata/``.
    previews : tuple of int
        Levels of detail: ``preview_<lod>`` binned by ``2**lod``.
    thumbnail : bool
        Write ``thumbnail.jpg`` and the RGB ``preview``.
    **fields :
        More header fields (``wavelength=[...]``, ``read_procedures=[...]``).
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    EnviHeader
        ``data.hdr`` as written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.hsi"
    >>> header = write_hsi(f, np.ones((4, 5, 3), np.uint16), white=np.full((1, 5, 3), 2, np.uint16))
    >>> header["lines"], header["samples"], header["bands"]
    ('4', '5', '3')
    """
    from ..io.atomic import atomic_path  # imported here: reading must not pull in SimpleITK

    progress = progress or no_progress
    path = Path(path)
    header = header_for(cube, header, interleave, byte_order, **fields)
    frames = {WHITE: white, BLACK: black, WHITE_AFTER: white_after}
    members = _reference_and_label_members(
        path, cube, header, frames,
        reference_headers=reference_headers, labels=labels, interleave=interleave, byte_order=byte_order,
    )  # fmt: skip
    rgb = rgb_composite(cube, header) if thumbnail else None
    members += _preview_members(cube, header, interleave, previews, rgb)
    total = cube.nbytes + sum(m[1].nbytes for m in members)
    done = 0
    large = cube.nbytes >= LARGE
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if large:
            # data.envi goes first with its numbers on a 2 MiB boundary, exactly as in a plain file, so
            # the page cache and the memory map can use huge pages. The bytes before the first local
            # header are allowed by the ZIP format (as in self-extracting archives) and left as a hole.
            f.seek(_lead_in(f"{DATA}.envi", cube.nbytes))
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            if not large:
                zf.writestr(_zinfo(f"{DATA}.hdr"), format_header(header))
            for stem, array, head in [(DATA, cube, header)] + members:
                _write_member(zf, stem, array, head, large)
                done += array.nbytes
                progress(done / total, f"wrote {stem}")
            if thumbnail:
                zf.writestr(_zinfo("thumbnail.jpg"), thumbnail_jpeg(rgb))
            if labels is not None and labels.boxes:
                zf.writestr(_zinfo(BOXES), format_boxes_csv(labels.boxes))
            for name, data in (metadata or {}).items():
                zf.writestr(_zinfo(f"Metadata/{safe_member_name(name, path)}"), data)
    progress(1.0, "container written")
    return header


def _write_member(zf: zipfile.ZipFile, stem: str, array: np.ndarray, head: EnviHeader, large: bool) -> None:
    """``<stem>.hdr`` and ``<stem>.envi`` (aligned). In a large container ``data.envi`` comes first, on a
    huge-page boundary, and its header after it; ``write_hsi`` wrote a small container's ``data.hdr`` already."""
    if stem != DATA:
        zf.writestr(_zinfo(f"{stem}.hdr"), format_header(head))
    align = HUGE_ALIGN if large and stem == DATA else ALIGN
    _write_aligned(zf, f"{stem}.envi", encoded_chunks(array, head), array.nbytes, align)
    if large and stem == DATA:
        zf.writestr(_zinfo(f"{DATA}.hdr"), format_header(head))


def _label_members(labels: Labels, cube: np.ndarray, path: Path) -> list[tuple[str, np.ndarray, EnviHeader]]:
    """The classification plane and one plane per mask, as ``(stem, array, header)`` members."""
    members = []
    if labels.classification is not None:
        classes = np.asarray(labels.classification)
        _check_plane(classes, cube, "classification", path)
        plane = classes.astype(np.uint8 if classes.max(initial=0) < 256 else np.uint16)[:, :, None]
        fields_ = classification_fields(labels.class_names, labels.class_colors or None)
        members.append((CLASSIFICATION, plane, header_for(plane, fields_)))
    for name, mask in labels.masks.items():
        _check_plane(np.asarray(mask), cube, f"mask {name!r}", path)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "mask"
        while any(stem == f"{MASKS}{safe}" for stem, _, _ in members):  # names that clean up alike
            safe += "_"
        plane = np.asarray(mask, dtype=np.uint8)[:, :, None]
        members.append((f"{MASKS}{safe}", plane, header_for(plane, {"class": name})))
    return members


def _preview_members(cube, header, interleave, previews, rgb) -> list[tuple[str, np.ndarray, EnviHeader]]:
    """The RGB ``preview`` (when ``rgb`` is given) and the binned ``preview_<lod>`` levels."""
    members = []
    if rgb is not None:
        members.append(("preview", rgb, header_for(rgb, {"wavelength": _rgb_wavelengths(header)}, interleave="bip")))
    for lod in previews:
        binned = bin_cube(cube, 2**lod)
        if binned.shape[0] and binned.shape[1]:
            keep = {k: header[k] for k in ("wavelength", "wavelength units", "fwhm", "band names") if k in header}
            members.append((f"preview_{lod}", binned, header_for(binned, keep, interleave)))
        else:
            import warnings

            warnings.warn(f"preview level {lod} bins {2**lod} x {2**lod} pixels, more than the {cube.shape[0]} x "
                          f"{cube.shape[1]} cube holds: not written", stacklevel=2)
    return members


def rgb_composite(cube: np.ndarray, header: EnviHeader | None = None, bands: list[int] | None = None) -> np.ndarray:
    """A ``(lines, samples, 3)`` float32 image in [0, 1] from three bands.

    Bands: ``bands``, else the header's ``default bands`` (1-based, ENVI), else those nearest 640,
    550, 460 nm, else the first, middle and last. Each channel is stretched between its 2nd and
    98th percentiles.
    """
    chosen = bands if bands is not None else default_rgb_bands(header, cube.shape[2])
    rgb = np.stack([np.asarray(cube[:, :, b], dtype=np.float32) for b in chosen], axis=-1)
    lo, hi = np.percentile(rgb.reshape(-1, 3), [2, 98], axis=0)
    return np.clip((rgb - lo) / np.where(hi > lo, hi - lo, 1), 0, 1).astype(np.float32)


def default_rgb_bands(header: EnviHeader | None, bands: int) -> list[int]:
    """0-based band indices for an RGB composite (see :func:`rgb_composite`)."""
    if header is not None and "default bands" in header:
        chosen = [int(float(v)) - 1 for v in header["default bands"]][:3]
        if len(chosen) == 3 and all(0 <= b < bands for b in chosen):
            return chosen
    wavelengths = None if header is None else header.wavelengths
    # ENVI also writes "um", and non-lengths (Wavenumber, GHz, Index, Unknown): compared with 640 nm as they were,
    # those put all three channels on one band (a grey picture); only a length unit turns into nanometres
    scale = None if header is None else length_in(header.get("wavelength units", "nm"), "nm")
    if wavelengths is not None and scale and len(wavelengths) == bands and np.ptp(wavelengths) > 0:
        return [int(np.argmin(np.abs(wavelengths * scale - w))) for w in (640.0, 550.0, 460.0)]
    return [0, bands // 2, bands - 1]


def bin_cube(cube: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` pixel blocks (edges that do not fill a block are dropped); float32."""
    lines, samples = (cube.shape[0] // factor) * factor, (cube.shape[1] // factor) * factor
    out = np.zeros((lines // factor, samples // factor, cube.shape[2]), np.float32)
    for start in range(0, lines, factor * 64):  # a band of rows at a time keeps memory small
        block = np.asarray(cube[start : min(start + factor * 64, lines), :samples], dtype=np.float32)
        rows = block.shape[0] // factor
        out[start // factor : start // factor + rows] = block.reshape(rows, factor, -1, factor, cube.shape[2]).mean(
            axis=(1, 3)
        )
    return out


def thumbnail_jpeg(rgb: np.ndarray, size: int = 256) -> bytes:
    from PIL import Image

    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _rgb_wavelengths(header: EnviHeader) -> list[float] | None:
    wavelengths = header.wavelengths
    if wavelengths is None:
        return [1, 2, 3]
    return [float(wavelengths[b]) for b in default_rgb_bands(header, len(wavelengths))]


def _as_frame(frame: np.ndarray, cube: np.ndarray, stem: str, path) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[None]
    if frame.ndim != 3 or frame.shape[1:] != cube.shape[1:]:
        raise ImgSuiteError(f"{stem} frame {frame.shape} does not fit the cube {cube.shape} (samples, bands)", path)
    return frame


def _check_plane(plane: np.ndarray, cube: np.ndarray, what: str, path) -> None:
    if plane.shape != cube.shape[:2]:
        raise ImgSuiteError(f"{what} is {plane.shape}, the cube is {cube.shape[:2]} (lines, samples)", path)


def _zinfo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _local_header_size(name: str, nbytes: int) -> int:
    """Bytes from a member's local header to its data, before padding (6 = our alignment field)."""
    zip64 = nbytes * 1.05 > zipfile.ZIP64_LIMIT  # zipfile's own rule for a ZIP64 local header
    return 30 + len(name.encode("utf-8")) + (20 if zip64 else 0) + 6


def _lead_in(name: str, nbytes: int) -> int:
    """Bytes before the first local header that put the first member's data on a ``HUGE_ALIGN`` boundary."""
    return (-_local_header_size(name, nbytes)) % HUGE_ALIGN


def _write_aligned(zf: zipfile.ZipFile, name: str, chunks, nbytes: int, align: int = ALIGN) -> None:
    """Write a stored member whose data starts on an ``align`` boundary (padding in the local extra field)."""
    info = _zinfo(name)
    info.file_size = nbytes
    zip64 = nbytes * 1.05 > zipfile.ZIP64_LIMIT
    pad = (-(zf.start_dir + _local_header_size(name, nbytes))) % align
    if pad > 0xFFFF - 6:  # the extra field cannot hold more; fall back to the page boundary
        align, pad = ALIGN, (-(zf.start_dir + _local_header_size(name, nbytes))) % ALIGN
    info.extra = struct.pack("<HHH", 0xD935, 2 + pad, align % 0x10000) + b"\0" * pad  # zipalign's field id
    with zf.open(info, "w", force_zip64=zip64) as out:
        for chunk in chunks:
            out.write(chunk)


def _stem(name: str) -> str:
    for suffix in (".envi", ".hdr", ".raw", ".img"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _method(info: zipfile.ZipInfo) -> str:
    return {zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}.get(
        info.compress_type, f"method {info.compress_type}"
    )
