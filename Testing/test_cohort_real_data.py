"""Cohort index and dvh job on real public DICOM we did not make (IBSI soft-tissue sarcoma CTs, Nelms phantom).

The index (header-only reads, on a cluster) is checked against full pydicom reads of every file.
"""

from __future__ import annotations

import csv
from collections import defaultdict

import pydicom
import pytest

from SlicerImgSuite import cli
from SlicerImgSuite.cohort.cases import cases_from_index
from SlicerImgSuite.cohort.index import build_index, sidecar_paths
from SlicerImgSuite.cohort.runner import run_case
from SlicerImgSuite.cohort.tables import read_table


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            yield c


@pytest.mark.parametrize("folder", ["ibsi-sts-ct-rtstruct", "nelms-dvh-analytic-phantom", "dicompyler-core-example"])
def test_index_equals_full_reads(shared_data, client, tmp_path, folder):
    root = shared_data / folder
    counts = build_index(root, tmp_path / "index.parquet", client=client, batch_size=25)
    series = {s["series_uid"]: s for s in read_table(tmp_path / "index.parquet")}
    truth = defaultdict(list)
    for f in sorted(root.rglob("*")):
        if f.is_file():
            try:
                ds = pydicom.dcmread(f)  # the whole file, pixels and all
            except pydicom.errors.InvalidDicomError:
                continue
            truth[ds.SeriesInstanceUID].append(ds)
    assert set(series) == set(truth) and counts["series"] == len(truth)
    assert read_table(sidecar_paths(tmp_path / "index.parquet")[1]) == []
    for uid, members in truth.items():
        s, ds = series[uid], members[0]
        assert (s["file_count"], s["modality"], s["patient_id"]) == (len(members), ds.Modality, str(ds.PatientID))
        if ds.Modality == "RTSTRUCT":
            ref = ds.ReferencedFrameOfReferenceSequence[0]
            assert s["frame_of_reference_uid"] == ref.FrameOfReferenceUID
            contoured = ref.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID
            assert s["referenced_series"].split("\\")[0] == contoured
        if ds.Modality == "RTPLAN":  # plan -> its structure set's series
            sop = ds.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
            (rs,) = [m for ms in truth.values() for m in ms if m.SOPInstanceUID == sop]
            assert s["referenced_series"] == rs.SeriesInstanceUID
    assert any(s["modality"] == "RTPLAN" for s in series.values()) == folder.startswith("dicompyler")
    if folder.startswith("ibsi"):  # three patients, each CT with its RTSTRUCT
        cases = cases_from_index(tmp_path / "index.parquet")
        assert sorted(c["case"] for c in cases) == ["STS_001", "STS_003", "STS_004"]
        ct_of = {s["patient_id"]: s["path"] for s in series.values() if s["modality"] == "CT"}
        assert all(c["ct"] == ct_of[c["case"]] and c["dose"] == "" for c in cases)


def test_dvh_case_on_the_nelms_phantom_equals_imgsuite_dvh(shared_data, tmp_path):
    root = shared_data / "nelms-dvh-analytic-phantom"
    rs, dose, ct = (
        root / "STRUCTURES_3mm" / "Sphere_30_0.dcm",
        root / "DOSE_GRIDS" / "Linear_SupInf_3mm_Aligned.dcm",
        root / "CT_3mm",
    )
    case = {"case": "nelms", "rtstruct": str(rs), "dose": str(dose), "ct": str(ct)}
    result = run_case("dvh", case, str(tmp_path / "out"), {"v_doses": [5, 10, 20, 30]}, False)
    assert result["status"] == "done", result["error"]
    argv = ["dvh", "--input-rtstruct", str(rs), "--input-dose", str(dose), "--referenced-ct", str(ct)]
    assert cli.main([*argv, "--output-stats", str(tmp_path / "s.csv"), "-q"]) == 0
    with open(tmp_path / "s.csv", newline="") as f:
        single = {r["structure"]: r for r in csv.DictReader(f)}
    assert {r["structure"] for r in result["rows"]} == set(single)
    for r in result["rows"]:
        for key in ("volume_cc", "mean", "min", "max", "D98", "D95", "D50", "D2", "V5Gy", "V10Gy", "V20Gy", "V30Gy"):
            assert f"{r[key]:.6g}" == single[r["structure"]][key], (r["structure"], key)
