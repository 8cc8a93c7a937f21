"""A generated cohort for tests, benchmarks and demos: phantom patients in a nested folder tree.

Each patient is :func:`SlicerImgSuite.demo.phantom.make_phantom` (CT, RTSTRUCT, RTDOSE as DICOM)
with its own patient ID, CT noise, grid and prescription (the dose scaled by 0.8-1.2), so that no
two patients give the same numbers.
"""

from __future__ import annotations

import os
from pathlib import Path


def make_cohort(
    folder: str | os.PathLike,
    n: int,
    *,
    shape: tuple[int, int, int] = (40, 32, 16),
    spacing: tuple[float, float, float] = (8.0, 8.0, 8.0),
    broken: tuple[int, ...] = (),
) -> dict[str, Path]:
    """Write ``n`` phantom patients under ``folder/site<k>/<year>/PAT<i>/``; returns patient ID -> folder.

    Patients listed in ``broken`` get an RTDOSE cut short in its pixel data (header intact): the
    index lists it, reading its dose fails.

    Examples
    --------
    >>> import tempfile
    >>> sorted(make_cohort(tempfile.mkdtemp(), 2, shape=(24, 20, 4), spacing=(12.0, 12.0, 10.0)))
    ['PAT01', 'PAT02']
    """
    import numpy as np
    import pydicom

    from ..demo.phantom import make_phantom

    rng = np.random.default_rng(15)
    out = {}
    for i in range(1, n + 1):
        pid = f"PAT{i:02d}"
        where = Path(folder) / f"site{i % 3}" / str(2020 + i % 4) / pid
        grow = int(rng.integers(0, 3))
        p = make_phantom(where, shape=(shape[0] + 2 * grow, shape[1] + 2 * grow, shape[2]), spacing=spacing, seed=i)
        scale = float(rng.uniform(0.8, 1.2))
        for f in [*sorted(p.ct_dir.iterdir()), p.rtstruct, p.rtdose]:
            ds = pydicom.dcmread(f)
            ds.PatientID, ds.PatientName = pid, f"Phantom^{pid}"
            if ds.Modality == "RTDOSE":
                ds.DoseGridScaling = f"{float(ds.DoseGridScaling) * scale:.10g}"
            ds.save_as(f, enforce_file_format=True)
        if i in broken:
            data = p.rtdose.read_bytes()
            p.rtdose.write_bytes(data[: len(data) - len(data) // 3])
        out[pid] = where
    return out
