"""Nuclei benchmark: ``imgsuite nuclei`` vs a plain scikit-image pipeline, seconds per megapixel.

The DSB2018 sample (512 x 512) is tiled to 2048 x 2048 (4.2 MP, about 2000 nuclei) so that start-up
cost does not dominate. Both sides run as child processes in one run, alternating (bench/runner.py);
the in-process time of the segmentation alone is printed too, plus F1 on the untiled image.

    .venv/bin/python bench/nuclei.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner import SHARED_DATA, Case, compare, imgsuite  # noqa: E402

BASELINE = """
import sys, numpy as np, tifffile
from scipy import ndimage as ndi
from skimage import filters, feature, measure, segmentation
img = tifffile.imread(sys.argv[1]).astype(np.float32)
sm = filters.gaussian(img, 1, preserve_range=True)
fg = ndi.binary_fill_holes(sm > filters.threshold_otsu(sm))
dist = ndi.distance_transform_edt(fg)
lab = measure.label(fg)
pk = feature.peak_local_max(dist, min_distance=5, labels=lab, exclude_border=False)
mk = np.zeros(lab.shape, np.int32); mk[tuple(pk.T)] = np.arange(1, len(pk) + 1)
ws = segmentation.watershed(-dist, mk, mask=fg)
props = measure.regionprops_table(ws, img, properties=("label", "area", "centroid", "intensity_mean"))
tifffile.imwrite(sys.argv[2], ws.astype(np.uint16), compression="zlib")
# the same outputs as imgsuite nuclei: a CSV per nucleus and an overlay PNG (contours over the image)
np.savetxt(sys.argv[2] + ".csv", np.column_stack(list(props.values())), delimiter=",", header=",".join(props),
           fmt="%.6g", comments="")
from PIL import Image
lo, hi = np.percentile(img, [1, 99.8])
grey = (np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
rgb = np.repeat(grey[..., None], 3, axis=2)
rgb[segmentation.find_boundaries(ws, mode="inner")] = (255, 50, 50)
Image.fromarray(rgb).save(sys.argv[2] + ".png", compress_level=1)
"""


def main() -> None:
    from SlicerImgSuite.segmentation.matching import instance_f1
    from SlicerImgSuite.segmentation.nuclei import label_nuclei

    folder = SHARED_DATA / "dsb2018-nuclei-stardist-sample"
    image = tifffile.imread(folder / "img2d.tif")
    truth = tifffile.imread(folder / "mask2d.tif")
    big = np.tile(image, (4, 4))
    mp = big.size / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "tiled.tif"
        tifffile.imwrite(src, big)
        cases = compare(
            [
                Case("imgsuite nuclei", [*imgsuite(), "nuclei", "-q", "--input", str(src), "--output", tmp + "/o"]),
                Case("scikit-image baseline", [sys.executable, "-c", BASELINE, str(src), tmp + "/b.tif"]),
            ],
            repeats=3,
            title=f"nuclei, {big.shape[1]} x {big.shape[0]} ({mp:.1f} MP)",
        )
    for case in cases:
        print(
            f"{case.name:<28} {statistics.median(case.times) / mp:.3f} s/MP (whole command: read, segment, labels TIFF, CSV, PNG)"
        )
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        labels = label_nuclei(big)
        times.append(time.perf_counter() - t0)
    print(f"label_nuclei in process: {statistics.median(times) / mp:.3f} s/MP ({labels.max()} nuclei)")
    print(f"F1@0.5 on the untiled image: {instance_f1(truth, label_nuclei(image)).f1:.3f}")


if __name__ == "__main__":
    main()
