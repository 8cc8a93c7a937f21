"""The ``compare-structures`` job: compare two structure sets and write the JSON, CSV and HTML report together."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ImgSuiteError
from ..io.atomic import write_together
from ..progress import ProgressCallback, no_progress, sub_progress
from .compare import Comparison, compare_structure_sets


def compare_structures(
    reference,
    test,
    *,
    output_json: str | os.PathLike | None = None,
    output_csv: str | os.PathLike | None = None,
    report: str | os.PathLike | None = None,
    referenced_ct=None,
    dose=None,
    tolerance_mm: float = 2.0,
    name_map=None,
    progress: ProgressCallback | None = None,
    workers: int = 1,
) -> Comparison:
    """Compare ``test`` with ``reference`` and write every requested output, all or nothing.

    Parameters
    ----------
    reference, test : path
        RTSTRUCT files or folders, or Slicer ``.seg.nrrd`` files.
    output_json, output_csv, report : path, optional
        The comparison as JSON (``structures``, ``unmatched_reference``, ``unmatched_test``), as CSV, and the
        HTML report (table and thumbnails on the CT).
    referenced_ct, tolerance_mm, name_map, workers :
        As :func:`~SlicerImgSuite.review.compare.compare_structure_sets`.
    dose : path, optional
        An RTDOSE (or dose image in Gy): the report adds each structure's reference and test DVHs.
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    Comparison
        The metrics per matched structure and the unmatched names.

    Examples
    --------
    >>> import json, tempfile
    >>> from SlicerImgSuite.demo.phantom import make_phantom
    >>> p = make_phantom(tempfile.mkdtemp(), shape=(24, 24, 6))
    >>> out = Path(p.folder) / "cmp.json"
    >>> c = compare_structures(p.rtstruct, p.rtstruct, referenced_ct=p.ct_dir, output_json=out)
    >>> row = json.loads(out.read_text())["structures"][0]
    >>> row["reference"], row["dice"]
    ('BODY', 1.0)
    """
    progress = progress or no_progress
    outputs = [p for p in (output_json, output_csv, report) if p]
    if not outputs:
        raise ImgSuiteError("nothing to write: give --output-json, --output-csv or --report")
    inputs = {Path(p).resolve() for p in (reference, test, referenced_ct, dose) if isinstance(p, (str, os.PathLike))}
    for p in outputs:
        if Path(p).resolve() in inputs:
            raise ImgSuiteError("an output would overwrite an input", p)
    comparison = compare_structure_sets(
        reference,
        test,
        referenced_ct=referenced_ct,
        tolerance_mm=tolerance_mm,
        name_map=name_map,
        progress=sub_progress(progress, 0.0, 0.8 if report else 0.95),
        workers=workers,
    )
    ct = None
    if report and referenced_ct is not None:
        from ..io.images import read_image

        ct = referenced_ct if not isinstance(referenced_ct, (str, os.PathLike)) else read_image(referenced_ct)
    dose_image = _dose(dose) if report and dose is not None else None
    progress(0.8, "writing")

    def write_report(tmp):
        from .report import write_review_report

        write_review_report(comparison, tmp, ct=ct, dose=dose_image)

    write_together(
        [
            (output_json, lambda tmp: Path(tmp).write_text(comparison.to_json(), encoding="utf-8"), False),
            (output_csv, lambda tmp: Path(tmp).write_text(comparison.to_csv(), encoding="utf-8"), False),
            (report, write_report, False),
        ]
    )
    progress(1.0, "done")
    return comparison


def _dose(dose):
    """A dose image in Gy: an RTDOSE file through the one RTDOSE reader, else any image file as it is."""
    if not isinstance(dose, (str, os.PathLike)):
        return dose
    from ..io.images import read_image
    from ..rtstruct.dose import read_rtdose

    try:
        return read_rtdose(dose)
    except ImgSuiteError as exc:
        if "not an RTDOSE" not in exc.problem:
            raise
        return read_image(dose)
