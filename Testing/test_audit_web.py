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


def test_malformed_post_bodies_get_a_400_answer(phantom, tmp_path):
    """A JSON list, a number, bad JSON or a negative Content-Length: before, a list raised AttributeError (traceback
    on the terminal, the connection dropped without an answer) and a negative length hung the request."""
    import http.client
    import json
    import threading

    from SlicerImgSuite.web.review_server import make_review_server
    from SlicerImgSuite.web.review_session import open_review

    session = open_review(phantom.rtstruct, phantom.ct_dir, tmp_path / "review")
    server = make_review_server(session, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for body, length in ((b"[1]", None), (b"3", None), (b"{", None), (b'{"name": "GTV"}', "-1"), (b"{}", "x")):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
            headers = {"Content-Length": length or str(len(body))}
            connection.request("POST", "/api/status", body=body, headers=headers)
            response = connection.getresponse()
            assert response.status == 400 and "error" in json.loads(response.read())
            connection.close()
        assert session.state["GTV"].status == "unreviewed"
    finally:
        server.shutdown()
        server.server_close()
