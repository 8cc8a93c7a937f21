"""Make damaged copies of DICOM files for the damaged-input tests (raw tag values, truncated pixels)."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement


def set_raw(ds: pydicom.Dataset, keyword: str, text: str | None) -> None:
    """Put ``text`` as the raw bytes of tag ``keyword`` (any text, even where a number is due); ``None`` deletes it."""
    tag = tag_for_keyword(keyword)
    if text is None:
        if tag in ds:
            del ds[tag]
        return
    value = text.encode("latin-1")
    if len(value) % 2:
        value += b" "
    ds._dict[pydicom.tag.Tag(tag)] = RawDataElement(
        pydicom.tag.Tag(tag), dictionary_VR(tag), len(value), value, 0, False, True
    )


def damage_file(path: Path, keyword: str, text: str | None, out: Path | None = None) -> Path:
    """Rewrite ``path`` (or write ``out``) with tag ``keyword`` set to raw ``text``."""
    ds = pydicom.dcmread(path)
    set_raw(ds, keyword, text)
    out = out or path
    ds.save_as(out, enforce_file_format=True)
    return out


def cut_pixels(path: Path, keep: float = 0.5) -> None:
    """Keep only a fraction of the PixelData bytes, with a consistent element length (a 'valid' short slice)."""
    ds = pydicom.dcmread(path)
    data = ds.PixelData
    n = int(len(data) * keep) // 2 * 2
    ds.PixelData = data[:n]
    ds.save_as(path, enforce_file_format=True)
