"""Contour comparison metrics (SlicerImgSuite.review): analytic shapes, other people's phantom, plastimatch.

Spheres are written by the test as RTSTRUCT contours on a CT it writes (1 mm and 3 mm slices); the Nelms
DVH phantom (shared data: spheres, cones, cylinders, drawn by others and shifted by known offsets) is held
out of any tuning; plastimatch ``dice`` is run on the same voxel masks.
"""

from __future__ import annotations

import json
import math
import re
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.io.dicom_write import new_study, write_ct_series
from SlicerImgSuite.review.compare import canonical_name, compare_structure_sets, match_names
from SlicerImgSuite.rtstruct import read_rtstruct
from SlicerImgSuite.rtstruct.write import write_rtstruct


def _sphere_contours(radius, centre, slice_z):
    t = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    out = []
    for z in slice_z:
        h = z - centre[2]
        if abs(h) < radius - 1e-6:
            rho = math.sqrt(radius**2 - h**2)
            out.append(np.column_stack([centre[0] + rho * np.cos(t), centre[1] + rho * np.sin(t), np.full(len(t), z)]))
    return out


@pytest.fixture(scope="module", params=[1.0, 3.0], ids=["1mm", "3mm"])
def spheres(request, tmp_path_factory):
    """A CT (1 mm pixels, ``dz`` slices) and two RTSTRUCTs: concentric spheres of several radii, a shifted one."""
    dz = request.param
    d = tmp_path_factory.mktemp(f"spheres{dz:g}")
    nz = int(round(72 / dz))
    ct = sitk.Image(80, 80, nz, sitk.sitkInt16)
    ct.SetOrigin((-39.5, -39.5, -36.0 + 0.3))  # sphere centres 0.3 mm off a slice
    ct.SetSpacing((1.0, 1.0, dz))
    study = new_study()
    headers = write_ct_series(ct, d / "CT", study)
    z = [ct.GetOrigin()[2] + k * dz for k in range(nz)]
    shift = np.array([2.0, -1.5, 1.2])
    ref = [{"name": "R20", "contours": _sphere_contours(20, (0, 0, 0), z)},
           {"name": "R20b", "contours": _sphere_contours(20, (0, 0, 0), z)},
           {"name": "R20c", "contours": _sphere_contours(20, (0, 0, 0), z)},
           {"name": "Shifted", "contours": _sphere_contours(15, (0, 0, 0), z)},
           {"name": "Same", "contours": _sphere_contours(12, (3, 4, 0), z)}]  # fmt: skip
    test = [{"name": "r20", "contours": _sphere_contours(23, (0, 0, 0), z)},
            {"name": "r20b", "contours": _sphere_contours(21.5, (0, 0, 0), z)},
            {"name": "r20c", "contours": _sphere_contours(17, (0, 0, 0), z)},
            {"name": "shifted", "contours": _sphere_contours(15, shift, z)},
            {"name": "same", "contours": _sphere_contours(12, (3, 4, 0), z)}]  # fmt: skip
    write_rtstruct(d / "RS_ref.dcm", headers, ref)
    write_rtstruct(d / "RS_test.dcm", headers, test)
    c = compare_structure_sets(d / "RS_ref.dcm", d / "RS_test.dcm", referenced_ct=d / "CT", tolerance_mm=2.0)
    return dz, {r["reference"]: r for r in c.structures}, float(np.linalg.norm(shift))


def test_concentric_spheres_match_the_analytic_values(spheres):
    dz, rows, _ = spheres
    msd_tol, hd_tol = (0.3, 0.5) if dz == 1 else (0.6, 1.5)
    for name, (r1, r2) in {"R20": (20, 23), "R20b": (20, 21.5), "R20c": (20, 17)}.items():
        row = rows[name]
        gap = abs(r1 - r2)
        print(f"dz {dz}: r {r1} vs {r2}: msd {row['msd']:.3f} hd {row['hd']!r} hd95 {row['hd95']:.3f} "
              f"dice {row['dice']:.4f} (analytic {2 * min(r1, r2) ** 3 / (r1**3 + r2**3):.4f}) sdice {row['surface_dice']:.3f}")  # fmt: skip
        assert abs(row["msd"] - gap) <= msd_tol
        assert abs(row["hd"] - gap) <= hd_tol
        assert abs(row["hd95"] - gap) <= hd_tol
        assert abs(row["dice"] - 2 * min(r1, r2) ** 3 / (r1**3 + r2**3)) <= 0.01
        assert row["jaccard"] == pytest.approx(row["dice"] / (2 - row["dice"]))
    assert rows["R20b"]["surface_dice"] == 1.0  # 1.5 mm apart, within the 2 mm tolerance: the poles too
    assert rows["R20"]["surface_dice"] == 0.0  # 3 mm apart, 1 mm beyond the 2 mm tolerance
    assert rows["R20c"]["surface_dice"] == 0.0
    assert rows["R20b"]["surface_dice"] >= (1.0 if dz == 1 else 0.97)  # 1.5 mm apart: within tolerance
    # volumes: the sphere (4/3 pi r^3) as the voxels count it
    assert rows["R20"]["volume_ref_cc"] == pytest.approx(4 / 3 * math.pi * 20**3 / 1000, rel=0.01)
    assert rows["R20"]["volume_diff_pct"] == pytest.approx(100 * (23**3 / 20**3 - 1), abs=2.0)


def test_shifted_and_unchanged_structures(spheres):
    dz, rows, shift = spheres
    assert abs(rows["Shifted"]["centroid_shift_mm"] - shift) <= 0.1
    assert rows["Shifted"]["hd"] == pytest.approx(shift, abs=0.5 if dz == 1 else 1.0)
    same = rows["Same"]
    assert same["apl"] == 0.0 and same["hd"] == 0.0 and same["dice"] == 1.0 and same["surface_dice"] == 1.0
    assert same["centroid_shift_mm"] < 1e-9
    assert rows["Shifted"]["apl"] > 0


NELMS = "nelms-dvh-analytic-phantom"


@pytest.mark.parametrize("res,shape,offset", [
    ("30", "Sphere", "X15"), ("30", "Sphere", "X15Z15"), ("10", "Sphere", "X05"), ("10", "Cylinder", "X05Z05"),
    ("30", "Cone", "X15"),
])  # fmt: skip
def test_nelms_phantom_shifts(shared_data, res, shape, offset):
    """Shapes drawn by others, shifted by known offsets: centroid shift, and HD/MSD of a shifted sphere."""
    base = shared_data / NELMS
    folder = base / f"STRUCTURES_{'3mm' if res == '30' else '1mm'}"
    ct = base / f"CT_{'3mm' if res == '30' else '1mm'}"
    a, b = folder / f"{shape}_{res}_0.dcm", folder / f"{shape}_{res}_{offset}.dcm"
    names = {read_rtstruct(a).rois[1].name: read_rtstruct(b).rois[1].name}  # the files name their ROIs freely
    c = compare_structure_sets(a, b, referenced_ct=ct, name_map=names)
    assert len(c.structures) == 1 and c.unmatched_reference == [] and c.unmatched_test == []  # POI_1 is no structure
    row = c.structures[0]
    steps = [float(v) / 10 for v in re.findall(r"[XZ](\d+)", offset)]
    shift = math.hypot(*steps)
    print(shape, res, offset, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)})
    assert abs(row["centroid_shift_mm"] - shift) <= 0.1
    if shape == "Sphere":  # a sphere moved by s: a surface point is |s cos| away: at most s, s/2 on average,
        # and the area within the tolerance t is the fraction t/s of it (cos is uniform on a sphere)
        assert row["hd"] == pytest.approx(shift, abs=0.35)
        assert row["msd"] == pytest.approx(shift / 2, abs=0.15)
        assert row["surface_dice"] == pytest.approx(min(1.0, 2.0 / shift), abs=0.02)


def plastimatch_dice(a, b) -> dict:
    out = subprocess.run(["plastimatch", "dice", "--all", str(a), str(b)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = {}
    for key, pattern in (("dice", r"^DICE:\s*([\d.eE+-]+)"), ("hd", r"^Hausdorff distance = ([\d.]+)"),
                         ("bhd", r"^Hausdorff distance \(boundary\) = ([\d.]+)")):  # fmt: skip
        m = re.search(pattern, out.stdout, re.M)
        found[key] = float(m.group(1)) if m else None
    return found


def test_dice_and_hausdorff_as_plastimatch(shared_data, tmp_path):
    """Same voxel masks: Dice equal to plastimatch's; our surface HD within a voxel of plastimatch's voxel HD."""
    from SlicerImgSuite.io.images import read_image
    from SlicerImgSuite.rtstruct import rasterize
    from SlicerImgSuite.rtstruct.rasterize import Grid

    base = shared_data / NELMS
    ct = read_image(base / "CT_3mm")
    checked = 0
    for shape, offset in (("Sphere", "X15Z15"), ("Cone", "X15"), ("Cylinder", "X15Z15")):
        masks = {}
        for tag in ("0", offset):
            ss = read_rtstruct(base / "STRUCTURES_3mm" / f"{shape}_30_{tag}.dcm")
            m = [m for m in rasterize(ss, ct) if m.array.size][0]
            full = sitk.Resample(
                m.image(Grid.of(ct)), ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
            )
            sitk.WriteImage(full, str(tmp_path / f"{tag}.nrrd"))
            masks[tag] = full
        theirs = plastimatch_dice(tmp_path / "0.nrrd", tmp_path / f"{offset}.nrrd")
        ours = compare_structure_sets({"S": masks["0"]}, {"S": masks[offset]}).structures[0]
        print(shape, offset, "ours", round(ours["dice"], 5), round(ours["hd"], 3), "plastimatch", theirs)
        assert ours["dice"] == pytest.approx(theirs["dice"], abs=5e-5)
        voxel = float(np.linalg.norm(ct.GetSpacing()))
        assert abs(ours["hd"] - theirs["bhd"]) <= voxel
        checked += 1
    assert checked == 3


def test_name_matching():
    assert canonical_name("Rt Lung") == canonical_name("LUNG_R") == "lung_r"
    assert canonical_name("Oesophagus") == "esophagus" and canonical_name("SpinalCord") == "spinalcord"
    pairs, ur, ut = match_names(["BODY", "Heart", "GTV", "Cord"], ["External", "HEART", "Spinal Cord", "PTV"])
    assert pairs == [("BODY", "External"), ("Heart", "HEART"), ("Cord", "Spinal Cord")]
    assert ur == ["GTV"] and ut == ["PTV"]
    with pytest.raises(ImgSuiteError, match="--map"):
        match_names(["GTV"], ["CTV"], {"GTV": "PTV"})


def test_comparison_json_and_empty_structure():
    a = sitk.Image(20, 20, 8, sitk.sitkUInt8)
    a[4:12, 4:12, 2:6] = 1
    empty = sitk.Image(a.GetSize(), sitk.sitkUInt8)
    c = compare_structure_sets({"GTV": a, "CTV": a}, {"GTV": a, "CTV": empty, "Extra": a})
    data = json.loads(c.to_json())
    assert [s["reference"] for s in data["structures"]] == ["GTV", "CTV"]
    assert data["unmatched_test"] == ["Extra"] and data["unmatched_reference"] == []
    ctv = data["structures"][1]
    assert ctv["dice"] == 0.0 and ctv["hd"] is None and ctv["volume_test_cc"] == 0.0
    assert "GTV,GTV,1," in c.to_csv()


def _cli(*args):
    import sys

    return subprocess.run([sys.executable, "-m", "SlicerImgSuite.cli", *map(str, args)], capture_output=True, text=True)


def test_compare_structures_cli(shared_data, tmp_path):
    base = shared_data / NELMS
    a, b = base / "STRUCTURES_3mm" / "Sphere_30_0.dcm", base / "STRUCTURES_3mm" / "Sphere_30_X15.dcm"
    args = ["compare-structures", "--reference", a, "--test", b, "--referenced-ct", base / "CT_3mm", "-q"]
    out = _cli(*args, "--map", "Sphere_30_0=Sphere_30_X15", "--tolerance", "1", "--output-json", tmp_path / "c.json",
               "--output-csv", tmp_path / "c.csv", "--report", tmp_path / "r.html")  # fmt: skip
    assert out.returncode == 0, out.stderr
    row = json.loads((tmp_path / "c.json").read_text())["structures"][0]
    assert row["centroid_shift_mm"] == pytest.approx(1.5, abs=0.1) and row["surface_dice"] < 1.0  # 1 mm tolerance
    assert (tmp_path / "c.csv").read_text().splitlines()[0].startswith("reference,test,dice,")
    assert (tmp_path / "r.html").read_text().count("data:image/png") == 1
    # bad input: one line naming the problem, exit 2, nothing written
    bad = _cli(*args, "--map", "Nope=Sphere_30_X15", "--output-json", tmp_path / "bad.json")
    assert bad.returncode == 2 and "Nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.json").exists()
    over = _cli(*args, "--output-json", b)
    assert over.returncode == 2 and "an input" in over.stderr and "Sphere_30_X15.dcm" in over.stderr
    assert _cli("compare-structures", "--reference", a, "--test", b).returncode == 2  # no output asked


def test_report_with_dose_has_thumbnails_and_dvh_pairs(phantom, tmp_path):
    from SlicerImgSuite.review.job import compare_structures

    c = compare_structures(phantom.rtstruct, phantom.rtstruct, referenced_ct=phantom.ct_dir, dose=phantom.rtdose,
                           report=tmp_path / "r.html", output_json=tmp_path / "c.json")  # fmt: skip
    html = (tmp_path / "r.html").read_text()
    assert html.count("data:image/png") == 2 * len(c.structures) == 2 * len(phantom.masks)
    assert html.count("DVH of ") == len(c.structures)
    assert all(r["dice"] == 1.0 and r["hd"] == 0.0 and r["apl"] == 0.0 for r in c.structures)  # a set against itself


def test_worker_processes_give_the_same_rows():
    rng = np.random.default_rng(3)
    ref, test = {}, {}
    for n in range(4):
        a = sitk.Image(40, 40, 12, sitk.sitkUInt8)
        x, y, z = rng.integers(5, 20, 3)
        a[int(x) : int(x) + 15, int(y) : int(y) + 12, int(z) % 4 : int(z) % 4 + 6] = 1
        b = sitk.Image(a)
        b[int(x) : int(x) + 2, :, :] = 0
        ref[f"S{n}"], test[f"S{n}"] = a, b
    one = compare_structure_sets(ref, test).to_dict()
    two = compare_structure_sets(ref, test, workers=2).to_dict()
    assert one == two and [r["reference"] for r in two["structures"]] == ["S0", "S1", "S2", "S3"]
