"""The ``imgsuite nuclei`` job: microscopy files in, nuclei labels, measurements and pictures out.

Per input ``<stem>`` the output folder receives ``<stem>_labels.tif`` (0 = background, one integer per
nucleus; shape ``(Y, X)``, ``(Z, Y, X)``, or with a leading T axis for time-lapses), ``<stem>.csv``
(one row per nucleus and frame), ``<stem>[_t<frame>]_overlay.png`` (contours over the nuclear channel with the
table's cell ids) and ``<stem>[_t<frame>]_mask.png`` (nuclei white) for every frame, written as each image
finishes, and for time-lapses ``<stem>_overlay.png`` (the last frame), ``<stem>_tracks.csv``, ``<stem>_tracks.png``
and ``<stem>_population.png``. The folder also gets ``summary.csv`` (one row per image and frame), ``cells.csv``
(one row per nucleus per frame of every image, see :mod:`.nuclei_outputs`) and, with ``excel``, ``cells.xlsx``
(one sheet per table). Each file is written atomically.
"""

from __future__ import annotations

import csv
import functools
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..choices import PERINUCLEAR_MODES
from ..errors import ImgSuiteError
from ..io.atomic import atomic_path
from ..progress import Cancelled, ProgressCallback, no_progress, sub_progress
from .measure import measure_nuclei
from .microscopy import MicroscopyImage, is_microscopy_file, read_microscopy
from .nuclei import estimate_diameter, label_nuclei
from .nuclei_outputs import save_track_image
from .tracking import track_nuclei


@dataclass
class NucleiOptions:
    """Options of one nuclei analysis (the CLI flags, the Slicer widget's fields)."""

    nuclear_channel: str | int | None = None
    method: str = "auto"  # the shipped model on 2D planes, adaptive on stacks (resolve_method)
    threshold: float | None = None
    threshold_8bit: float | None = None  # the threshold on a 0-255 scale (threshold_from_8bit), instead of threshold
    diameter: float | None = None
    min_area: float | None = None
    max_area: float | None = None
    split_touching: bool = True
    exclude_border: bool = False
    perinuclear_width: int = 0
    perinuclear_mode: str = "ring"  # or "grown": the nucleus grown by perinuclear_width pixels (measure.py)
    track: bool = False
    max_displacement: float | None = None
    memory: int = 2
    model: str | None = None
    excel: bool = False  # also write cells.xlsx (needs openpyxl)
    notify_command: str | None = None  # run when the job ends or fails (notify.py)
    plots: bool = False  # per-cell intensity bars per frame; population of a folder of stills (nuclei_outputs.py)
    notify_email: bool = False  # one e-mail when the job ends or fails (SMTP settings: notify.py)


@dataclass
class ImageResult:
    """What one input produced."""

    stem: str
    labels: np.ndarray  # (T, [Z,] Y, X)
    header: list[str]
    rows: list[list]
    counts: list[int]
    tracks: list[list[tuple[int, int]]] | None = None
    outputs: list[Path] = field(default_factory=list)
    source: Path | None = None
    threshold_note: str = ""  # how --threshold-8bit became image units, for the user
    track_table: tuple[list[str], list[list]] | None = None  # the rows of <stem>_tracks.csv


def find_inputs(path: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """The microscopy files of a file or folder, and warnings about the files that are not.

    Parameters
    ----------
    path : path
        One image file, or a folder (hidden files and ``*_labels.tif`` outputs are left out).

    Returns
    -------
    files : list of Path
        The TIFF, OME-TIFF and CZI files, sorted by name.
    warnings : list of str
        One per other file of the folder, which is skipped.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.tif").write_bytes(b""), (folder / "notes.txt").write_text("x")
    >>> files, warnings = find_inputs(folder)
    >>> [f.name for f in files], len(warnings)
    (['a.tif'], 1)
    """
    path = Path(path)
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise ImgSuiteError("no such file or folder", path)
    files, warnings = [], []
    for f in sorted(path.iterdir()):
        if f.name.startswith("."):
            continue
        if f.is_file() and is_microscopy_file(f) and not f.name.endswith("_labels.tif"):
            files.append(f)
        else:
            warnings.append(f"{f}: skipped (not a TIFF/OME-TIFF/CZI image)")
    if not files:
        raise ImgSuiteError("no TIFF, OME-TIFF or CZI image in this folder", path)
    return files, warnings


def analyze_image(
    image: MicroscopyImage, options: NucleiOptions, progress: ProgressCallback | None = None
) -> ImageResult:
    """Segment, measure (and track) the nuclei of one microscopy image, in memory."""
    progress = progress or no_progress
    channel = image.channel_index(options.nuclear_channel)
    if image.rgb and options.nuclear_channel is None and image.channel_names[0] == "C0":  # unnamed colour export
        warnings.warn(f"{image.path}: RGB pixels: the nuclei are looked for in channel 0 (red); give "
                      "--nuclear-channel 2 for nuclei shown in blue (DAPI, Hoechst)", stacklevel=2)  # fmt: skip
    _check_image(image, channel, options)
    n_t = image.data.shape[0]
    stack = image.data.shape[2] > 1
    spacing = image.pixel_size_um if stack else image.pixel_size_um[1:]
    method = resolve_method(options.method, stack)
    predictor = model_predictor(options.model) if method == "model" else None
    threshold, note = options.threshold, ""
    if options.threshold_8bit is not None:
        threshold, note = threshold_from_8bit(options.threshold_8bit, image.data[:, channel])
    diameter = options.diameter
    if diameter is None and method != "model" and n_t > 1:  # one size for all frames of a time-lapse
        first = image.data[0, channel] if stack else image.data[0, channel, 0]
        diameter = estimate_diameter(first)
    all_labels, rows, counts, centroids = [], [], [], []
    header = None
    for t in range(n_t):
        planes = image.data[t] if stack else image.data[t, :, 0]
        nuclear = planes[channel]
        probability = predictor(nuclear, diameter) if predictor is not None else None
        labels = label_nuclei(
            nuclear,
            method=method,
            threshold=threshold,
            diameter=diameter,
            min_area=options.min_area,
            max_area=options.max_area,
            split_touching=options.split_touching,
            exclude_border=options.exclude_border,
            spacing=tuple(s / min(spacing) for s in spacing),
            probability=probability,
        )
        channels = {name: planes[i] for i, name in enumerate(image.channel_names)}
        h, frame_rows = measure_nuclei(
            labels,
            channels,
            options.perinuclear_width,
            spacing if image.pixel_size_known else None,
            perinuclear_mode=options.perinuclear_mode,
        )
        header = ["frame", "time_s", *h]
        time = image.time_s[t] if image.time_s else float("nan")  # blank in the CSV: the file gave no time
        rows += [[t, time, *r] for r in frame_rows]
        counts.append(int(labels.max()))
        cols = [h.index(f"centroid_{a}") for a in "zyx"[-labels.ndim :]]
        # in x pixels (the unit of --max-displacement): a z step of 5 x the pixel was 1, linking nuclei far apart
        scale = np.array(spacing) / spacing[-1]
        centroids.append(np.array([[r[c] for c in cols] for r in frame_rows]).reshape(-1, labels.ndim) * scale)
        all_labels.append(labels)
        progress((t + 1) / n_t, f"frame {t + 1}/{n_t}: {counts[-1]} nuclei")
    result = ImageResult(image.path.stem if image.path else "image", np.stack(all_labels), header, rows, counts)
    result.threshold_note = note
    if options.track and n_t > 1:
        # the model estimates no diameter up front: one diameter is then the median nucleus found (10 px before,
        # whatever the nuclei's size, broke every track of nuclei wider than that moving more than 10 px)
        reach = options.max_displacement or diameter or _median_diameter(header, rows, labels.ndim) or 10.0
        result.tracks = track_nuclei(centroids, reach, options.memory)
        track_of = {key: i + 1 for i, tr in enumerate(result.tracks) for key in tr}
        starts = np.cumsum([0, *counts])
        result.header = [*header, "track_id"]
        for t in range(n_t):
            for i in range(counts[t]):
                result.rows[starts[t] + i].append(track_of[(t, i)])
    return result


def _median_diameter(header: list[str], rows: list[list], ndim: int) -> float | None:
    """Equivalent diameter (pixels) of the median nucleus of the rows (None without rows)."""
    if not rows:
        return None
    area = float(np.median([r[header.index("area_px")] for r in rows]))
    return float((6 * area / np.pi) ** (1 / 3)) if ndim == 3 else float(2 * np.sqrt(area / np.pi))


def analyze_nuclei(
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    options: NucleiOptions | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[list[ImageResult], list[str]]:
    """Run the nuclei job on a file or a folder; returns the results and the warnings.

    A folder may hold other files: they are skipped with a warning, and an unreadable image is
    reported and skipped, so one bad file does not lose the others' results. With ``options.notify_command`` or
    ``options.notify_email`` the user is told when the run ends or fails (:mod:`.notify`); a notification that
    fails is a warning.

    Parameters
    ----------
    input_path : path
        A TIFF, OME-TIFF or CZI file, or a folder of them.
    output_dir : path
        Receives each image's labels, measurement tables and pictures, and the folder's summary.
    options : NucleiOptions, optional
        The analysis settings (the CLI flags); the defaults otherwise.
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    results : list of ImageResult
        One per image analysed (labels, rows of measurements, nuclei per frame).
    warnings : list of str
        Files skipped and why, and notifications that failed.

    Examples
    --------
    >>> import tempfile, tifffile
    >>> folder = Path(tempfile.mkdtemp())
    >>> plane = np.zeros((48, 48), np.uint16)
    >>> plane[8:18, 8:18] = plane[28:40, 26:38] = 1000
    >>> tifffile.imwrite(folder / "well.tif", plane)
    >>> results, warnings = analyze_nuclei(folder / "well.tif", folder / "out", NucleiOptions(method="otsu"))
    >>> report_lines(results), warnings
    (['well: 2 nuclei'], [])
    """
    from .notify import RunSummary, notify

    options = options or NucleiOptions()
    check_options(options)
    if not (options.notify_command or options.notify_email):
        return _analyze_nuclei(input_path, output_dir, options, progress)
    summary = RunSummary("nuclei", "failed", Path(output_dir).absolute())
    try:
        results, warnings = _analyze_nuclei(input_path, output_dir, options, progress)
    except Cancelled:
        raise
    except Exception as exc:
        summary.error = str(exc)
        notify(summary, options.notify_command, options.notify_email)
        raise
    summary.status, summary.images, summary.warnings = "done", len(results), tuple(warnings)
    summary.frames = sum(len(r.counts) for r in results)
    summary.nuclei = sum(sum(r.counts) for r in results)
    return results, warnings + notify(summary, options.notify_command, options.notify_email)


def _analyze_nuclei(
    input_path: str | os.PathLike, output_dir: str | os.PathLike, options: NucleiOptions, progress
) -> tuple[list[ImageResult], list[str]]:
    progress = progress or no_progress
    files, warnings = find_inputs(input_path)
    for f in files:  # <stem>.csv of these would be the run's own tables
        if f.name.split(".")[0] in ("cells", "summary", "population"):
            raise ImgSuiteError(
                "this input's table would write over the run's cells/summary/population.csv: rename it", f
            )
    if options.method in ("model", "auto"):
        model_predictor(options.model)  # a missing or bad model file stops the job before any image
    output_dir = Path(output_dir)  # made by the first file written: a failure leaves no empty folder
    if output_dir.exists() and not output_dir.is_dir():
        raise ImgSuiteError("output folder exists as a file", output_dir)
    results = []
    for k, f in enumerate(files):
        step = sub_progress(progress, k / len(files), (k + 1) / len(files))
        stem = f.name.split(".")[0]
        try:  # an unreadable image, or one without the asked channel, is skipped in a folder
            image = read_microscopy(f)
            result = analyze_image(image, options, sub_progress(step, 0, 0.8))
        except ImgSuiteError as exc:
            if len(files) == 1:
                raise
            warnings.append(f"{exc} (skipped)")
            continue
        result.stem = stem
        result.source = f
        result.outputs = write_outputs(result, image, output_dir, options)
        results.append(result)
        step(1.0, f"{stem}: {sum(result.counts)} nuclei")
    if not results:
        raise ImgSuiteError("no image could be read: " + "; ".join(warnings), input_path)
    _write_summary(results, output_dir / "summary.csv")
    _write_cells(results, output_dir, options.excel)
    stills = [r for r in results if len(r.counts) == 1]
    if options.plots and len(stills) > 1:  # a folder of still images: nuclei per image
        from .nuclei_outputs import save_population_table

        header, rows = _summary_table(stills)
        columns = [[row[k] for row in rows] for k in (0, 3, 4)]
        save_population_table(*columns, output_dir / "population.csv", output_dir / "population.png")
    return results, warnings


def report_lines(results: list[ImageResult]) -> list[str]:
    """What the user is told per image: how ``--threshold-8bit`` became image units, and nuclei per frame.

    Parameters
    ----------
    results : list of ImageResult
        As :func:`analyze_nuclei` returns them.

    Returns
    -------
    list of str
        One line per image (and one per threshold note).

    Examples
    --------
    >>> r = ImageResult("plate1", np.zeros((2, 4, 4), np.int32), [], [], counts=[12, 11])
    >>> report_lines([r])
    ['plate1: 12, 11 nuclei']
    """
    lines = []
    for r in results:
        if r.threshold_note:
            lines.append(f"{r.stem}: {r.threshold_note}")
        lines.append(f"{r.stem}: {', '.join(str(c) for c in r.counts)} nuclei")
    return lines


def check_options(options: NucleiOptions) -> None:
    """Refuse option values no analysis can use (each error names the CLI option)."""
    import math

    for option, value in (("--diameter", options.diameter), ("--max-displacement", options.max_displacement)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ImgSuiteError(f"{option} must be a positive number of pixels, got {value}")
    for option, value in (("--min-area", options.min_area), ("--max-area", options.max_area)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ImgSuiteError(f"{option} must be a number of pixels >= 0, got {value}")
    if options.min_area is not None and options.max_area is not None and options.min_area > options.max_area:
        raise ImgSuiteError(f"--min-area {options.min_area:g} is larger than --max-area {options.max_area:g}")
    if options.perinuclear_width < 0:
        raise ImgSuiteError(f"--perinuclear-width must be >= 0 pixels, got {options.perinuclear_width}")
    if options.perinuclear_mode not in PERINUCLEAR_MODES:
        choices = ", ".join(PERINUCLEAR_MODES)
        raise ImgSuiteError(f"--perinuclear-mode must be one of {choices}, got {options.perinuclear_mode!r}")
    if options.threshold is not None and not math.isfinite(options.threshold):
        raise ImgSuiteError(f"--threshold must be a finite number, got {options.threshold}")
    if options.threshold is not None and options.method in ("model", "auto") and not 0 < options.threshold < 1:
        # the model's level is a probability: an intensity level there would find no nucleus and say nothing
        raise ImgSuiteError(f"--threshold {options.threshold:g} is a probability level (0 to 1) for --method "
                            f"{options.method} (the model); for an intensity level use --method threshold")
    if options.max_area is not None and options.max_area == 0:
        raise ImgSuiteError("--max-area 0 would drop every nucleus; give a number of pixels > 0")
    if int(options.memory) != options.memory or options.memory < 0:
        raise ImgSuiteError(f"--memory must be a whole number of frames >= 0, got {options.memory}")
    if options.threshold_8bit is not None:
        value = options.threshold_8bit
        if options.threshold is not None:
            raise ImgSuiteError("give --threshold or --threshold-8bit, not both")
        if not (math.isfinite(value) and 0 <= value <= 255):
            raise ImgSuiteError(f"--threshold-8bit must be between 0 and 255, got {value}")
        if options.method != "threshold":
            method = options.method
            raise ImgSuiteError(f"--threshold-8bit is an intensity level: use it with --method threshold, not {method}")
    if options.notify_email:  # the SMTP settings, before any image
        from .notify import check_email

        check_email()
    if options.excel:  # before any image: a long run does not end without its workbook
        from .nuclei_outputs import require_openpyxl

        require_openpyxl()


def threshold_from_8bit(value: float, nuclear: np.ndarray) -> tuple[float, str]:
    """A threshold on the 0-255 scale of 8-bit programs in the image's own units, and a sentence saying how.

    Integer pixels: 0-255 spans 0 to the largest value of the pixel type (uint8: the same number, uint16: x 257).
    Floating-point pixels have no such range: 0-255 spans the nuclear channel's own minimum to maximum.

    Examples
    --------
    >>> threshold_from_8bit(128, np.zeros(4, np.uint16))[0]
    32896.0
    >>> threshold_from_8bit(51, np.array([1.0, 2.0]))
    (1.2, "--threshold-8bit 51 = 1.2 in image units (float64 pixels: 0-255 = the channel's 1 to 2)")
    """
    if nuclear.dtype.kind in "ui":
        top = float(np.iinfo(nuclear.dtype).max)
        level = value * top / 255.0
        how = f"{nuclear.dtype} pixels: 0-255 = 0 to {top:g}"
    else:
        low, high = float(np.min(nuclear)), float(np.max(nuclear))
        level = low + value * (high - low) / 255.0
        how = f"{nuclear.dtype} pixels: 0-255 = the channel's {low:g} to {high:g}"
    note = f"--threshold-8bit {value:g} = {level:.6g} in image units ({how})"
    if level >= float(np.max(nuclear)):  # e.g. 8-bit values stored as uint16
        note += f"; the channel's largest value is {float(np.max(nuclear)):g}: no nucleus can be found"
    return level, note


def _check_image(image: MicroscopyImage, channel: int, options: NucleiOptions) -> None:
    """An empty image, NaN/inf pixels, or a --diameter larger than the image: errors naming the file."""
    data = image.data
    if data.size == 0:
        raise ImgSuiteError(f"the image holds no pixels (T, C, Z, Y, X = {data.shape})", image.path)
    nuclear = data[:, channel]
    if nuclear.dtype.kind == "f" and not np.all(np.isfinite(nuclear)):
        bad = int(np.count_nonzero(~np.isfinite(nuclear)))
        raise ImgSuiteError(f"{bad} pixels of the nuclear channel are NaN or infinite", image.path)
    _warn_bright_background(nuclear[0], image.path)
    largest = max(data.shape[-2:])
    if options.diameter is not None and options.diameter > largest:
        raise ImgSuiteError(
            f"--diameter {options.diameter:g} is larger than the image ({data.shape[-1]} x {data.shape[-2]} pixels)",
            image.path,
        )


def _warn_bright_background(nuclear: np.ndarray, path) -> None:
    """Warn when most of the nuclear channel is above its Otsu level: dark nuclei on a bright background
    (brightfield, H&E, an inverted export). Every method looks for bright nuclei, so the background would be counted
    as nuclei. On DSB2018 the 35 fluorescence images have at most 29 % of their pixels above Otsu, the 8 colour ones
    at least 63 %."""
    from skimage.filters import threshold_otsu

    sample = np.asarray(nuclear, np.float32).ravel()[:: max(1, nuclear.size // 1_000_000)]
    if np.ptp(sample) == 0:
        return
    above = float(np.mean(sample > threshold_otsu(sample)))
    if above > 0.5:
        warnings.warn(
            f"{path}: {above:.0%} of the nuclear channel's pixels are bright: dark nuclei on a bright background "
            "(brightfield, H&E, inverted)? Nuclei are found as bright objects: invert the image first",
            stacklevel=4,
        )


def write_outputs(result: ImageResult, image: MicroscopyImage, folder: Path, options: NucleiOptions) -> list[Path]:
    """Labels TIFF, CSV, overlay PNG, and the tracking files of one analysed image."""
    import tifffile

    folder = Path(folder)
    stem = result.stem
    labels = result.labels if result.labels.shape[0] > 1 else result.labels[0]
    outputs = [folder / f"{stem}_labels.tif", folder / f"{stem}.csv"]
    dtype = np.uint16 if labels.max() < 65536 else np.uint32
    with atomic_path(outputs[0]) as tmp:
        # minisblack: tifffile writes 3 or 4 frames (planes) as one RGB(A) page, which ITK (Slicer) reads as a 2D
        # 8-bit colour image
        tifffile.imwrite(tmp, labels.astype(dtype), compression="zlib", photometric="minisblack")
    _write_csv(outputs[1], result.header, result.rows)
    channel = image.channel_index(options.nuclear_channel)
    outputs += _write_frame_pictures(result, image.data[:, channel], folder)
    if result.labels.shape[0] > 1:  # the last frame under the single-image name too
        outputs.append(folder / f"{stem}_overlay.png")
        with atomic_path(outputs[-1]) as tmp:
            shutil.copyfile(outputs[-3], tmp)
    if result.tracks is not None:
        outputs += _write_tracks(result, image, folder, channel)
    if options.plots:
        outputs += _write_plots(result, folder)
    if result.labels.shape[0] > 1:
        outputs.append(folder / f"{stem}_population.png")
        frames = range(len(result.counts))
        times = list(image.time_s) if image.time_s else None
        save_population_plot(times or list(frames), result.counts, outputs[-1], stem, "time (s)" if times else "frame")
    return outputs


def _write_frame_pictures(result: ImageResult, nuclear: np.ndarray, folder: Path) -> list[Path]:
    """Overlay with cell ids and mask PNG of every frame (``nuclear``: ``(T, Z, Y, X)``)."""
    from .nuclei_outputs import frame_suffixes, save_frame_pictures

    cols = [result.header.index(c) for c in ("label", "centroid_x", "centroid_y")]
    out = []
    for t, suffix in enumerate(frame_suffixes(len(result.counts))):
        ids = [tuple(r[c] for c in cols) for r in result.rows if r[0] == t]
        grey = (_normalise(nuclear[t].max(axis=0)) * 255).astype(np.uint8)
        pair = [folder / f"{result.stem}{suffix}_overlay.png", folder / f"{result.stem}{suffix}_mask.png"]
        save_frame_pictures(grey, result.labels[t], ids, *pair)
        out += pair
    return out


def _write_cells(results: list[ImageResult], folder: Path, excel: bool) -> None:
    """``cells.csv`` across every image and frame; with ``excel``, ``cells.xlsx`` with one sheet per table."""
    from .nuclei_outputs import combined_table, write_workbook

    header, rows = combined_table([(r.stem, r.header, r.rows) for r in results])
    _write_csv(folder / "cells.csv", header, rows)
    if excel:
        sheets = {"cells": (header, rows), "summary": _summary_table(results)}
        for r in results:
            sheets[r.stem] = (r.header, r.rows)
            if r.track_table is not None:
                sheets[f"{r.stem}_tracks"] = r.track_table
        write_workbook(folder / "cells.xlsx", sheets)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[_cell(v) for v in row] for row in rows])


def _cell(value):
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.6g}"  # an unknown value stays blank
    return value


def _write_summary(results: list[ImageResult], path: Path) -> None:
    _write_csv(path, *_summary_table(results))


def _summary_table(results: list[ImageResult]) -> tuple[list[str], list[list]]:
    header = ["image", "frame", "time_s", "nuclei", "mean_area_px"]
    rows = []
    for res in results:
        area = res.header.index("area_px")
        for t, n in enumerate(res.counts):
            frame = [r for r in res.rows if r[0] == t]
            time = frame[0][1] if frame else float("nan")
            rows.append([res.stem, t, time, n, float(np.mean([r[area] for r in frame])) if frame else 0.0])
    return header, rows


def _write_plots(result: ImageResult, folder: Path) -> list[Path]:
    """``--plots``: the per-cell intensity bar chart of every frame."""
    from .nuclei_outputs import frame_suffixes, save_intensity_bars

    out = []
    for t, suffix in enumerate(frame_suffixes(len(result.counts))):
        out.append(folder / f"{result.stem}{suffix}_intensity.png")
        rows = [r for r in result.rows if r[0] == t]
        save_intensity_bars(result.header, rows, out[-1], f"{result.stem}{suffix}: {len(rows)} nuclei")
    return out


def _write_tracks(result: ImageResult, image: MicroscopyImage, folder: Path, channel: int) -> list[Path]:
    header = result.header
    cols = [header.index(c) for c in header if c.startswith("centroid_")]
    starts = np.cumsum([0, *result.counts])
    rows, paths = [], []
    for i, track in enumerate(result.tracks):
        path = []
        for t, k in track:
            row = result.rows[starts[t] + k]
            rows.append([i + 1, t, row[1], row[2], *[row[c] for c in cols]])
            path.append([row[c] for c in cols][-2:])  # (y, x)
        paths.append(np.array(path))
    out = [folder / f"{result.stem}_tracks.csv", folder / f"{result.stem}_tracks.png"]
    result.track_table = (["track_id", "frame", "time_s", "label", *[header[c] for c in cols]], rows)
    _write_csv(out[0], *result.track_table)
    first, last = (_normalise(image.data[t, channel].max(axis=0)) for t in (0, -1))
    save_track_image(first, last, paths, out[1])
    return out


def _normalise(plane: np.ndarray) -> np.ndarray:
    plane = np.asarray(plane, np.float32)
    flat = plane.ravel()
    # display levels of a verification picture: percentiles of ~0.5 M evenly spread pixels are plenty
    lo, hi = np.percentile(flat[:: max(1, flat.size // 500_000)], [1, 99.8])
    return np.clip((plane - lo) / max(hi - lo, 1e-6), 0, 1)


def save_population_plot(
    times: list[float], counts: list[int], path: Path, title: str = "", xlabel: str = "time (s)"
) -> None:
    """Number of nuclei over time (or over frame numbers, when the file recorded no times)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(times, counts, "o-")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("nuclei")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def resolve_method(method: str, stack: bool) -> str:
    """``auto`` (the default) = ``model`` (the shipped ONNX model, or ``--model``) on 2D planes, ``adaptive``
    on z-stacks (the model is 2D); on held-out DSB2018 fluorescence images the model scored F1 0.84 against
    0.60 for adaptive (bench/nuclei_model.py). Other methods are kept."""
    if method == "auto":
        return "adaptive" if stack else "model"
    return method


@functools.lru_cache(maxsize=2)
def model_predictor(path: str | None):
    """The predictor of a model file (``None``: the shipped model), loaded once per job (a folder of images
    shares it)."""
    if path and not Path(path).is_file():
        raise ImgSuiteError("no such model file (--model)", path)
    from .unet import load_predictor

    return load_predictor(path or None)
