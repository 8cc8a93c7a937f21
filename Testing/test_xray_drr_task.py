"""The known-truth DRR task: rendered from a real CT with the project's DRR, truth recorded, patients kept."""

from __future__ import annotations

import csv
import json

import numpy as np
import SimpleITK as sitk
from PIL import Image

from SlicerImgSuite.xray.data import load_dataset
from SlicerImgSuite.xray.drr_task import _load_ct, _vary_ct, make_drr_task


def test_drr_task_from_the_4d_lung(shared_data, tmp_path):
    cts = [("lung", shared_data / "opentps-4dct-light-lung" / "00"), ("lung", shared_data / "opentps-4dct-light-lung" / "50")]
    labels = make_drr_task(cts, tmp_path / "task", per_ct=2, longest=32, voxel_mm=5.0, seed=1)
    ds = load_dataset(labels)
    assert ds.classes == ["clear", "opacity"] and ds.labels.tolist() == [0, 1, 0, 1] and set(ds.patients) == {"lung"}
    assert ds.studies[0] == ds.studies[1] != ds.studies[2] == ds.studies[3]  # a view's two renderings: one study
    with open(tmp_path / "task" / "truth.csv") as f:
        truth = list(csv.DictReader(f))
    for row in truth:
        if row["label"] == "opacity":
            assert 10 <= float(row["radius_mm"]) <= 25 and int(row["voxels"]) > 0
            centre = json.loads(row["centre_lps"])
            assert -250 <= centre[0] <= 250 and -161 <= centre[2] <= 116  # inside the CT's extent (SOURCE.md)
    image = np.asarray(Image.open(ds.paths[0]))
    assert image.dtype == np.uint16 and max(image.shape) == 32 and image.std() > 1000  # anatomy, not a flat image
    for i in range(len(ds)):  # the field cuts through the body head-feet: no row is all air (where the CT ends)
        rows = np.asarray(Image.open(ds.paths[i]), float).max(axis=1)
        assert rows.min() > 0.4 * rows.max()


def test_drr_task_pairs_and_deformed_copies(shared_data, tmp_path):
    """Each opacity image is its clear twin (same view) plus a sphere whose recorded peak shows in the pixels;
    the second half of each CT's radiographs come from a deformed copy of the CT, under the same patient."""
    cts = [("lung", shared_data / "opentps-4dct-light-lung" / "00")]
    labels = make_drr_task(cts, tmp_path / "task", per_ct=4, longest=48, voxel_mm=5.0, variants=2, seed=3,
                           radius_mm=(15.0, 30.0), delta_hu=(800.0, 1500.0))
    with open(tmp_path / "task" / "truth.csv") as f:
        truth = list(csv.DictReader(f))
    assert [r["variant"] for r in truth] == ["0", "0", "1", "1"] and {r["patient_id"] for r in truth} == {"lung"}
    pixels = [np.asarray(Image.open(labels.parent / r["path"]), float) / 65535 for r in truth]
    for clear, opaque, c, o in ((pixels[0], pixels[1], *truth[:2]), (pixels[2], pixels[3], *truth[2:])):
        assert (c["label"], o["label"]) == ("clear", "opacity") and c["sad"] == o["sad"] and c["angle_deg"] == o["angle_deg"]
        assert 15 <= float(o["radius_mm"]) <= 30 and 800 <= float(o["delta_hu"]) <= 1500
        assert float(o["contrast_to_noise"]) >= 3  # invisible spheres are redrawn
        r, k = int(o["peak_row"]), int(o["peak_col"])
        bump = (opaque - clear)[max(r - 1, 0):r + 2, max(k - 1, 0):k + 2].mean()
        assert abs(bump - float(o["peak_contrast"])) < 0.5 * float(o["peak_contrast"]) + 2 * float(o["noise_sd"])
        far = (opaque - clear)[np.hypot(*np.indices(clear.shape) - np.array([r, k])[:, None, None]) > 20]
        assert abs(far.mean()) < 1e-3  # the change is local: elsewhere only noise
    original = _load_ct(cts[0][1], 5.0)
    copy = _vary_ct(original, np.random.default_rng(0), 6.0)
    a, b = sitk.GetArrayFromImage(original), sitk.GetArrayFromImage(copy)
    assert copy.GetSize() == original.GetSize() and np.abs(a - b).mean() > 20  # moved anatomy, same grid
    body_a, body_b = (a > -500).sum(), (b > -500).sum()
    assert 0.6 < body_b / body_a < 1.4  # scaled by 0.9-1.1 per axis and warped, not destroyed


def test_random_phantoms_are_reproducible_subjects_of_each_kind():
    from SlicerImgSuite.xray.phantoms import KINDS, random_phantom

    for kind in KINDS:
        a = sitk.GetArrayFromImage(random_phantom(11, voxel_mm=6.0, kind=kind))
        assert np.array_equal(a, sitk.GetArrayFromImage(random_phantom(11, voxel_mm=6.0, kind=kind)))
        assert a.min() == -1000 and np.isfinite(a).all() and (a > -500).mean() > 0.05  # a body in air
    chest = sitk.GetArrayFromImage(random_phantom(11, voxel_mm=6.0, kind="chest"))
    assert ((chest < -600) & (chest > -900)).sum() > 100 and (chest > 250).sum() > 20  # lungs; ribs and spine
    other = sitk.GetArrayFromImage(random_phantom(12, voxel_mm=6.0, kind="chest"))
    assert other.shape != chest.shape or np.abs(other - chest).mean() > 10  # another seed, another subject


def test_drr_task_from_phantoms_names_each_phantom(tmp_path):
    from SlicerImgSuite.xray.drr_task import phantom_subjects

    labels = make_drr_task(phantom_subjects(2, seed=40, voxel_mm=6.0), tmp_path / "t", per_ct=2, longest=32,
                           voxel_mm=6.0, seed=0, radius_mm=(15.0, 30.0), delta_hu=(800.0, 1500.0))
    ds = load_dataset(labels)
    assert ds.patients == ["phantom-0040"] * 2 + ["phantom-0041"] * 2 and ds.labels.tolist() == [0, 1, 0, 1]
    with open(tmp_path / "t" / "truth.csv") as f:
        assert [r["ct"].split(",")[-1] for r in csv.DictReader(f)] == [" seed 40"] * 2 + [" seed 41"] * 2
