"""The ahead-of-time Joseph projector (tomo/aot.py): the same DRR as numba's kernel, and small jobs start
without numba. The extension is built here when the install did not build it (about a minute)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerImgSuite.tomo import aot, project
from SlicerImgSuite.tomo.geometry import circular


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The built extension module (the package's, or one built now into a temporary folder)."""
    spec = importlib.util.find_spec(f"SlicerImgSuite.tomo.{aot.NAME}")
    path = spec.origin if spec is not None else aot.build(tmp_path_factory.mktemp("aot"))
    spec = importlib.util.spec_from_file_location(aot.NAME, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ct(shape=(24, 40, 48)):
    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.integers(-1000, 1500, shape).astype(np.int16))
    image.SetSpacing((1.2, 1.0, 2.5))
    image.SetOrigin((-28, -20, -30))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))  # rotated: not the identity case
    return image


@pytest.mark.parametrize("use_table", [False, True])
def test_aot_and_numba_projectors_agree_exactly(compiled, monkeypatch, use_table):
    ct = _ct()
    volume = sitk.GetArrayFromImage(ct)
    table = None
    if use_table:
        hu = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.float32)
        table = np.clip((hu + 1000.0) * 2e-5, 0, None).astype(np.float32)
    else:
        volume = volume.astype(np.float32) * 1e-5 + 0.02
    geometry = circular(3, sad=500, sid=800, dims=(40, 32), pixel_size=(2.0, 2.5), start_angle=30, angle_step=50)

    def aot_kernel(samples):
        return lambda planes, table, *rest: getattr(compiled, f"joseph_{aot._PLANES[planes.dtype]}")(planes, table, *rest)

    monkeypatch.setattr(project, "joseph_kernel", aot_kernel)
    ours = project.forward_project(volume, ct, geometry, table=table)
    monkeypatch.setattr(project, "joseph_kernel", lambda samples: None)
    theirs = project.forward_project(volume, ct, geometry, table=table)
    assert ours.shape == (3, 32, 40) and float(np.abs(theirs).max()) > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * float(np.abs(theirs).max()))


def test_the_choice_of_kernel():
    assert aot.joseph_kernel(aot.AOT_SAMPLES * 2) is None  # large: numba's parallel kernel
    code = (
        "import sys\nfrom SlicerImgSuite.tomo import aot\n"
        "import numba\nprint(aot.joseph_kernel(10) is None)\n"  # numba loaded already: no reason to avoid it
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_a_small_drr_does_not_load_numba_when_built(compiled):
    code = (
        "import importlib.util, sys, numpy as np, SimpleITK as sitk\n"
        f"spec = importlib.util.spec_from_file_location('SlicerImgSuite.tomo.{aot.NAME}', {compiled.__file__!r})\n"
        f"sys.modules['SlicerImgSuite.tomo.{aot.NAME}'] = importlib.util.module_from_spec(spec)\n"
        f"spec.loader.exec_module(sys.modules['SlicerImgSuite.tomo.{aot.NAME}'])\n"
        "from SlicerImgSuite.tomo import aot, project\n"
        "from SlicerImgSuite.tomo.geometry import circular\n"
        "grid = sitk.Image([16, 16, 16], sitk.sitkUInt8)\n"
        "out = project.forward_project(np.ones((16, 16, 16), np.float32), grid, circular(1, dims=(8, 8)))\n"
        "print(aot.joseph_kernel(10) is not None, 'numba' in sys.modules, float(out.max()) > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "True"]
