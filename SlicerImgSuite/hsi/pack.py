"""Build a ``.hsi`` from a plain ENVI cube, or from a folder holding a cube and its companions.

In a folder, headers are recognised by name (case-insensitive, anywhere below the folder):

- the cube: ``data.hdr``, else the one header that is none of the below
- white reference: ``*white*.hdr`` (``*white*after*.hdr`` is the white taken after the scan)
- black reference: ``*black*.hdr`` or ``*dark*.hdr``
- classification: a header with ``file type = ENVI Classification``
- binary masks: single-band headers with a ``class`` field (a cube may carry ``class`` too: it stays the cube)
- boxes: ``*box*.csv``; everything under ``Metadata/`` (or ``metadata/``) is kept as it is
- any other file under ``Reference/`` (a flat field, a lamp spectrum, a wavelength calibration) is kept there:
  ENVI pairs as ``Reference/<name>.hdr`` + ``.envi`` (readable as members), other files as they are
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback
from .envi import read_envi
from .envi_header import EnviHeader, read_header
from .labels import Labels, classes_from_header, parse_boxes_csv


def pack(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    interleave: str | None = None,
    previews: tuple[int, ...] = (1, 2),
    strict: bool = False,
    progress: ProgressCallback | None = None,
) -> EnviHeader:
    """Write ``output`` (.hsi) from ``source`` (an ENVI ``.hdr``/binary, or a folder; see module doc).

    Parameters
    ----------
    source : path
        An ENVI header (or its binary), or a folder holding the cube and its companions.
    output : path
        The ``.hsi`` to write (atomically).
    interleave : {"bil", "bip", "bsq"}, optional
        The container's layout (the source's by default).
    previews : tuple of int
        Levels of detail of the previews (see :func:`~SlicerImgSuite.hsi.container.write_hsi`).
    strict : bool
        Header checks (see :func:`~SlicerImgSuite.hsi.envi_header.layout`).
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    EnviHeader
        The ``data.hdr`` written.

    Examples
    --------
    >>> import tempfile
    >>> from .envi import write_envi
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_envi(folder / "scan.envi", np.ones((2, 3, 4), np.uint16), wavelength=[1, 2, 3, 4])
    >>> header = pack(folder / "scan.hdr", folder / "scan.hsi")
    >>> header["bands"], (folder / "scan.hsi").is_file()
    ('4', True)
    """
    from .container import write_hsi

    source = Path(source)
    if not source.exists():
        raise ImgSuiteError("no such file or folder", source)
    found = _classify(source) if source.is_dir() else {"data": source}
    if source.is_dir():
        _warn_left_out(source, found)
    cube, header = read_envi(found["data"], strict=strict)
    frames = {}
    for role in ("white", "black", "white_after"):
        if role in found:
            frames[role] = read_envi(found[role], strict=False)
    labels = Labels()
    if "classification" in found:
        classes, class_header = read_envi(found["classification"])
        labels.classification = np.asarray(classes[:, :, 0])
        labels.class_names, labels.class_colors = classes_from_header(class_header, found["classification"])
    for mask_path in found.get("masks", []):
        mask, mask_header = read_envi(mask_path)
        labels.masks[str(mask_header.get("class"))] = np.asarray(mask[:, :, 0]) != 0
    if "boxes" in found:
        labels.boxes = parse_boxes_csv(found["boxes"].read_text(encoding="utf-8"), found["boxes"])
    metadata = {
        str(p.relative_to(found["metadata"])).replace(os.sep, "/"): p.read_bytes()
        for p in found.get("metadata_files", [])
    }
    lay_interleave = str(header.get("interleave", "bsq")).lower()
    extra = _reference_members(found)
    options = dict(
        header=header, frames=frames, labels=labels, metadata=metadata, lay_interleave=lay_interleave,
        interleave=interleave, previews=previews, progress=progress,
    )  # fmt: skip
    if not extra:
        return _write(write_hsi, output, cube, **options)
    from ..io.atomic import atomic_path

    with atomic_path(output) as tmp:  # the container, then the other Reference/ files appended, all or nothing
        written = _write(write_hsi, tmp, cube, **options)
        import zipfile

        with zipfile.ZipFile(tmp, "a", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, data in extra.items():
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return written


def _write(write_hsi, output, cube, header, frames, labels, metadata, lay_interleave, interleave, previews, progress):
    return write_hsi(
        output,
        cube,
        _without_layout(header),
        interleave=interleave or (lay_interleave if lay_interleave in ("bsq", "bil", "bip") else "bil"),
        byte_order=int(header.get("byte order", 0) or 0),
        white=frames.get("white", (None,))[0],
        black=frames.get("black", (None,))[0],
        white_after=frames.get("white_after", (None,))[0],
        reference_headers={k: _without_layout(v[1]) for k, v in frames.items()},
        labels=labels if labels else None,
        metadata=metadata,
        previews=previews,
        progress=progress,
    )


def _reference_members(found: dict) -> dict[str, bytes]:
    """``Reference/...`` member name -> bytes for the calibration files that are not white/black/white_after."""
    from .container import safe_member_name
    from .envi import find_data_file

    out = {}
    for path, relative in found.get("reference_files", []):
        name = relative.replace(os.sep, "/")
        if path.suffix.lower() == ".hdr":
            stem = name[: -len(".hdr")]
            out[f"Reference/{safe_member_name(stem + '.hdr')}"] = path.read_bytes()
            out[f"Reference/{safe_member_name(stem + '.envi')}"] = find_data_file(path).read_bytes()
        elif name not in out:
            out[f"Reference/{safe_member_name(name)}"] = path.read_bytes()
    return out


def _without_layout(header: EnviHeader) -> EnviHeader:
    out = header.copy()
    for key in ("samples", "lines", "bands", "data type", "interleave", "byte order", "header offset"):
        out.pop(key, None)
    return out


def _warn_left_out(folder: Path, found: dict) -> None:
    """Say which files of the folder the container will not hold (nothing is dropped silently)."""
    headers = [v for k, v in found.items() if k in ("data", "white", "black", "white_after", "classification")]
    headers += found["masks"] + [p for p, _ in found.get("reference_files", []) if p.suffix.lower() == ".hdr"]
    kept = [p for p, _ in found.get("reference_files", [])]
    used = {p.resolve() for p in [*headers, *kept, *found.get("metadata_files", []), found.get("boxes", folder)]}
    stems = {(h.parent.resolve(), h.stem) for h in headers}  # an ENVI binary shares its header's stem
    left = [
        p for p in sorted(folder.rglob("*"))
        if p.is_file() and p.resolve() not in used and (p.parent.resolve(), p.stem) not in stems
        and (p.parent.resolve(), p.name) not in stems  # binaries without a suffix (``cube`` beside ``cube.hdr``)
    ]  # fmt: skip
    if left:
        names = ", ".join(str(p.relative_to(folder)) for p in left)
        warnings.warn(f"{folder}: not packed (not a recognised member; put it under Metadata/ to keep it): {names}",
                      stacklevel=3)  # fmt: skip


def _reference_files(folder: Path, found: dict) -> None:
    """Files under a ``Reference/`` folder that are not the white/black frames (nor their binaries)."""
    used = {found[k].resolve() for k in ("white", "black", "white_after") if k in found}
    used_stems = {(p.parent, p.stem) for p in used}
    for ref in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.lower() == "reference"):
        for path in sorted(ref.rglob("*")):
            if path.is_file() and path.resolve() not in used and (path.resolve().parent, path.stem) not in used_stems:
                if (path.resolve().parent, path.name) in used_stems or _is_binary_of_header(path):
                    continue  # the binary of an ENVI pair: written with its header
                found["reference_files"].append((path, str(path.relative_to(ref))))


def _is_binary_of_header(path: Path) -> bool:
    return path.suffix.lower() != ".hdr" and (
        path.with_suffix(".hdr").is_file() or path.with_name(path.name + ".hdr").is_file()
    )


def _classify(folder: Path) -> dict:
    found: dict = {"masks": [], "reference_files": []}
    others = []
    for hdr in sorted(folder.rglob("*.hdr")):
        name = hdr.stem.lower()
        folders = [part.lower() for part in hdr.relative_to(folder).parts[:-1]]
        if "metadata" in folders:
            continue
        header = read_header(hdr)
        if str(header.get("file type", "")).lower() == "envi classification":
            found["classification"] = hdr
        elif name == "data":
            found["data"] = hdr
        elif "class" in header and str(header.get("bands", "1")).strip() == "1":
            found["masks"].append(hdr)
        elif "white" in name:
            found["white_after" if "after" in name else "white"] = hdr
        elif "black" in name or "dark" in name:
            found["black"] = hdr
        elif "reference" in folders:
            continue  # another calibration file: kept under Reference/ below
        else:
            others.append(hdr)
    if "data" not in found:
        if len(others) != 1:
            listed = ", ".join(p.name for p in others) or "none"
            raise ImgSuiteError(
                f"cannot tell which header is the cube (candidates: {listed}); name it data.hdr", folder
            )
        found["data"] = others[0]
    _reference_files(folder, found)
    boxes = sorted(p for p in folder.rglob("*.csv") if "box" in p.name.lower())
    if boxes:
        found["boxes"] = boxes[0]
    for name in ("Metadata", "metadata"):
        if (folder / name).is_dir():
            found["metadata"] = folder / name
            found["metadata_files"] = [p for p in sorted((folder / name).rglob("*")) if p.is_file()]
            break
    return found
