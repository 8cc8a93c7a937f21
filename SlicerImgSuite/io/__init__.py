"""Images, DICOM series and atomic writing."""

from .atomic import atomic_dir, atomic_path
from .dicom_series import SeriesInfo, read_dicom_series, scan_folder, series_files
from .images import OUTPUT_TYPES, cast_image, read_image, write_image

__all__ = [
    "OUTPUT_TYPES",
    "SeriesInfo",
    "atomic_dir",
    "atomic_path",
    "cast_image",
    "read_dicom_series",
    "read_image",
    "scan_folder",
    "series_files",
    "write_image",
]
