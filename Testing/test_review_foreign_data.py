"""Contour review on structure sets someone else made: the Nelms DVH phantom's Pinnacle-style RTSTRUCTs (ROI names
differ from file to file; pair by --map, measure against the analytic overlap, decide, export, read back) and
dicompyler-core's Varian breast RTSTRUCT, whose CT here is one slice of the 98 it was drawn on."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
from dicom3tools import dciodvfy_errors
from test_web_browser import _free_port, _stop, browser_page, start_imgsuite

from SlicerImgSuite.cli import main
from SlicerImgSuite.review.export import review_state_from_rtstruct
from SlicerImgSuite.rtstruct import read_rtstruct
from SlicerImgSuite.web.review_session import EXPORTS, open_review

NELMS = "nelms-dvh-analytic-phantom"
RADIUS_MM = (3 * 7238.2801344627 / (4 * math.pi)) ** (1 / 3)  # the sphere's analytic volume, 7.238 cc


def _sphere_dice(shift_mm: float, r: float = RADIUS_MM) -> float:
    """Dice of a sphere and itself moved by shift_mm (the lens where two balls overlap)."""
    lens = math.pi * (4 * r + shift_mm) * (2 * r - shift_mm) ** 2 / 12
    return lens / (4 / 3 * math.pi * r**3)


@pytest.fixture
def nelms(shared_data):
    base = shared_data / NELMS
    return base, base / "STRUCTURES_1mm" / "Sphere_10_0.dcm", base / "STRUCTURES_1mm" / "Sphere_10_X05Z05.dcm"


def test_review_of_a_shifted_sphere_pairs_measures_decides_and_exports(nelms, tmp_path):
    base, reference, test = nelms
    session = open_review(reference, base / "CT_1mm", tmp_path / "review", test=test, reviewer="Dr N",
                          dose=base / "DOSE_GRIDS" / "Linear_AntPost_1mm_Aligned.dcm",
                          name_map=["Sphere_10_0=Sphere_10_x05_Z05"])  # fmt: skip
    [row] = session.table()
    assert (row["name"], row["test"]) == ("Sphere_10_0", "Sphere_10_x05_Z05")
    [pair] = session.comparison.structures
    shift = math.hypot(0.5, 0.5)
    assert pair["dice"] == pytest.approx(_sphere_dice(shift), abs=0.003)  # 0.9558
    assert pair["centroid_shift_mm"] == pytest.approx(shift, abs=0.02)
    assert pair["volume_ref_cc"] == pytest.approx(7.238, rel=0.005)
    assert session.dvh_png("Sphere_10_0").startswith(b"\x89PNG")
    session.set_status("Sphere_10_0", "approved", comment="within 1 mm")
    written = session.export()
    assert sorted(written) == sorted(EXPORTS.values())
    out = tmp_path / "review" / EXPORTS["rtstruct"]
    assert dciodvfy_errors(out) == []
    ds = pydicom.dcmread(out)
    # the plan's marker (POI_1: no contour, not in the table) is exported but does not hold the approval back
    assert ds.ApprovalStatus == "APPROVED" and "N" in str(ds.ReviewerName)
    labels = {r.ROIName: o.get("ROIObservationLabel") for r, o in zip(ds.StructureSetROISequence,
                                                                     ds.RTROIObservationsSequence)}  # fmt: skip
    assert labels == {"POI_1": None, "Sphere_10_0": "approved"}
    ct_uid = pydicom.dcmread(next((base / "CT_1mm").iterdir()), stop_before_pixels=True).SeriesInstanceUID
    series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == ct_uid
    # the reference's own polygons are exported unchanged, with the decision on them
    before = {r.name: r for r in read_rtstruct(reference).rois}
    after = {r.name: r for r in read_rtstruct(out).rois}
    assert set(after) == set(before) == {"POI_1", "Sphere_10_0"}
    for a, b in zip(before["Sphere_10_0"].closed, after["Sphere_10_0"].closed, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)
    back = review_state_from_rtstruct(out)
    assert back.names() == ["Sphere_10_0"] and back["Sphere_10_0"].status == "approved"


def test_review_refuses_a_map_naming_no_structure(nelms, tmp_path, capsys):
    base, reference, test = nelms
    args = ["review", "-q", "--reference", str(reference), "--test", str(test), "--referenced-ct",
            str(base / "CT_1mm"), "--output", str(tmp_path / "r"), "--port", "0"]  # fmt: skip
    assert main([*args, "--map", "Sphere_10_0=Sphere_10_X05Z05"]) == 2  # the file's name, not its ROI's
    err = capsys.readouterr().err
    assert "Sphere_10_x05_Z05" in err and "Traceback" not in err and not (tmp_path / "r").exists()
    assert main(["review", "-q", "--reference", str(reference), "--referenced-ct", str(base / "CT_1mm"),
                 "--output", str(tmp_path / "r"), "--map", "A=B"]) == 2  # fmt: skip
    assert "give --test too" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_reference_reviewed_alone_lists_its_structures_not_its_markers(nelms, tmp_path):
    """Without a test set the plan's marker (POI_1) was a row of the table and a decision the export ignored."""
    base, reference, _ = nelms
    session = open_review(reference, base / "CT_1mm", tmp_path / "alone", measure=False)
    assert [row["name"] for row in session.table()] == session.state.names() == ["Sphere_10_0"]


@pytest.fixture
def one_slice(shared_data, tmp_path):
    """dicompyler's RTSTRUCT and a CT folder holding the one slice present of the 98 it was drawn on."""
    example = shared_data / "dicompyler-core-example"
    ct = tmp_path / "ct"
    ct.mkdir()
    (ct / "ct.0.dcm").write_bytes((example / "ct.0.dcm").read_bytes())
    return example / "rtss.dcm", ct


def test_structures_beyond_the_ct_are_said_not_silently_cut(one_slice, tmp_path, capsys):
    """dicompyler's RTSTRUCT on the one CT slice present: BODY was measured as 140 cc and 8 structures as empty, no
    word said (rasterize warned, the comparison's own rasterizing did not)."""
    rtss, ct = one_slice
    out = tmp_path / "c.csv"
    assert main(["compare-structures", "-q", "--reference", str(rtss), "--test", str(rtss), "--referenced-ct",
                 str(ct), "--workers", "1", "--output-csv", str(out)]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "rtss.dcm: 437 contour(s) lie outside the reference grid along the slice axis" in err and "'BODY' 137" in err
    with pytest.warns(UserWarning, match="437 contour.s. lie outside the reference grid"):
        open_review(rtss, ct, tmp_path / "alone", measure=False)  # the reference reviewed alone says it too


def test_what_the_ct_cannot_hold_is_said_on_the_page(one_slice, tmp_path):
    """dicompyler-core's Varian RTSTRUCT reviewed on the one CT slice present of the 98 it was drawn on: 437 contours
    fall beyond the CT. The terminal said so; the reviewer, looking at the page, saw only what was left."""
    rtss, ct = one_slice
    process, line = start_imgsuite(
        ["review", "--reference", str(rtss), "--referenced-ct", str(ct), "--output",
         str(tmp_path / "out"), "--port", str(_free_port()), "--quiet"],
        marker="serving at",
    )  # fmt: skip
    try:
        url = line.split("serving at ")[1].split()[0]
        said = "document.querySelector('[data-testid=warnings]').textContent.includes('outside the reference grid')"
        with browser_page(url, said) as page:
            text = page.locator("[data-testid=warnings]").inner_text()
            assert "rtss.dcm: 437 contour(s) lie outside the reference grid along the slice axis" in text
            assert "'BODY' 137" in text
    finally:
        _stop(process)
