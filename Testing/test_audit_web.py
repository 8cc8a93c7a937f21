"""Audit of the browser review (``imgsuite review``): hostile or careless use of a running review."""

from __future__ import annotations

import pydicom
import pytest

from SlicerImgSuite.errors import ImgSuiteError


def _move_gtv(path, mm: float) -> None:
    ds = pydicom.dcmread(path)
    gtv = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    for c in next(i for i in ds.ROIContourSequence if int(i.ReferencedROINumber) == gtv).ContourSequence:
        points = [float(v) for v in c.ContourData]
        c.ContourData = [f"{v + mm if n % 3 == 0 else v:.4f}" for n, v in enumerate(points)]
    ds.save_as(path)


def test_export_refuses_a_reference_changed_on_disk_while_the_review_runs(phantom, tmp_path):
    """The reviewer approves the GTV shown in the browser; meanwhile the planner saves an edited RS.dcm over the
    reference. Before, Export read the file again and wrote the moved GTV (never seen) as APPROVED."""
    from SlicerImgSuite.web.review_session import open_review

    reference = tmp_path / "RS.dcm"
    reference.write_bytes(phantom.rtstruct.read_bytes())
    out = tmp_path / "review"
    session = open_review(reference, phantom.ct_dir, out, test=phantom.rtstruct)
    _move_gtv(reference, 4.0)
    for name in session.names():
        session.set_status(name, "approved")
    with pytest.raises(ImgSuiteError, match="changed on disk"):
        session.export()
    assert not (out / "RS_reviewed.dcm").exists()
    # started again, the review reopens the changed GTV and exports what it now shows
    again = open_review(reference, phantom.ct_dir, out, test=phantom.rtstruct)
    assert again.state["GTV"].status == "needs-edit"
    again.export()
    assert pydicom.dcmread(out / "RS_reviewed.dcm").ApprovalStatus == "UNAPPROVED"
