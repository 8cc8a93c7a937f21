"""Body mask on a CT whose field of view cuts through the lungs (a real 4D lung CT, cropped here).

The reference is the body and lungs segmented on the whole field of view, cropped like the CT. Tuned on
phase 00 cropped laterally; held out: phase 50 with the crops below (antero-posterior and both sides).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.io import read_image
from SlicerImgSuite.segmentation.ct import segment_body, segment_lungs

# (columns i0:i1, rows j0:j1) of the 100 x 100 slices: each cuts through at least one lung
CROPS = {"anterior half": (0, 100, 0, 42), "both sides": (28, 72, 10, 90), "right side": (0, 45, 0, 100)}


@pytest.fixture(scope="module")
def phase50(shared_data):
    ct = read_image(shared_data / "opentps-4dct-light-lung" / "50")
    body = segment_body(ct)
    lungs = sitk.GetArrayFromImage(segment_lungs(ct, body)) > 0
    return ct, sitk.GetArrayFromImage(body) > 0, lungs


@pytest.mark.parametrize("crop", sorted(CROPS))
def test_body_keeps_the_lungs_the_field_of_view_cuts(phase50, crop, caplog):
    ct, body, lungs = phase50
    i0, i1, j0, j1 = CROPS[crop]
    ref_body, ref_lungs = body[:, j0:j1, i0:i1], lungs[:, j0:j1, i0:i1]
    cut = ct[i0:i1, j0:j1, :]
    assert ref_lungs[:, :, [0, -1]].any() or ref_lungs[:, [0, -1], :].any()  # a lung reaches the edge
    with caplog.at_level(logging.WARNING, logger="SlicerImgSuite.segmentation"):
        mask = sitk.GetArrayFromImage(segment_body(cut)) > 0
    assert "field of view truncated" in caplog.text
    hu = sitk.GetArrayViewFromImage(cut)
    dense_in_lung = ref_lungs & (hu > -300)  # vessels, nodules: tissue the lungs hold
    assert mask[ref_lungs].mean() > 0.995
    assert mask[dense_in_lung].all()
    assert mask[ref_body].mean() > 0.995
    assert (mask & ~ref_body).sum() < 0.01 * ref_body.sum()  # no room air taken in


def test_whole_field_of_view_logs_no_truncation(phase50, caplog):
    ct, body, _ = phase50
    with caplog.at_level(logging.WARNING, logger="SlicerImgSuite.segmentation"):
        again = sitk.GetArrayFromImage(segment_body(ct)) > 0
    assert "truncated" not in caplog.text and np.array_equal(again, body)
