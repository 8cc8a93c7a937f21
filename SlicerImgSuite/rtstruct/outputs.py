"""Structure-set outputs in plastimatch's formats, plus Slicer's ``.seg.nrrd``.

- labelmap: one label value per structure (structure i -> i + 1; a later structure wins an overlap);
- ss-img: bit i set when the voxel is inside structure i (uint32; uint64 for 33-64 structures;
  a vector image of uint64 words beyond that);
- ss-list: plastimatch's text list ``index|r g b|name``;
- prefix: one uint8 0/1 image per structure, named after it;
- seg.nrrd: a Slicer segmentation (binary-labelmap layers, names and colours).
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..io import atomic_path, write_image
from .rasterize import Grid, RoiMask


def labelmap(masks: Sequence[RoiMask], reference: sitk.Image) -> sitk.Image:
    """One image, structure ``i`` (0-based) labelled ``i + 1``; where structures overlap the later one wins."""
    grid = Grid.of(reference)
    dtype = np.uint8 if len(masks) < 256 else np.uint16
    out = np.zeros(grid.size[::-1], dtype)
    for n, m in enumerate(masks):
        if m.array.size:
            i, j, k = m.offset
            nz, ny, nx = m.array.shape
            view = out[k : k + nz, j : j + ny, i : i + nx]
            view[_binary(m.array)] = n + 1
    return grid.image(out)


def ss_image(masks: Sequence[RoiMask], reference: sitk.Image) -> sitk.Image:
    """plastimatch's structure-set image: bit ``i`` set when the voxel is inside structure ``i``."""
    grid = Grid.of(reference)
    words = max(1, (len(masks) + 63) // 64)
    dtype = np.uint32 if len(masks) <= 32 else np.uint64
    out = np.zeros((words, *grid.size[::-1]), dtype)
    for n, m in enumerate(masks):
        if m.array.size:
            i, j, k = m.offset
            nz, ny, nx = m.array.shape
            view = out[n // 64, k : k + nz, j : j + ny, i : i + nx]
            view[_binary(m.array)] |= dtype(1 << (n % 64))
    if words == 1:
        return grid.image(out[0])
    image = sitk.GetImageFromArray(np.moveaxis(out, 0, -1), isVector=True)
    image.CopyInformation(grid.image(out[0]))
    return image


def masks_from_ss_image(ss_img: sitk.Image, count: int) -> list[np.ndarray]:
    """The ``count`` boolean masks (z, y, x) stored in an ss-img (inverse of :func:`ss_image`)."""
    array = sitk.GetArrayViewFromImage(ss_img)
    if ss_img.GetNumberOfComponentsPerPixel() == 1:
        array = array[..., None]
    array = array.astype(np.uint64, copy=False)
    return [(array[..., n // 64] >> np.uint64(n % 64)) & np.uint64(1) != 0 for n in range(count)]


def ss_list_text(masks: Sequence[RoiMask]) -> str:
    """plastimatch's ss-list: one line ``index|r g b|name`` per structure."""
    return "".join(f"{n}|{r} {g} {b}|{m.roi.name}\n" for n, m in enumerate(masks) for r, g, b in [m.roi.color])


def read_ss_list(path: str | os.PathLike) -> list[tuple[int, tuple[int, int, int], str]]:
    """Parse a plastimatch ss-list file into ``(index, (r, g, b), name)`` rows."""
    rows = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ImgSuiteError(f"cannot read structure list ({exc.strerror})", path) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("|", 2)
        try:
            color = tuple(int(v) for v in parts[1].split())
            rows.append((int(parts[0]), color if len(color) == 3 else (255, 0, 0), parts[2].strip()))
        except (IndexError, ValueError):
            raise ImgSuiteError(f"line {number} is not 'index|r g b|name': {line!r}", path) from None
    return rows


def safe_name(name: str) -> str:
    """A structure name made safe for a file name (``Lt Lung/2`` -> ``Lt_Lung_2``)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "structure"


def write_prefix(masks: Sequence[RoiMask], reference: sitk.Image, folder, fmt: str = "nrrd") -> list[Path]:
    """One uint8 0/1 image per structure in ``folder`` (plastimatch ``--output-prefix``).

    Files are compressed: a mask shrinks about a thousandfold, so 100 structures on a large CT
    write megabytes instead of gigabytes.
    """
    grid = Grid.of(reference)
    folder = Path(folder)
    written, seen = [], {}
    for m in masks:
        stem = safe_name(m.roi.name)
        seen[stem] = seen.get(stem, 0) + 1
        if seen[stem] > 1:
            stem = f"{stem}_{seen[stem]}"
        path = folder / f"{stem}.{fmt.lstrip('.')}"
        mask = m.full(grid, np.uint8) if m.array.dtype == bool else _binary_full(m, grid)
        write_image(grid.image(mask), path, compress=True)
        written.append(path)
    return written


def write_seg_nrrd(masks: Sequence[RoiMask], reference: sitk.Image, path) -> Path:
    """Write a Slicer segmentation file (``.seg.nrrd``): binary-labelmap layers, one segment per structure.

    Structures that overlap go to separate layers (a 4D NRRD with a ``list`` axis), as Slicer does.
    """
    grid = Grid.of(reference)
    layers: list[np.ndarray] = []
    info = []
    for n, m in enumerate(masks):
        full = _binary_full(m, grid).astype(bool)
        for layer_index, layer in enumerate(layers):  # noqa: B007 - used after the loop (for-else)
            if not np.any(layer[full]):
                break
        else:
            layers.append(np.zeros(grid.size[::-1], np.uint8))
            layer_index = len(layers) - 1
        label = int(layers[layer_index].max()) + 1
        layers[layer_index][full] = label
        info.append((n, m, layer_index, label, full))
    if not layers:
        layers.append(np.zeros(grid.size[::-1], np.uint8))
    fields = {
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
        "Segmentation_ConversionParameters": "",
    }
    for n, m, layer_index, label, full in info:
        nz = np.nonzero(full)
        if nz[0].size:
            extent = f"{nz[2].min()} {nz[2].max()} {nz[1].min()} {nz[1].max()} {nz[0].min()} {nz[0].max()}"
        else:
            extent = "0 -1 0 -1 0 -1"
        fields.update(
            {
                f"Segment{n}_ID": f"Segment_{n + 1}",
                f"Segment{n}_Name": m.roi.name,
                f"Segment{n}_NameAutoGenerated": "0",
                f"Segment{n}_Color": " ".join(f"{c / 255:.6g}" for c in m.roi.color),
                f"Segment{n}_ColorAutoGenerated": "0",
                f"Segment{n}_LabelValue": str(label),
                f"Segment{n}_Layer": str(layer_index),
                f"Segment{n}_Extent": extent,
                f"Segment{n}_Tags": "|",
            }
        )
    data = np.stack(layers, axis=-1) if len(layers) > 1 else layers[0]
    axes = grid.direction.T * grid.spacing[:, None]  # row i = physical step along axis i
    directions = " ".join("(" + ",".join(f"{v:.17g}" for v in row) + ")" for row in axes)
    header = ["NRRD0004", "type: unsigned char", f"dimension: {data.ndim}", "space: left-posterior-superior"]
    sizes = list(grid.size)
    if len(layers) > 1:
        header += [f"sizes: {len(layers)} {' '.join(map(str, sizes))}", f"space directions: none {directions}"]
        header.append("kinds: list domain domain domain")
    else:
        header += [f"sizes: {' '.join(map(str, sizes))}", f"space directions: {directions}"]
        header.append("kinds: domain domain domain")
    header += ["encoding: gzip", "space origin: (" + ",".join(f"{v:.17g}" for v in grid.origin) + ")"]
    header += [f"{k}:={v}" for k, v in fields.items()]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(("\n".join(header) + "\n\n").encode("utf-8"))
            f.write(gzip.compress(np.ascontiguousarray(data).tobytes(), compresslevel=1))
    return Path(path)


def _binary(array: np.ndarray) -> np.ndarray:
    """Boolean view of a mask; a coverage fraction counts when at least half the voxel is covered."""
    return array if array.dtype == bool else array >= 0.5


def _binary_full(m: RoiMask, grid: Grid) -> np.ndarray:
    out = np.zeros(grid.size[::-1], np.uint8)
    if m.array.size:
        i, j, k = m.offset
        nz, ny, nx = m.array.shape
        out[k : k + nz, j : j + ny, i : i + nx] = _binary(m.array)
    return out
