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
        write_rtstruct_from_masks(folder / "RS.dcm", headers, result.structures, result.colors)
