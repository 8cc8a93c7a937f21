"""DRRs: ours against plastimatch drr on the same CT, and the imgsuite drr command."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.cli import main
from SlicerImgSuite.tomo.drr import drr, hu_to_attenuation
from SlicerImgSuite.tomo.geometry import circular
from SlicerImgSuite.tomo.projset import read_projections


@pytest.fixture(scope="module")
def body_ct(tmp_path_factory):
    z, y, x = np.ogrid[:50, :128, :128]
    a = np.full((50, 128, 128), -1000, np.int16)
    body = ((x - 64) / 52.0) ** 2 + ((y - 64) / 36.0) ** 2 < 1
    a[np.broadcast_to(body, a.shape)] = 30
    lung = ((x - 44) / 12.0) ** 2 + ((y - 60) / 16.0) ** 2 < 1
    a[np.broadcast_to(lung, a.shape)] = -700
    a[10:30, 76:84, 60:68] = 900
    image = sitk.GetImageFromArray(a)
    image.SetSpacing((1.5, 1.5, 4.0))
    image.SetOrigin((-95.25, -95.25, -98.0))  # taller than the field of view: its ends are not imaged
    # real CTs have partial-volume edges; a staircase would measure Siddon-vs-Joseph edge handling instead
    image = sitk.Cast(sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), 2.0), sitk.sitkInt16)
    path = tmp_path_factory.mktemp("drr") / "ct.mha"
    sitk.WriteImage(image, str(path))
    return path


def test_drr_matches_plastimatch_within_one_percent(tmp_path, body_ct):
    # 0 and 90 degrees run the separable path, 45 and 135 the general one
    subprocess.run(
        [
            "plastimatch",
            "drr",
            "-i",
            "exact",
            "-a",
            "4",
            "-N",
            "45",
            "-r",
            "96 80",
            "-z",
            "300 250",
            "-t",
            "pfm",
            "-O",
            str(tmp_path / "pl/image"),
            str(body_ct),
        ],
        check=True,
        capture_output=True,
    )
    theirs = read_projections(tmp_path / "pl")
    ours = drr(sitk.ReadImage(str(body_ct)), theirs.geometry)
    for view in range(4):
        a, b = ours.images[view], theirs.images[view]
        rms = np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2))
        assert rms < 0.01, (view, rms)
        assert b.max() > 0.2  # a real signal, not two empty images


def test_hu_conversion_follows_plastimatch():
    np.testing.assert_allclose(
        hu_to_attenuation([-1000, -800, -799, 0, 1000]), [0, 0, 0.022 * 0.201, 0.022, 0.044], rtol=1e-5
    )


def test_drr_command_circle_and_sweep(tmp_path, body_ct):
    assert (
        main(
            [
                "drr",
                "-q",
                "-a",
                "3",
                "-N",
                "60",
                "-r",
                "32 24",
                "-z",
                "300 250",
                "-e",
                "-O",
                str(tmp_path / "c/image"),
                str(body_ct),
            ]
        )
        == 0
    )
    ps = read_projections(tmp_path / "c")
    assert ps.images.shape == (3, 24, 32)
    assert 0 < ps.images.min() and ps.images.max() <= 1.0  # exponential: transmission
    g = circular(3, 1000, 1500, (32, 24), (300 / 32, 250 / 24), angle_step=60)
    np.testing.assert_allclose(ps.geometry.sources, g.sources, atol=1e-3)
    out = tmp_path / "sweep.mha"
    assert (
        main(
            [
                "drr",
                "-q",
                "--sweep",
                "linear",
                "--views",
                "7",
                "--sweep-angle",
                "30",
                "--sid",
                "1800",
                "-r",
                "40 30",
                "-z",
                "400 300",
                "-O",
                str(out),
                "--input",
                str(body_ct),
            ]
        )
        == 0
    )
    sweep = read_projections(out)
    assert sweep.images.shape == (7, 30, 40)
    angles = np.degrees(
        np.arctan2(
            sweep.geometry.sources[:, 2] - sweep.geometry.centers[:, 2],
            sweep.geometry.centers[:, 1] - sweep.geometry.sources[:, 1],
        )
    )
    np.testing.assert_allclose(np.abs(angles[[0, -1]]), [15, 15], atol=1e-6)  # tube head-foot, +-15 degrees
    assert np.ptp(sweep.geometry.centers, axis=0).max() == 0  # the panel does not move


def test_drr_command_bad_input(tmp_path, capsys):
    bad = tmp_path / "ct.mha"
    bad.write_text("not an image")
    assert main(["drr", "-q", "-O", str(tmp_path / "out/image"), str(bad)]) == 2
    assert "ct.mha" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
