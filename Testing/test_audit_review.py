"""Trust audit of contour review (compare, decide, export) on hostile inputs made from the phantom patient:
each test failed before its fix."""

from __future__ import annotations

import json

import pydicom
import pytest

from SlicerImgSuite.cli import main
from SlicerImgSuite.errors import ImgSuiteError


def _renamed(phantom, folder, renames: dict[str, str]):
    """A copy of the phantom's RTSTRUCT with ROIs renamed (old name -> new name)."""
    ds = pydicom.dcmread(phantom.rtstruct)
    for item in ds.StructureSetROISequence:
        item.ROIName = renames.get(str(item.ROIName), str(item.ROIName))
    path = folder / "RS_renamed.dcm"
    ds.save_as(path)
    return path


def test_duplicate_roi_names_are_refused_not_merged(phantom, tmp_path, capsys):
    """Two ROIs named GTV (the real GTV and the heart): before, the heart was compared and exported in the GTV's
    place (both rows Dice 1, the exported RTSTRUCT held the heart's contours twice and no GTV)."""
    from SlicerImgSuite.review.export import export_reviewed_rtstruct
    from SlicerImgSuite.review.state import ReviewState

    dup = _renamed(phantom, tmp_path, {"HEART": "GTV"})
    out = tmp_path / "cmp.json"
    rc = main(["compare-structures", "-q", "--reference", str(dup), "--test", str(phantom.rtstruct),
               "--referenced-ct", str(phantom.ct_dir), "--workers", "1", "--output-json", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "RS_renamed.dcm" in err and "two ROIs named 'GTV'" in err and "(3006,0020)" in err
    state = ReviewState(["GTV"])
    state.set_status("GTV", "approved", reviewer="Dr A")
    with pytest.raises(ImgSuiteError, match="two ROIs named 'GTV'"):
        export_reviewed_rtstruct(tmp_path / "RS_out.dcm", phantom.ct_dir, dup, state)
    assert not (tmp_path / "RS_out.dcm").exists()


def _hand_edited_state(folder, **gtv):
    """A review_state.json whose GTV entry holds the values given (an approved decision otherwise)."""
    from SlicerImgSuite.review.state import ReviewState

    state = ReviewState(["GTV", "PTV"])
    state.set_status("GTV", "approved", reviewer="Dr A")
    data = state.to_dict()
    data["structures"]["GTV"].update(gtv)
    path = folder / "review_state.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "said"),
    [({"status": "Approved"}, "unknown review status 'Approved'"), ({"time": 5}, "time 5 is not text"),
     ({"comment": ["a"]}, "comment ['a'] is not text"), ({"status": None}, "unknown review status None")],
)  # fmt: skip
def test_hand_edited_review_state_names_file_and_structure(tmp_path, edit, said):
    """Before, a wrong status was refused without naming the file or the structure, and a time or comment that is
    not text was accepted (the export then failed on it, or wrote it)."""
    from SlicerImgSuite.review.state import ReviewState

    path = _hand_edited_state(tmp_path, **edit)
    with pytest.raises(ImgSuiteError) as info:
        ReviewState.load(path)
    assert said in str(info.value) and "'GTV'" in str(info.value) and "review_state.json" in str(info.value)


def test_review_refuses_a_damaged_state_before_serving(phantom, tmp_path, capsys):
    """``imgsuite review`` on an output folder whose state has a wrong status: exit 2 naming the file."""
    _hand_edited_state(tmp_path, status="aproved")
    rc = main(["review", "-q", "--reference", str(phantom.rtstruct), "--referenced-ct", str(phantom.ct_dir),
               "--output", str(tmp_path), "--port", "0"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "review_state.json" in err and "'GTV'" in err and "aproved" in err


def test_review_resumed_on_changed_contours_asks_again(phantom, tmp_path):
    """An approval saved in review_state.json, then the reference RTSTRUCT edited on disk (GTV moved 4 mm): before,
    the reopened review still said approved and exported the moved GTV with ApprovalStatus APPROVED."""
    from SlicerImgSuite.web.review_session import open_review

    reference = tmp_path / "RS.dcm"
    reference.write_bytes(phantom.rtstruct.read_bytes())
    out, test = tmp_path / "review", phantom.rtstruct
    for name in ("GTV", "HEART"):
        open_review(reference, phantom.ct_dir, out, test=test, measure=False).set_status(name, "approved")
    again = open_review(reference, phantom.ct_dir, out, test=test, measure=False)
    assert again.state["GTV"].status == again.state["HEART"].status == "approved"  # unchanged: the decision stays
    ds = pydicom.dcmread(reference)
    gtv = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "GTV")
    for c in next(i for i in ds.ROIContourSequence if int(i.ReferencedROINumber) == gtv).ContourSequence:
        points = [float(v) for v in c.ContourData]
        c.ContourData = [f"{v + 4.0 if n % 3 == 0 else v:.4f}" for n, v in enumerate(points)]
    ds.save_as(reference)
    session = open_review(reference, phantom.ct_dir, out, test=test)
    assert session.state["GTV"].status == "needs-edit" and session.state["HEART"].status == "approved"
    assert "changed on disk" in session.state["GTV"].history[-1].comment
    assert json.loads((out / "review_state.json").read_text())["structures"]["GTV"]["status"] == "needs-edit"
    session.export()
    exported = pydicom.dcmread(out / "RS_reviewed.dcm")
    assert exported.ApprovalStatus == "UNAPPROVED"
    labels = {int(o.ReferencedROINumber): str(o.ROIObservationLabel) for o in exported.RTROIObservationsSequence}
    names = {int(r.ROINumber): str(r.ROIName) for r in exported.StructureSetROISequence}
    assert {names[n]: s for n, s in labels.items()}["GTV"] == "needs-edit"


def test_export_of_a_review_without_test_set(phantom, tmp_path):
    """``imgsuite review`` with no --test: before, Export wrote the RTSTRUCT and SEG, then failed on the report
    (KeyError '') and never wrote it."""
    from SlicerImgSuite.web.review_session import open_review

    session = open_review(phantom.rtstruct, phantom.ct_dir, tmp_path, measure=False)
    session.set_status("GTV", "approved")
    assert session.export() == ["RS_reviewed.dcm", "SEG_reviewed.dcm", "review.json", "review_report.html"]
    report = (tmp_path / "review_report.html").read_text(encoding="utf-8")
    assert "<td>GTV</td>" in report
    exported = pydicom.dcmread(tmp_path / "RS_reviewed.dcm")
    assert [str(r.ROIName) for r in exported.StructureSetROISequence] == list(phantom.masks)


def test_exported_report_shows_the_decisions_of_the_reviewed_structures(phantom, tmp_path):
    """The browser review decides on the reference's structures; its exported report looked the statuses up by
    the test's names, so a pair named differently (BODY / External) or a review without a test set showed
    'unreviewed' for an approved structure."""
    import re

    from SlicerImgSuite.web.review_session import open_review

    test = _renamed(phantom, tmp_path, {"BODY": "External"})
    session = open_review(phantom.rtstruct, phantom.ct_dir, tmp_path / "review", test=test)
    session.set_status("BODY", "approved")
    session.set_status("GTV", "rejected")
    session.export()
    report = (tmp_path / "review" / "review_report.html").read_text(encoding="utf-8")
    rows = {r[0]: r[2] for r in re.findall(r"<tr><td[^>]*></td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", report)}
    assert rows["BODY"] == "approved" and rows["GTV"] == "rejected" and rows["HEART"] == "unreviewed"


def test_structure_sets_of_two_frames_of_reference_are_not_compared(phantom, tmp_path, capsys):
    """Without --referenced-ct, two RTSTRUCTs of different Frames of Reference (two patients, two scans) were
    compared silently (IBSI STS_003 against STS_001: Dice 0, exit 0)."""
    ds = pydicom.dcmread(phantom.rtstruct)
    other = pydicom.uid.generate_uid()
    ds.FrameOfReferenceUID = other
    for item in ds.ReferencedFrameOfReferenceSequence:
        item.FrameOfReferenceUID = other
    for item in ds.StructureSetROISequence:
        item.ReferencedFrameOfReferenceUID = other
    moved = tmp_path / "RS_other_frame.dcm"
    ds.save_as(moved)
    out = tmp_path / "cmp.json"
    rc = main(["compare-structures", "-q", "--reference", str(phantom.rtstruct), "--test", str(moved),
               "--workers", "1", "--output-json", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "Frame of Reference mismatch" in err and "RS_other_frame.dcm" in err and other in err


def test_an_export_may_not_replace_its_own_input(phantom, tmp_path):
    import shutil

    from SlicerImgSuite.review.export import export_reviewed_rtstruct
    from SlicerImgSuite.review.state import ReviewState
    from SlicerImgSuite.web.review_session import open_review

    # re-reviewing a previous export from its own folder overwrote the reference at export time
    out = tmp_path / "review"
    out.mkdir()
    shutil.copy(phantom.rtstruct, out / "RS_reviewed.dcm")
    with pytest.raises(ImgSuiteError, match="the export would overwrite this input"):
        open_review(out / "RS_reviewed.dcm", phantom.ct_dir, out, measure=False)
    rs = tmp_path / "RS.dcm"
    shutil.copy(phantom.rtstruct, rs)
    before = rs.read_bytes()
    with pytest.raises(ImgSuiteError, match="would overwrite its own input"):
        export_reviewed_rtstruct(rs, phantom.ct_dir, rs, ReviewState(["GTV"]))
    assert rs.read_bytes() == before


def test_a_history_with_an_unknown_status_is_refused(tmp_path):
    from SlicerImgSuite.review.state import ReviewState

    change = {"reviewer": "A", "time": "2026-12-07T10:00:00", "from_status": "unreviewed", "to_status": "okay"}
    data = {"format": 1, "structures": {"GTV": {"status": "approved", "history": [change]}}}
    with pytest.raises(ImgSuiteError, match="structure 'GTV': history change 'unreviewed' -> 'okay'"):
        ReviewState.from_dict(data, tmp_path / "review_state.json")


@pytest.mark.parametrize("kind", ["rtstruct", "seg"])
def test_an_approved_only_export_with_nothing_approved_names_its_file(phantom, tmp_path, kind):
    """Nothing approved and approved-only asked: the refusal named no file (which export of a batch failed?)."""
    from SlicerImgSuite.review.export import export_reviewed_rtstruct, export_seg
    from SlicerImgSuite.review.state import ReviewState

    state = ReviewState(["GTV"])
    state.set_status("GTV", "needs-edit", reviewer="Dr A")
    out = tmp_path / f"{kind}_approved.dcm"
    with pytest.raises(ImgSuiteError, match="no approved structure") as refused:
        if kind == "rtstruct":
            export_reviewed_rtstruct(out, phantom.ct_dir, phantom.rtstruct, state, approved_only=True)
        else:
            export_seg(out, phantom.ct_dir, phantom.rtstruct, state=state, approved_only=True)
    assert refused.value.path == str(out) and not out.exists()


def _ct_of_another_frame(phantom, folder):
    """A copy of the phantom's CT with a new FrameOfReferenceUID (another scan): (folder, the new UID)."""
    other = pydicom.uid.generate_uid()
    ct = folder / "CT_other"
    ct.mkdir()
    for f in sorted(phantom.ct_dir.iterdir()):
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = other
        ds.save_as(ct / f.name)
    return ct, other


@pytest.mark.parametrize("with_test", [False, True])
def test_review_on_a_ct_of_another_frame_of_reference_is_refused(phantom, tmp_path, with_test):
    """``imgsuite review`` on a CT of another Frame of Reference (another scan, another patient): before, the
    contours were shown on it, approved and exported as an APPROVED RTSTRUCT relabelled with that CT's frame
    (compare-structures, given the CT's folder, refused it; the review passed the CT it had read, not the folder)."""
    from SlicerImgSuite.web.review_session import open_review

    ct, other = _ct_of_another_frame(phantom, tmp_path)

    output = tmp_path / "review"
    with pytest.raises(ImgSuiteError, match="Frame of Reference mismatch") as refused:
        open_review(phantom.rtstruct, ct, output, test=phantom.rtstruct if with_test else None)
    assert other in str(refused.value) and refused.value.path == str(phantom.rtstruct)
    assert not output.exists()


@pytest.mark.parametrize("kind", ["rtstruct", "seg"])
def test_an_export_onto_a_ct_of_another_frame_of_reference_is_refused(phantom, tmp_path, kind):
    """export_reviewed_rtstruct / export_seg (the API the Slicer module and scripts call) with the RTSTRUCT of one
    scan and the CT of another: before, the polygons were written with the CT's Frame of Reference (an APPROVED
    structure set, relabelled as drawn on a CT it does not belong to)."""
    from SlicerImgSuite.review.export import export_reviewed_rtstruct, export_seg
    from SlicerImgSuite.review.state import ReviewState

    ct, other = _ct_of_another_frame(phantom, tmp_path)
    state = ReviewState(["GTV"])
    state.set_status("GTV", "approved", reviewer="Dr A")
    out = tmp_path / f"{kind}_reviewed.dcm"
    with pytest.raises(ImgSuiteError, match="Frame of Reference mismatch") as refused:
        if kind == "rtstruct":
            export_reviewed_rtstruct(out, ct, phantom.rtstruct, state)
        else:
            export_seg(out, ct, phantom.rtstruct, state=state)
    assert other in str(refused.value) and refused.value.path == str(phantom.rtstruct) and not out.exists()


def test_segments_beyond_the_ct_are_said_not_silently_cut(phantom, tmp_path, capsys):
    """A .seg.nrrd test set whose grid lies half beyond the CT (or on another patient's space): before, each
    segment was resampled onto the CT and measured on what was left without a word (BODY 50 % of its volume,
    LUNG_L 0 cc, Dice 0, exit 0), while an RTSTRUCT's contours beyond the CT were named in a warning."""
    import SimpleITK as sitk

    seg = tmp_path / "test.seg.nrrd"
    assert main(["convert", "-q", "--input", str(phantom.rtstruct), "--referenced-ct", str(phantom.ct_dir),
                 "--output-seg", str(seg)]) == 0  # fmt: skip
    image = sitk.ReadImage(str(seg))
    origin = list(image.GetOrigin())
    origin[0] += image.GetSize()[0] * image.GetSpacing()[0] / 2
    image.SetOrigin(origin)
    shifted = tmp_path / "half_beyond.seg.nrrd"
    sitk.WriteImage(image, str(shifted))
    capsys.readouterr()
    for test, said in ((seg, False), (shifted, True)):
        rc = main(["compare-structures", "-q", "--reference", str(phantom.rtstruct), "--test", str(test),
                   "--referenced-ct", str(phantom.ct_dir), "--workers", "1", "--output-json", str(tmp_path / "c.json")])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 0 and ("segment(s) lie outside the reference grid" in err) == said, err
    assert "half_beyond.seg.nrrd" in err and "'BODY' 50 %" in err


def test_a_review_folder_of_another_scan_is_refused(phantom, tmp_path):
    """An --output folder reused for another patient: before, its review_state.json was taken up, every decision
    on a structure that looked the same (here the empty SPINAL_CORD; in practice empty or template ROIs) stayed
    approved for the new patient, and the others carried the old patient's decisions in their history."""
    from SlicerImgSuite.demo.phantom import make_phantom
    from SlicerImgSuite.web.review_session import open_review

    first = make_phantom(tmp_path / "A", shape=(32, 32, 8))
    second = make_phantom(tmp_path / "B", shape=(32, 32, 10))
    output = tmp_path / "review"
    session = open_review(first.rtstruct, first.ct_dir, output, measure=False)
    for name in session.names():
        session.set_status(name, "approved")
    saved = (output / "review_state.json").read_bytes()
    with pytest.raises(ImgSuiteError, match="this review was made on another scan") as refused:
        open_review(second.rtstruct, second.ct_dir, output, measure=False)
    assert refused.value.path == str(output / "review_state.json")
    assert (output / "review_state.json").read_bytes() == saved
    again = open_review(first.rtstruct, first.ct_dir, output, measure=False)  # the same scan resumes as it was
    assert {again.state[n].status for n in again.names()} == {"approved"}
