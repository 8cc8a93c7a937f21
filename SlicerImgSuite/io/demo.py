"""Demo step: load the phantom's DICOM CT series and put it in the scene."""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from .commands import header_text  # noqa: E402
from .images import read_image  # noqa: E402

ORDER = 0


def run(ctx) -> None:
    from ..mrml.volumes import volume_node_from_image

    t0 = time.perf_counter()
    ct = read_image(ctx.phantom.ct_dir, progress=ctx.progress)
    seconds = time.perf_counter() - t0
    node = volume_node_from_image(ctx.scene, ct, "Phantom CT")
    node.SetAttribute("DICOM.Modality", "CT")  # the planning CT: the viewer's background
    array = sitk.GetArrayViewFromImage(ct)
    k = array.shape[0] // 2
    j = array.shape[1] // 2
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    sx, sy, sz = ct.GetSpacing()
    axes[0].imshow(array[k], cmap="gray", vmin=-1000, vmax=500, aspect=sy / sx)
    axes[0].set_title(f"axial slice {k}")
    axes[1].imshow(array[:, j, :][::-1], cmap="gray", vmin=-1000, vmax=500, aspect=sz / sx)
    axes[1].set_title(f"coronal row {j}")
    for ax in axes:
        ax.axis("off")
    path = ctx.report.figure_path("io", "phantom_ct.png")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    ctx.report.section(
        "Phantom patient (DICOM CT series)",
        f"The CT series was written with pydicom and read back in {seconds:.2f} s, slices sorted by position "
        f"along the slice normal. HU range {int(np.min(array))}..{int(np.max(array))}.\n\n" + header_text(ct),
        images=[(path, "Phantom CT: body, lungs, heart, spine, tumour in the right lung, couch")],
    )
