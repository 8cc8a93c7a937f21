"""One entry point for every hyperspectral input: a ``.hsi`` container or a plain ENVI cube."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress, sub_progress
from .envi_header import EnviHeader
from .labels import Labels


@dataclass
class Hyperspectral:
    """A cube ready to show: ``cube`` ``(lines, samples, bands)``, its ``header``, its ``labels``."""

    cube: np.ndarray
    header: EnviHeader
    labels: Labels = field(default_factory=Labels)
    path: Path | None = None

    @property
    def wavelengths(self) -> np.ndarray | None:
        return self.header.wavelengths


def load_hyperspectral(
    path: str | os.PathLike,
    *,
    calibrate: bool = False,
    apply_procedures: bool = False,
    bands: str | slice | None = None,
    apply_scaling: bool = False,
    strict: bool = False,
    allow_compressed: bool = False,
    progress: ProgressCallback | None = None,
) -> Hyperspectral:
    """Open a ``.hsi`` (or ENVI ``.hdr``/binary) and prepare the cube.

    Parameters
    ----------
    path : path
        ``.hsi`` container, ENVI header, or ENVI binary with its ``.hdr`` beside it.
    calibrate : bool
        Reflectance from ``Reference/white`` and ``Reference/black`` (containers only).
    apply_procedures : bool
        Apply the header's ``read procedures`` (after calibration). Labels follow the spatial
        steps (crop, rotate, resample); after ``merge`` or a microservice they are dropped.
    bands : "A:B" or slice, optional
        Keep bands A..B (0-based, inclusive), last.
    apply_scaling : bool
        Apply the header's ``data gain values``, ``data offset values`` and ``reflectance scale factor``
        (float32 result; see :func:`~SlicerImgSuite.hsi.calibrate.apply_scaling`). Not with ``calibrate``:
        the white/black ratio is already reflectance.
    strict, allow_compressed :
        See :class:`~SlicerImgSuite.hsi.container.HsiFile`.
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    Hyperspectral
        The cube stays a memory map when nothing had to be computed.

    Examples
    --------
    >>> import tempfile
    >>> from .container import write_hsi
    >>> f = Path(tempfile.mkdtemp()) / "a.hsi"
    >>> _ = write_hsi(f, np.full((2, 3, 2), 60, np.uint16), white=np.full((1, 3, 2), 110, np.uint16),
    ...               black=np.full((1, 3, 2), 10, np.uint16), wavelength=[500, 600])
    >>> h = load_hyperspectral(f, calibrate=True)
    >>> h.cube.shape, float(h.cube[0, 0, 0]), h.wavelengths.tolist()
    ((2, 3, 2), 0.5, [500.0, 600.0])
    """
    from .procedures import _select_bands, parse_procedures
    from .procedures import apply_procedures as apply_steps

    progress = progress or no_progress
    path = Path(path)
    if not path.exists():
        raise ImgSuiteError("no such file", path)
    if apply_scaling and calibrate:
        raise ImgSuiteError(
            "apply the scale factors or calibrate with Reference/white, not both: the ratio is already reflectance",
            path,
        )
    resolver = None
    if is_hsi(path):
        cube, header, labels, resolver, bands = _open_container(
            path, strict=strict, allow_compressed=allow_compressed, apply_procedures=apply_procedures,
            bands=bands, calibrate=calibrate, progress=progress,
        )  # fmt: skip
    else:
        from .envi import read_envi

        if calibrate:
            raise ImgSuiteError(
                "calibration needs a .hsi container with Reference/white (this is a plain ENVI cube)", path
            )
        cube, header = read_envi(path, strict=strict)
        labels = Labels()
    if apply_scaling:
        from .calibrate import apply_scaling as scaled

        cube, header = scaled(cube, header, path)
    if apply_procedures and header.get("read procedures"):
        steps = parse_procedures(header["read procedures"])
        cube, header = apply_steps(cube, header, steps, resolver, sub_progress(progress, 0.6, 0.95))
        labels = _labels_after(labels, steps)
    if bands is not None:
        selection = parse_band_range(bands, cube.shape[2], path)
        header = _select_bands(header, selection, cube.shape[2])
        cube = cube[:, :, selection]
        header.set("bands", cube.shape[2])
    progress(1.0, "cube ready")
    return Hyperspectral(cube, header, labels, path)


def _open_container(path, *, strict, allow_compressed, apply_procedures, bands, calibrate, progress):
    """:func:`load_hyperspectral` on a container: cube, header, labels, member resolver, and the bands still
    to select (None when selected here, before calibration, so that only the bands kept are calibrated)."""
    from .container import open_hsi
    from .procedures import Members, _select_bands

    hsi = open_hsi(path, strict=strict, allow_compressed=allow_compressed)
    cube, header, labels = hsi.cube, hsi.header, hsi.labels()
    resolver = Members(hsi)  # merge tiles and microservices read the container's members through it
    steps_first = apply_procedures and header.get("read procedures")
    selection = None
    if bands is not None and not steps_first:  # select first: calibrate only the bands kept
        selection = parse_band_range(bands, cube.shape[2], path)
        header = _select_bands(header, selection, cube.shape[2])
        header.set("bands", selection.stop - selection.start)
        cube, bands = cube[:, :, selection], None
    if calibrate:
        from .calibrate import calibrate_hsi

        cube = calibrate_hsi(hsi, sub_progress(progress, 0.0, 0.6), bands=selection)
    return cube, header, labels, resolver, bands


def is_hsi(path: str | os.PathLike) -> bool:
    """A ``.hsi`` suffix, or a ZIP file (found from its end, so leading bytes do not matter)."""
    import zipfile

    path = Path(path)
    if path.suffix.lower() == ".hsi":
        return True
    try:
        return path.is_file() and zipfile.is_zipfile(path)
    except OSError:
        return False


def parse_band_range(bands: str | slice, count: int, path=None) -> slice:
    """``"A:B"`` (0-based, inclusive) -> ``slice(A, B + 1)``, checked against ``count`` bands."""
    if isinstance(bands, slice):
        return bands
    match = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", str(bands))
    if not match:
        raise ImgSuiteError(f"--bands {bands!r}: use A:B (0-based, inclusive)", path)
    a = int(match[1]) if match[1] else 0
    b = int(match[2]) if match[2] else count - 1
    if not 0 <= a <= b < count:
        raise ImgSuiteError(f"--bands {bands!r}: outside 0:{count - 1}", path)
    return slice(a, b + 1)


def _labels_after(labels: Labels, steps) -> Labels:
    """Carry label planes through the spatial read procedures."""
    from .procedures import crop, rotate

    if not labels:
        return labels
    if any(name in ("merge", "microservice") for name, _ in steps):
        return Labels()
    empty = EnviHeader()

    def plane(array: np.ndarray) -> np.ndarray:
        cube = np.asarray(array)[:, :, None]
        for name, argument in steps:
            if name == "rotate":
                cube, _ = rotate(cube, empty, argument)
            elif name == "crop":
                parts = argument.strip()[1:-1].split(",")
                cube, _ = crop(cube, empty, "{" + ",".join(parts[:2] + ["0:0"]) + "}")
            elif name == "resample":
                s, ln, _ = (int(v) for v in argument.strip()[1:-1].split(","))
                rows = np.minimum((np.arange(ln) + 0.5) * cube.shape[0] / ln, cube.shape[0] - 1).astype(int)
                cols = np.minimum((np.arange(s) + 0.5) * cube.shape[1] / s, cube.shape[1] - 1).astype(int)
                cube = cube[rows][:, cols]  # nearest neighbour keeps labels labels
        return np.ascontiguousarray(cube[:, :, 0])

    out = Labels(class_names=labels.class_names, class_colors=labels.class_colors)
    if labels.classification is not None:
        out.classification = plane(labels.classification)
    out.masks = {name: plane(mask) for name, mask in labels.masks.items()}
    if labels.boxes and any(name in ("rotate", "crop", "resample") for name, _ in steps):
        out.boxes = []  # box coordinates refer to the raw cube; dropped rather than shown in the wrong place
    else:
        out.boxes = labels.boxes
    return out
