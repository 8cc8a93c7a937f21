"""Compare two structure sets: match structures by name, then every metric of :mod:`.metrics` per pair."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ImgSuiteError, check_number
from ..progress import ProgressCallback, no_progress, sub_progress
from .metrics import METRICS, Shape, structure_metrics

# Canonical names (TG-263 where it names the structure) and the spellings seen in clinics. Laterality is
# handled apart: left/lt/l and right/rt/r become a trailing _l / _r, wherever they stand.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "body": ("external", "skin", "outline", "outer contour", "patient", "body contour"),
    "spinalcord": ("cord", "spinal cord", "spinal_cord", "spinal canal", "myelon"),
    "spinalcord_prv05": ("cord prv", "spinalcord prv", "prv cord", "cord_prv"),
    "brainstem": ("brain stem", "brain_stem", "truncus"),
    "esophagus": ("oesophagus", "esoph", "oesoph"),
    "heart": ("cor",),
    "lungs": ("lung total", "total lung", "lungs total", "lung_both", "both lungs", "lung"),
    "lung_l": ("left lung",),
    "lung_r": ("right lung",),
    "trachea": ("windpipe",),
    "liver": ("hepar",),
    "kidney_l": ("left kidney",),
    "kidney_r": ("right kidney",),
    "bladder": ("urinary bladder", "vesica"),
    "rectum": ("rect",),
    "femur_head_l": ("femoral head l", "femur head l", "femurhead_l", "fem head l"),
    "femur_head_r": ("femoral head r", "femur head r", "femurhead_r", "fem head r"),
    "parotid_l": ("left parotid", "parotid gland l"),
    "parotid_r": ("right parotid", "parotid gland r"),
    "glnd_submand_l": ("submandibular l", "submandibular gland l", "smg l"),
    "glnd_submand_r": ("submandibular r", "submandibular gland r", "smg r"),
    "opticnrv_l": ("optic nerve l", "opticnerve_l", "on l"),
    "opticnrv_r": ("optic nerve r", "opticnerve_r", "on r"),
    "opticchiasm": ("chiasm", "chiasma", "optic chiasm", "optic chiasma"),
    "eye_l": ("globe l", "eyeball l"),
    "eye_r": ("globe r", "eyeball r"),
    "lens_l": ("lens left",),
    "lens_r": ("lens right",),
    "cochlea_l": ("cochlea left",),
    "cochlea_r": ("cochlea right",),
    "mandible": ("mandible bone", "jaw"),
    "larynx": ("larynx glottic",),
    "cavity_oral": ("oral cavity", "mouth"),
    "brain": ("cerebrum",),
    "bowel": ("bowel bag", "bowelbag", "small bowel", "intestine"),
    "stomach": ("gaster",),
    "spleen": ("lien",),
    "prostate": ("prostate gland",),
    "seminalves": ("seminal vesicles", "seminal vesicle", "sv"),
    "breast_l": ("left breast",),
    "breast_r": ("right breast",),
}
_LEFT, _RIGHT = {"l", "lt", "left", "li", "sin"}, {"r", "rt", "right", "re", "dx"}


def _normal(name: str) -> str:
    """Lower case, words split on anything but letters and digits, laterality moved to a trailing _l/_r."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    side = ""
    kept = []
    for w in words:
        if w in _LEFT and not side:
            side = "l"
        elif w in _RIGHT and not side:
            side = "r"
        else:
            kept.append(w)
    return "_".join(kept) + (f"_{side}" if side else "")


_CANONICAL = {}
for _name, _others in SYNONYMS.items():
    for _spelling in (_name, *_others):
        _CANONICAL[_normal(_spelling)] = _name
        _CANONICAL[_normal(_spelling).replace("_", "")] = _name


def canonical_name(name: str) -> str:
    """The canonical (TG-263 style) name of a structure name, or its normalised spelling when unknown.

    Examples
    --------
    >>> canonical_name("Lt Parotid"), canonical_name("PAROTID_L"), canonical_name("External")
    ('parotid_l', 'parotid_l', 'body')
    >>> canonical_name("Spinal Cord"), canonical_name("GTV_1")
    ('spinalcord', 'gtv_1')
    """
    key = _normal(name)
    return _CANONICAL.get(key) or _CANONICAL.get(key.replace("_", "")) or key


def parse_name_map(items: str | Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["A=B", ...]`` (reference name = test name), one text ``"A=B, C=D"`` (a Slicer field; pairs apart by
    commas or semicolons) or a mapping, as a dict.

    >>> parse_name_map("GTV=GTV_resident; Lt Lung = Lung_L")
    {'GTV': 'GTV_resident', 'Lt Lung': 'Lung_L'}
    """
    if isinstance(items, str):
        items = [item for item in re.split(r"[,;]", items) if item.strip()]
    if not items:
        return {}
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    out = {}
    for item in items:
        ref, sep, test = str(item).partition("=")
        if not sep or not ref.strip() or not test.strip():
            raise ImgSuiteError(f"--map {item!r}: expected REFERENCE_NAME=TEST_NAME")
        out[ref.strip()] = test.strip()
    return out


def match_names(
    reference: Sequence[str], test: Sequence[str], name_map: Mapping[str, str] | None = None
) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Pair structure names one to one: the explicit map, then exact, case-insensitive, then canonical names.

    Returns (pairs in reference order, unmatched reference names, unmatched test names).

    Examples
    --------
    >>> match_names(["BODY", "Lung_L", "GTV"], ["External", "LUNG LEFT", "CTV"])
    ([('BODY', 'External'), ('Lung_L', 'LUNG LEFT')], ['GTV'], ['CTV'])
    >>> match_names(["GTV"], ["CTV"], {"GTV": "CTV"})[0]
    [('GTV', 'CTV')]
    """
    name_map = dict(name_map or {})
    free = list(test)
    chosen: dict[str, str] = {}
    for ref, tst in name_map.items():
        if ref not in reference:
            raise ImgSuiteError(f"--map {ref}={tst}: the reference has no structure {ref!r} (it has {list(reference)})")
        if tst not in free:
            raise ImgSuiteError(f"--map {ref}={tst}: the test has no free structure {tst!r} (it has {list(test)})")
        chosen[ref] = tst
        free.remove(tst)
    for key in (lambda s: s, str.lower, canonical_name):
        for ref in reference:
            if ref in chosen:
                continue
            hit = next((t for t in free if key(t) == key(ref)), None)
            if hit is not None:
                chosen[ref] = hit
                free.remove(hit)
    pairs = [(r, chosen[r]) for r in reference if r in chosen]
    return pairs, [r for r in reference if r not in chosen], free


@dataclass
class Comparison:
    """The result of :func:`compare_structure_sets`.

    ``structures``: one dict per matched pair, ``{"reference": name, "test": name, <metric>: value}`` with the
    metrics of :data:`~.metrics.METRICS` (NaN where a structure is empty); ``shapes`` keeps both sets'
    :class:`~.metrics.Shape` objects and ``grid`` the comparison grid (SimpleITK image) for pictures and views.
    """

    structures: list[dict]
    unmatched_reference: list[str]
    unmatched_test: list[str]
    tolerance_mm: float = 2.0
    reference_shapes: dict[str, Shape] = field(default_factory=dict, repr=False)
    test_shapes: dict[str, Shape] = field(default_factory=dict, repr=False)
    grid: object = field(default=None, repr=False)

    def to_dict(self) -> dict:
        rows = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in s.items()} for s in self.structures
        ]
        return {
            "tolerance_mm": self.tolerance_mm,
            "structures": rows,
            "unmatched_reference": list(self.unmatched_reference),
            "unmatched_test": list(self.unmatched_test),
        }

    def to_json(self) -> str:
        """The JSON of the issue: ``structures``, ``unmatched_reference``, ``unmatched_test`` (NaN -> null)."""
        return json.dumps(self.to_dict(), indent=1)

    def to_csv(self) -> str:
        """One row per matched pair: reference, test and every metric."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["reference", "test", *METRICS])
        for s in self.structures:
            writer.writerow([s["reference"], s["test"], *(_csv_value(s[m]) for m in METRICS)])
        return out.getvalue()


def _csv_value(v) -> str:
    return "" if isinstance(v, float) and math.isnan(v) else f"{v:.6g}" if isinstance(v, float) else str(v)


def compare_structure_sets(
    reference,
    test,
    *,
    referenced_ct=None,
    tolerance_mm: float = 2.0,
    name_map: Sequence[str] | Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 1,
    metrics: bool = True,
) -> Comparison:
    """Compare a test structure set with a reference: name matching, then overlap and surface metrics per pair.

    Parameters
    ----------
    reference, test : path, StructureSet or mapping
        An RTSTRUCT (file or folder), a Slicer ``.seg.nrrd``, a read
        :class:`~SlicerImgSuite.rtstruct.StructureSet`, or a mapping name -> binary SimpleITK mask
        (or -> (mask, colour)).
    referenced_ct : path or SimpleITK.Image, optional
        The grid both sets are rasterized on; by default a mask source's grid, else one holding all contours
        (1 mm in-plane, one slice per contour plane).
    tolerance_mm : float
        Tolerance of surface Dice and added path length.
    name_map : list of "REF=TEST" or mapping, optional
        Explicit pairs, before the automatic matching (exact, case-insensitive, TG-263 names and synonyms).
    progress : callable, optional
        ``(fraction, message)``.
    workers : int
        Processes that compare pairs at once (forked; 1 inside an application such as Slicer).
    metrics : bool
        False: match and rasterize only, every metric NaN; :func:`pair_metrics` computes them later (a server
        that shows the structures first).

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> a = sitk.Image(20, 20, 10, sitk.sitkUInt8); a[5:15, 5:15, 3:7] = 1
    >>> b = sitk.Image(a); b[14, 5:15, 3:7] = 0
    >>> c = compare_structure_sets({"Lung_L": a}, {"LEFT LUNG": b})
    >>> row = c.structures[0]
    >>> row["test"], round(row["dice"], 4), round(row["hd"], 2), round(row["volume_diff_pct"], 1)
    ('LEFT LUNG', 0.9474, 1.0, -10.0)
    """
    from .sources import load_structure_set, reference_grid, shape_specs, structure_names, warn_shape_losses

    check_number(tolerance_mm, "--tolerance", positive=True)
    progress = progress or no_progress
    progress(0.0, "reading the structure sets")
    with _Pool(min(workers, 2)) as readers:  # two processes read the files while this one loads kernels, CT
        sources = [readers.later(load_structure_set, reference), readers.later(load_structure_set, test)]
        if workers > 1:
            _warm_up()  # here, once: the pair processes forked below inherit the loaded kernels
        grid = reference_grid([], referenced_ct) if referenced_ct is not None else None
        ref_src, test_src = (result() for result in sources)
        grid = grid if grid is not None else reference_grid([ref_src, test_src])
    frame = _frame_of(referenced_ct)
    frames = [getattr(src, "frame_of_reference", "") for src in (ref_src, test_src)]
    if all(frames) and frames[0] != frames[1]:  # with no CT to check each against, the two against each other
        raise ImgSuiteError(
            f"Frame of Reference mismatch: the reference uses {frames[0]}, the test {test_src.path} uses {frames[1]} "
            "(FrameOfReferenceUID); contours of two coordinate systems are not compared",
            ref_src.path,
        )
    for src in (ref_src, test_src):
        if hasattr(src, "check_frame_of_reference"):
            src.check_frame_of_reference(frame, f"the referenced CT {referenced_ct}")
    ref_names, test_names = structure_names(ref_src), structure_names(test_src)
    pairs, unmatched_ref, unmatched_test = match_names(ref_names, test_names, parse_name_map(name_map))
    ref_specs, test_specs = shape_specs(ref_src, grid), shape_specs(test_src, grid)  # structures only, no markers
    spacing = np.array(grid.GetSpacing(), float)
    jobs = [(r, t, ref_specs[r], test_specs[t], spacing, tolerance_mm, metrics) for r, t in pairs]
    paired_ref, paired_test = {r for r, _ in pairs}, {t for _, t in pairs}
    jobs += [(r, None, ref_specs[r], None, spacing, tolerance_mm, False) for r in ref_specs if r not in paired_ref]
    jobs += [(None, t, None, test_specs[t], spacing, tolerance_mm, False) for t in test_specs if t not in paired_test]
    with _Pool(workers) as pool:
        done = pool.run(jobs, sub_progress(progress, 0.05, 1.0))
    if metrics:
        rows = [row for row, _, _ in done if row is not None]
    else:
        rows = [{"reference": r, "test": t, **dict.fromkeys(METRICS, math.nan)} for r, t in pairs]
    ref_shapes = {r: done[n][1] for n, r in _order(jobs, 0, ref_specs)}
    test_shapes = {t: done[n][2] for n, t in _order(jobs, 1, test_specs)}
    warn_shape_losses(ref_shapes, ref_src, grid)
    warn_shape_losses(test_shapes, test_src, grid)
    progress(1.0, "compared")
    return Comparison(
        structures=rows,
        unmatched_reference=unmatched_ref,
        unmatched_test=unmatched_test,
        tolerance_mm=float(tolerance_mm),
        reference_shapes=ref_shapes,
        test_shapes=test_shapes,
        grid=grid,
    )


def pair_metrics(comparison: Comparison, *, workers: int = 1, progress: ProgressCallback | None = None) -> list[dict]:
    """The rows of ``comparison.structures`` with every metric computed (the comparison is not changed)."""
    spacing = np.array(comparison.grid.GetSpacing(), float)
    jobs = [
        (s["reference"], s["test"], comparison.reference_shapes[s["reference"]], comparison.test_shapes[s["test"]],
         spacing, comparison.tolerance_mm, True)
        for s in comparison.structures
    ]  # fmt: skip
    if workers > 1:
        _warm_up()  # before the fork: the pair processes inherit the loaded kernels
    with _Pool(workers) as pool:
        return [row for row, _, _ in pool.run(jobs, progress or no_progress)]


def _order(jobs: list, side: int, specs: dict) -> list[tuple[int, str]]:
    """(job index, name) of each structure of one side, in the source's order."""
    where = {job[side]: n for n, job in enumerate(jobs) if job[side] is not None}
    return [(where[name], name) for name in specs]


def _one_pair(job) -> tuple[dict | None, object, object]:
    """Rasterize a pair (or a lone structure) and, when asked, compare: (row or None, reference Shape, test Shape).
    A side given as a Shape already is used as it is."""
    from .sources import make_shape

    r, t, ref_spec, test_spec, spacing, tolerance_mm, with_metrics = job
    ref = make_shape(ref_spec) if ref_spec is not None else None
    test = make_shape(test_spec) if test_spec is not None else None
    if ref is None or test is None or not with_metrics:
        return None, ref, test
    return {"reference": r, "test": t, **structure_metrics(ref, test, spacing, tolerance_mm)}, ref, test


def _warm_up() -> None:
    """Load the libraries and compiled kernels of the metrics (from numba's cache) by measuring a tiny square."""
    from .metrics import Shape, structure_metrics

    m = np.zeros((3, 4, 4), bool)
    m[1, 1:3, 1:3] = True
    square = Shape("w", (0, 0, 0), m, {1: [np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]])]})
    structure_metrics(square, square, np.ones(3))


class _Pool:
    """Forked worker processes for the pairs (none with ``workers`` <= 1: then everything runs here)."""

    def __init__(self, workers: int):
        self.executor = None
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def later(self, function, source):
        """``function(source)`` in a worker when ``source`` is a file to read, else here; returns a result getter."""
        if self.executor is None or not isinstance(source, (str, os.PathLike)):
            value = function(source)
            return lambda: value
        return self.executor.submit(function, source).result

    def run(self, jobs: list, progress: ProgressCallback) -> list:
        """:func:`_one_pair` of every job, in order; in the workers largest structures first."""
        if self.executor is None:
            out = []
            for n, job in enumerate(jobs):
                progress(n / len(jobs), f"comparing {job[0] or job[1]}")
                out.append(_one_pair(job))
            return out
        from concurrent.futures import as_completed

        order = sorted(range(len(jobs)), key=lambda n: -sum(_size(spec) for spec in jobs[n][2:4]))
        out: list = [None] * len(jobs)
        futures = {self.executor.submit(_one_pair, jobs[n]): n for n in order}
        for done, future in enumerate(as_completed(futures)):
            n = futures[future]
            out[n] = future.result()
            progress((done + 1) / len(jobs), f"compared {jobs[n][0] or jobs[n][1]}")
        return out


def _size(spec) -> float:
    """How long a structure takes, roughly: its extent (mm³ of contour points, or voxels of a mask)."""
    from .sources import RoiSpec

    if spec is None:
        return 0.0
    return spec.size() if isinstance(spec, RoiSpec) else float(spec.mask.size)


def _frame_of(referenced_ct) -> str:
    """The Frame of Reference UID of a CT folder (empty when unknown or not DICOM)."""
    if not isinstance(referenced_ct, (str, os.PathLike)) or not os.path.isdir(referenced_ct):
        return ""
    from ..rtstruct.write import reference_series

    try:
        return reference_series(referenced_ct).frame_of_reference
    except ImgSuiteError:
        return ""
