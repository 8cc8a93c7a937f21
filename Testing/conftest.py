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
