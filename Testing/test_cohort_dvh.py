"""Cohort on Dask: index a generated tree, `cohort dvh` on a 2-worker LocalCluster, resume, a killed worker.

Nine phantom patients (varied grids, noise and prescriptions) in a nested tree, PAT05 with a damaged
RTDOSE, plus a damaged non-patient file. Grids are small (8 mm voxels) to keep the time modest.
"""

from __future__ import annotations

import csv
import os
import signal
import threading
import time

import pydicom
import pytest

from SlicerImgSuite import cli
from SlicerImgSuite.cohort.cases import cases_from_index
from SlicerImgSuite.cohort.cluster import cohort_client
from SlicerImgSuite.cohort.index import build_index, sidecar_paths
from SlicerImgSuite.cohort.phantoms import make_cohort
from SlicerImgSuite.cohort.runner import run_cohort
from SlicerImgSuite.cohort.tables import read_table

N, BROKEN = 9, 5
STRUCTURES = 8  # the phantom's structure set


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort") / "tree"
    patients = make_cohort(root, N, broken=(BROKEN,))
    (root / "site1" / "stray.dcm").write_bytes(b"\0" * 300)  # claims DICOM, is not
    (root / "README.txt").write_text("not DICOM, not an error")
    return root, patients


@pytest.fixture(scope="module")
def client():
    with cohort_client(workers=2, memory_limit="1GiB", job="dvh") as c:
        yield c


@pytest.fixture(scope="module")
def index(tree, client, tmp_path_factory):
    out = tmp_path_factory.mktemp("index") / "index.parquet"
    counts = build_index(tree[0], out, client=client, csv=True, batch_size=20)
    return out, counts


def test_index_one_row_per_series_and_errors(tree, index):
    root, patients = tree
    out, counts = index
    series = read_table(out)
    assert counts["series"] == len(series) == 3 * N
    assert {s["patient_id"] for s in series} == set(patients)
    by_uid = {s["series_uid"]: s for s in series}
    for s in series:
        if s["modality"] == "CT":
            assert s["file_count"] == 16 and s["path"].endswith("CT")
        else:  # RTSTRUCT -> its CT, RTDOSE -> the CT of its frame
            assert s["file_count"] == 1
            ref = by_uid[s["referenced_series"]]
            assert ref["modality"] == "CT" and ref["patient_id"] == s["patient_id"]
    errors = read_table(sidecar_paths(out)[1])
    assert [os.path.basename(e["file"]) for e in errors] == ["stray.dcm"]
    assert [r["series_uid"] for r in read_table(out.with_suffix(".csv"))] == [s["series_uid"] for s in series]


def test_reindex_reads_only_changed_files(tree, index, client, tmp_path):
    root, patients = tree
    out = index[0]
    again = tmp_path / "index.parquet"
    for src, dst in zip((out, *sidecar_paths(out)), (again, *sidecar_paths(again))):
        dst.write_bytes(src.read_bytes())
    counts = build_index(root, again, client=client)
    assert counts["read"] == 0 and counts["reused"] == counts["files"]
    rd = patients["PAT02"] / "RD.dcm"
    st = rd.stat()
    os.utime(rd, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    counts = build_index(root, again, client=client)
    assert counts["read"] == 1 and counts["series"] == 3 * N
    assert read_table(again) == read_table(out)


def _single_patient_stats(folder, tmp_path):
    stats = tmp_path / f"{folder.name}.csv"
    argv = ["dvh", "--input-rtstruct", str(folder / "RS.dcm"), "--input-dose", str(folder / "RD.dcm")]
    assert cli.main([*argv, "--referenced-ct", str(folder / "CT"), "--output-stats", str(stats), "-q"]) == 0
    with open(stats, newline="") as f:
        return {r["structure"]: r for r in csv.DictReader(f)}


def test_cohort_dvh_rows_errors_and_resume(tree, index, client, tmp_path):
    root, patients = tree
    cases = cases_from_index(index[0])
    assert len(cases) == N
    out = tmp_path / "run"
    counts = run_cohort("dvh", cases, out, client=client, options={"v_doses": [5, 10, 20, 30, 70]})
    assert (counts["done"], counts["failed"], counts["rows"]) == (N - 1, 1, (N - 1) * STRUCTURES)
    rows = read_table(out / "results.parquet")
    assert len(rows) == (N - 1) * STRUCTURES and len(read_table(out / "results.csv")) == len(rows)
    assert {r["case"] for r in rows} == set(patients) - {f"PAT{BROKEN:02d}"}
    errors = read_table(out / "errors.parquet")
    assert len(errors) == 1 and errors[0]["case"] == f"PAT{BROKEN:02d}" and "RD.dcm" in errors[0]["message"]
    assert errors[0]["stage"].startswith("read dose")

    # the same numbers as single-patient `imgsuite dvh`, for two patients of different grids and doses
    for pid in ("PAT01", "PAT07"):
        single = _single_patient_stats(patients[pid], tmp_path)
        mine = {r["structure"]: r for r in rows if r["case"] == pid}
        assert set(mine) == set(single)
        for name, r in mine.items():
            for key in (
                "volume_cc",
                "mean",
                "min",
                "max",
                "D98",
                "D95",
                "D50",
                "D2",
                "V5Gy",
                "V10Gy",
                "V20Gy",
                "V30Gy",
            ):
                assert f"{r[key]:.6g}" == single[name][key], (pid, name, key)  # the CLI's own format
    assert len({r["mean"] for r in rows if r["structure"] == "PTV"}) == N - 1  # varied prescriptions

    again = run_cohort("dvh", cases, out, client=client, options={"v_doses": [5, 10, 20, 30, 70]}, resume=True)
    assert (again["done"], again["skipped"], again["failed"]) == (0, N - 1, 1)
    assert read_table(out / "results.parquet") == rows

    ds = pydicom.dcmread(patients["PAT03"] / "RD.dcm")  # a changed dose: only its case runs again
    ds.DoseGridScaling = f"{float(ds.DoseGridScaling) * 1.1:.10g}"
    ds.save_as(patients["PAT03"] / "RD.dcm")
    third = run_cohort("dvh", cases, out, client=client, options={"v_doses": [5, 10, 20, 30, 70]}, resume=True)
    assert (third["done"], third["skipped"], third["failed"]) == (1, N - 2, 1)
    new = {(r["case"], r["structure"]): r["mean"] for r in read_table(out / "results.parquet")}
    old = {(r["case"], r["structure"]): r["mean"] for r in rows}
    assert new[("PAT03", "PTV")] == pytest.approx(1.1 * old[("PAT03", "PTV")], rel=1e-4)
    assert new[("PAT01", "PTV")] == old[("PAT01", "PTV")]


def test_worker_killed_mid_run_still_gives_every_row(index, client, tmp_path):
    cases = cases_from_index(index[0])
    pids = client.run(os.getpid)
    done, result = threading.Event(), {}

    def cohort():
        result.update(run_cohort("dvh", cases, tmp_path / "run", client=client))
        done.set()

    thread = threading.Thread(target=cohort)
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and not done.is_set():
        busy = [addr for addr, keys in client.processing().items() if keys and addr in pids]
        if busy:
            killed = pids[busy[0]]
            os.kill(killed, signal.SIGKILL)  # the nanny starts a new worker; Dask runs the task again
        time.sleep(0.02)
    thread.join(300)
    assert killed is not None and not thread.is_alive()
    assert killed not in client.run(os.getpid).values()
    assert (result["done"], result["failed"], result["rows"]) == (N - 1, 1, (N - 1) * STRUCTURES)
    assert len(read_table(tmp_path / "run" / "results.parquet")) == (N - 1) * STRUCTURES


def test_workers_run_one_thread_each(client):
    def threads():
        import SimpleITK as sitk
        from threadpoolctl import threadpool_info

        blas = {(i["internal_api"], i["filepath"].split("/")[-1], i["num_threads"]) for i in threadpool_info()}
        return sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), os.environ.get("OMP_NUM_THREADS"), blas

    for sitk_threads, omp, blas in client.run(threads).values():
        assert sitk_threads == 1 and omp == "1" and {n for *_, n in blas} <= {1}, blas
    assert len(client.nthreads()) == 2 and set(client.nthreads().values()) == {1}


def test_workers_load_the_job_when_they_join(client):
    """The job's libraries are imported by the worker plugin, before any case runs (a worker that joins later
    gets them too), so no worker's first case pays for them."""
    import sys

    from SlicerImgSuite.cohort.jobs import JOB_MODULES, JOBS

    assert set(JOB_MODULES) == set(JOBS)
    wanted = JOB_MODULES["dvh"]
    for loaded in client.run(lambda: [m for m in wanted if m in sys.modules]).values():
        assert loaded == list(wanted)
    client.restart()  # new worker processes: the plugin runs again
    for loaded in client.run(lambda: [m for m in wanted if m in sys.modules]).values():
        assert loaded == list(wanted)
