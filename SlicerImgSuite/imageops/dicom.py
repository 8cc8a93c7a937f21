"""``synth --output-dicom``: a synthetic image as a CT series, plus an RTSTRUCT when the pattern has structures
and the RT-struct package offers a writer."""

from __future__ import annotations

import importlib
import os

from ..io.dicom_write import new_study, write_ct_series


def write_synthetic_dicom(result, folder: str | os.PathLike, patient_name: str, patient_id: str, description: str):
    """Write the CT series into ``folder``; return the RTSTRUCT path, or None when none was written."""
    study = new_study(patient_name, patient_id)
    headers = write_ct_series(result.image, folder, study, series_description=description)
    writer = _rtstruct_writer()
    if not result.structures or writer is None:
        return None
    path = os.path.join(folder, "RS.dcm")
    writer(result.structures, headers, path, colors=result.colors, study=study)
    return path


def _rtstruct_writer():
    """The RT-struct package's ``write_rtstruct(masks, ct_headers, path, colors=, study=)``, if it exists yet."""
    for module in ("SlicerImgSuite.rtstruct.write", "SlicerImgSuite.rtstruct"):
        try:
            found = getattr(importlib.import_module(module), "write_rtstruct", None)
        except ImportError:
            continue
        if found is not None:
            return found
    return None
