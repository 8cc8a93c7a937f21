"""Projection sets on disk: plastimatch folders, image stacks with a JSON geometry sidecar, DICOM folders.

- plastimatch: a folder of ``imageNNNN.pfm`` (or ``.raw``) + ``imageNNNN.txt``, exactly as
  ``plastimatch drr -t pfm -O DIR/image`` writes them and ``plastimatch fdk -I DIR`` reads them.
  The ``.txt`` holds the image centre (principal point, pixels), the 3x4 matrix, SAD, SID and the normal.
  Pixel rows are stored top row first (plastimatch does not flip PFM rows).
- stack: a 3-D ``.mha``/``.nrrd``/``.nii`` (one projection per slice, raw line integrals) and
  ``<name>.json`` beside it holding :meth:`Geometry.to_dict`.
- DICOM: a folder of projection images (RT Image, DX, XA, RF) with their geometry tags, see :mod:`.dicom`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..io.atomic import atomic_dir, atomic_path
from .geometry import Geometry, from_matrix


@dataclass
class ProjectionSet:
    """Projections ``images`` (views, rows, columns) float32 line integrals and their :class:`Geometry`."""

    images: np.ndarray
    geometry: Geometry

    def __post_init__(self):
        nu, nv = self.geometry.dims
        if self.images.ndim != 3 or self.images.shape[1:] != (nv, nu) or len(self.images) != len(self.geometry):
            raise ImgSuiteError(
                f"projection stack {self.images.shape} does not match geometry: {len(self.geometry)} views of {nv}x{nu}"
            )


_NAME = re.compile(r"^(.*?)(\d+)\.(pfm|raw)$", re.IGNORECASE)


def read_projections(path: str | os.PathLike) -> ProjectionSet:
    """Read a plastimatch projection folder or an image stack with its ``.json`` geometry.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from SlicerImgSuite.tomo.geometry import circular
    >>> g = circular(2, dims=(4, 3), pixel_size=(1, 1))
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "p"
    >>> write_projections(ProjectionSet(np.ones((2, 3, 4), np.float32), g), d)
    >>> read_projections(d).images.shape
    (2, 3, 4)
    """
    path = Path(path)
    if path.is_dir():
        if not any(_NAME.match(f.name) for f in path.iterdir()):
            from .dicom import dicom_files, read_dicom_projections

            if dicom_files(path):
                return read_dicom_projections(path)
        return _read_plastimatch(path)
    if not path.exists():
        raise ImgSuiteError("no such projection set (a plastimatch folder or an image stack with .json)", path)
    sidecar = _sidecar(path)
    if not sidecar.exists():
        raise ImgSuiteError(f"projection stack needs its geometry file {sidecar.name} beside it", path)
    try:
        geometry = Geometry.from_dict(json.loads(sidecar.read_text()), sidecar)
    except json.JSONDecodeError as exc:
        raise ImgSuiteError(f"geometry file is not JSON: {exc}", sidecar) from None
    try:
        images = sitk.GetArrayFromImage(sitk.ReadImage(str(path), sitk.sitkFloat32))
    except RuntimeError as exc:
        raise ImgSuiteError(f"cannot read projection stack: {str(exc).splitlines()[-1][:200]}", path) from None
    try:
        return ProjectionSet(images.reshape((-1,) + images.shape[-2:]), geometry)
    except ImgSuiteError as exc:
        raise ImgSuiteError(exc.problem, path) from None


def write_projections(projections: ProjectionSet, path: str | os.PathLike, file_format: str | None = None) -> None:
    """Write atomically: a folder (``file_format`` ``pfm`` default, or ``raw``) or a stack file + ``.json``."""
    path = Path(path)
    is_stack = path.suffix.lower() in (".mha", ".mhd", ".nrrd", ".nii", ".gz")
    if not is_stack:
        _write_plastimatch(projections, path, file_format or "pfm")
        return
    g = projections.geometry
    image = sitk.GetImageFromArray(np.asarray(projections.images, np.float32))
    image.SetSpacing((g.pixel_size[0], g.pixel_size[1], 1.0))
    with atomic_path(_sidecar(path)) as tmp_json, atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), True)
        tmp_json.write_text(g.to_json())


def _sidecar(path: Path) -> Path:
    name = path.name
    for ext in (".nii.gz", ".mha", ".mhd", ".nrrd", ".nii"):
        if name.lower().endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    return path.with_suffix(".json")


def _read_plastimatch(folder: Path) -> ProjectionSet:
    files = sorted((int(m.group(2)), f) for f in folder.iterdir() if (m := _NAME.match(f.name)))
    if not files:
        raise ImgSuiteError("no imageNNNN.pfm or imageNNNN.raw projections in this folder", folder)
    images = None  # filled in place: one copy of the projections in memory, not two
    sources, centers, us, vs, ics = [], [], [], [], []
    dims = pixel = None
    for n, (_, f) in enumerate(files):
        txt = f.with_suffix(".txt")
        if not txt.exists():
            raise ImgSuiteError(f"projection has no matrix file {txt.name}", f)
        ic, matrix, sid = _read_matrix(txt)
        image = _read_pfm(f) if f.suffix.lower() == ".pfm" else _read_raw(f, ic)
        src, c, u, v, ps = from_matrix(matrix, ic, image.shape[::-1], sid)
        if dims is None:
            dims, pixel = image.shape[::-1], ps
            images = np.empty((len(files),) + image.shape, np.float32)
        elif image.shape[::-1] != dims or not np.allclose(ps, pixel, rtol=1e-4):
            raise ImgSuiteError(f"projection size or pixel pitch differs from the first one ({dims}, {pixel})", f)
        images[n] = image
        sources.append(src)
        centers.append(c)
        us.append(u)
        vs.append(v)
        ics.append(ic)
    return ProjectionSet(images, Geometry(sources, centers, us, vs, pixel, dims, ics))


def _read_matrix(txt: Path):
    try:
        rows = [[float(w) for w in line.split()] for line in txt.read_text().splitlines()[:6]]
        ic, matrix = rows[0][:2], np.array(rows[1:4], float)
        sid = rows[5][0] if len(rows) > 5 and rows[5] else None
        if len(ic) != 2 or matrix.shape != (3, 4):
            raise ValueError("short")
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ImgSuiteError(
            "not a plastimatch projection matrix file (image centre, 3x4 matrix, SAD, SID)", txt
        ) from None
    return np.array(ic), matrix, sid


def _read_pfm(f: Path) -> np.ndarray:
    data = f.read_bytes()
    parts = data.split(b"\n", 3)
    try:
        if parts[0].strip() != b"Pf":
            raise ValueError("magic")
        w, h = (int(x) for x in parts[1].split())
        scale = float(parts[2])
        dtype = "<f4" if scale < 0 else ">f4"
        return np.frombuffer(parts[3][: 4 * w * h], dtype).reshape(h, w).astype(np.float32)
    except (ValueError, IndexError):
        raise ImgSuiteError("not a single-channel PFM image, or truncated", f) from None


def _read_raw(f: Path, ic) -> np.ndarray:
    # plastimatch's raw has no header: the size comes from the principal point of a centred panel
    nu, nv = round(2 * ic[0] + 1), round(2 * ic[1] + 1)
    data = np.fromfile(f, "<f4")
    if data.size != nu * nv:
        raise ImgSuiteError(f"raw projection holds {data.size} floats, expected {nu}x{nv} from the image centre", f)
    return data.reshape(nv, nu)


def _write_plastimatch(projections: ProjectionSet, folder: Path, file_format: str) -> None:
    if file_format not in ("pfm", "raw"):
        raise ImgSuiteError(f"projection folder format must be pfm or raw, not {file_format!r}", folder)
    g = projections.geometry
    with atomic_dir(folder) as tmp:
        for i, image in enumerate(projections.images):
            foot, ic = g.principal(i)
            # plastimatch's image centre is the principal point: move C there (same matrix)
            shifted = Geometry(g.sources[i], foot, g.u_axes[i], g.v_axes[i], g.pixel_size, g.dims, ic)
            m = shifted.matrix(0)
            sid = float(shifted.sid[0])
            lines = [f"{ic[0]:18.8e} {ic[1]:18.8e}"]
            lines += [" ".join(f"{x:18.8e}" for x in row) for row in m]
            sad = float(np.dot(-g.sources[i], shifted.normals[0]))  # to the plane through the origin
            lines += [f"{sad:18.8e}", f"{sid:18.8e}", " ".join(f"{x:18.8e}" for x in shifted.normals[0])]
            (tmp / f"image{i:04d}.txt").write_text("\n".join(lines) + "\n")
            pixels = np.ascontiguousarray(image, "<f4")
            if file_format == "pfm":
                header = f"Pf\n{g.dims[0]} {g.dims[1]}\n-1\n".encode()
                (tmp / f"image{i:04d}.pfm").write_bytes(header + pixels.tobytes())
            else:
                pixels.tofile(tmp / f"image{i:04d}.raw")
