"""Benchmark: open + full read of a 1 GB cube inside a ``.hsi``, against Spectral Python and numpy.memmap.

The cube (uint16, BIL, 1 GiB by default) is generated in a temporary folder, written once as a
plain ENVI pair and once inside a ``.hsi`` container (same bytes), and deleted afterwards.

"Full read" is the same work for every case: all bytes of the cube brought into process memory as
one array, returned as ``(lines, samples, bands)``:

- ours:      ``open_hsi(f).read()``  (memory map straight out of the ZIP, one copy)
- numpy:     ``np.array(np.memmap(plain ENVI binary))``, transposed view
- spectral:  ``spectral.envi.open(hdr).load(dtype=uint16)`` (Spectral Python's own full read)

Two tables: the runner's (each case a fresh process, wall time including interpreter start and
imports, peak RSS) and in-process open+read times (imports excluded), alternating cases.

Usage: ``.venv/bin/python bench/hsi.py [--gib 1.0] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from runner import REPO, Case, compare

sys.path.insert(0, str(REPO))

CASES = {
    "imgsuite .hsi": "from SlicerImgSuite.hsi.container import open_hsi\n"
    "t0 = time.perf_counter(); a = open_hsi(HSI).read(); t = time.perf_counter() - t0",
    "numpy.memmap plain": "import numpy as np\n"
    "t0 = time.perf_counter()\n"
    "m = np.memmap(RAW, dtype='<u2', mode='r', shape=SHAPE)\n"
    "a = np.array(m).transpose(0, 2, 1); t = time.perf_counter() - t0",
    "spectral plain ENVI": "import numpy as np, spectral\n"
    "t0 = time.perf_counter(); a = spectral.envi.open(HDR, RAW).load(dtype=np.uint16); t = time.perf_counter() - t0",
}


def script(body: str, folder: Path, shape) -> str:
    return (
        f"import time, sys\nsys.path.insert(0, {str(REPO)!r})\n"
        f"HSI = {str(folder / 'cube.hsi')!r}; HDR = {str(folder / 'cube.hdr')!r}; RAW = {str(folder / 'cube.envi')!r}\n"
        f"SHAPE = {tuple(shape)!r}\n{body}\n"
        "assert a.shape == (SHAPE[0], SHAPE[2], SHAPE[1]) and int(a[-1, -1, -1]) == int(a[-1, -1, -1])\n"
        "print(t)\n"
    )


def make_cube(folder: Path, gib: float) -> tuple[int, int, int]:
    from SlicerImgSuite.hsi.container import write_hsi
    from SlicerImgSuite.hsi.envi import write_envi

    samples, bands = 1024, 256
    lines = max(1, int(gib * (1 << 30) / (samples * bands * 2)))
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 4096, size=(lines, samples, bands), dtype=np.uint16)
    wavelengths = np.linspace(400, 1000, bands)
    write_envi(folder / "cube.envi", cube, interleave="bil", wavelength=wavelengths)
    write_hsi(folder / "cube.hsi", cube, interleave="bil", wavelength=wavelengths, previews=(), thumbnail=False)
    return lines, bands, samples  # BIL file order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="cube size in GiB (default 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hsi-bench-"))
    try:
        # generated in a child process, so the cases (forked from this one) do not inherit its peak RSS
        code = f"import sys; sys.path[:0] = [{str(REPO / 'bench')!r}]; import hsi; print(*hsi.make_cube(hsi.Path({str(folder)!r}), {args.gib}))"
        shape = tuple(int(v) for v in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
        print(f"cube: {shape[0]} lines x {shape[2]} samples x {shape[1]} bands uint16 BIL, "
              f"{(folder / 'cube.envi').stat().st_size / 2**30:.2f} GiB; .hsi {(folder / 'cube.hsi').stat().st_size / 2**30:.2f} GiB")
        cases = [Case(name, [sys.executable, "-c", script(body, folder, shape)]) for name, body in CASES.items()]
        compare(cases, repeats=args.repeats, title="open + full read, process wall (includes start-up and imports)")
        inner = {name: [] for name in CASES}
        for _ in range(args.repeats):
            for case in cases:
                out = subprocess.run(case.argv, capture_output=True, text=True, check=True).stdout
                inner[case.name].append(float(out.split()[-1]))
        base = statistics.median(inner["imgsuite .hsi"])
        print("\n## open + full read, in-process (imports excluded), median of", args.repeats)
        for name, times in inner.items():
            t = statistics.median(times)
            print(f"{name:<28}{t:>10.3f} s   ratio to imgsuite {t / base:6.2f}")
        numpy_t = statistics.median(inner["numpy.memmap plain"])
        spectral_t = statistics.median(inner["spectral plain ENVI"])
        print(f"goal 1: imgsuite / numpy.memmap = {base / numpy_t:.2f} (goal <= 1.2)")
        print(f"goal 2: imgsuite / spectral     = {base / spectral_t:.2f} (goal < 1)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
