"""Contour review: compare two structure sets, keep a review status per structure, export what was approved.

One logic layer for the CLI (``imgsuite compare-structures``), the ContourReview Slicer module and the
browser review (``imgsuite review``). Stable API (names below do not change):

``review.compare``
    ``compare_structure_sets(reference, test, *, referenced_ct=None, tolerance_mm=2.0, name_map=None,
    progress=None) -> Comparison``. Inputs: RTSTRUCT paths (file or folder), ``.seg.nrrd`` paths, read
    ``StructureSet`` objects, or mappings name -> SimpleITK mask (already rasterized). ``Comparison.structures``
    is a list of dicts ``{"reference", "test", "dice", "jaccard", "volume_ref_cc", "volume_test_cc",
    "volume_diff_pct", "hd", "hd95", "msd", "surface_dice", "apl", "centroid_shift_mm"}``;
    ``.unmatched_reference``, ``.unmatched_test``, ``.to_json()``, ``.to_dict()``, ``.to_csv()``;
    ``.reference_shapes`` / ``.test_shapes`` (name -> ``metrics.Shape``) and ``.grid`` (SimpleITK image) for
    pictures and views. Name matching: ``match_names(ref_names, test_names, name_map) -> (pairs,
    unmatched_ref, unmatched_test)``, ``canonical_name(name)``, ``parse_name_map(["A=B", ...])``; the one
    synonym table is ``compare.SYNONYMS``.
``review.metrics``
    ``METRICS`` (the metric keys, in table order), ``Shape``, ``Surface``, ``structure_metrics(ref, test,
    spacing, tolerance_mm)``, ``surface_metrics``, ``overlap_metrics``, ``added_path_length``,
    ``surface_of(shape, lo, hi, spacing)``; the module docstring defines every metric and the end caps.
``review.sources``
    ``load_structure_set(source)``, ``read_seg_nrrd(path)``, ``shapes_of(source, reference_image)``.
``review.state``
    ``STATUSES = ("unreviewed", "approved", "needs-edit", "rejected")``; ``ReviewState(names)`` with
    ``set_status(name, status, *, reviewer, comment="")``, ``status(name)``, ``[name]`` ->
    ``StructureReview(status, comment, reviewer, time, history=[Change(reviewer, time, from_status,
    to_status, comment)])``, ``all_approved(names=None)``, ``counts()``, ``save(path)`` (atomic JSON),
    ``ReviewState.load(path)``, ``to_dict()/from_dict()``; ``to_segment_tags(state, segmentation_node)``,
    ``from_segment_tags(segmentation_node)`` (tags ``ImgSuiteReview.status|comment|reviewer|time|history``).
``review.export``
    ``export_reviewed_rtstruct(path, referenced_ct, structures, state, *, approved_only=False,
    reviewer=None, label="REVIEWED") -> pydicom.Dataset`` (new SeriesInstanceUID, same Frame of Reference and
    referenced CT, Approval Module, per-ROI status in RTROIObservationsSequence);
    ``export_seg(path, referenced_ct, structures, *, state=None, approved_only=False) -> pydicom.Dataset`` and
    ``import_seg(path, referenced_ct=None) -> dict name -> (SimpleITK mask, colour)`` (DICOM SEG via
    highdicom); ``structures`` is an RTSTRUCT path / StructureSet or a mapping name -> mask on the CT grid.
``review.job``
    ``compare_structures(reference, test, *, output_json=None, output_csv=None, report=None, referenced_ct=None,
    dose=None, tolerance_mm=2.0, name_map=None, progress=None) -> Comparison`` (all outputs written together).
``review.table``
    ``COLUMNS``, ``COLUMN_TITLES``, ``table_rows(comparison, state=None, worst_first=True, reviewed="test")``
    (statuses are keyed by the reviewed set's names, the test's by default), ``format_value(key, value)``,
    ``view_focus(shape, grid) -> ViewFocus`` (centroid and bounds, LPS/RAS, ``field_of_view_mm()``).
``review.report``
    ``write_review_report(comparison, path, *, ct=None, state=None, dose=None)`` (one HTML file, pictures
    embedded), ``thumbnails(ref_shape, test_shape, grid, ct)`` and ``dvh_pair(...)`` (PIL images),
    ``site_window(name)``.
``review.nodes`` (MRML)
    ``review_state_of(segmentation_node)``, ``set_segment_status(node, name, status, *, reviewer, comment="")``,
    ``EditWatcher(node)`` (approved -> needs-edit on a content edit), ``compare_segmentation_nodes(ref_node,
    test_node, volume_node=None, *, tolerance_mm, name_map, progress)``, ``show_structure(ref_node, test_node,
    ref_name, test_name)``, ``centre_slice_views(slice_nodes, focus)``, ``segment_names(node)``,
    ``structure_dvh_nodes(ref_node, test_node, ref_segment, test_segment, dose_node, *, grid=None,
    table_node=None, chart_node=None) -> (table node, plot chart node)`` (DVH pair of one structure).
``review.dicom_plugin`` (MRML)
    ``examine_files(file_lists, find_series=None) -> [RTLoadable]``, ``examine_folder(folder)``,
    ``load_loadable(scene, loadable)``, ``load_dose(scene, path)``, ``dose_color_table(scene)``.
``review.export`` (also)
    ``review_state_from_rtstruct(path)``, ``seg_statuses(path)``, ``sidecar_path(path)``.
``review.commands``
    ``imgsuite compare-structures``.
"""
