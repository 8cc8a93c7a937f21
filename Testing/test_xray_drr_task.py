"""The known-truth DRR task: rendered from a real CT with the project's DRR, truth recorded, patients kept."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image

from SlicerImgSuite.xray.data import load_dataset
from SlicerImgSuite.xray.drr_task import make_drr_task


def test_drr_task_from_the_4d_lung(shared_data, tmp_path):
    cts = [("lung", shared_data / "opentps-4dct-light-lung" / "00"), ("lung", shared_data / "opentps-4dct-light-lung" / "50")]
    labels = make_drr_task(cts, tmp_path / "task", per_ct=2, longest=32, voxel_mm=5.0, seed=1)
    ds = load_dataset(labels)
    assert ds.classes == ["clear", "opacity"] and ds.labels.tolist() == [0, 1, 0, 1] and set(ds.patients) == {"lung"}
    with open(tmp_path / "task" / "truth.csv") as f:
        truth = list(csv.DictReader(f))
    for row in truth:
        if row["label"] == "opacity":
            assert 10 <= float(row["radius_mm"]) <= 25 and int(row["voxels"]) > 0
            centre = json.loads(row["centre_lps"])
            assert -250 <= centre[0] <= 250 and -161 <= centre[2] <= 116  # inside the CT's extent (SOURCE.md)
    image = np.asarray(Image.open(ds.paths[0]))
    assert image.dtype == np.uint16 and max(image.shape) == 32 and image.std() > 1000  # anatomy, not a flat image
