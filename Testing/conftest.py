"""Shared pytest fixtures: a real slicer-core MRML scene, the phantom patient, the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("IMGSUITE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real public data; CI has it). A missing folder is a failure, not a skip."""
    assert SHARED_DATA.is_dir(), f"shared test data not found at {SHARED_DATA} (set IMGSUITE_SHARED_DATA)"
    return SHARED_DATA


@pytest.fixture
def mrml():
    """A fresh scene built the way Slicer builds it (application logic + module logics)."""
    from SlicerImgSuite.mrml.scene import new_scene

    scene = new_scene()
    yield scene
    scene.scene.Clear(1)


@pytest.fixture(scope="session")
def phantom(tmp_path_factory):
    """The demo's phantom patient (CT series, RTSTRUCT, RTDOSE, true masks), generated once per session."""
    from SlicerImgSuite.demo.phantom import make_phantom

    return make_phantom(tmp_path_factory.mktemp("phantom"))


@pytest.fixture(scope="session")
def nuclei_inputs(shared_data, tmp_path_factory) -> Path:
    """A folder linking the shared CZI time-lapse (``CD_s_1_t_3_c_2_z_5.czi``: 3 frames, 2 channels, 5 planes) and
    the DSB still (``img2d.tif``): the nuclei job's folder input, one of each kind."""
    src = tmp_path_factory.mktemp("nuclei_inputs")
    (src / "CD_s_1_t_3_c_2_z_5.czi").symlink_to(shared_data / "czi" / "CD_s_1_t_3_c_2_z_5.czi")
    (src / "img2d.tif").symlink_to(shared_data / "dsb2018-nuclei-stardist-sample" / "img2d.tif")
    return src
