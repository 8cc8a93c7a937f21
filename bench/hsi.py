"""Benchmark: open + full read of a 1 GB cube inside a ``.hsi``, against Spectral Python and numpy.memmap.

The cube (uint16, BIL, 1 GiB by default) is generated in a temporary folder, written once as a
plain ENVI pair and once inside a ``.hsi`` container (same bytes), and deleted afterwards.

"Full read" is the same work for every case: all bytes of the cube brought into process memory as
one array, returned as ``(lines, samples, bands)``:

- ours:      ``open_hsi(f).read()``  (memory map straight out of the ZIP, one copy)
- numpy:     ``np.array(np.memmap(plain ENVI binary))``, transposed view
- spectral:  ``spectral.envi.open(hdr).load(dtype=uint16)`` (Spectral Python's own full read)

Ours is compared with one anchor at a time (a process started right after one that freed gigabytes
-- spectral's load holds about 3 GiB -- is slowed down, whichever it is): the runner's table (each
case a fresh process, wall time including interpreter start and imports, peak RSS), then in-process
open + read times (imports excluded; wall and CPU = user + system), alternating A B, B A, ...

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
    "t0, c0 = time.perf_counter(), time.process_time(); a = open_hsi(HSI).read()",
    "numpy.memmap plain": "import numpy as np\n"
    "t0, c0 = time.perf_counter(), time.process_time()\n"
    "m = np.memmap(RAW, dtype='<u2', mode='r', shape=SHAPE)\n"
    "a = np.array(m).transpose(0, 2, 1)",
    "spectral plain ENVI": "import numpy as np, spectral\n"
    "t0, c0 = time.perf_counter(), time.process_time(); a = spectral.envi.open(HDR, RAW).load(dtype=np.uint16)",
}


def script(body: str, folder: Path, shape) -> str:
    return (
        f"import time, sys\nsys.path.insert(0, {str(REPO)!r})\n"
        f"HSI = {str(folder / 'cube.hsi')!r}; HDR = {str(folder / 'cube.hdr')!r}; RAW = {str(folder / 'cube.envi')!r}\n"
        f"SHAPE = {tuple(shape)!r}\n{body}\n"
        "wall, cpu = time.perf_counter() - t0, time.process_time() - c0\n"
        "assert a.shape == (SHAPE[0], SHAPE[2], SHAPE[1]) and int(a[-1, -1, -1]) == int(a[-1, -1, -1])\n"
        "print(wall, cpu)\n"
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


def in_process(pair: list[Case], repeats: int) -> tuple[dict, dict]:
    """Wall and CPU seconds that each case prints, alternating A B, B A, ... so each follows the other
    equally often (a process started right after one that freed gigabytes is slowed down)."""
    wall = {case.name: [] for case in pair}
    cpu = {case.name: [] for case in pair}
    for round_ in range(repeats):
        for case in pair if round_ % 2 == 0 else pair[::-1]:
            out = subprocess.run(case.argv, capture_output=True, text=True, check=True).stdout.split()
            wall[case.name].append(float(out[-2]))
            cpu[case.name].append(float(out[-1]))
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="cube size in GiB (default 1)")
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hsi-bench-"))
    try:
        # generated in a child process, so the cases (forked from this one) do not inherit its peak RSS
        code = f"import sys; sys.path[:0] = [{str(REPO / 'bench')!r}]; import hsi; print(*hsi.make_cube(hsi.Path({str(folder)!r}), {args.gib}))"
        shape = tuple(
            int(v)
            for v in subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()
        )
        print(
            f"cube: {shape[0]} lines x {shape[2]} samples x {shape[1]} bands uint16 BIL, "
            f"{(folder / 'cube.envi').stat().st_size / 2**30:.2f} GiB; .hsi {(folder / 'cube.hsi').stat().st_size / 2**30:.2f} GiB"
        )
        cases = [Case(name, [sys.executable, "-c", script(body, folder, shape)]) for name, body in CASES.items()]
        # A process that follows one that freed gigabytes (spectral's load holds ~3 GiB) is slowed down
        # while the kernel reclaims them; the runner's order is fixed, so compare against one anchor at a time.
        compare(cases[:2], repeats=args.repeats, title="open + full read vs numpy.memmap, process wall")
        compare(cases[::2], repeats=args.repeats, title="open + full read vs spectral, process wall")
        ours = cases[0]
        for anchor in cases[1:]:
            wall, cpu = in_process([ours, anchor], args.repeats)
            print(
                f"\n## open + full read, in-process (imports excluded), {ours.name} vs {anchor.name}, median of {args.repeats}"
            )
            print("CPU = user + system time of the process: what the read costs, whatever else the machine runs")
            print(f"{'case':<24}{'wall s':>9}{'CPU s':>9}   all wall")
            for case in (ours, anchor):
                w, c = statistics.median(wall[case.name]), statistics.median(cpu[case.name])
                print(f"{case.name:<24}{w:>9.3f}{c:>9.3f}   {' '.join(f'{v:.2f}' for v in wall[case.name])}")
            for measure, table in (("wall", wall), ("CPU", cpu)):
                ratio = statistics.median(table[ours.name]) / statistics.median(table[anchor.name])
                goal = "<= 1.2" if "numpy" in anchor.name else "< 1"
                print(f"goal ({measure}): {ours.name} / {anchor.name} = {ratio:.2f} ({goal})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
