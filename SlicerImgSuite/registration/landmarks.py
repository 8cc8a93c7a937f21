"""Landmarks: read/write (Slicer .mrk.json/.fcsv through the MRML adapters, plastimatch text), RBF landmark
warps (tps, gauss, wendland) and mapping points through transforms.

Points are LPS mm everywhere in this module; only :mod:`SlicerImgSuite.mrml` converts to RAS.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImgSuiteError, check_number
from ..io import atomic_path


def _is_markups(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".json", ".fcsv"))


def read_landmarks(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """(N, 3) LPS points (mm) and labels from ``.mrk.json``, ``.fcsv`` or plastimatch text (``x y z`` per line, LPS).

    A ``.mrk.json`` in micrometres (``coordinateUnits`` ``um``) is converted to mm; other units are refused.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "lm.txt"
    >>> _ = p.write_text("# fixed\\n1 2 3\\n4,5,6\\n")
    >>> read_landmarks(p)[0].tolist()
    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    """
    path = Path(path)
    if not path.is_file():
        raise ImgSuiteError("no such landmark file", path)
    if _is_markups(path):
        from ..mrml import markups
        from ..mrml.scene import new_scene

        scene = new_scene()
        node = markups.read_markups(scene, path)
        points, labels = markups.points_from_fiducial_node(node)
        scene.scene.Clear(1)
        if not len(points):
            raise ImgSuiteError("no landmarks in the file", path)
        return np.asarray(points, float).reshape(-1, 3), list(labels)
    points, labels = [], []
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.replace(",", " ").split()
        try:
            # "x y z" or "label x y z"
            values = [float(w) for w in words[-3:]]
        except ValueError:
            raise ImgSuiteError(f"line {number}: expected 'x y z' (mm), got {raw.strip()!r}", path) from None
        if len(words) < 3 or not all(np.isfinite(values)) or max(map(abs, values)) > 1e6:
            raise ImgSuiteError(f"line {number}: expected 'x y z' (finite mm), got {raw.strip()[:80]!r}", path)
        if len(words) > 4 or (len(words) == 4 and _is_number(words[0])):
            # "x y z 1" was read as (y, z, 1) labelled "x"; plastimatch reads the first three numbers
            raise ImgSuiteError(f"line {number}: {len(words)} fields; expected 'x y z' or 'label x y z' (a label "
                                f"that is not a number), got {raw.strip()[:80]!r}", path)  # fmt: skip
        points.append(values)
        labels.append(words[0] if len(words) > 3 else f"P-{len(points)}")
    if not points:
        raise ImgSuiteError("no landmarks in the file", path)
    return np.array(points, float), labels


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def write_landmarks(points, path: str | os.PathLike, labels=None) -> None:
    """Write LPS points in the format the suffix names (``.mrk.json``, ``.fcsv`` or text), atomically."""
    path = Path(path)
    points = np.asarray(points, float).reshape(-1, 3)
    labels = list(labels) if labels is not None else [f"P-{i + 1}" for i in range(len(points))]
    if _is_markups(path):
        from ..mrml import markups
        from ..mrml.scene import new_scene

        scene = new_scene()
        node = markups.fiducial_node_from_points(scene, points, labels, name=path.name.split(".")[0])
        markups.write_markups(node, path)
        scene.scene.Clear(1)
        return
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{p[0]:.6f} {p[1]:.6f} {p[2]:.6f}\n" for p in points))


def check_pairs(
    fixed, moving, fixed_path=None, moving_path=None, fixed_labels=None, moving_labels=None
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks pair by their order in the two files (as plastimatch); checked as pairs."""
    fixed = np.asarray(fixed, float).reshape(-1, 3)
    moving = np.asarray(moving, float).reshape(-1, 3)
    if len(fixed) != len(moving):
        raise ImgSuiteError(
            f"landmark counts differ: {len(fixed)} fixed ({fixed_path}) and {len(moving)} moving", moving_path
        )
    if len(fixed) == 0:
        raise ImgSuiteError("no landmark pairs", fixed_path)
    _refuse_labels_out_of_order(fixed_labels, moving_labels, moving_path)
    _refuse_one_point_to_two(fixed, moving, fixed_path)
    return fixed, moving


def _refuse_labels_out_of_order(fixed_labels, moving_labels, moving_path=None) -> None:
    """The same distinct labels in both files in another order: pairing by order joined e.g. fixed "carina" to
    moving "apex", and the warp went through with it."""
    if fixed_labels is None or moving_labels is None or list(fixed_labels) == list(moving_labels):
        return
    if len(set(fixed_labels)) != len(fixed_labels) or set(fixed_labels) != set(moving_labels):
        return  # labels that do not name the points (P-1 ..., or two different schemes): the order pairs them
    i = next(k for k, (f, m) in enumerate(zip(fixed_labels, moving_labels)) if f != m)
    raise ImgSuiteError(
        f"landmark {i + 1} is {fixed_labels[i]!r} in the fixed file but {moving_labels[i]!r} here: both files "
        "have the same labels in another order, and landmarks pair by order; put them in the fixed file's order",
        moving_path,
    )


def _refuse_one_point_to_two(fixed: np.ndarray, moving: np.ndarray, fixed_path=None) -> None:
    """Two fixed landmarks at one place (within 0.01 mm) whose moving landmarks differ: no warp can take a
    point to two places, and the fit silently met neither (one pair 2 mm off each, say)."""
    from scipy.spatial import cKDTree

    for i, j in sorted(cKDTree(fixed).query_pairs(0.01)):
        gap = float(np.linalg.norm(moving[i] - moving[j]))
        if gap > 0.01:
            where = ", ".join(f"{c:g}" for c in fixed[i])
            raise ImgSuiteError(f"fixed landmarks {i + 1} and {j + 1} are both at ({where}) but their moving landmarks "
                                f"are {gap:.3g} mm apart: one point cannot go to two places", fixed_path)  # fmt: skip


def _kernel(r: np.ndarray, algorithm: str, radius: float) -> np.ndarray:
    if algorithm == "tps":
        return r  # the 3D biharmonic kernel
    if algorithm == "gauss":
        return np.exp(-((r / radius) ** 2))
    if algorithm == "wendland":
        q = np.clip(r / radius, 0.0, 1.0)
        return (1 - q) ** 4 * (4 * q + 1)
    raise ImgSuiteError(f"unknown landmark algorithm {algorithm!r}; use tps, gauss or wendland")


class LandmarkWarp:
    """A radial-basis-function transform with ``T(fixed_i) ≈ moving_i`` (fixed -> moving, as ITK).

    Parameters
    ----------
    algorithm : {"tps", "gauss", "wendland"}
        Thin-plate spline (with an affine part), Gaussian or compactly supported Wendland RBFs
        (the last two fade to no displacement far from the landmarks, as in plastimatch).
    radius : float
        RBF width in mm (gauss, wendland).
    stiffness : float
        0 interpolates the landmarks exactly; larger values smooth (regularised least squares).

    Examples
    --------
    >>> w = LandmarkWarp([[0, 0, 0], [50, 0, 0]], [[2, 0, 0], [50, 0, 0]], "gauss", radius=20)
    >>> np.round(w.displacement([[0, 0, 0]]), 3).tolist()
    [[2.0, 0.0, 0.0]]
    """

    def __init__(self, fixed, moving, algorithm: str = "gauss", radius: float = 50.0, stiffness: float = 0.0):
        self.fixed, moving = check_pairs(fixed, moving)
        self.algorithm, self.radius = algorithm, float(radius)
        check_number(radius, "--radius", positive=True)
        check_number(stiffness, "--stiffness", non_negative=True)
        d = moving - self.fixed
        n = len(self.fixed)
        k = _kernel(np.linalg.norm(self.fixed[:, None] - self.fixed[None], axis=-1), algorithm, self.radius)
        k = k + float(stiffness) * np.eye(n)
        if algorithm == "tps":
            p = np.hstack([np.ones((n, 1)), self.fixed])
            a = np.block([[k, p], [p.T, np.zeros((4, 4))]])
            rhs = np.vstack([d, np.zeros((4, 3))])
        else:
            a, rhs = k, d
        try:
            sol = np.linalg.lstsq(a, rhs, rcond=None)[0]
        except np.linalg.LinAlgError as exc:
            raise ImgSuiteError(f"cannot solve the landmark warp: {exc}") from None
        self.weights = sol[:n]
        self.affine = sol[n:] if algorithm == "tps" else None

    def displacement(self, points, chunk: int = 200_000) -> np.ndarray:
        """Displacement (N, 3) mm at LPS points."""
        points = np.asarray(points, float).reshape(-1, 3)
        out = np.empty_like(points)
        for s in range(0, len(points), chunk):
            p = points[s : s + chunk]
            r = np.linalg.norm(p[:, None] - self.fixed[None], axis=-1)
            v = _kernel(r, self.algorithm, self.radius) @ self.weights
            if self.affine is not None:
                v += np.hstack([np.ones((len(p), 1)), p]) @ self.affine
            out[s : s + chunk] = v
        return out

    def field(self, reference: sitk.Image) -> sitk.Image:
        """The displacement field on ``reference``'s grid (float64 vectors)."""
        from .vf import _physical_points

        pts = _physical_points(reference)
        disp = self.displacement(pts.reshape(-1, 3)).reshape(pts.shape)
        image = sitk.GetImageFromArray(disp, isVector=True)
        image.CopyInformation(reference)
        return image


def transform_points(transform: sitk.Transform, points) -> np.ndarray:
    """Map LPS points through ``transform`` (fixed -> moving)."""
    return np.array([transform.TransformPoint([float(v) for v in p]) for p in np.asarray(points).reshape(-1, 3)])


def invert_points(transform: sitk.Transform, points, iterations: int = 50, tolerance: float = 1e-3) -> np.ndarray:
    """Moving-space points mapped back into fixed space: solve ``T(x) = m`` by fixed-point iteration.

    This is how moving landmarks (and RT structures given as points) follow the warped image.
    """
    targets = np.asarray(points, float).reshape(-1, 3)
    x = targets.copy()
    for _ in range(iterations):
        err = transform_points(transform, x) - targets
        x -= err
        if np.max(np.abs(err), initial=0.0) < tolerance:
            break
    return x


class LandmarkTransform:
    """Duck-typed point transform (``TransformPoint``) for a :class:`LandmarkWarp`, exact at any point."""

    def __init__(self, warp: LandmarkWarp):
        self.warp = warp

    def TransformPoint(self, point):  # noqa: N802 (SimpleITK's spelling)
        p = np.asarray(point, float).reshape(1, 3)
        return tuple((p + self.warp.displacement(p))[0])
