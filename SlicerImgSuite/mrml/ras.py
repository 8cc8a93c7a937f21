"""The one place that converts between LPS (DICOM, ITK, files) and RAS (MRML nodes).

The conversion is ``diag(-1, -1, 1, 1)``: it flips the first two axes and is its own inverse.
"""

from __future__ import annotations

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
RAS_TO_LPS = LPS_TO_RAS  # the flip is its own inverse


def points_lps_to_ras(points) -> np.ndarray:
    """(N, 3) LPS points -> RAS.

    Examples
    --------
    >>> points_lps_to_ras([[1.0, 2.0, 3.0]]).tolist()
    [[-1.0, -2.0, 3.0]]
    """
    return np.asarray(points, dtype=float).reshape(-1, 3) * LPS_TO_RAS.diagonal()[:3]


points_ras_to_lps = points_lps_to_ras


def matrix_lps_to_ras(matrix_lps: np.ndarray) -> np.ndarray:
    """A 4x4 mapping LPS points to LPS points, rewritten to map RAS points to RAS points."""
    return LPS_TO_RAS @ np.asarray(matrix_lps, dtype=float) @ RAS_TO_LPS


matrix_ras_to_lps = matrix_lps_to_ras


def ijk_to_ras(image) -> np.ndarray:
    """The 4x4 IJK->RAS matrix of a ``SimpleITK.Image``'s grid (for a volume node)."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    m = np.eye(4)
    m[:3, :3] = direction @ np.diag(image.GetSpacing())
    m[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ m


def grid_from_ijk_to_ras(matrix_ras: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    """Origin, spacing and direction (LPS) from a 4x4 IJK->RAS matrix."""
    m = RAS_TO_LPS @ np.asarray(matrix_ras, dtype=float)
    spacing = np.linalg.norm(m[:3, :3], axis=0)
    direction = m[:3, :3] / spacing
    return list(m[:3, 3]), list(spacing), list(direction.ravel())
