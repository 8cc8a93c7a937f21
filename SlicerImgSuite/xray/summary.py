"""``imgsuite xray summary``: class counts, image sizes, intensity ranges and three figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..progress import ProgressCallback, no_progress
from .data import load_dataset, read_radiograph


def summarize_dataset(
    data: str | os.PathLike,
    *,
    output: str | os.PathLike | None = None,
    positive: str | None = None,
    finding: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Count images per class and collect sizes and intensity ranges; with ``output``, draw
    ``classes.png`` (bar chart), ``examples.png`` (a grid per class) and ``histograms.png``.

    Parameters
    ----------
    data : path
        Class folders or a CSV (see :func:`.data.load_dataset`).
    output : path, optional
        Folder for the figures.
    positive, finding : str, optional
        As :func:`.data.load_dataset` (which class is positive; the CSV's finding column).
    progress : callable, optional
        ``(fraction, message)``.

    Returns
    -------
    dict
        ``counts`` per class, ``sizes`` (``"HxW"`` -> images) and the intensity ranges.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for c, v in (("normal", 50), ("opacity", 200)):
    ...     (d / c).mkdir(); Image.fromarray(np.full((8, 6), v, np.uint8)).save(d / c / "x.png")
    >>> s = summarize_dataset(d)
    >>> s["counts"], s["sizes"]
    ({'normal': 1, 'opacity': 1}, {'8x6': 2})
    """
    progress = progress or no_progress
    ds = load_dataset(data, positive=positive, finding=finding)
    sizes, ranges, hists, spacing = {}, [], [[], []], set()
    for i, path in enumerate(ds.paths):
        progress(i / len(ds), f"reading {Path(path).name}")
        r = read_radiograph(path)
        key = f"{r.pixels.shape[0]}x{r.pixels.shape[1]}"
        sizes[key] = sizes.get(key, 0) + 1
        ranges.append((float(r.pixels.min()), float(r.pixels.max()), r.bit_depth))
        hists[ds.labels[i]].append(np.histogram(r.pixels, 64, (0.0, 1.0))[0] / r.pixels.size)
        spacing.add(r.spacing)
    lo, hi = np.array([v[:2] for v in ranges]).T
    summary = {
        "counts": {c: int((ds.labels == k).sum()) for k, c in enumerate(ds.classes)},
        "patients": len(set(ds.patients)),
        "sizes": sizes,
        "intensity_min": [float(lo.min()), float(lo.max())],
        "intensity_max": [float(hi.min()), float(hi.max())],
        "bit_depths": sorted({v[2] for v in ranges}),
        "pixel_spacings": sorted(str(s) for s in spacing),
        "notes": ds.notes,
    }
    if output is not None:
        _draw(ds, hists, Path(output))
    progress(1.0, "done")
    return summary


def _draw(ds, hists, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io.atomic import write_together

    def bars(tmp):
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.bar(ds.classes, [int((ds.labels == k).sum()) for k in range(2)], color=["tab:blue", "tab:red"])
        ax.set_ylabel("images")
        fig.tight_layout()
        fig.savefig(tmp / "classes.png", dpi=100)
        plt.close(fig)
        fig, axes = plt.subplots(2, 4, figsize=(8, 4.4))
        for k, row in enumerate(axes):
            chosen = [p for p, lab in zip(ds.paths, ds.labels) if lab == k][:4]
            for ax, j in zip(row, range(4)):
                ax.axis("off")
                if j < len(chosen):
                    ax.imshow(read_radiograph(chosen[j]).pixels, cmap="gray", vmin=0, vmax=1)
                    ax.set_title(f"{ds.classes[k]}: {Path(chosen[j]).name}"[:28], fontsize=7)
        fig.tight_layout()
        fig.savefig(tmp / "examples.png", dpi=100)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(5, 3))
        centers = (np.arange(64) + 0.5) / 64
        for k in range(2):
            if hists[k]:
                ax.plot(centers, np.mean(hists[k], axis=0), label=ds.classes[k])
        ax.set_xlabel("intensity (0..1 after reading)")
        ax.set_ylabel("fraction of pixels")
        ax.legend()
        fig.tight_layout()
        fig.savefig(tmp / "histograms.png", dpi=100)
        plt.close(fig)

    write_together([(output, bars, True)])
