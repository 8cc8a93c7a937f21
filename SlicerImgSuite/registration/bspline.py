"""A fast cubic B-spline registration stage (mean squared error, L-BFGS-B).

Why this is fast: the B-spline field is a tensor product, so evaluating it on a voxel lattice and
its adjoint (the analytic MSE gradient pulled back onto the control points) are three small dense
matrix products per component (BLAS), not a per-voxel loop over 64 control points. The moving
image and its gradient are sampled once per evaluation, the finest lattice is sub-sampled (stride 2
above ~2 M voxels), and the total transform ``L(x + u(x))`` keeps the previous linear stages exact
(no re-interpolated intermediate image). The result is an ITK ``BSplineTransform``, so SimpleITK,
Slicer and plastimatch-style tools read it.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import optimize

from ..progress import ProgressCallback, no_progress

MAX_SAMPLES = 2_000_000
FACE_STIFFNESS = 1.0  # see _support_weights: 0 turns the hold on poorly sampled control points off


def cubic_bspline(x: np.ndarray) -> np.ndarray:
    """The centred cubic B-spline kernel B3(x) (support [-2, 2])."""
    a = np.abs(x)
    return np.where(a < 1, 2.0 / 3.0 - a * a + 0.5 * a**3, np.where(a < 2, (2.0 - a) ** 3 / 6.0, 0.0))


@dataclass
class ControlGrid:
    """A control-point grid along the fixed image axes (ITK BSplineTransform conventions)."""

    origin: np.ndarray  # physical point of the transform domain origin (LPS)
    direction: np.ndarray  # 3x3, columns = fixed axes
    spacing: np.ndarray  # control point spacing, mm (x, y, z)
    mesh: np.ndarray  # mesh size (regions) per axis; control points = mesh + 3

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return tuple(int(m) + 3 for m in self.mesh[::-1])

    @classmethod
    def covering(cls, image: sitk.Image, grid_spacing) -> ControlGrid:
        """The grid with ``grid_spacing`` mm that covers ``image``, centred on it."""
        size = np.array(image.GetSize(), float)
        spacing = np.array(image.GetSpacing(), float)
        direction = np.array(image.GetDirection(), float).reshape(3, 3)
        extent = np.maximum((size - 1) * spacing, 1e-6)
        g = np.asarray(grid_spacing, float)
        mesh = np.maximum(1, np.ceil(extent / g - 1e-6)).astype(int)
        start = -(mesh * g - extent) / 2.0  # along fixed axes, relative to the first voxel centre
        origin = np.array(image.GetOrigin(), float) + direction @ start
        return cls(origin, direction, g, mesh)

    def basis(self, axis: int, positions: np.ndarray) -> np.ndarray:
        """Dense basis matrix (len(positions) x control points) along fixed axis ``axis``.

        ``positions`` are mm along that axis, relative to the domain origin.
        """
        t = positions / self.spacing[axis] + 1.0  # coefficient index units; index j sits at (j - 1) * spacing
        return cubic_bspline(t[:, None] - np.arange(self.mesh[axis] + 3)[None, :]).astype(np.float32)

    def to_sitk(self, coefficients: np.ndarray) -> sitk.BSplineTransform:
        """An ITK BSplineTransform from coefficients shaped (3, Kz, Ky, Kx) (LPS displacement, mm)."""
        t = sitk.BSplineTransform(3, 3)
        t.SetTransformDomainOrigin(self.origin.tolist())
        t.SetTransformDomainDirection(self.direction.ravel().tolist())
        t.SetTransformDomainMeshSize([int(m) for m in self.mesh])
        t.SetTransformDomainPhysicalDimensions((self.mesh * self.spacing).tolist())
        t.SetParameters(np.asarray(coefficients, float).ravel().tolist())
        return t

    @classmethod
    def from_sitk(cls, t: sitk.BSplineTransform) -> tuple[ControlGrid, np.ndarray]:
        mesh = np.array(t.GetTransformDomainMeshSize(), int)
        dims = np.array(t.GetTransformDomainPhysicalDimensions(), float)
        grid = cls(
            np.array(t.GetTransformDomainOrigin(), float),
            np.array(t.GetTransformDomainDirection(), float).reshape(3, 3),
            dims / mesh,
            mesh,
        )
        coef = np.array(t.GetParameters(), float).reshape((3, *grid.shape_zyx))
        return grid, coef


def tensor_apply(coef: np.ndarray, bz: np.ndarray, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    """Evaluate one component: ``coef`` (Kz, Ky, Kx) -> (Nz, Ny, Nx) with three matrix products."""
    kz, ky, _ = coef.shape
    t = coef @ bx.T  # (Kz, Ky, Nx)
    t = np.matmul(by, t)  # (Kz, Ny, Nx)
    nz = bz.shape[0]
    return (bz @ t.reshape(kz, -1)).reshape(nz, by.shape[0], bx.shape[0])


def tensor_adjoint(values: np.ndarray, bz: np.ndarray, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`tensor_apply`: (Nz, Ny, Nx) -> (Kz, Ky, Kx)."""
    nz, ny, nx = values.shape
    t = (bz.T @ values.reshape(nz, -1)).reshape(bz.shape[1], ny, nx)
    t = np.matmul(by.T, t)  # (Kz, Ky, Nx)
    return t @ bx


def trilinear(volume: np.ndarray, ix: np.ndarray, iy: np.ndarray, iz: np.ndarray):
    """Trilinear value and its exact derivatives (index units) of ``volume`` (z, y, x) at continuous indices.

    One set of 8 gathers gives the value and the gradient of the same interpolant, so the cost and the
    gradient handed to L-BFGS are consistent. Points outside are clamped to the border.
    Returns ``(value, d/dix, d/diy, d/diz, inside)``.
    """
    nz, ny, nx = volume.shape
    inside = (ix > -0.5) & (ix < nx - 0.5) & (iy > -0.5) & (iy < ny - 0.5) & (iz > -0.5) & (iz < nz - 0.5)
    ix = np.clip(ix, 0, nx - 1.001)
    iy = np.clip(iy, 0, ny - 1.001)
    iz = np.clip(iz, 0, nz - 1.001)
    x0, y0, z0 = ix.astype(np.int32), iy.astype(np.int32), iz.astype(np.int32)
    fx, fy, fz = ix - x0, iy - y0, iz - z0
    flat = volume.ravel()
    base = (z0.astype(np.int64) * ny + y0) * nx + x0
    sy, sz = nx, nx * ny
    c000, c100 = flat[base], flat[base + 1]
    c010, c110 = flat[base + sy], flat[base + sy + 1]
    c001, c101 = flat[base + sz], flat[base + sz + 1]
    c011, c111 = flat[base + sz + sy], flat[base + sz + sy + 1]
    del base
    gx, gy = 1 - fx, 1 - fy
    # along x first
    e00 = c000 + fx * (c100 - c000)
    e10 = c010 + fx * (c110 - c010)
    e01 = c001 + fx * (c101 - c001)
    e11 = c011 + fx * (c111 - c011)
    e0 = e00 + fy * (e10 - e00)
    e1 = e01 + fy * (e11 - e01)
    value = e0 + fz * (e1 - e0)
    dz = e1 - e0
    dy = (1 - fz) * (e10 - e00) + fz * (e11 - e01)
    d00, d10, d01, d11 = c100 - c000, c110 - c010, c101 - c001, c111 - c011
    dx = (1 - fz) * (gy * d00 + fy * d10) + fz * (gy * d01 + fy * d11)
    del gx
    return value, dx, dy, dz, inside


def _diff2_penalty(coef: np.ndarray, spacing: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Sum of squared second differences of the coefficients along each axis (a bending-energy proxy).

    ``weight`` (Kz, Ky, Kx), optional, weighs each difference by its centre control point.
    """
    value = 0.0
    grad = np.zeros_like(coef)
    for axis, g in zip((1, 2, 3), spacing[::-1]):
        if coef.shape[axis] < 3:
            continue
        d = np.diff(coef, 2, axis=axis) / g**2
        wd = d
        if weight is not None:
            centre = [slice(None)] * 3
            centre[axis - 1] = slice(1, -1)
            wd = d * weight[tuple(centre)][None]
        value += float(np.sum(d * wd))
        grad += 2.0 * _diff_adjoint(_diff_adjoint(wd, axis), axis) / g**2
    return value, grad


def _support_weights(hessian: np.ndarray, spacing: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
    """Where the data leave control points undetermined, the weight of a bending penalty that holds them.

    ``hessian`` (Kz, Ky, Kx) is the Gauss-Newton curvature of the image term per control point (summed over
    components). Control points near the faces of the field of view, or whose voxels map outside the moving
    image, see few samples: their coefficients are set by the optimiser's path, not the data, and throw the
    field far off at the first and last slices. They get a second-difference penalty that grows as their
    curvature falls below that of well-sampled points (the 90th percentile), with a weight that makes a point
    without data as stiff as a well-sampled one; well-sampled points are not penalised.
    """
    positive = hessian[hessian > 0]
    if positive.size == 0:
        return 0.0, np.zeros_like(hessian)
    full = float(np.percentile(positive, 90))
    lack = np.clip(1.0 - hessian / full, 0.0, 1.0) ** 2
    stiffness = 2.0 * 6.0 * float(np.sum(1.0 / np.asarray(spacing, float) ** 4))  # penalty curvature per unit weight
    return scale * full / stiffness, lack.astype(np.float64)


def _diff_adjoint(y: np.ndarray, axis: int) -> np.ndarray:
    pad = [(0, 0)] * y.ndim
    pad[axis] = (1, 1)
    return -np.diff(np.pad(y, pad), axis=axis)


def _affine_parts(transform: sitk.Transform | None) -> tuple[np.ndarray, np.ndarray]:
    """Matrix A and offset t with transform(x) = A x + t (the transform must be linear)."""
    if transform is None:
        return np.eye(3), np.zeros(3)
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float) * 100.0
    mapped = np.array([transform.TransformPoint(p.tolist()) for p in pts])
    t = mapped[0]
    a = (mapped[1:] - t).T / 100.0
    return a, t


@dataclass
class BSplineOutcome:
    transform: sitk.BSplineTransform
    initial_metric: float
    final_metric: float
    iterations: int
    stop_reason: str
    history: list[float]
    hit_limit: bool


def bspline_stage(
    fixed: sitk.Image,
    moving: sitk.Image,
    grid_spacing,
    *,
    linear: sitk.Transform | None = None,
    initial: sitk.BSplineTransform | None = None,
    res=(1, 1, 1),
    max_its: int = 50,
    convergence_tol: float = 1e-5,
    grad_tol: float = 1e-6,
    regularization_lambda: float = 0.0,
    landmark_penalty: float = 0.0,
    fixed_landmarks: np.ndarray | None = None,
    moving_landmarks: np.ndarray | None = None,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    background_val: float | None = None,
    progress: ProgressCallback | None = None,
) -> BSplineOutcome:
    """Optimise a cubic B-spline ``u`` so that ``moving(L(x + u(x)))`` matches ``fixed`` (MSE).

    Parameters
    ----------
    fixed, moving : sitk.Image
        Scalar 3D images (physical geometry is honoured, including direction cosines).
    grid_spacing : 3 floats
        Control point spacing in mm.
    linear : sitk.Transform, optional
        The linear transform of earlier stages, applied after the B-spline (kept exact).
    initial : sitk.BSplineTransform, optional
        An earlier B-spline; it is refitted onto the new grid and optimised further.
    res : 3 ints
        Subsampling of both images (voxels averaged per axis), as plastimatch's ``res``.
    regularization_lambda : float
        Weight of a second-difference (bending) penalty on the coefficients; the image term is the MSE of
        intensities divided by the fixed image's standard deviation.
    landmark_penalty : float
        Weight of the mean squared landmark distance (mm^2) added to the cost.

    Returns
    -------
    BSplineOutcome
        ``.transform`` maps fixed points to moving points *before* ``linear``.
    """
    res = [int(r) for r in res]
    lvl_fixed = _shrink(sitk.Cast(fixed, sitk.sitkFloat32), res)
    lvl_moving = _shrink(sitk.Cast(moving, sitk.sitkFloat32), res)
    grid = ControlGrid.covering(fixed, grid_spacing)
    cost = _BSplineCost(
        grid,
        lvl_fixed,
        lvl_moving,
        linear=linear,
        fixed_mask=fixed_mask,
        moving_mask=moving_mask,
        background_val=background_val,
    )
    cost.regularization_lambda = regularization_lambda
    cost.set_landmarks(landmark_penalty, fixed_landmarks, moving_landmarks)
    cost.progress = progress or no_progress
    cost.max_its = max_its
    x0 = refit(initial, grid, cost.axes_mm).ravel() if initial is not None else np.zeros(int(np.prod(cost.shape)))

    with _single_blas_thread():
        result = optimize.minimize(  # a Cancelled raised by progress propagates out of here
            cost,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_its, "maxfun": 2 * max_its + 10, "ftol": convergence_tol, "gtol": grad_tol},
        )
        cost(result.x)  # the image term at the optimum
    cost.history.pop()
    s2 = cost.scale * cost.scale
    return BSplineOutcome(
        transform=grid.to_sitk(result.x.reshape(cost.shape)),
        initial_metric=cost.first * s2,
        final_metric=cost.value * s2,
        iterations=int(result.nit),
        stop_reason=str(result.message),
        history=[h * s2 for h in cost.history],
        hit_limit=bool(result.nit >= max_its or "LIMIT" in str(result.message).upper()),
    )


class _BSplineCost:
    """The L-BFGS-B objective of :func:`bspline_stage`: (cost, gradient) of the coefficients.

    The image term is the MSE of ``moving(L(p + u(p)))`` against ``fixed`` on a lattice of the
    level's voxel centres, divided by its value at the stage's start (so ``convergence_tol`` is
    relative); weakly supported control points get a bending hold (:func:`_support_weights`); the
    optional bending and landmark terms are added.
    """

    def __init__(self, grid, lvl_fixed, lvl_moving, linear, fixed_mask, moving_mask, background_val):
        self.grid = grid
        self.shape = (3, *grid.shape_zyx)
        self._sample_fixed(lvl_fixed, fixed_mask, background_val)
        self._map_moving(lvl_moving, linear, moving_mask)
        self.regularization_lambda, self.landmarks, self.support, self.norm = 0.0, None, None, None
        self.history: list[float] = []
        self.first = self.value = None
        self.progress, self.max_its = no_progress, 50

    def _sample_fixed(self, lvl_fixed, fixed_mask, background_val):
        """The lattice (every ``stride``-th level voxel centre, mm along the grid's axes) and its weights."""
        fixed_arr = sitk.GetArrayViewFromImage(lvl_fixed)
        self.scale = float(np.std(fixed_arr)) or 1.0  # intensities / scale
        size = np.array(lvl_fixed.GetSize())
        stride = 1 if np.prod(size) <= MAX_SAMPLES else 2
        grid = self.grid
        rel0 = grid.direction.T @ (np.array(lvl_fixed.GetOrigin()) - grid.origin)
        spacing = np.array(lvl_fixed.GetSpacing())
        self.axes_mm = [rel0[d] + np.arange(0, size[d], stride) * spacing[d] for d in range(3)]
        self.bx, self.by, self.bz = (grid.basis(d, self.axes_mm[d]) for d in range(3))
        self.f_sub = np.ascontiguousarray(fixed_arr[::stride, ::stride, ::stride], dtype=np.float32) / self.scale
        self.weight = np.ones(self.f_sub.shape, np.float32)
        if fixed_mask is not None:
            m = sitk.Resample(fixed_mask, lvl_fixed, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
            self.weight *= sitk.GetArrayViewFromImage(m)[::stride, ::stride, ::stride] > 0
        if background_val is not None:
            self.weight *= self.f_sub * self.scale > background_val

    def _map_moving(self, lvl_moving, linear, moving_mask):
        """Moving continuous index of L(p + u): ``idx = i0(p) + k_mat u`` at the lattice points p."""
        self.a_mat, self.a_off = _affine_parts(linear)
        m_dir = np.array(lvl_moving.GetDirection()).reshape(3, 3)
        m_inv = np.diag(1.0 / np.array(lvl_moving.GetSpacing())) @ m_dir.T
        m_org = np.array(lvl_moving.GetOrigin())
        self.k_mat = (m_inv @ self.a_mat).astype(np.float32)  # d(index)/d(u), index order x, y, z
        # p = grid.origin + D r on the lattice -> i0 = m_inv (A p + t - m_org)
        base = m_inv @ (self.a_mat @ self.grid.origin + self.a_off - m_org)
        lin = m_inv @ self.a_mat @ self.grid.direction  # index per mm along each fixed axis
        zz, yy, xx = np.meshgrid(self.axes_mm[2], self.axes_mm[1], self.axes_mm[0], indexing="ij")
        self.i0 = [(base[c] + lin[c, 0] * xx + lin[c, 1] * yy + lin[c, 2] * zz).astype(np.float32) for c in range(3)]
        self.mov_arr = sitk.GetArrayFromImage(lvl_moving) / np.float32(self.scale)
        self.moving_weight = None
        if moving_mask is not None:
            mm = sitk.Resample(moving_mask, lvl_moving, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
            self.moving_weight = (sitk.GetArrayFromImage(mm) > 0).astype(np.float32)

    def set_landmarks(self, penalty, fixed_landmarks, moving_landmarks):
        """Rows of the basis at each fixed landmark, for the landmark term (none when ``penalty`` is 0)."""
        self.landmark_penalty = float(penalty)
        if penalty <= 0 or fixed_landmarks is None or not len(fixed_landmarks):
            return
        grid, fixed = self.grid, np.asarray(fixed_landmarks, float)
        rel = (fixed - grid.origin) @ grid.direction
        rows = [grid.basis(d, rel[:, d]).astype(float) for d in range(3)]
        self.landmarks = (rows, fixed @ self.a_mat.T + self.a_off, np.asarray(moving_landmarks, float))

    def __call__(self, x: np.ndarray):
        value, grad = self._image_term(x)
        total = value / self.norm
        face_lambda, lack = self.support
        for weight, lack_weight in ((face_lambda, lack), (self.regularization_lambda, None)):
            if weight > 0:
                r, rg = _diff2_penalty(x.reshape(self.shape), self.grid.spacing, lack_weight)
                total += weight * r
                grad += weight * rg
        if self.landmarks is not None:
            total += self._landmark_term(x, grad)
        self.value = value
        self.first = value if self.first is None else self.first
        self.history.append(value)
        self.progress(min(len(self.history) / (1.5 * self.max_its), 0.99), f"B-spline MSE {value * self.scale**2:.4g}")
        return total, grad.ravel()

    def _image_term(self, x: np.ndarray):
        """(MSE, gradient of MSE / norm); the first call also sets ``norm`` and the support weights."""
        coef = x.reshape(self.shape).astype(np.float32)
        bz, by, bx, k = self.bz, self.by, self.bx, self.k_mat
        u = [tensor_apply(coef[c], bz, by, bx) for c in range(3)]
        idx = [self.i0[c] + k[c, 0] * u[0] + k[c, 1] * u[1] + k[c, 2] * u[2] for c in range(3)]
        warped, *g_idx, inside = trilinear(self.mov_arr, *idx)
        w = self.weight * inside
        if self.moving_weight is not None:
            w *= trilinear(self.moving_weight, *idx)[0] > 0.5
        del idx
        n = max(float(w.sum()), 1.0)
        diff = (warped - self.f_sub) * w
        value = float(np.dot(diff.ravel(), diff.ravel())) / n
        if self.norm is None:
            self.norm = value if value > 0 else 1.0
        n *= self.norm
        grad = np.empty(self.shape, np.float64)
        first = self.support is None
        hessian = np.zeros(self.shape[1:], np.float64) if first else None
        for c in range(3):
            dwdu = k[0, c] * g_idx[0] + k[1, c] * g_idx[1] + k[2, c] * g_idx[2]
            grad[c] = tensor_adjoint((2.0 / n) * diff * dwdu, bz, by, bx)
            if first:  # Gauss-Newton curvature per control point, at the stage's start
                hessian += tensor_adjoint((2.0 / n) * w * dwdu * dwdu, bz * bz, by * by, bx * bx)
        if first:
            self.support = _support_weights(hessian, self.grid.spacing, FACE_STIFFNESS)
        return value, grad

    def _landmark_term(self, x: np.ndarray, grad: np.ndarray) -> float:
        """Mean squared landmark distance times the penalty; adds its gradient to ``grad``."""
        (lbx, lby, lbz), fixed_mapped, target = self.landmarks
        xs = x.reshape(self.shape)
        u_l = np.stack([np.einsum("nk,nj,ni,kji->n", lbz, lby, lbx, xs[c]) for c in range(3)], 1)
        resid = fixed_mapped + u_l @ self.a_mat.T - target
        nl = len(resid)
        gl = (2.0 * self.landmark_penalty / nl) * resid @ self.a_mat  # d/du per landmark (n, 3)
        for c in range(3):
            grad[c] += np.einsum("n,nk,nj,ni->kji", gl[:, c], lbz, lby, lbx)
        return self.landmark_penalty * float(np.sum(resid**2)) / nl


def refit(transform: sitk.BSplineTransform, grid: ControlGrid, axes_mm=None) -> np.ndarray:
    """Coefficients on ``grid`` that best reproduce an earlier B-spline (least squares, per axis).

    Exact when the new grid refines the old one by an integer factor and covers the same domain.
    """
    old_grid, old_coef = ControlGrid.from_sitk(transform)
    if axes_mm is None:
        axes_mm = [np.arange(0, grid.mesh[d] * grid.spacing[d] + 1e-6, grid.spacing[d] / 4) for d in range(3)]
    # sample points: new-grid axes expressed along the old grid's axes (grids share directions here)
    shift = old_grid.direction.T @ (grid.origin - old_grid.origin)
    dense = [np.linspace(axes_mm[d][0], axes_mm[d][-1], max(4 * (grid.mesh[d] + 3), 8)) for d in range(3)]
    ob = [old_grid.basis(d, dense[d] + shift[d]) for d in range(3)]
    nb = [np.linalg.pinv(grid.basis(d, dense[d]).astype(float)).astype(np.float32) for d in range(3)]
    out = np.empty((3, *grid.shape_zyx))
    for c in range(3):
        u = tensor_apply(old_coef[c].astype(np.float32), ob[2], ob[1], ob[0])
        out[c] = tensor_apply(u, nb[2], nb[1], nb[0])
    return out


def _single_blas_thread():
    """The matrices are small: threaded BLAS only spins (badly so on a loaded machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _shrink(image: sitk.Image, res) -> sitk.Image:
    if all(r == 1 for r in res):
        return image
    return sitk.BinShrink(image, [int(r) for r in res])


def mesh_for_spacing(image: sitk.Image, spacing_mm) -> list[int]:
    """Mesh size (regions per axis) a control-point spacing gives over ``image``."""
    extent = (np.array(image.GetSize()) - 1) * np.array(image.GetSpacing())
    return [max(1, math.ceil(e / s - 1e-6)) for e, s in zip(extent, np.broadcast_to(spacing_mm, 3))]
