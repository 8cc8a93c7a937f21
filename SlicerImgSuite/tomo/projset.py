"""Projection sets on disk: plastimatch folders, image stacks with a JSON geometry sidecar, DICOM folders.

- plastimatch: files ``<prefix>NNNN.pfm`` (or ``.raw``, or ``.pgm`` previews) + ``<prefix>NNNN.txt``,
  exactly as ``plastimatch drr -O PREFIX`` writes them (``-O DIR/image`` puts ``imageNNNN`` in DIR) and
  ``plastimatch fdk -I DIR`` reads them. A set is read from its folder (when the folder holds one set) or
  from ``DIR/prefix``. The ``.txt`` holds the image centre (principal point, pixels), the 3x4 matrix, SAD,
  SID and the normal. Pixel rows are stored top row first (plastimatch does not flip PFM rows).
- stack: a 3-D ``.mha``/``.nrrd``/``.nii`` (one projection per slice, raw line integrals) and
  ``<name>.json`` beside it holding :meth:`Geometry.to_dict`.
- DICOM: a folder of projection images (RT Image, DX, XA, RF) with their geometry tags, see :mod:`.dicom`.
- Varian OBI: a folder of ``.hnd`` files, geometry from their headers, see :mod:`.hnd`.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..io.atomic import atomic_dir, atomic_path
from .geometry import PIXEL_PITCH_MM, Geometry, from_matrix


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


def line_integrals(intensities: ProjectionSet, i0: float | str = "auto") -> ProjectionSet:
    """Raw radiographs (intensities) as line integrals ``log(I0 / I)``.

    ``i0`` is the unattenuated intensity: a number, or ``"auto"`` to take each view's 99.9th
    percentile (the air seen beside the patient; a panel fully covered needs the number).

    Examples
    --------
    >>> from SlicerImgSuite.tomo.geometry import linear_sweep
    >>> g = linear_sweep(1, 0.0, sid=1000.0, dims=(2, 1), pixel_size=(1.0, 1.0))
    >>> raw = ProjectionSet(np.array([[[1000.0, 1000.0 * np.exp(-2)]]], np.float32), g)
    >>> np.round(line_integrals(raw, 1000.0).images, 4).tolist()
    [[[0.0, 2.0]]]
    """
    images = intensities.images.astype(np.float32)
    if isinstance(i0, str):
        if i0 != "auto":
            raise ImgSuiteError(f"--i0 takes a number or 'auto', not {i0!r}")
        i0 = np.percentile(images.reshape(len(images), -1), 99.9, axis=1)[:, None, None]
    elif not i0 > 0:
        raise ImgSuiteError(f"--i0 must be > 0, got {i0}")
    # a pixel at or below 0 (dead, or photon-starved) is clipped to a thousandth of a count
    out = np.log(np.asarray(i0, np.float32) / np.clip(images, 1e-3, None)).astype(np.float32)
    return ProjectionSet(out, intensities.geometry)


MAX_LINE_INTEGRAL = 50.0  # e^-50 of the beam: no detector measures that; larger values are counts


def not_line_integrals(projections: ProjectionSet) -> str:
    """Why ``projections`` look like raw radiographs rather than line integrals, or ``""``.

    Counts: values above :data:`MAX_LINE_INTEGRAL` (0.1 % of the pixels or more). Transmissions
    ``exp(-integral)`` (plastimatch ``drr -e``): every value in (0, 1], a tenth of the pixels or more at
    1 (unattenuated air). Reconstructed as they are, both invert the contrast: nothing warns later.

    Examples
    --------
    >>> from SlicerImgSuite.tomo.geometry import linear_sweep
    >>> g = linear_sweep(1, 0.0, sid=1000.0, dims=(4, 1), pixel_size=(1.0, 1.0))
    >>> not_line_integrals(ProjectionSet(np.array([[[0.0, 0.0, 0.3, 0.5]]], np.float32), g))
    ''
    >>> not_line_integrals(ProjectionSet(np.array([[[1.0, 1.0, 0.7, 0.5]]], np.float32), g))[:40]
    'values in (0, 1] with 50 % of the pixels'
    """
    images = projections.images
    high = float(np.percentile(images, 99.9))
    if high > MAX_LINE_INTEGRAL:
        return (f"values up to {high:g}: as line integrals that is a transmission of e^-{high:.0f}, which no "
                "detector measures, so these are counts")  # fmt: skip
    if images.min() > 0 and images.max() <= 1.0:
        air = float(np.mean(images >= 0.99))
        if 0.1 <= air < 1:  # some air, and something that attenuates
            return (f"values in (0, 1] with {100 * air:.0f} % of the pixels at 1: transmissions exp(-integral) "
                    "(plastimatch drr -e), where air is 1")  # fmt: skip
    return ""


def warn_if_not_line_integrals(projections: ProjectionSet, source="") -> None:
    """Warn (one line) when :func:`not_line_integrals` finds raw radiographs: they need ``log(I0 / I)`` first."""
    why = not_line_integrals(projections)
    if why:
        where = f"{source}: " if source else ""
        warnings.warn(f"{where}the projections look like raw radiographs, not line integrals ({why}); reconstructed "
                      "as they are, the contrast comes out inverted. Take log(I0/I) first: imgsuite tomo --log "
                      "(--algorithm fdk for a circular scan)", stacklevel=3)  # fmt: skip


_NAME = re.compile(r"^(.*?)(\d+)\.(pfm|raw)$", re.IGNORECASE)


def read_projections(path: str | os.PathLike) -> ProjectionSet:
    """Read a plastimatch projection folder or ``DIR/prefix``, a DICOM folder, or an image stack with its ``.json``.

    Parameters
    ----------
    path : path
        The folder (plastimatch ``.pfm``/``.raw`` + ``.txt``, DICOM RT Image, or a stack) or ``DIR/prefix``.

    Returns
    -------
    ProjectionSet
        Line integrals (views, rows, columns) and their geometry.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from SlicerImgSuite.tomo.geometry import circular
    >>> g = circular(2, dims=(4, 3), pixel_size=(1, 1))
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_projection_files(d / "proj", g, np.ones((2, 3, 4), np.float32))
    >>> sorted(f.name for f in d.iterdir())
    ['proj0000.pfm', 'proj0000.txt', 'proj0001.pfm', 'proj0001.txt']
    >>> read_projections(d / "proj").images.shape, read_projections(d).images.shape
    ((2, 3, 4), (2, 3, 4))
    """
    path = Path(path)
    if path.is_dir():
        sets = _projection_sets(path)
        if not sets:
            from .dicom import dicom_files, read_dicom_projections

            if dicom_files(path):
                projections = read_dicom_projections(path)
                for n, view in enumerate(projections.images):
                    _check_finite(view, path, f"view {n}: ")
                return projections
            from .hnd import hnd_files, read_hnd_projections

            if hnd := hnd_files(path):
                return read_hnd_projections(hnd)
        return _read_plastimatch(_one_set(path, sets))
    if not path.exists():
        sets = _projection_sets(path.parent, path.name) if path.parent.is_dir() else {}
        if sets:
            return _read_plastimatch(_one_set(path, sets))
        raise ImgSuiteError(
            "no such projection set (a plastimatch folder or DIR/prefix, or an image stack with .json)", path
        )
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
        projections = ProjectionSet(images.reshape((-1,) + images.shape[-2:]), geometry)
    except ImgSuiteError as exc:
        raise ImgSuiteError(exc.problem, path) from None
    for n, view in enumerate(projections.images):
        _check_finite(view, path, f"view {n}: ")
    return projections


def _check_finite(image: np.ndarray, path: Path, what: str = "") -> None:
    """A view with NaN or infinite pixels would make the whole reconstruction NaN: refuse it, naming it."""
    bad = int(np.count_nonzero(~np.isfinite(image)))
    if bad:
        raise ImgSuiteError(f"{what}{bad} of {image.size} pixels are NaN or infinite", path)


def _projection_sets(folder: Path, prefix: str | None = None) -> dict:
    """``{(prefix, ext): [file, ...]}`` of the numbered projections in ``folder`` (only ``prefix``'s if given)."""
    pattern = _NAME if prefix is None else re.compile(rf"^({re.escape(prefix)})(\d+)\.(pfm|raw)$", re.IGNORECASE)
    sets = {}
    for f in folder.iterdir():
        if m := pattern.match(f.name):
            sets.setdefault((m.group(1), m.group(3).lower()), []).append((int(m.group(2)), f.name, f))
    return {key: [f for *_, f in sorted(files)] for key, files in sets.items()}


def _one_set(where: Path, sets: dict) -> list:
    if not sets:
        pgm = " (.pgm files are 16-bit previews: write -t pfm to reconstruct)" if any(where.glob("*.pgm")) else ""
        raise ImgSuiteError(f"no imageNNNN.pfm or imageNNNN.raw projections in this folder{pgm}", where)
    if len(sets) > 1:
        names = ", ".join(f"{p}NNNN.{e}" for p, e in sorted(sets))
        prefixes = sorted({p for p, _ in sets})
        if len(prefixes) > 1:
            raise ImgSuiteError(f"holds several projection sets ({names}): give one as {where / prefixes[0]}", where)
        raise ImgSuiteError(f"holds the same views in two formats ({names}): move one set elsewhere", where)
    return next(iter(sets.values()))


def is_stack(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a stack file (``.mha``, ``.nrrd``, ``.nii``...) rather than a plastimatch set."""
    return Path(path).suffix.lower() in (".mha", ".mhd", ".nrrd", ".nii", ".gz")


def write_projections(projections: ProjectionSet, path: str | os.PathLike, file_format: str | None = None) -> None:
    """Write atomically: a folder of ``imageNNNN`` files (``file_format`` ``pfm`` default, ``raw`` or ``pgm``)
    or a stack file + ``.json``. For plastimatch's ``-O PREFIX`` naming use :func:`write_projection_files`."""
    path = Path(path)
    if not is_stack(path):
        write_projection_files(path / "image", projections.geometry, projections.images, file_format or "pfm")
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


def _check_matrices_have_images(files: list) -> None:
    """A ``prefixNNNN.txt`` of the set without its image means a view is missing: never drop it silently."""
    m = _NAME.match(files[0].name)
    pattern = re.compile(rf"^{re.escape(m.group(1))}\d+\.txt$", re.IGNORECASE)
    stems = {f.with_suffix("").name for f in files}
    for txt in sorted(files[0].parent.iterdir()):
        if pattern.match(txt.name) and txt.with_suffix("").name not in stems:
            raise ImgSuiteError(f"matrix file without its projection image ({txt.stem}.{m.group(3)} is missing)", txt)


def _read_plastimatch(files: list) -> ProjectionSet:
    _check_matrices_have_images(files)
    images = None  # filled in place: one copy of the projections in memory, not two
    sources, centers, us, vs, ics = [], [], [], [], []
    dims = pixel = None
    for n, f in enumerate(files):
        txt = f.with_suffix(".txt")
        if not txt.exists():
            raise ImgSuiteError(f"projection has no matrix file {txt.name}", f)
        ic, matrix, sid = _read_matrix(txt)
        image = _read_pfm(f) if f.suffix.lower() == ".pfm" else _read_raw(f, ic)
        _check_finite(image, f)
        try:
            src, c, u, v, ps = from_matrix(matrix, sid)
        except ImgSuiteError as exc:  # a singular matrix: name the file that holds it
            raise ImgSuiteError(f"lines 2-4: {exc.problem}", txt) from None
        if dims is None:
            dims, pixel = image.shape[::-1], ps
            if not PIXEL_PITCH_MM[0] <= min(ps) <= max(ps) <= PIXEL_PITCH_MM[1]:
                size = f"{ps[0]:.4g} x {ps[1]:.4g} mm"
                raise ImgSuiteError(f"lines 2-3: the matrix gives pixels of {size}, outside {PIXEL_PITCH_MM} mm", txt)
            images = np.empty((len(files),) + image.shape, np.float32)
        elif image.shape[::-1] != dims or not np.allclose(ps, pixel, rtol=1e-4):
            raise ImgSuiteError(f"projection size or pixel pitch differs from the first one ({dims}, {pixel})", f)
        images[n] = image
        sources.append(src)
        centers.append(c)
        us.append(u)
        vs.append(v)
        ics.append(ic)
    return ProjectionSet(
        images,
        Geometry(sources=sources, centers=centers, u_axes=us, v_axes=vs, pixel_size=pixel, dims=dims, image_center=ics),
    )


def _read_matrix(txt: Path):
    try:
        rows = [[float(w) for w in line.split()] for line in txt.read_text().splitlines()[:6]]
        ic, matrix = rows[0][:2], np.array(rows[1:4], float)
        sid = rows[5][0] if len(rows) > 5 and rows[5] else None
        sad = rows[4][0] if len(rows) > 4 and rows[4] else None
        if len(ic) != 2 or matrix.shape != (3, 4):
            raise ValueError("short")
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ImgSuiteError(
            "not a plastimatch projection matrix file (image centre, 3x4 matrix, SAD, SID)", txt
        ) from None
    numbers = list(ic) + list(matrix.ravel()) + [v for v in (sad, sid) if v is not None]
    if not np.all(np.isfinite(numbers)):
        raise ImgSuiteError("the image centre, matrix, SAD or SID holds NaN or infinity", txt)
    # SAD = SID is a tomosynthesis sweep's isocentre on the panel; a source at the isocentre or a panel
    # between them is no geometry at all
    if (sad is not None and sad <= 0) or (sid is not None and sid <= 0) or (sad and sid and sid < sad):
        raise ImgSuiteError(f"lines 5-6: need 0 < SAD <= SID, got SAD = {sad} and SID = {sid} mm", txt)
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


def write_projection_files(
    prefix: str | os.PathLike, geometry: Geometry, images: np.ndarray | None = None, file_format: str = "pfm"
) -> None:
    """Write ``<prefix>NNNN.<file_format>`` + ``<prefix>NNNN.txt`` per view, as ``plastimatch drr -O PREFIX``.

    The prefix is a plain string prefix (``out/`` gives ``out/0000.pfm``); its folder is made when missing and
    other files in it are kept. ``images=None`` writes the matrices only (``plastimatch drr -G``). All files
    appear together or not at all.
    """
    if file_format not in ("pfm", "raw", "pgm"):
        raise ImgSuiteError(f"projection file format must be pfm, raw or pgm, not {file_format!r}", prefix)
    folder, name = os.path.split(os.fspath(prefix))
    with atomic_dir(Path(folder or ".")) as tmp:
        for i in range(len(geometry)):
            (tmp / f"{name}{i:04d}.txt").write_text(_matrix_text(geometry, i))
            if images is not None:
                _write_image(tmp / f"{name}{i:04d}.{file_format}", images[i], file_format)


def _matrix_text(g: Geometry, i: int) -> str:
    foot, ic = g.principal(i)
    # plastimatch's image centre is the principal point: move C there (same matrix)
    shifted = Geometry(
        sources=g.sources[i],
        centers=foot,
        u_axes=g.u_axes[i],
        v_axes=g.v_axes[i],
        pixel_size=g.pixel_size,
        dims=g.dims,
        image_center=ic,
    )
    sad = float(np.dot(-g.sources[i], shifted.normals[0]))  # to the plane through the origin
    lines = [f"{ic[0]:18.8e} {ic[1]:18.8e}"]
    lines += [" ".join(f"{x:18.8e}" for x in row) for row in shifted.matrix(0)]
    lines += [f"{sad:18.8e}", f"{float(shifted.sid[0]):18.8e}", " ".join(f"{x:18.8e}" for x in shifted.normals[0])]
    return "\n".join(lines) + "\n"


def _write_image(f: Path, image: np.ndarray, file_format: str) -> None:
    pixels = np.ascontiguousarray(image, "<f4")
    rows, cols = pixels.shape
    if file_format == "pfm":
        f.write_bytes(f"Pf\n{cols} {rows}\n-1\n".encode() + pixels.tobytes())
    elif file_format == "raw":
        pixels.tofile(f)
    else:
        # plastimatch's preview: ASCII 16-bit, values clamped to 0..65535 and rounded, 25 a line
        values = np.floor(np.clip(pixels.ravel(), 0, 65535) + 0.5).astype(np.int64).astype(str)
        lines = [" ".join(values[k : k + 25]) for k in range(0, len(values), 25)]
        f.write_text(f"P2\n# Created by SlicerImgSuite\n{cols} {rows}\n65535\n" + "\n".join(lines) + "\n")
