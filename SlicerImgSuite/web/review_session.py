"""One browser review (``imgsuite review``): the comparison, the review state on disk, slice pictures, DVHs, exports.

Every action goes through :mod:`SlicerImgSuite.review` (the functions the ContourReview Slicer module calls);
this module only keeps them together for a server. The state is saved after each change
(``<output>/review_state.json``), so a closed tab or a killed server loses nothing, and a restarted server
shows what was decided.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing as mp
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError
from ..progress import ProgressCallback, no_progress, sub_progress
from .display import CT_WINDOW_LEVEL, WINDOW_PRESETS

STATE_FILE = "review_state.json"


def _done() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


# What Export writes into the output folder: the only files the server hands out.
EXPORTS = {
    "rtstruct": "RS_reviewed.dcm",
    "seg": "SEG_reviewed.dcm",
    "json": "review.json",
    "report": "review_report.html",
}
VIEWS = ("axial", "coronal", "sagittal")
PICTURE_PIXELS = 384  # side of a slice picture
MIN_FIELD_MM = 60.0


@dataclass
class ReviewSession:
    """The data of one review and the lock that serialises changes (last write per structure wins)."""

    reference: object
    referenced_ct: object
    output: Path
    comparison: object
    ct: sitk.Image
    dose: sitk.Image | None
    state: object
    reviewer: str
    notes: list[str] = field(default_factory=list)  # the warnings of reading the inputs (contours lost, ...)
    reference_stamp: tuple = ()  # the reference file(s) as read (name, size, mtime): Export reads them again
    lock: threading.Lock = field(default_factory=threading.Lock)
    _focus: dict = field(default_factory=dict, repr=False)
    _dvh: dict = field(default_factory=dict, repr=False)
    _dvh_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    measured: threading.Event = field(default_factory=_done, repr=False)  # cleared while the metrics are owed
    shown: threading.Event = field(default_factory=threading.Event, repr=False)  # a first picture was sent

    def measure_in_background(self, wait_s: float = 10.0) -> threading.Thread | None:
        """Compute the metrics the page shows after it is served (the table reorders, worst first, when they are
        in), then draw every DVH once so that a click only sends a picture.

        The metrics start once the first slice picture was sent (or after ``wait_s``). Where there are two cores
        or more they are computed in a process forked here, so call this before the server's threads start: the
        server keeps answering clicks meanwhile. Returns the thread that waits for them (None: nothing to do).
        """
        if self.measured.is_set() and (self.dose is None or len(self._dvh) == len(self.names())):
            return None
        child = None
        if not self.measured.is_set() and (os.cpu_count() or 1) > 1 and "fork" in mp.get_all_start_methods():
            context = mp.get_context("fork")
            receive, send = context.Pipe(duplex=False)
            go = context.Event()
            process = context.Process(target=_metrics_child, args=(self.comparison, go, send, wait_s), daemon=True)
            process.start()
            send.close()
            child = (process, receive, go)
        thread = threading.Thread(target=self._measure, args=(wait_s, child), name="review-metrics", daemon=True)
        thread.start()
        return thread

    def _measure(self, wait_s: float, child) -> None:
        from ..review.compare import pair_metrics

        self.shown.wait(wait_s)
        try:
            if not self.measured.is_set():
                rows = None
                if child is not None:
                    process, receive, go = child
                    go.set()
                    try:
                        rows = receive.recv()
                    except (EOFError, OSError):  # the child died: measure here
                        rows = None
                    process.join(5)
                if not isinstance(rows, list):
                    rows = pair_metrics(self.comparison)
                with self.lock:
                    self.comparison.structures = rows
        finally:
            self.measured.set()
        for name in self.names() if self.dose is not None else ():
            self.dvh_png(name)

    @property
    def state_path(self) -> Path:
        return self.output / STATE_FILE

    def names(self) -> list[str]:
        """Every reference structure, matched or not (one missing from the test set needs a decision too)."""
        return list(self.comparison.reference_shapes)

    def table(self) -> list[dict]:
        """The structure table, worst first, with statuses, comments and who decided."""
        from ..review.table import format_value, table_rows

        with self.lock:
            # unmatched reference structures first (no metric: the worst case), then the pairs, worst first
            missing = [
                {"reference": n, "test": "", "color": tuple(self.comparison.reference_shapes[n].color)}
                for n in self.comparison.unmatched_reference
            ]
            rows = missing + table_rows(self.comparison, self.state)
            out = []
            for row in rows:
                review = self.state[row["reference"]]
                cells = {k: format_value(k, row.get(k)) for k in ("dice", "hd95", "surface_dice", "volume_diff_pct")}
                out.append(
                    {
                        "name": row["reference"],
                        "test": row.get("test") or "",
                        "status": review.status,
                        "comment": review.comment,
                        "reviewer": review.reviewer or "",
                        "color": "#{:02x}{:02x}{:02x}".format(*row["color"]),
                        "focus": self.focus(row["reference"]),  # the page centres the views without asking again
                        **cells,
                    }
                )
        return out

    def set_status(self, name: str, status: str, comment: str = "", reviewer: str | None = None) -> dict:
        """Record a decision and save the state at once (atomic JSON)."""
        from ..review.state import check_status

        if name not in self.names():
            raise ImgSuiteError(f"no structure named {name!r} in this review")
        check_status(status)
        with self.lock:
            self.state.set_status(name, status, reviewer=reviewer or self.reviewer, comment=comment)
            self.state[name].fingerprint = shape_fingerprint(self.comparison.reference_shapes[name])
            self.state.save(self.state_path)
            review = self.state[name]
            return {"name": name, "status": review.status, "history": len(review.history)}

    def focus(self, name: str) -> dict:
        """The voxel (i, j, k) through the structure's centroid and the field of view (mm) that holds it."""
        if name not in self._focus:
            self._focus[name] = self._find_focus(name)
        return self._focus[name]

    def _find_focus(self, name: str) -> dict:
        from ..review.table import view_focus

        shape = self.comparison.reference_shapes.get(name)
        focus = view_focus(shape, self.comparison.grid) if shape is not None else None
        if focus is None:
            size = self.ct.GetSize()
            return {"index": [n // 2 for n in size], "field_mm": 0.0}
        return {
            "index": [int(v) for v in focus.centroid_index],
            "field_mm": focus.field_of_view_mm(minimum=MIN_FIELD_MM),
        }

    def slice_picture(self, view: str, index: int, name: str | None = None, window: str | None = None, field_mm=0.0):
        """A slice picture (JPEG bytes): CT, reference outline (solid) and test outline (dashed) of ``name``."""
        return slice_picture(self, view, index, name, window, field_mm)

    def dvh_png(self, name: str) -> bytes | None:
        """The DVH of one structure, reference (solid) and test (dashed), or None without a dose."""
        if self.dose is None:
            return None
        with self._dvh_lock:  # the dose and the shapes never change: each DVH is drawn once
            if name not in self._dvh:
                self._dvh[name] = dvh_picture(self, name)
            return self._dvh[name]

    def export(self) -> list[str]:
        """Write the reviewed RTSTRUCT, the DICOM SEG, the review JSON and the HTML report into the output folder."""
        self.measured.wait()  # the JSON and the report hold the metrics
        return export_all(self)


def _metrics_child(comparison, go, send, wait_s: float) -> None:
    """In the forked process: wait for the go, send the comparison's rows with their metrics (or the error)."""
    from ..review.compare import pair_metrics

    go.wait(wait_s)
    try:
        send.send(pair_metrics(comparison))
    except Exception as exc:  # the parent measures itself
        send.send(repr(exc))
    finally:
        send.close()


def _refuse_exports_over_inputs(output: Path, *inputs) -> None:
    """An export (``RS_reviewed.dcm`` ...) may not replace an input: re-reviewing a previous export from its own
    folder would have overwritten the reference at export time."""
    exports = {(output / name).resolve() for name in EXPORTS.values()}
    for p in inputs:
        if p is not None and Path(p).resolve() in exports:
            raise ImgSuiteError(f"the export would overwrite this input ({Path(p).name} in --output {output}); "
                                "give another --output folder", p)


def open_review(
    reference,
    referenced_ct,
    output,
    *,
    test=None,
    dose=None,
    name_map=None,
    reviewer: str = "reviewer",
    measure: bool = True,
    progress: ProgressCallback | None = None,
) -> ReviewSession:
    """Compare ``test`` with ``reference`` on the CT's grid and load (or start) the review state in ``output``.

    Parameters
    ----------
    reference, test : path
        RTSTRUCT files/folders or ``.seg.nrrd`` files; ``reference`` may be a Slicer scene (``.mrb``): its first
        segmentation of the CT is the reference, its second the test unless ``test`` is given, and its segment
        review tags the starting state. Without a test the reference is reviewed alone.
    referenced_ct : path
        The CT series (folder), the grid and the export's reference.
    output : path
        Receives ``review_state.json`` (after every decision) and the exports.
    dose : path, optional
        RTDOSE (Gy) for the DVH of the selected structure.
    name_map : list of "REF=TEST" or mapping, optional
        Pairs of differently named structures (``GTV=GTV_resident``); the others pair by name as in
        ``compare-structures``.
    measure : bool
        False: the metrics are left for :meth:`ReviewSession.measure_in_background` (a server shows the
        structures first; :attr:`ReviewSession.measured` says when the table holds them).
    reviewer : str
        The name recorded with each decision.
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    ReviewSession
        The comparison, the CT (and dose) and the review state, saved in ``output`` after every decision.

    Examples
    --------
    >>> import tempfile
    >>> from SlicerImgSuite.demo.phantom import make_phantom
    >>> p = make_phantom(tempfile.mkdtemp(), shape=(24, 24, 6))
    >>> session = open_review(p.rtstruct, p.ct_dir, Path(p.folder) / "review", test=p.rtstruct, measure=False)
    >>> session.set_status("GTV", "approved", comment="fine")
    {'name': 'GTV', 'status': 'approved', 'history': 1}
    >>> session.state_path.name, session.state_path.is_file()
    ('review_state.json', True)
    """
    from ..io.images import read_image

    progress = progress or no_progress
    output = Path(output)
    for p in (reference, test, referenced_ct, dose):
        if p is not None and not Path(p).exists():
            raise ImgSuiteError("no such file or folder", p)
    if output.exists() and not output.is_dir():
        raise ImgSuiteError("--output must be a folder", output)
    _refuse_exports_over_inputs(output, reference, test, dose)
    stamp = _file_stamp(reference)  # before reading: an edit saved while the review loads counts too
    progress(0.0, "reading the CT")
    with warnings.catch_warnings(record=True) as said:  # what reading said is also shown on the page
        warnings.simplefilter("always")
        ct = read_image(referenced_ct)
        tagged = None
        if Path(reference).suffix.lower() == ".mrb":
            reference, scene_test, tagged = scene_structure_sets(reference, ct)
            test = test if test is not None else scene_test
        comparison = _comparison(reference, test, ct, name_map, measure, sub_progress(progress, 0.1, 0.8))
        dose_on_ct = _dose_on(dose, ct, progress)
    for w in said:  # passed on as they came (the CLI prints each as one line)
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    output.mkdir(parents=True, exist_ok=True)
    state = _review_state(output / STATE_FILE, list(comparison.reference_shapes), tagged, ct)
    _reopen_changed(state, comparison.reference_shapes, output / STATE_FILE)
    progress(1.0, "ready")
    session = ReviewSession(
        reference=reference,
        referenced_ct=referenced_ct,
        output=output,
        comparison=comparison,
        ct=ct,
        dose=dose_on_ct,
        state=state,
        reviewer=reviewer,
        notes=[str(w.message) for w in said if issubclass(w.category, UserWarning)],
        reference_stamp=stamp,
    )
    if test is not None and not measure:
        session.measured.clear()
    return session


def _dose_on(dose, ct: sitk.Image, progress: ProgressCallback):
    """The RTDOSE (Gy) resampled onto the CT's grid, or None without one."""
    if dose is None:
        return None
    from ..imageops import resample
    from ..rtstruct.dose import read_rtdose

    progress(0.85, "reading the dose")
    return resample(read_rtdose(dose), ct, interpolation="linear")


def _comparison(reference, test, ct: sitk.Image, name_map, measure: bool, progress: ProgressCallback):
    """The reference against the test (pairs by name and ``name_map``), or the reference alone."""
    from ..review.compare import compare_structure_sets

    if test is not None:
        return compare_structure_sets(
            reference, test, referenced_ct=ct, name_map=name_map, progress=progress, metrics=measure
        )
    if name_map:
        raise ImgSuiteError("--map pairs a reference structure with a test structure: give --test too")
    return _reference_alone(reference, ct, progress)


def _reference_alone(reference, ct: sitk.Image, progress: ProgressCallback):
    """A :class:`Comparison` of the reference with no test: its structures, metrics left empty."""
    from ..review.compare import Comparison
    from ..review.metrics import METRICS
    from ..review.sources import load_structure_set, shapes_of

    shapes = shapes_of(load_structure_set(reference), ct, progress)
    rows = [{"reference": n, "test": "", **{m: math.nan for m in METRICS}} for n in shapes]
    return Comparison(
        structures=rows,
        unmatched_reference=[],
        unmatched_test=[],
        tolerance_mm=2.0,
        reference_shapes=shapes,
        test_shapes={},
        grid=ct,
    )


def _review_state(state_path: Path, names: list[str], tagged, ct: sitk.Image):
    """The saved review state, else a scene's review tags, else a new one; every structure in ``names`` in it.

    The state keeps the CT's Frame of Reference; a saved state of another one (an --output folder used for
    another patient) is refused: its decisions were carried over wherever a structure looked the same (an empty
    ROI, a template structure) and showed in the other structures' histories."""
    from ..review.sources import FRAME_TAG
    from ..review.state import ReviewState

    frame = ct.GetMetaData(FRAME_TAG).strip("\x00 ") if ct.HasMetaDataKey(FRAME_TAG) else ""
    if state_path.exists():
        state = ReviewState.load(state_path)
        if state.frame_of_reference and frame and state.frame_of_reference != frame:
            raise ImgSuiteError(
                f"this review was made on another scan (Frame of Reference {state.frame_of_reference}; the "
                f"referenced CT uses {frame}); give another --output folder", state_path,
            )  # fmt: skip
    else:
        state = tagged if tagged is not None else ReviewState(names)
    state.frame_of_reference = state.frame_of_reference or frame
    for name in names:
        if name not in state:
            state.structures[name] = ReviewState([name]).structures[name]
    return state


def shape_fingerprint(shape) -> str:
    """A digest of a structure's mask (and where it lies) and its contour polygons: what a decision was made on."""
    import hashlib

    digest = hashlib.sha256(repr((shape.offset, shape.mask.shape)).encode())
    digest.update(np.packbits(np.asarray(shape.mask, bool)).tobytes())
    for k in sorted(shape.slices):
        for polygon in shape.slices[k]:
            digest.update(repr(k).encode() + np.round(np.asarray(polygon, float), 4).tobytes())
    return digest.hexdigest()[:32]


def _reopen_changed(state, shapes: dict, state_path: Path) -> None:
    """Decisions made on contours that have changed since (the structure set was edited on disk): needs-edit,
    with the reason in the history, and the state saved. Decisions saved without a fingerprint are kept."""
    changed = False
    for name, shape in shapes.items():
        review = state[name]
        now = shape_fingerprint(shape)
        if review.fingerprint and review.fingerprint != now and review.status != "unreviewed":
            was = review.status
            state.set_status(
                name, "needs-edit", reviewer="imgsuite",
                comment=f"the contours changed on disk after the decision {was!r}; review them again",
            )  # fmt: skip
            review.fingerprint = now
            changed = True
    if changed:
        state.save(state_path)


def scene_structure_sets(path, ct: sitk.Image):
    """The structure sets of a Slicer scene (``.mrb``): its first two segmentations of the CT (reference, test or
    None) as name -> (mask on ``ct``'s grid, colour), and the review state the reference's segment tags hold."""
    from ..mrml.mrb import load_mrb
    from ..mrml.segmentations import masks_from_segmentation_node, segment_colors
    from ..review.state import from_segment_tags
    from .display import anatomy_segmentations, main_volume

    scene = load_mrb(path)
    try:
        nodes = anatomy_segmentations(scene.scene, main_volume(scene.scene))
        if not nodes:
            raise ImgSuiteError("the scene holds no segmentation of a CT", path)

        def masks(node):
            colors = segment_colors(node)
            return {n: (m, colors.get(n, (255, 0, 0))) for n, m in masks_from_segmentation_node(node, ct).items()}

        return masks(nodes[0]), masks(nodes[1]) if len(nodes) > 1 else None, from_segment_tags(nodes[0])
    finally:
        scene.scene.Clear(1)


def _plane(image: sitk.Image, view: str, index: int) -> tuple[np.ndarray, float, float]:
    """A slice, oriented for the screen (axial: anterior up, patient right on the left; others: superior up),
    with the pixel size (mm) along its columns and rows."""
    a = sitk.GetArrayViewFromImage(image)
    sx, sy, sz = image.GetSpacing()
    if view == "axial":
        return a[index], sx, sy
    if view == "coronal":
        return a[:, index, :][::-1], sx, sz
    return a[:, :, index][::-1], sy, sz


def _shape_plane(shape, grid: sitk.Image, view: str, index: int) -> np.ndarray:
    """The shape's mask on one slice of the grid (bool, oriented as :func:`_plane`), cut from its box only."""
    nx, ny, nz = grid.GetSize()
    i, j, k = shape.offset
    dz, dy, dx = shape.mask.shape
    if view == "axial":
        plane = np.zeros((ny, nx), bool)
        if k <= index < k + dz:
            plane[j : j + dy, i : i + dx] = shape.mask[index - k]
        return plane
    plane = np.zeros((nz, nx if view == "coronal" else ny), bool)
    if view == "coronal" and j <= index < j + dy:
        plane[k : k + dz, i : i + dx] = shape.mask[:, index - j, :]
    elif view == "sagittal" and i <= index < i + dx:
        plane[k : k + dz, j : j + dy] = shape.mask[:, :, index - i]
    return plane[::-1]


def _edge(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """The ``width`` pixels inside the border of ``mask``."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        for axis in (0, 1):
            for step in (1, -1):
                shrunk &= np.roll(inner, step, axis=axis)
        inner = shrunk
    return mask & ~inner


def slice_picture(session, view: str, index: int, name=None, window=None, field_mm=0.0) -> bytes:
    """See :meth:`ReviewSession.slice_picture` (JPEG bytes)."""
    from PIL import Image

    if view not in VIEWS:
        raise ImgSuiteError(f"unknown view {view!r}")
    axis = {"axial": 2, "coronal": 1, "sagittal": 0}[view]
    index = int(np.clip(int(index), 0, session.ct.GetSize()[axis] - 1))
    plane, px, py = _plane(session.ct, view, index)
    width, level = WINDOW_PRESETS.get(window, CT_WINDOW_LEVEL)
    grey = np.clip((plane - (level - width / 2)) / width * 255.0, 0, 255).astype(np.uint8)
    box, size = _picture_box(session, view=view, shape=plane.shape, px=px, py=py, name=name, field_mm=field_mm)
    # only the shown part of the slice is resampled, once, straight to the picture's size
    rgb = np.repeat(np.asarray(Image.fromarray(grey).resize(size, Image.BILINEAR, box=box))[..., None], 3, axis=2)
    if name:
        for shapes, dotted in ((session.comparison.reference_shapes, False), (session.comparison.test_shapes, True)):
            test_name = _test_name(session, name) if dotted else name
            shape = shapes.get(test_name) if test_name else None
            if shape is None:
                continue
            mask = Image.fromarray(_shape_plane(shape, session.comparison.grid, view, index).astype(np.uint8) * 255)
            edge = _edge(np.asarray(mask.resize(size, Image.NEAREST, box=box)) > 0)
            if dotted:  # the test outline: white dashes, the reference's colour stays solid
                yy, xx = np.indices(edge.shape)
                edge &= (yy + xx) % 8 < 4
                rgb[edge] = (255, 255, 255)
            else:
                rgb[edge] = shape.color
    buffer = io.BytesIO()
    # JPEG without chroma subsampling: a tenth of the PNG's encoding time, outlines keep their colour
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90, subsampling=0)
    return buffer.getvalue()


def _picture_box(session, view: str, shape, px: float, py: float, name, field_mm):
    """The part of the slice shown (a PIL box in slice pixels) and the picture's size: the whole slice fitted into
    :data:`PICTURE_PIXELS`, or the square of ``field_mm`` around the structure's centroid, kept inside the slice."""
    h, w = shape
    scale = PICTURE_PIXELS / max(w * px, h * py)  # picture pixels per mm for the whole slice
    if not (field_mm and name):
        return (0.0, 0.0, float(w), float(h)), (max(1, round(w * px * scale)), max(1, round(h * py * scale)))
    i, j, k = session.focus(name)["index"]
    nz = session.ct.GetSize()[2]
    column, row = {"axial": (i, j), "coronal": (i, nz - 1 - k), "sagittal": (j, nz - 1 - k)}[view]
    side = min(max(float(field_mm), 16 / scale), w * px, h * py)  # mm
    left = min(max((column + 0.5) * px - side / 2, 0.0), w * px - side)
    top = min(max((row + 0.5) * py - side / 2, 0.0), h * py - side)
    return (left / px, top / py, (left + side) / px, (top + side) / py), (PICTURE_PIXELS, PICTURE_PIXELS)


def _test_name(session, name: str) -> str | None:
    for row in session.comparison.structures:
        if row["reference"] == name:
            return row.get("test") or None
    return None


def dvh_picture(session, name: str) -> bytes:
    """See :meth:`ReviewSession.dvh_png`."""
    from matplotlib.figure import Figure

    dose = sitk.GetArrayViewFromImage(session.dose)
    fig = Figure(figsize=(4.2, 2.8))
    ax = fig.add_subplot()
    top = float(dose.max()) or 1.0
    for shapes, label, style in (
        (session.comparison.reference_shapes, "reference", "-"),
        (session.comparison.test_shapes, "test", "--"),
    ):
        shape_name = name if label == "reference" else _test_name(session, name)
        shape = shapes.get(shape_name) if shape_name else None
        if shape is None or shape.empty:
            continue
        i, j, k = shape.offset
        dz, dy, dx = shape.mask.shape
        values = np.sort(dose[k : k + dz, j : j + dy, i : i + dx][shape.mask])
        edges = np.linspace(0.0, top, 200)
        volume = 100.0 * (1.0 - np.searchsorted(values, edges, side="left") / values.size)
        ax.plot(edges, volume, style, color=np.array(shape.color) / 255, label=f"{label} {shape_name}")
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def export_all(session) -> list[str]:
    """See :meth:`ReviewSession.export`; files are written one by one, each atomically."""
    from ..review.export import export_reviewed_rtstruct, export_seg
    from ..review.report import write_review_report

    out = session.output
    with session.lock:
        state = session.state
        structures = session.reference
        if _is_rtstruct(structures) and _file_stamp(structures) != session.reference_stamp:
            # the export copies the file's polygons: those of an edit saved since would carry decisions made on
            # the contours shown, unseen (APPROVED); restarting reopens the changed structures (_reopen_changed)
            raise ImgSuiteError(
                "the reference structure set changed on disk since the review opened: nothing exported; "
                "start imgsuite review again to review the changed structures", structures,
            )  # fmt: skip
        if not _is_rtstruct(structures):
            masks = {}
            for name, shape in session.comparison.reference_shapes.items():
                image = sitk.GetImageFromArray(_full_mask(shape, session.comparison.grid).astype(np.uint8))
                image.CopyInformation(session.comparison.grid)
                masks[name] = (image, tuple(shape.color))
            structures = masks
        export_reviewed_rtstruct(out / EXPORTS["rtstruct"], session.referenced_ct, structures, state)
        export_seg(out / EXPORTS["seg"], session.referenced_ct, structures, state=state)
        payload = {"review": state.to_dict(), "comparison": session.comparison.to_dict()}
        tmp = out / (EXPORTS["json"] + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        os.replace(tmp, out / EXPORTS["json"])
        write_review_report(  # this review decides on (and exports) the reference's structures
            session.comparison, out / EXPORTS["report"], ct=session.ct, state=state, reviewed="reference"
        )
    return list(EXPORTS.values())


def _is_rtstruct(source) -> bool:
    from ..review.sources import is_seg_nrrd

    return isinstance(source, str | os.PathLike) and not is_seg_nrrd(source)


def _file_stamp(path) -> tuple:
    """Name, size and modification time of a file, or of every file under a folder (a DICOM folder)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def _full_mask(shape, grid) -> np.ndarray:
    nx, ny, nz = grid.GetSize()
    full = np.zeros((nz, ny, nx), bool)
    i, j, k = shape.offset
    dz, dy, dx = shape.mask.shape
    full[k : k + dz, j : j + dy, i : i + dx] = shape.mask
    return full
