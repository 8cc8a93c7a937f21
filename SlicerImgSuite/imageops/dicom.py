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
    from ..rtstruct.write import write_rtstruct_from_masks

    study = new_study(patient_name, patient_id)
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        headers = write_ct_series(result.image, Path(tmp) / "CT", study, series_description=description)
        for f in (Path(tmp) / "CT").iterdir():
            f.rename(Path(tmp) / f.name)
        (Path(tmp) / "CT").rmdir()
        if result.structures:
            write_rtstruct_from_masks(Path(tmp) / "RS.dcm", headers, result.structures, result.colors)
    return folder / "RS.dcm" if result.structures else None
