"""Demo step: a second, perturbed structure set for the phantom, compared, reviewed and exported."""

from __future__ import annotations

import numpy as np

ORDER = 25  # after rtstruct (its segmentation node is the reference)
SHIFTS_MM = {"HEART": (0.0, 6.4, 0.0), "LUNG_L": (3.2, 0.0, 0.0), "PTV": (0.0, 0.0, 3.0)}  # whole voxels
GROWN = ("GTV", 3.0)  # structure grown by mm
MISSING = "SPINAL_CORD"
RENAMED = {"BODY": "External", "HEART": "Heart", "LUNG_L": "Lung_L"}  # matched by synonym / case


def perturbed_rois(structure_set, slice_z: list[float]) -> list[dict]:
    """The phantom's structures with some shifted, GTV grown by 3 mm, one missing and some renamed.

    Polygons are moved as they are (a z shift of one slice keeps them on CT planes); the grown GTV is the
    phantom's sphere with a radius 3 mm larger, contoured on the CT's slices.
    """
    from ..demo.phantom import _ANATOMY, GTV_CENTRE

    out = []
    for roi in structure_set.rois:
        if roi.name == MISSING or not roi.closed:
            continue
        contours = [c + np.array(SHIFTS_MM.get(roi.name, (0.0, 0.0, 0.0))) for c in roi.closed]
        if roi.name == GROWN[0]:
            radius = float(_ANATOMY["GTV"][1]["radius"]) + GROWN[1]
            contours = _sphere_contours(np.asarray(GTV_CENTRE, float), radius, slice_z)
        out.append({"name": RENAMED.get(roi.name, roi.name), "color": roi.color, "contours": contours})
    return out


def _sphere_contours(centre: np.ndarray, radius: float, slice_z: list[float], n: int = 96) -> list[np.ndarray]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    out = []
    for z in slice_z:
        h = z - centre[2]
        if abs(h) < radius:
            rho = float(np.sqrt(radius**2 - h**2))
            out.append(np.column_stack([centre[0] + rho * np.cos(t), centre[1] + rho * np.sin(t), np.full(n, z)]))
    return out


def review_statuses(comparison, state) -> None:
    """A demo reviewer's verdict: approve what agrees (surface Dice >= 0.95), send back the rest with a reason."""
    for row in comparison.structures:
        if row["surface_dice"] >= 0.95:
            state.set_status(row["test"], "approved", reviewer="Demo Reviewer")
        else:
            why = f"surface Dice {row['surface_dice']:.2f}, centroid moved {row['centroid_shift_mm']:.1f} mm"
            state.set_status(row["test"], "needs-edit", reviewer="Demo Reviewer", comment=why)


def run(ctx) -> None:
    from ..mrml.segmentations import segmentation_node_from_masks
    from ..rtstruct import rasterize, read_rtstruct
    from ..rtstruct.rasterize import Grid
    from ..rtstruct.write import write_rtstruct
    from .compare import compare_structure_sets
    from .export import export_reviewed_rtstruct, export_seg, sidecar_path
    from .report import thumbnails
    from .state import ReviewState, to_segment_tags
    from .table import COLUMN_TITLES, COLUMNS, format_value, table_rows

    p = ctx.phantom
    folder = ctx.outdir / "review"
    folder.mkdir(parents=True, exist_ok=True)
    ctx.progress(0.05, "review: writing the perturbed structure set")
    slice_z = [p.ct.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(p.ct.GetSize()[2])]
    rs_test = folder / "RS_test.dcm"
    write_rtstruct(rs_test, p.ct_dir, perturbed_rois(read_rtstruct(p.rtstruct), slice_z), label="PERTURBED")
    test_set = read_rtstruct(rs_test)
    grid = Grid.of(p.ct)
    test_masks = {m.roi.name: m.image(grid) for m in rasterize(test_set, p.ct)}
    colors = {r.name: r.color for r in test_set.rois}
    ctx.progress(0.2, "review: comparing")
    c = compare_structure_sets(p.rtstruct, rs_test, referenced_ct=p.ct_dir)
    state = ReviewState(list(test_masks))
    review_statuses(c, state)
    (folder / "comparison.json").write_text(c.to_json(), encoding="utf-8")
    ctx.progress(0.5, "review: exporting")
    export_reviewed_rtstruct(folder / "RS_reviewed.dcm", p.ct_dir, rs_test, state)
    export_seg(folder / "SEG_reviewed.dcm", p.ct_dir, rs_test, state=state)
    state.save(sidecar_path(folder / "RS_reviewed.dcm"))
    # the scene: the test set beside the reference, statuses on its segments
    node = segmentation_node_from_masks(
        ctx.scene, test_masks, colors, name="Review: perturbed structures", reference=p.ct
    )
    to_segment_tags(state, node)
    ctx.progress(0.7, "review: thumbnails")
    rows = table_rows(c, state)
    images = []
    for row in rows:
        path = ctx.report.figure_path("review", f"{row['reference']}.png")
        thumbnails(c.reference_shapes[row["reference"]], c.test_shapes[row["test"]], c.grid, p.ct).save(path)
        images.append((path, f"{row['reference']} (solid) vs {row['test']} (dashed): axial, coronal, sagittal"))
    ctx.report.section(
        "Contour comparison and review",
        "A second structure set for the phantom (HEART moved 6.4 mm, LUNG_L 3.2 mm, PTV 3 mm; GTV grown by 3 mm; "
        "SPINAL_CORD missing; BODY, HEART and LUNG_L renamed External, Heart, Lung_L) compared with the original "
        "(imgsuite compare-structures: names matched by TG-263 synonyms; surfaces at sub-voxel precision; "
        f"tolerance {c.tolerance_mm:g} mm), worst first. Unmatched reference structures: "
        f"{', '.join(c.unmatched_reference) or 'none'}. A demo reviewer approved the structures with surface Dice "
        "≥ 0.95 and sent back the rest; the reviewed RTSTRUCT (Approval Module), DICOM SEG and review JSON are in "
        "review/, and the scene holds the perturbed set with its review tags.",
        images=images,
        table=(
            [COLUMN_TITLES[k] for k in COLUMNS],
            [[format_value(k, row.get(k)) for k in COLUMNS] for row in rows],
        ),
    )
    ctx.progress(1.0, "review: done")
