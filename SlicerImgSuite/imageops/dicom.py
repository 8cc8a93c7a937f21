"""``synth --output-dicom``: a synthetic image as a CT series, plus an RTSTRUCT (``RS.dcm`` in the same folder)
when the pattern has structures."""

from __future__ import annotations

import os
from pathlib import Path

from ..io import atomic_dir
from ..io.dicom_write import new_study, write_ct_series


def write_synthetic_dicom(result, folder: str | os.PathLike, patient_name: str, patient_id: str, description: str):
    """Write the CT series (and the RTSTRUCT of ``result.structures``) into ``folder``, all or nothing.

    Returns the RTSTRUCT path, or None when the pattern has no structures.
    """
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        write_synthetic_dicom_into(result, tmp, patient_name, patient_id, description)
    return folder / "RS.dcm" if result.structures else None


def write_synthetic_dicom_into(result, folder: str | os.PathLike, patient_name: str, patient_id: str, description: str):
    """Write the CT files (and ``RS.dcm``) straight into an existing ``folder``, e.g. a staging folder."""
    from ..rtstruct.write import write_rtstruct_from_masks

    folder = Path(folder)
    headers = write_ct_series(
        result.image, folder / "CT", new_study(patient_name, patient_id), series_description=description
    )
    for f in (folder / "CT").iterdir():
        f.rename(folder / f.name)
    (folder / "CT").rmdir()
    if result.structures:
        write_rtstruct_from_masks(folder / "RS.dcm", headers, result.structures, colors=result.colors)


def study_of(source: str | os.PathLike) -> dict:
    """The study attributes for a series derived from ``source``: those of its DICOM series when it is a DICOM
    folder (same patient, study and frame of reference), else a new study.

    Examples
    --------
    >>> from SlicerImgSuite.io.dicom_write import new_study
    >>> sorted(study_of("image.nrrd")) == sorted(new_study())
    True
    """
    from ..io.dicom_write import new_study, study_from_series

    if not Path(source).is_dir():
        return new_study()
    study = study_from_series(source)
    for key in ("StudyID", "AccessionNumber"):  # SH: a source's over-long value would make the copy invalid
        if len(str(study.get(key, ""))) > 16:
            study[key] = ""
    return study


def write_derived_series(image, folder: str | os.PathLike, source: str | os.PathLike, description: str) -> None:
    """``--output-format dicom``: ``image`` as a CT series in ``folder`` (all or nothing), in ``source``'s study."""
    from ..io.dicom_write import write_ct_series

    write_ct_series(image, folder, study_of(source), "CT", description)
