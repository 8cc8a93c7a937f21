"""Find what belongs together in a study folder: the RTSTRUCT, the RTDOSE and the CT the structures were drawn on.

plastimatch takes ``--input STUDY_DIR`` (``dvh``) and an RTSTRUCT file whose CT lies beside it
(``convert``); here the CT is the image series the RTSTRUCT references (its SeriesInstanceUID), or else
the one series in its Frame of Reference. The folder and its direct subfolders are searched (the usual
``CT/`` beside ``RS.dcm``); the caller says which series was used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImgSuiteError


@dataclass
class FoundSeries:
    """An image series found for a structure set, and why it was chosen."""

    folder: Path
    uid: str
    modality: str
    files: int
    description: str
    why: str

    def text(self) -> str:
        label = f", {self.description}" if self.description else ""
        return f"the {self.modality} series {self.uid} ({self.files} files{label}) in {self.folder} ({self.why})"


@dataclass
class Study:
    """An RTSTRUCT, an RTDOSE and the CT series of one study folder."""

    rtstruct: Path
    dose: Path
    ct: FoundSeries | None


def _folders(folder: Path, subfolders: bool = True) -> list[Path]:
    below = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if subfolders else []
    return [folder, *below]


def find_referenced_ct(ss, folder: str | os.PathLike, subfolders: bool = True) -> FoundSeries | None:
    """The image series in ``folder`` (or a direct subfolder) that structure set ``ss`` belongs to, or None.

    The series the RTSTRUCT references wins; otherwise the one series sharing its Frame of Reference.
    Several candidates and no reference to decide: an error listing them (name one with --referenced-ct).
    """
    from ..io.dicom_series import scan_folder

    candidates = [(f, s) for f in _folders(Path(folder), subfolders) for s in scan_folder(f) if s.is_image]
    referenced = [(f, s) for f, s in candidates if ss.referenced_series_uid and s.uid == ss.referenced_series_uid]
    same_frame = [
        (f, s) for f, s in candidates if ss.frame_of_reference and s.frame_of_reference == ss.frame_of_reference
    ]
    for chosen, why in ((referenced, "referenced by the RTSTRUCT"), (same_frame, "the RTSTRUCT's Frame of Reference")):
        if len(chosen) == 1:
            f, s = chosen[0]
            return FoundSeries(f, s.uid, s.modality, len(s.files), s.description, why)
        if len(chosen) > 1:
            listing = "; ".join(f"{s.summary()} in {f}" for f, s in chosen)
            raise ImgSuiteError(
                f"several image series fit the structure set ({listing}); name one with --referenced-ct", folder
            )
    return None


def file_modality(path: Path) -> str:
    """The Modality of a DICOM file ("" when it is not DICOM or has none)."""
    import pydicom

    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
    except Exception:
        return ""


def find_study(folder: str | os.PathLike) -> Study:
    """The one RTSTRUCT and the one RTDOSE in ``folder`` (or its direct subfolders), and the CT of the structures.

    Examples
    --------
    ::

        study = find_study("patient/")
        study.rtstruct, study.dose, study.ct.text()
    """
    from .structure_set import read_rtstruct

    folder = Path(folder)
    if not folder.is_dir():
        raise ImgSuiteError("no such folder (--input is a study folder holding the RTSTRUCT and the RTDOSE)", folder)
    files = [p for f in _folders(folder) for p in sorted(f.iterdir()) if p.is_file() and not p.name.startswith(".")]
    found = {"RTSTRUCT": [], "RTDOSE": []}
    for path in files:
        modality = file_modality(path)
        if modality in found:
            found[modality].append(path)
    for modality, paths in found.items():
        if not paths:
            raise ImgSuiteError(f"the study folder holds no {modality} file", folder)
        if len(paths) > 1:
            names = ", ".join(str(p.relative_to(folder)) for p in paths)
            raise ImgSuiteError(f"the study folder holds {len(paths)} {modality} files ({names}); name one", folder)
    rtstruct = found["RTSTRUCT"][0]
    return Study(rtstruct, found["RTDOSE"][0], find_referenced_ct(read_rtstruct(rtstruct), folder))
