"""Cohorts: a DICOM index and one job run over many cases on Dask (a laptop or a cluster).

``imgsuite index`` builds the index (:func:`~SlicerImgSuite.cohort.index.build_index`);
``imgsuite cohort JOB`` runs a job per case (:func:`~SlicerImgSuite.cohort.runner.run_cohort`) on the
client of :func:`~SlicerImgSuite.cohort.cluster.cohort_client`. See ``docs/cohorts.md``.
"""
