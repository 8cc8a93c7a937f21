"""Makes docs/figures/perinuclear.png: the nucleus, ``--perinuclear-mode ring`` and ``grown`` on two touching discs.

    PYTHONPATH=. .venv/bin/python docs/figures/perinuclear.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from SlicerImgSuite.segmentation.measure import perinuclear_regions  # noqa: E402

yy, xx = np.mgrid[:30, :44]
labels = np.zeros((30, 44), np.int32)
labels[(yy - 15) ** 2 + (xx - 14) ** 2 <= 49] = 1
labels[(yy - 15) ** 2 + (xx - 29) ** 2 <= 25] = 2  # 2 pixels apart: the growth is split between the two
width = 3
panels = [("nucleus (area_px)", labels), (f"ring, width {width} (ring_area_px)", perinuclear_regions(labels, width)),
          (f"grown by {width} (grown_area_px)", perinuclear_regions(labels, width, "grown"))]  # fmt: skip
colours = matplotlib.colors.ListedColormap(["white", "tab:blue", "tab:orange"])
fig, axes = plt.subplots(1, 3, figsize=(9, 2.4), dpi=100)
for ax, (title, region) in zip(axes, panels):
    ax.imshow(region, cmap=colours, vmin=0, vmax=2, interpolation="nearest")
    ax.contour(labels > 0, levels=[0.5], colors="k", linewidths=0.8)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
fig.tight_layout()
fig.savefig(Path(__file__).with_suffix(".png"))
