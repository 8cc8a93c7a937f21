"""Demo step: a generated push-broom scan in a ``.hsi`` (references, labels, read procedures), read back,
calibrated, and shown in the report (RGB composites, spectra) and in the Slicer scene."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

ORDER = 60
JOB = "hsi"


@dataclass
class SyntheticScan:
    raw: np.ndarray  # (lines, samples, bands) uint16 counts
    reflectance: np.ndarray  # truth, float32
    white: np.ndarray  # (1, samples, bands) before the scan
    white_after: np.ndarray  # after the scan (the lamp dimmed)
    black: np.ndarray  # (1, samples, bands)
    classes: np.ndarray  # (lines, samples) uint8
    class_names: list
    class_colors: list
    spectra: dict  # class name -> reflectance spectrum
    wavelengths: np.ndarray


def synthetic_scan(lines: int = 120, samples: int = 160, bands: int = 96, seed: int = 0) -> SyntheticScan:
    """A tray, tissue, a lesion and a vessel with known reflectance, seen by a push-broom camera whose
    lamp dims by 10 % during the scan (so the white taken after differs from the one taken before)."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(420.0, 980.0, bands)

    def dip(center, width, depth):
        return depth * np.exp(-0.5 * ((wl - center) / width) ** 2)

    tissue = 0.55 + 0.15 * np.tanh((wl - 600) / 40) - dip(542, 12, 0.12) - dip(576, 10, 0.12)
    spectra = {
        "tray": np.full(bands, 0.9),
        "tissue": tissue,
        "lesion": 0.6 * tissue - dip(760, 30, 0.05),
        "vessel": 0.32 + 0.2 * np.tanh((wl - 610) / 25) - dip(555, 20, 0.06),
    }
    yy, xx = np.mgrid[0:lines, 0:samples]
    classes = np.zeros((lines, samples), np.uint8)
    classes[(xx - samples / 2) ** 2 / (0.42 * samples) ** 2 + (yy - lines / 2) ** 2 / (0.4 * lines) ** 2 < 1] = 2
    classes[(xx - 0.6 * samples) ** 2 + (yy - 0.45 * lines) ** 2 < (0.1 * lines) ** 2] = 3
    classes[(np.abs(yy - (0.3 * xx + 0.55 * lines)) < 2.5) & (classes == 2)] = 4
    classes[classes == 0] = 1
    names = ["unclassified", "tray", "tissue", "lesion", "vessel"]
    colors = [(0, 0, 0), (200, 200, 200), (230, 150, 130), (150, 40, 160), (200, 20, 20)]
    reflectance = np.stack([spectra[names[c]] for c in range(1, 5)])[classes - 1].astype(np.float32)
    reflectance *= rng.normal(1.0, 0.01, size=reflectance.shape).astype(np.float32)
    # lamp x sensor response: vignetting across samples, a smooth spectral shape
    response = (
        3000.0
        * (1 - 0.35 * ((np.arange(samples) - samples / 2) / samples) ** 2)[:, None]
        * (0.6 + 0.4 * np.exp(-0.5 * ((wl - 700) / 180) ** 2))
    )
    black = 100.0 + rng.normal(0, 2, size=(1, samples, bands))
    lamp = np.linspace(1.0, 0.9, lines)[:, None, None]  # dims during the scan
    raw = black + reflectance * response * lamp + rng.normal(0, 6, size=reflectance.shape)
    white = black + response * lamp[0]
    white_after = black + response * lamp[-1]
    u16 = lambda a: np.clip(np.rint(a), 0, 65535).astype(np.uint16)  # noqa: E731
    return SyntheticScan(
        raw=u16(raw),
        reflectance=reflectance,
        white=u16(white),
        white_after=u16(white_after),
        black=u16(black),
        classes=classes,
        class_names=names,
        class_colors=colors,
        spectra=spectra,
        wavelengths=wl,
    )


def run(ctx) -> None:
    from .calibrate import calibrate
    from .container import open_hsi, write_hsi
    from .labels import Box, Labels
    from .load import load_hyperspectral
    from .nodes import load_into_scene, spectrum_plot

    progress = ctx.progress or (lambda f, m="": None)
    folder = ctx.outdir / JOB
    folder.mkdir(parents=True, exist_ok=True)
    progress(0.0, "hsi: generating a push-broom scan")
    scan = synthetic_scan()
    lines, samples, _ = scan.raw.shape
    ys, xs = np.nonzero(scan.classes == 3)
    box = Box("lesion", int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
    labels = Labels(scan.classes, scan.class_names, scan.class_colors, {"lesion": scan.classes == 3}, [box])
    t0 = time.perf_counter()
    path = folder / "scan.hsi"
    procedures = [f"crop:{{8:{samples - 9}, 4:{lines - 5}, 0:{len(scan.wavelengths) - 1}}}", "rotate:clockwise"]
    refs = {
        "white": {"acquisition time": "2024-05-01T10:00:00"},
        "white_after": {"acquisition time": "2024-05-01T10:02:00"},
    }
    write_hsi(
        path,
        scan.raw,
        {"description": "SlicerImgSuite demo: synthetic tissue scan", "sensor type": "synthetic push-broom"},
        white=scan.white,
        black=scan.black,
        white_after=scan.white_after,
        reference_headers=refs,
        labels=labels,
        wavelength=np.round(scan.wavelengths, 3),
        acquisition_time=["2024-05-01T10:00:00", "2024-05-01T10:02:00"],  # scan start, end
        read_procedures=procedures,
        pixel_size=["0.2", "0.2", "units=mm"],
        progress=lambda f, m="": progress(0.4 * f, f"hsi: {m}"),
    )
    write_seconds = time.perf_counter() - t0
    progress(0.4, "hsi: reading back and calibrating")
    t0 = time.perf_counter()
    with open_hsi(path) as hsi:
        exact = np.array_equal(hsi.cube, scan.raw)
        members = hsi.names
    calibrated = load_hyperspectral(path, calibrate=True)
    read_seconds = time.perf_counter() - t0
    naive = calibrate(scan.raw, scan.white, scan.black)  # before-white only: ignores the lamp drift
    err_interp = float(np.abs(calibrated.cube - scan.reflectance).mean())
    err_naive = float(np.abs(naive - scan.reflectance).mean())
    shown = load_hyperspectral(path, calibrate=True, apply_procedures=True)

    progress(0.7, "hsi: figures and scene")
    rgb_png, spectra_png = _figures(ctx, scan, calibrated, shown, box)
    nodes = load_into_scene(ctx.scene, path, name="HSI scan", calibrate=True, apply_procedures=False)
    center = (scan.raw.shape[1] * 0.6 * 0.2, scan.raw.shape[0] * 0.45 * 0.2, 0.0)
    spectrum_plot(ctx.scene, nodes["volume"], (-center[0], -center[1], 0.0), "HSI lesion spectrum")
    ctx.report.section(
        "Hyperspectral .hsi container",
        f"A synthetic push-broom scan ({lines} lines x {samples} samples x {len(scan.wavelengths)} bands, uint16) with "
        "white/black references (the lamp dims 10 % during the scan, so a white is taken before and after), a "
        "classification, a lesion mask, a bounding box and read procedures, written as an uncompressed ZIP and read "
        "back memory-mapped straight out of it.\n\n"
        f"Byte-exact read back: {exact}. Members: {', '.join(members)}.",
        images=[
            (rgb_png, "raw RGB, calibrated and procedure-applied RGB, classification"),
            (spectra_png, "true vs measured mean reflectance per class"),
        ],
        table=(
            ["quantity", "value"],
            [
                ["write .hsi (s)", round(write_seconds, 3)],
                ["open + calibrate (s)", round(read_seconds, 3)],
                ["mean |reflectance error|, white interpolated line by line", err_interp],
                ["mean |reflectance error|, white before only", err_naive],
                [
                    "segments in Slicer scene",
                    0
                    if nodes["segmentation"] is None
                    else nodes["segmentation"].GetSegmentation().GetNumberOfSegments(),
                ],
                ["ROIs in Slicer scene", len(nodes["rois"])],
            ],
        ),
    )
    progress(1.0, "hsi: done")


def _figures(ctx, scan, calibrated, shown, box):
    """The RGB/classification panel and the spectra plot; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .container import rgb_composite

    raw_rgb = rgb_composite(scan.raw, calibrated.header)
    cal_rgb = rgb_composite(shown.cube, shown.header)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    axes[0].imshow(raw_rgb)
    axes[0].set_title("raw counts (RGB 640/550/460 nm)")
    axes[0].add_patch(plt.Rectangle((box.left - 0.5, box.top - 0.5), box.width, box.height, fill=False, ec="y"))
    axes[1].imshow(cal_rgb)
    axes[1].set_title("reflectance, after crop + rotate:clockwise")
    lut = np.array(scan.class_colors, np.uint8)
    axes[2].imshow(lut[shown.labels.classification])
    axes[2].set_title("classification (follows the read procedures)")
    for a in axes:
        a.axis("off")
    fig.tight_layout()
    rgb_png = ctx.report.figure_path(JOB, "rgb.png")
    fig.savefig(rgb_png, dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for value, name in enumerate(scan.class_names[1:], 1):
        mask = scan.classes == value
        color = np.array(scan.class_colors[value]) / 255
        ax.plot(scan.wavelengths, scan.spectra[name], color=color, lw=2, alpha=0.5, label=f"{name} truth")
        ax.plot(scan.wavelengths, calibrated.cube[mask].mean(axis=0), "--", color=color, lw=1, label=f"{name} measured")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("reflectance")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    spectra_png = ctx.report.figure_path(JOB, "spectra.png")
    fig.savefig(spectra_png, dpi=90)
    plt.close(fig)

    return rgb_png, spectra_png
