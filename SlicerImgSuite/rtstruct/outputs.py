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
    """The ``count`` boolean masks (z, y, x) stored in an ss-img (inverse of :func:`ss_image`).

    Bit ``n`` lies in component ``n // B``, bit ``n % B``, B the bits of one component: 32 or 64 for ours,
    8 for plastimatch's (a vector of uchar planes).

    Parameters
    ----------
    ss_img : SimpleITK.Image
        The structure-set image (one or more integer components).
    count : int
        How many structures it holds.

    Returns
    -------
    list of numpy.ndarray
        One boolean (z, y, x) array per structure, in bit order.

    Examples
    --------
    >>> bits = sitk.GetImageFromArray(np.array([[[0, 1, 2, 3]]], np.uint32))  # bit 0, bit 1, both
    >>> [m.ravel().tolist() for m in masks_from_ss_image(bits, 2)]
    [[False, True, False, True], [False, False, True, True]]
    """
    array = sitk.GetArrayViewFromImage(ss_img)
    if ss_img.GetNumberOfComponentsPerPixel() == 1:
        array = array[..., None]
    if not np.issubdtype(array.dtype, np.integer):
        raise ImgSuiteError(f"a structure-set image holds integer bits, not {array.dtype}")
    width = array.dtype.itemsize * 8
    if count > width * array.shape[-1]:
        raise ImgSuiteError(
            f"the structure list names {count} structures; the image holds {width * array.shape[-1]} bits"
        )
    array = array.astype(np.uint64, copy=False)
    return [(array[..., n // width] >> np.uint64(n % width)) & np.uint64(1) != 0 for n in range(count)]


def colormap_text(masks: Sequence[RoiMask]) -> str:
    """plastimatch's ``--output-colormap``: a Slicer colour table, ``label name r g b a``, label i + 1 (as the labelmap)."""
    rows = ["0 Background 0 0 0 255"]
    rows += [
        f"{n + 1} {m.roi.name.replace(' ', '_')} {r} {g} {b} 255"
        for n, m in enumerate(masks)
        for r, g, b in [m.roi.color]
    ]
    return "\n".join(rows) + "\n"


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
    written = []
    for m, stem in zip(masks, unique_stems(m.roi.name for m in masks)):
        path = Path(folder) / f"{stem}.{fmt.lstrip('.')}"
        mask = m.full(grid, np.uint8) if m.array.dtype == bool else _binary_full(m, grid)
        write_image(grid.image(mask), path, compress=True)
        written.append(path)
    return written


def unique_stems(names) -> list[str]:
    """File stems for structure names: :func:`safe_name`, a second ``GTV`` becoming ``GTV_2``."""
    stems, seen = [], {}
    for name in names:
        stem = safe_name(name)
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems


def write_prefix_fcsv(rois, folder) -> list[Path]:
    """plastimatch's ``--output-prefix-fcsv``: one Slicer ``.fcsv`` per structure holding every contour point.

    Points are named ``p-000``, ``p-001`` ... in contour order, as plastimatch names them. The files are
    Slicer's markups fcsv with ``CoordinateSystem = RAS``: Slicer reads the header, plastimatch (which
    ignores it and assumes RAS) reads them right too. A structure without contours gives a file without points.
    """
    written = []
    for roi, stem in zip(rois, unique_stems(r.name for r in rois)):
        points = np.concatenate([c.points for c in roi.contours]) if roi.contours else np.zeros((0, 3))
        path = Path(folder) / f"{stem}.fcsv"
        path.write_text(fcsv_text(points * [-1, -1, 1], [f"p-{n:03d}" for n in range(len(points))], "RAS"))
        written.append(path)
    return written


def fcsv_text(points, labels, coordinates: str = "LPS") -> str:
    """Slicer's markups ``.fcsv`` (format 4.11) for (N, 3) points given in ``coordinates`` (RAS or LPS)."""
    head = f"# Markups fiducial file version = 4.11\n# CoordinateSystem = {coordinates}\n"
    head += "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n"
    rows = (f"{n + 1},{x:.6f},{y:.6f},{z:.6f},0,0,0,1,1,1,0,{label},," for n, ((x, y, z), label) in
            enumerate(zip(np.asarray(points, float).reshape(-1, 3), (str(v).replace(",", "_") for v in labels))))  # fmt: skip
    return head + "".join(row + "\n" for row in rows)


def write_seg_nrrd(masks: Sequence[RoiMask], reference: sitk.Image, path) -> Path:
    """Write a Slicer segmentation file (``.seg.nrrd``): binary-labelmap layers, one segment per structure.

    Structures that overlap go to separate layers (a 4D NRRD with a ``list`` axis), as Slicer does.
    No full-grid array is held: each structure stays in its tight bounding box and the file is
    compressed one slice at a time (100 ROIs on 512x512x300 would otherwise need gigabytes).
    """
    grid = Grid.of(reference)
    tight = [_tight(m) for m in masks]
    layers, labels = _seg_layers(tight)
    n_layers = max(layers, default=0) + 1
    fields = {
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
        "Segmentation_ConversionParameters": "",
    }
    for n, (m, t, layer, label) in enumerate(zip(masks, tight, layers, labels)):
        fields.update(_segment_fields(n, m, t, layer, label))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(_seg_header(grid, n_layers, fields))
        # filename "" and mtime 0: the gzip header carries neither the temporary name nor the time
        with gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=f, mtime=0) as gz:
            for z in range(grid.size[2]):
                gz.write(_seg_slice(z, grid, tight, layers, labels, n_layers).tobytes())
    return Path(path)


def _tight(m: RoiMask) -> RoiMask | None:
    """``m`` as a boolean mask cropped to its voxels; None when it has none."""
    if not m.array.size:
        return None
    binary = _binary(m.array)
    spans = [np.nonzero(binary.any(axis=other))[0] for other in ((1, 2), (0, 2), (0, 1))]  # z, y, x
    if not spans[0].size:
        return None
    (z0, z1), (y0, y1), (x0, x1) = [(int(s[0]), int(s[-1]) + 1) for s in spans]
    i, j, k = m.offset
    return RoiMask(m.roi, (i + x0, j + y0, k + z0), binary[z0:z1, y0:y1, x0:x1])


def _seg_layers(tight: Sequence[RoiMask | None]) -> tuple[list[int], list[int]]:
    """Slicer's layering: each segment goes to the first layer it does not overlap; labels count up per layer."""
    members: list[list[RoiMask]] = []
    layers, labels = [], []
    for t in tight:
        free = (n for n, others in enumerate(members) if t is None or not any(_overlap(t, o) for o in others))
        layer = next(free, len(members))
        if layer == len(members):
            members.append([])
        if t is not None:
            members[layer].append(t)
        layers.append(layer)
        labels.append(layers.count(layer))  # distinct even for empty segments
    return layers, labels


def _overlap(a: RoiMask, b: RoiMask) -> bool:
    """Whether two cropped boolean masks share a voxel (only their boxes' intersection is looked at)."""
    lo = np.maximum(a.offset, b.offset)
    hi = np.minimum(np.add(a.offset, a.array.shape[::-1]), np.add(b.offset, b.array.shape[::-1]))
    if np.any(hi <= lo):
        return False

    def part(m: RoiMask) -> np.ndarray:
        s, e = lo - m.offset, hi - m.offset
        return m.array[s[2] : e[2], s[1] : e[1], s[0] : e[0]]

    return bool(np.any(part(a) & part(b)))


def _segment_fields(n: int, m: RoiMask, t: RoiMask | None, layer: int, label: int) -> dict[str, str]:
    if t is None:
        extent = "0 -1 0 -1 0 -1"
    else:
        (i, j, k), (nz, ny, nx) = t.offset, t.array.shape
        extent = f"{i} {i + nx - 1} {j} {j + ny - 1} {k} {k + nz - 1}"
    return {
        f"Segment{n}_ID": f"Segment_{n + 1}",
        f"Segment{n}_Name": m.roi.name,
        f"Segment{n}_NameAutoGenerated": "0",
        f"Segment{n}_Color": " ".join(f"{c / 255:.6g}" for c in m.roi.color),
        f"Segment{n}_ColorAutoGenerated": "0",
        f"Segment{n}_LabelValue": str(label),
        f"Segment{n}_Layer": str(layer),
        f"Segment{n}_Extent": extent,
        f"Segment{n}_Tags": "|",
    }


def _seg_header(grid: Grid, n_layers: int, fields: dict[str, str]) -> bytes:
    axes = grid.direction.T * grid.spacing[:, None]  # row i = physical step along axis i
    directions = " ".join("(" + ",".join(f"{v:.17g}" for v in row) + ")" for row in axes)
    header = ["NRRD0004", "type: unsigned char", f"dimension: {4 if n_layers > 1 else 3}"]
    header.append("space: left-posterior-superior")
    sizes = " ".join(map(str, grid.size))
    if n_layers > 1:
        header += [f"sizes: {n_layers} {sizes}", f"space directions: none {directions}"]
        header.append("kinds: list domain domain domain")
    else:
        header += [f"sizes: {sizes}", f"space directions: {directions}", "kinds: domain domain domain"]
    header += ["encoding: gzip", "space origin: (" + ",".join(f"{v:.17g}" for v in grid.origin) + ")"]
    header += [f"{k}:={v}" for k, v in fields.items()]
    return ("\n".join(header) + "\n\n").encode("utf-8")


def _seg_slice(z: int, grid: Grid, tight, layers, labels, n_layers: int) -> np.ndarray:
    """Slice ``z`` of the segmentation data: (y, x, layer) uint8, the layer axis fastest as the NRRD wants."""
    out = np.zeros((grid.size[1], grid.size[0], n_layers), np.uint8)
    for t, layer, label in zip(tight, layers, labels):
        if t is not None and t.offset[2] <= z < t.offset[2] + t.array.shape[0]:
            (i, j, k), (_, ny, nx) = t.offset, t.array.shape
            out[j : j + ny, i : i + nx, layer][t.array[z - k]] = label
    return out


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


def simplify_rois(rois, percent: float) -> list:
    """plastimatch's ``--simplify-perc``: each closed contour keeps floor(n (100 - percent) / 100) of its n points
    (at least 3), as plastimatch counts them. plastimatch drops points at random; here the point whose triangle with
    its two neighbours has the smallest area goes first (Visvalingam-Whyatt), so straight runs thin out before corners
    and two runs give the same contours.

    Examples
    --------
    >>> from .structure_set import Contour, Roi
    >>> square = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [2, 2, 0], [1, 2, 0], [0, 2, 0]], float)
    >>> simplify_rois([Roi(1, "S", contours=[Contour(square)])], 30)[0].contours[0].points[:, :2].tolist()
    [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]
    """
    import dataclasses

    if not 0 <= percent < 100:
        raise ImgSuiteError(f"--simplify-perc must be at least 0 and below 100, got {percent:g}")
    out = []
    for roi in rois:
        contours = []
        for c in roi.contours:
            keep = max(3, int(np.floor(len(c.points) * (100 - percent) / 100 + 1e-9)))
            closed = c.kind == "CLOSED_PLANAR" and len(c.points) > keep
            contours.append(dataclasses.replace(c, points=_visvalingam(c.points, keep)) if closed else c)
        out.append(dataclasses.replace(roi, contours=contours))
    return out


def _visvalingam(points: np.ndarray, keep: int) -> np.ndarray:
    """Drop the point of least triangle area (with its neighbours, closed polygon) until ``keep`` remain."""
    index = list(range(len(points)))
    while len(index) > keep:
        p = points[index]
        area = np.linalg.norm(np.cross(np.roll(p, 1, 0) - p, np.roll(p, -1, 0) - p), axis=1)
        del index[int(np.argmin(area))]
    return points[index]
