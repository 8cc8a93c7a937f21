"""Microscopy readers: TIFF / OME-TIFF (tifffile) and Zeiss CZI (pylibCZIrw), one canonical layout.

Every image comes back as a :class:`MicroscopyImage` whose ``data`` is ``(T, C, Z, Y, X)``, with
channel names and pixel sizes from the file's metadata when it has them.
"""

from __future__ import annotations

import math
import os
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImgSuiteError, check_memory
from ..units import length_in

SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".czi")


@dataclass
class MicroscopyImage:
    """A microscopy image in ``(T, C, Z, Y, X)`` order.

    Attributes
    ----------
    data : ndarray
        Pixel values, 5D ``(T, C, Z, Y, X)``.
    channel_names : list of str
        One name per channel (``C0``, ``C1``... when the file names none).
    pixel_size_um : tuple of float
        ``(z, y, x)`` in micrometres (1.0 where unknown).
    time_s : list of float, optional
        Acquisition time of each frame, seconds, when the file records it.
    pixel_size_known : bool
        Whether the file gave the in-plane pixel size (otherwise no micrometre measures are reported).
    """

    data: np.ndarray
    channel_names: list[str]
    pixel_size_um: tuple[float, float, float] = (1.0, 1.0, 1.0)
    time_s: list[float] | None = None
    pixel_size_known: bool = False
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    rgb: bool = False  # a TIFF of RGB pixels: channels 0, 1, 2 = red, green, blue

    @property
    def is_timelapse(self) -> bool:
        return self.data.shape[0] > 1

    @property
    def is_stack(self) -> bool:
        return self.data.shape[2] > 1

    def channel_index(self, channel: str | int | None) -> int:
        """Index of a channel given by name (case-insensitive) or number; ``None`` guesses the nuclear one."""
        if channel is None:
            for i, name in enumerate(self.channel_names):
                if any(k in name.lower() for k in ("dapi", "hoechst", "nuc", "h2b", "draq")):
                    return i
            return 0
        if isinstance(channel, int) or str(channel).lstrip("-").isdigit():
            i = int(channel)
            if not -len(self.channel_names) <= i < len(self.channel_names):
                raise ImgSuiteError(f"channel {i} does not exist: the image has {len(self.channel_names)}", self.path)
            return i % len(self.channel_names)
        names = [n.lower() for n in self.channel_names]
        if str(channel).lower() not in names:
            raise ImgSuiteError(f"no channel named {channel!r}; channels: {', '.join(self.channel_names)}", self.path)
        return names.index(str(channel).lower())


def is_microscopy_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(SUFFIXES)


def read_microscopy(path: str | os.PathLike) -> MicroscopyImage:
    """Read a TIFF, OME-TIFF or CZI file.

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.tif"
    >>> tifffile.imwrite(f, np.zeros((4, 5), np.uint16))
    >>> read_microscopy(f).data.shape
    (1, 1, 1, 4, 5)
    """
    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("no such file", path)
    try:
        if path.suffix.lower() == ".czi":
            image = _read_czi(path)
        else:
            image = _read_tiff(path)
    except ImgSuiteError:
        raise
    except Exception as exc:  # the readers raise many types for a corrupt file
        raise ImgSuiteError(f"cannot read microscopy image: {exc}", path) from None
    image.path = path
    return image


def _to_tczyx(array: np.ndarray, axes: str, path=None) -> np.ndarray:
    """Reorder tifffile axes into T, C, Z, Y, X (RGB samples become channels; other axes must be 1)."""
    axes = axes.upper().replace("S", "C" if "C" not in axes.upper() else "S")
    rename = {"Q": "Z", "I": "Z"}  # unnamed stacks are taken as z
    axes = "".join(rename.get(a, a) if rename.get(a, a) not in axes else a for a in axes)
    for a in "TCZYX":
        if a not in axes:
            array = array[..., None]
            axes += a
    extra = [i for i, a in enumerate(axes) if a not in "TCZYX"]
    for i in sorted(extra, reverse=True):
        if array.shape[i] != 1:
            warnings.warn(f"{path}: axis {axes[i]} has {array.shape[i]} entries; reading the first only", stacklevel=4)
            array = np.take(array, 0, axis=i)  # e.g. several positions: keep the first
        else:
            array = np.squeeze(array, axis=i)
        axes = axes[:i] + axes[i + 1 :]
    return np.transpose(array, [axes.index(a) for a in "TCZYX"])


def _read_tiff(path: Path) -> MicroscopyImage:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        if len(tif.series) > 1:  # several positions or wells as separate images: only the first is analysed
            warnings.warn(f"{path}: {len(tif.series)} image series; reading series 0 only", stacklevel=3)
        _check_declared_size(path, series, tif.pages[0])
        array = series.asarray()
        axes = series.axes
        rgb = "S" in axes and int(tif.pages[0].photometric) == 2  # PHOTOMETRIC RGB
        names, size = None, None
        if tif.is_ome and tif.ome_metadata:
            names, size = _ome_channels(tif.ome_metadata, path)
        elif tif.is_imagej and tif.imagej_metadata:
            labels = tif.imagej_metadata.get("Labels")
            if isinstance(labels, list):
                names = labels
        source = "PhysicalSizeX/Y/Z (OME-XML)"
        if size is None:
            size = _tiff_pixel_size(tif.pages[0], tif.imagej_metadata if tif.is_imagej else None)
            source = "XResolution/YResolution (282/283) or the ImageJ spacing"
    data = _to_tczyx(array, axes, path)
    if size is not None and data.shape[2] == 1 and not size[0] > 0:
        size = (1.0, *size[1:])  # one plane: no z step
    elif size is not None and math.isnan(size[0]):  # was 1 um without a word: every volume_um3 rested on it
        warnings.warn(f"{path}: the file gives the pixel size but no z step for its {data.shape[2]} planes: "
                      "1 um assumed (volumes follow it)", stacklevel=3)  # fmt: skip
        size = (1.0, *size[1:])
    _check_pixel_size(size, source, path)
    n = data.shape[1]
    if not names or len(names) != n:
        names = [f"C{i}" for i in range(n)]
    known = size is not None
    return MicroscopyImage(data, list(names), size or (1.0, 1.0, 1.0), None, pixel_size_known=known, rgb=rgb)


def _check_pixel_size(size, source: str, path: Path) -> None:
    """Refuse a pixel size the metadata gives as 0, negative or not finite (areas in um2 would be wrong or fail)."""
    if size is not None and not all(math.isfinite(v) and v > 0 for v in size):
        z, y, x = size
        raise ImgSuiteError(f"pixel size (z, y, x) = ({z:g}, {y:g}, {x:g}) um from {source} is not positive", path)


def _check_declared_size(path: Path, series, page) -> None:
    """Refuse, before allocating, a TIFF whose declared pixels the file cannot hold or memory cannot take."""
    shape = tuple(int(n) for n in series.shape)
    if not shape or min(shape) == 0:
        raise ImgSuiteError(f"the image holds no pixels (shape {shape})", path)
    declared = int(np.prod(shape, dtype=np.float64)) * np.dtype(series.dtype).itemsize
    if int(getattr(page, "compression", 1)) == 1 and declared > path.stat().st_size:
        raise ImgSuiteError(
            f"declares {shape} pixels ({declared / 2**30:.3g} GiB) but the file holds only "
            f"{path.stat().st_size} bytes: truncated or damaged",
            path,
        )
    check_memory(declared, f"its declared {shape} pixels", path)


def _um(value: float, unit: str | None) -> float | None:
    factor = length_in(unit or "µm", "um")
    return None if factor is None else value * factor


def _tiff_pixel_size(page, imagej: dict | None) -> tuple[float, float, float] | None:
    """``(z, y, x)`` micrometres from the resolution tags (ImageJ unit, or centimetres); None when absent.

    Resolution in inches is a screen/print setting (72 dpi...), not a microscope's pixel size.
    """
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return None
    unit = imagej.get("unit") if imagej else None
    if unit is None and tags.get("ResolutionUnit") is not None and int(tags["ResolutionUnit"].value) == 3:
        unit = "cm"
    factor = 1e4 if unit == "cm" else _um(1.0, unit) if unit else None
    if factor is None:
        return None
    x_num, x_den = tags["XResolution"].value
    y_num, y_den = tags["YResolution"].value
    if not (x_num and y_num):
        return None
    z = float(imagej["spacing"]) * factor if imagej and "spacing" in imagej else math.nan  # nan: no z step given
    return (z, y_den / y_num * factor, x_den / x_num * factor)


def _ome_channels(xml: str, path=None) -> tuple[list[str] | None, tuple[float, float, float] | None]:
    root = ET.fromstring(xml)
    ns = {"ome": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    pixels = root.find(".//ome:Pixels", ns) if ns else root.find(".//Pixels")
    if pixels is None:
        return None, None
    channels = pixels.findall("ome:Channel", ns) if ns else pixels.findall("Channel")
    names = [c.get("Name") or f"C{i}" for i, c in enumerate(channels)] or None
    if pixels.get("PhysicalSizeX") is None:
        return names, None
    size = [_um(float(pixels.get(f"PhysicalSize{a}", 1.0)), pixels.get(f"PhysicalSize{a}Unit")) for a in "ZYX"]
    if None in size:  # was silent: the table then had no micrometre column, with no word why
        units = sorted({str(pixels.get(f"PhysicalSize{a}Unit")) for a, v in zip("ZYX", size) if v is None})
        warnings.warn(f"{path}: pixel size unit {', '.join(units)} (OME PhysicalSize*Unit) not known: areas in "
                      "pixels only", stacklevel=4)  # fmt: skip
        return names, None
    if pixels.get("PhysicalSizeZ") is None:
        size[0] = math.nan  # no z step given
    return names, tuple(size)


def _read_czi(path: Path) -> MicroscopyImage:
    from pylibCZIrw import czi as pyczi

    with pyczi.open_czi(str(path)) as czi:
        box = czi.total_bounding_box
        n_t, n_c, n_z = (box.get(k, (0, 1))[1] - box.get(k, (0, 1))[0] for k in "TCZ")
        metadata = czi.metadata
        # Without a scene, pylibCZIrw paints every scene into one bounding box at its stage position: separate
        # wells or slides become one mostly black image (as large as the stage distance between them). Read the
        # first scene, as the TIFF reader keeps the first series, and say so.
        scenes = sorted(czi.scenes_bounding_rectangle)
        scene = scenes[0] if scenes else None
        if len(scenes) > 1:
            warnings.warn(
                f"{path}: {len(scenes)} scenes (S = {', '.join(map(str, scenes))}); reading scene {scene} only",
                stacklevel=3,
            )
        planes = []
        for t in range(n_t):
            for c in range(n_c):
                for z in range(n_z):
                    plane = czi.read(plane={"T": t, "C": c, "Z": z}, scene=scene)
                    if plane.shape[-1] == 3:  # BGR pixels: luminance
                        plane = plane[..., ::-1].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
                    else:
                        plane = plane[..., 0]
                    planes.append(plane)
    data = np.stack(planes).reshape(n_t, n_c, n_z, *planes[0].shape)
    info = metadata.get("ImageDocument", {}).get("Metadata", {})
    channels = info.get("Information", {}).get("Image", {}).get("Dimensions", {}).get("Channels", {}).get("Channel", [])
    channels = channels if isinstance(channels, list) else [channels]
    names = [ch.get("@Name") or f"C{i}" for i, ch in enumerate(channels)]
    if len(names) != n_c:
        names = [f"C{i}" for i in range(n_c)]
    size, found = {"X": 1.0, "Y": 1.0, "Z": 1.0}, set()
    distances = info.get("Scaling", {}).get("Items", {}).get("Distance", [])
    for item in distances if isinstance(distances, list) else [distances]:
        if item.get("@Id") in size and item.get("Value"):
            size[item["@Id"]] = float(item["Value"]) * 1e6  # metres -> micrometres
            found.add(item["@Id"])
    known = {"X", "Y"} <= found
    if n_z == 1 and not size["Z"] > 0:
        size["Z"] = 1.0  # one plane: no z step (pylibCZIrw writes 0 for a 2D image)
    _check_pixel_size((size["Z"], size["Y"], size["X"]), "Scaling/Items/Distance (CZI metadata)", path)
    return MicroscopyImage(
        data, names, (size["Z"], size["Y"], size["X"]), _czi_times(info, n_t), pixel_size_known=known
    )


def _czi_times(info: dict, n_t: int) -> list[float] | None:
    """Frame times (s) from ``Dimensions/T/Positions``: an explicit ``List/Offsets`` or an ``Interval`` increment."""
    try:
        positions = info["Information"]["Image"]["Dimensions"]["T"]["Positions"]
    except (KeyError, TypeError):
        return None
    try:
        if "List" in positions:
            times = [float(v) for v in str(positions["List"]["Offsets"]).split()]
        else:
            interval = positions["Interval"]
            start, step = float(interval.get("Start", 0) or 0), float(interval["Increment"])
            times = [start + i * step for i in range(n_t)]
    except (KeyError, TypeError, ValueError):
        return None
    return times if len(times) == n_t else None
