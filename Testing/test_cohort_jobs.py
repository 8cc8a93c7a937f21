"""Cohort jobs one case at a time (the task function, no cluster) and the `cohort` command line."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite import cli
from SlicerImgSuite.cohort.cases import cases_from_plate, read_manifest
from SlicerImgSuite.cohort.runner import case_folder, run_case
from SlicerImgSuite.cohort.tables import read_table
from SlicerImgSuite.demo.phantom import make_phantom
from SlicerImgSuite.errors import ImgSuiteError


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp("pat"), shape=(40, 32, 12), spacing=(8.0, 8.0, 8.0))


def test_convert_case_equals_imgsuite_convert(phantom, tmp_path):
    case = {"case": "P1", "rtstruct": str(phantom.rtstruct), "ct": str(phantom.ct_dir)}
    result = run_case("convert", case, str(tmp_path / "out"), {}, False)
    assert result["status"] == "done", result["error"]
    folder = case_folder(tmp_path / "out", "P1")
    mine = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelmap.nrrd")))
    argv = ["convert", "--input", str(phantom.rtstruct), "--referenced-ct", str(phantom.ct_dir)]
    assert cli.main([*argv, "--output-labelmap", str(tmp_path / "lm.nrrd"), "-q"]) == 0
    np.testing.assert_array_equal(mine, sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "lm.nrrd"))))
    assert [r["structure"] for r in result["rows"]] == list(phantom.masks)
    for r in result["rows"]:  # each structure whole (the labelmap paints later ones over earlier ones)
        assert r["voxels"] >= int((mine == r["label"]).sum())
        assert r["voxels"] == pytest.approx(
            int(sitk.GetArrayViewFromImage(phantom.masks[r["structure"]]).sum()), rel=0.1
        )
    assert result["rows"][-1]["voxels"] == int((mine == len(phantom.masks)).sum())
    assert (folder / "structures.seg.nrrd").exists() and (folder / "done.json").exists()
    assert run_case("convert", case, str(tmp_path / "out"), {}, True)["status"] == "skipped"
    (folder / "labelmap.nrrd").unlink()  # an output gone: --resume runs the case again
    assert run_case("convert", case, str(tmp_path / "out"), {}, True)["status"] == "done"
    assert (folder / "labelmap.nrrd").exists()


def test_a_failing_case_is_a_row_and_leaves_no_outputs(phantom, tmp_path):
    case = {"case": "P2", "rtstruct": str(phantom.rtstruct), "dose": str(tmp_path / "missing.dcm")}
    result = run_case("dvh", case, str(tmp_path / "out"), {}, False)
    assert result["status"] == "failed" and result["rows"] == []
    assert result["error"]["case"] == "P2" and "missing.dcm" in result["error"]["message"]
    assert result["error"]["stage"] == "hash inputs"  # the content hash is the first read of every input
    assert not case_folder(tmp_path / "out", "P2").exists()


def test_register_template_with_manifest_paths(tmp_path):
    fixed = sitk.GaussianSource(sitk.sitkFloat32, [32, 32, 16], [5, 5, 3], [15, 15, 8], 100)
    moving = sitk.GaussianSource(sitk.sitkFloat32, [32, 32, 16], [5, 5, 3], [17, 14, 8], 100)
    sitk.WriteImage(fixed, str(tmp_path / "f.mha"))
    sitk.WriteImage(moving, str(tmp_path / "m.mha"))
    (tmp_path / "cases.csv").write_text("case,fixed,moving\nA,f.mha,m.mha\n")
    template = tmp_path / "reg.txt"
    template.write_text(
        "[GLOBAL]\nfixed={fixed}\nmoving={moving}\nxform_out={output}/xf.txt\n[STAGE]\nxform=translation\nmax_its=30\n"
    )
    (case,) = read_manifest(tmp_path / "cases.csv")
    assert case["fixed"] == str(tmp_path / "f.mha")  # relative to the manifest
    result = run_case("register", case, str(tmp_path / "out"), {"template": str(template)}, False)
    assert result["status"] == "done", result["error"]
    assert (case_folder(tmp_path / "out", "A") / "xf.txt").exists() and result["rows"][0]["stage"] == 1
    template.write_text("[GLOBAL]\nfixed={fixd}\n[STAGE]\nxform=translation\n")
    bad = run_case("register", case, str(tmp_path / "out2"), {"template": str(template)}, False)
    assert bad["status"] == "failed" and bad["error"]["stage"] == "fill command file"
    assert "{fixd}" in bad["error"]["message"]


def test_nuclei_plate_cases(tmp_path):
    import tifffile

    from SlicerImgSuite.segmentation.demo import make_nuclei_image

    plate = tmp_path / "plate"
    plate.mkdir()
    for well, seed in (("A01", 1), ("A02", 2)):
        tifffile.imwrite(plate / f"{well}.tif", make_nuclei_image((128, 128), count=12, seed=seed)[0])
    cases = cases_from_plate(plate)
    assert [c["case"] for c in cases] == ["A01", "A02"]
    result = run_case("nuclei", cases[0], str(tmp_path / "out"), {}, False)
    assert result["status"] == "done", result["error"]
    assert 8 <= result["rows"][0]["nuclei"] <= 16


def test_manifest_errors_name_the_file(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("patient,rtstruct\nA,rs.dcm\n")
    with pytest.raises(ImgSuiteError, match="'case' column"):
        read_manifest(bad)
    assert cli.main(["cohort", "dvh", "--manifest", str(bad), "--output", str(tmp_path / "o"), "-q"]) == 2


def test_cohort_command_line_on_one_worker(phantom, tmp_path, capsys):
    manifest = tmp_path / "cases.csv"
    manifest.write_text(f"case,rtstruct,ct\nP1,{phantom.rtstruct},{phantom.ct_dir}\nP2,{tmp_path}/none.dcm,\n")
    argv = ["cohort", "convert", "--manifest", str(manifest), "--output", str(tmp_path / "o"), "--workers", "1"]
    assert cli.main([*argv, "--memory-limit", "1GiB"]) == 0
    assert "2 cases: 1 done, 0 unchanged (skipped), 1 failed" in capsys.readouterr().out
    rows = read_table(tmp_path / "o" / "results.csv")
    assert len(rows) == len(phantom.masks) and {r["case"] for r in rows} == {"P1"}
    assert [e["case"] for e in read_table(tmp_path / "o" / "errors.parquet")] == ["P2"]


def test_a_case_whose_worker_dies_is_an_error_row(phantom, tmp_path):
    """What a case over the worker memory limit becomes: its worker dies each time it runs it (here: killed twice)."""
    import os
    import signal
    import threading
    import time

    from SlicerImgSuite.cohort.cluster import cohort_client
    from SlicerImgSuite.cohort.runner import run_cohort

    paths = {"rtstruct": str(phantom.rtstruct), "dose": str(phantom.rtdose), "ct": str(phantom.ct_dir)}
    cases = [{"case": name} | paths for name in ("A", "B", "C", "D")]
    # cohort_client lets a case's worker die twice (tried once more), not Dask's default four times
    with cohort_client(workers=1, memory_limit="2GiB") as client:
        result, killed = {}, []
        thread = threading.Thread(target=lambda: result.update(run_cohort("dvh", cases, tmp_path, client=client)))
        thread.start()
        deadline = time.monotonic() + 200
        while len(killed) < 2 and time.monotonic() < deadline and thread.is_alive():
            running = {k for ks in client.processing().values() for k in ks}
            if any(str(k).startswith("dvh-1-") for k in running):  # case B is on the worker: kill it
                try:
                    (pid,) = client.run(os.getpid, nanny=False).values()
                except Exception:
                    continue  # the worker is restarting
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.01)
        thread.join(300)
    assert len(killed) == 2 and not thread.is_alive()
    assert (result["done"], result["failed"]) == (3, 1), read_table(tmp_path / "errors.parquet")
    (error,) = read_table(tmp_path / "errors.parquet")
    assert error["case"] == "B" and error["stage"] == "worker" and "memory limit" in error["message"]
    assert {r["case"] for r in read_table(tmp_path / "results.parquet")} == {"A", "C", "D"}


def test_compare_structures_cases_equal_the_command(phantom, tmp_path):
    """A case compares two structure sets exactly as `imgsuite compare-structures` does; a structure missing from
    the test set is a row of its own."""
    import json

    from SlicerImgSuite.review.demo import MISSING, perturbed_rois
    from SlicerImgSuite.rtstruct import read_rtstruct
    from SlicerImgSuite.rtstruct.write import write_rtstruct

    ct = phantom.ct
    slice_z = [ct.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(ct.GetSize()[2])]
    perturbed = tmp_path / "RS_test.dcm"
    write_rtstruct(perturbed, phantom.ct_dir, perturbed_rois(read_rtstruct(phantom.rtstruct), slice_z), label="TEST")
    same = {
        "case": "same",
        "reference": str(phantom.rtstruct),
        "test": str(phantom.rtstruct),
        "ct": str(phantom.ct_dir),
    }
    moved = dict(same, case="moved", test=str(perturbed))
    rows = {}
    for case in (same, moved):
        result = run_case("compare-structures", case, str(tmp_path / "out"), {"tolerance": 2.0}, False)
        assert result["status"] == "done", result["error"]
        rows[case["case"]] = result["rows"]
    assert all(r["matched"] and r["dice"] == pytest.approx(1.0) for r in rows["same"])
    assert [r["reference"] for r in rows["moved"] if not r["matched"]] == [MISSING]
    argv = ["compare-structures", "--reference", moved["reference"], "--test", moved["test"]]
    out = tmp_path / "c.json"
    assert cli.main([*argv, "--referenced-ct", moved["ct"], "--output-json", str(out), "-q"]) == 0
    expected = {s["reference"]: s for s in json.loads(out.read_text())["structures"]}
    for row in (r for r in rows["moved"] if r["matched"]):
        for key in ("dice", "hd95", "msd", "surface_dice", "centroid_shift_mm"):
            assert row[key] == pytest.approx(expected[row["reference"]][key], nan_ok=True), (row["reference"], key)


def test_a_case_over_the_worker_memory_limit_is_an_error_row(tmp_path):
    """A real over-memory case, no simulated kill: a 144-megapixel well (a 0.2 MB zlib TIFF) on a worker limited
    to 700 MiB. Dask's nanny ends the worker each time it runs it (tried twice); the other well's rows are kept."""
    import tifffile

    from SlicerImgSuite.cohort.cases import cases_from_plate
    from SlicerImgSuite.cohort.cluster import cohort_client
    from SlicerImgSuite.cohort.runner import run_cohort
    from SlicerImgSuite.segmentation.demo import make_nuclei_image

    plate = tmp_path / "plate"
    plate.mkdir()
    tifffile.imwrite(plate / "A01.tif", make_nuclei_image((128, 128), count=12, seed=1)[0])
    huge = np.zeros((12000, 12000), np.uint8)
    huge[::40, ::40] = 200
    tifffile.imwrite(plate / "A02.tif", huge, compression="zlib")
    del huge
    assert (plate / "A02.tif").stat().st_size < 2**20  # small on disk, 137 MiB as pixels, several GiB to segment
    with cohort_client(workers=1, memory_limit="700MiB") as client:
        result = run_cohort("nuclei", cases_from_plate(plate), tmp_path / "out", client=client)
    assert (result["done"], result["failed"]) == (1, 1), read_table(tmp_path / "out" / "errors.parquet")
    (error,) = read_table(tmp_path / "out" / "errors.parquet")
    assert error["case"] == "A02" and error["stage"] == "worker" and "memory limit" in error["message"]
    assert {r["case"] for r in read_table(tmp_path / "out" / "results.parquet")} == {"A01"}


def test_case_names_that_would_share_or_escape_a_folder_are_refused(tmp_path):
    from SlicerImgSuite.cohort.runner import run_cohort

    # '.' and '..' were the cases folder and the output folder themselves; 'a/b' and 'a_b' one folder
    assert case_folder(tmp_path, ".").name == "_" and case_folder(tmp_path, "..").parent == tmp_path / "cases"
    with pytest.raises(ImgSuiteError, match="cases 'a/b' and 'a_b' share the folder 'a_b'"):
        run_cohort("dvh", [{"case": "a/b"}, {"case": "a_b"}], tmp_path / "out", client=None)
    (tmp_path / "m.csv").write_text("case,rtstruct\nA,x\nA,y\n")
    with pytest.raises(ImgSuiteError, match=r"m.csv: line 3: case 'A' again \(line 2\)"):
        read_manifest(tmp_path / "m.csv")
    assert not (tmp_path / "out").exists()


def test_an_index_that_finds_no_series_says_so(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("no DICOM here")
    argv = ["index", str(tmp_path / "notes"), "--output", str(tmp_path / "index.parquet"), "--workers", "1"]
    assert cli.main(argv) == 0  # an empty index is no error (a cohort may fill in later), but it is said
    assert "notes: no DICOM series found (files looked at: 1)" in capsys.readouterr().err


def test_what_a_case_warned_is_a_row_of_the_warnings_table(phantom, tmp_path, capsys):
    """A dose that covers half of the patient: ``imgsuite dvh`` warns that part of the GTV is counted at 0 Gy; in a
    cohort the warning went only to the worker's stderr, naming no case (on a cluster: its log), while the case's
    D98 = 0 Gy went into the results table as 'done'. Now it is a row of ``warnings`` (case, stage, message),
    kept by --resume, and the command says how many cases warned."""
    import pydicom

    ds = pydicom.dcmread(phantom.rtdose)
    half = ds.pixel_array[:, : ds.Rows // 2, :].copy()
    ds.Rows, ds.PixelData = half.shape[1], half.tobytes()
    cropped = tmp_path / "RD_half.dcm"
    ds.save_as(cropped)
    manifest = tmp_path / "cases.csv"
    manifest.write_text(f"case,rtstruct,ct,dose\nP1,{phantom.rtstruct},{phantom.ct_dir},{cropped}\n")
    argv = ["cohort", "dvh", "--manifest", str(manifest), "--output", str(tmp_path / "o"), "--workers", "1"]
    assert cli.main([*argv, "--memory-limit", "1GiB"]) == 0
    assert "1 case(s) warned" in capsys.readouterr().err
    told = read_table(tmp_path / "o" / "warnings.csv")
    gtv = [w for w in told if "structure 'GTV'" in w["message"]]
    assert gtv and gtv[0]["case"] == "P1" and gtv[0]["stage"] == "dose statistics" and "0 Gy" in gtv[0]["message"]
    (tmp_path / "o" / "warnings.csv").unlink()
    assert cli.main([*argv, "--memory-limit", "1GiB", "--resume"]) == 0
    said = capsys.readouterr()
    assert "1 unchanged (skipped)" in said.out and "1 case(s) warned" in said.err
    assert read_table(tmp_path / "o" / "warnings.csv") == told
