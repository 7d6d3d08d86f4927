"""Landmark motion prior of the renderer: thin-plate-spline warps from each reference to the target landmarks.

A documented deviation from Sec. III-D (the paper's flow estimator, Eq. 14, learns every motion field from
data). The target landmarks ``f_t`` and each reference's landmarks are known, so the dense backward warp that
carries reference ``i`` onto the target can be computed before any learning, as the Thin-Plate Spline Motion
Model (Zhao & Zhang, CVPR 2022) and Monkey-Net/FOMM derive motion from keypoints. The renderer's flow
estimator then learns a correction on top of it (zero at initialisation), and the fusion weights start from a
prior that favours the references whose mouth shape is closest to the target's, so an untrained renderer
already warps the best-matching references onto the target mouth.

Thin-plate spline (Bookstein 1989): for control points ``c_k`` (target landmarks) and values ``v_k``
(reference landmarks) it finds ``f(p) = a_0 + A p + sum_k w_k U(|p - c_k|)``, ``U(r) = r^2 log r^2``, with
``f(c_k) = v_k`` up to a small ``regularization`` (landmarks can nearly coincide, e.g. inner lips of a closed
mouth), and ``sum_k w_k = sum_k w_k c_k = 0``. It reproduces any affine map exactly.

Shapes::

    source_points  (M, K, 2)  landmarks of the image to sample from, crop-normalised [0, 1] (x, y);
                   or (M, R, K, 2): R images per target set, solved at once (grid and flow gain an R axis)
    target_points  (M, K, 2)  landmarks where that content should land, crop-normalised
    grid           (M, H, W, 2)  sampling grid for ``grid_sample(align_corners=False)``, in [-1, 1]
    flow           (M, 2, H, W)  the same grid minus the identity grid (the renderer's flow units)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _radial(squared_distance: torch.Tensor) -> torch.Tensor:
    """TPS kernel U(r) = r^2 log r^2 on squared distances (0 at r = 0)."""
    return squared_distance * torch.log(squared_distance.clamp_min(1e-12))


def _check_points(source_points: torch.Tensor, target_points: torch.Tensor) -> None:
    per_target = source_points.shape[:1] + source_points.shape[2:]
    shared = source_points.ndim == 4 and per_target == target_points.shape
    if not shared and (source_points.ndim != 3 or source_points.shape != target_points.shape):
        raise ValueError(
            "source_points and target_points must both be (M, K, 2) (or source (M, R, K, 2)), got "
            f"{tuple(source_points.shape)} and {tuple(target_points.shape)}"
        )
    if target_points.ndim != 3 or target_points.shape[-1] != 2:
        raise ValueError(f"target_points must be (M, K, 2), got {tuple(target_points.shape)}")
    if target_points.shape[1] < 3:
        raise ValueError(f"a thin-plate spline needs K >= 3 points, got {target_points.shape[1]}")


def tps_grid(
    source_points: torch.Tensor,
    target_points: torch.Tensor,
    size: tuple[int, int],
    regularization: float = 1e-4,
) -> torch.Tensor:
    """Backward sampling grid (M, H, W, 2) that moves the content at ``source_points`` to ``target_points``.

    Each output pixel p (target frame) samples the source image at ``f(p)``, the TPS through
    ``f(target_k) = source_k``. Coordinates are solved in ``[-1, 1]`` units (``x_grid = 2 x - 1``) in float64
    (the (K+3)-square system is small; float32 loses the affine part for close points) and evaluated on
    the pixel grid in float32; returned in the dtype of ``source_points``. A pair of sets that is not a face
    (non-finite, or all points in one place) gets the identity grid.

    ``source_points`` may also be (M, R, K, 2): R source sets per target set, as the renderer's N references
    share one target. The spline's system and its kernel over the pixel grid depend on the target (control)
    points only, so one solve with 2R right-hand sides and one kernel evaluation serve all R; the grid is then
    (M, R, H, W, 2).
    """
    _check_points(source_points, target_points)
    shared = source_points.ndim == 4
    sources = source_points if shared else source_points[:, None]  # (M, R, K, 2)
    height, width = size
    dtype, device = source_points.dtype, source_points.device
    control = (2 * target_points - 1).double()  # (M, K, 2) in grid units
    values = (2 * sources - 1).double()  # (M, R, K, 2)
    M, R, K, _ = values.shape
    # A set without a face (frames whose landmarks are missing: NaN or all equal) gets the identity warp: bad
    # control points are replaced by a well-spread set, and bad values by the control points themselves.
    control_ok = torch.isfinite(control).all(dim=(1, 2)) & (control.std(dim=1).amin(dim=1) > 1e-4)  # (M,)
    values_ok = torch.isfinite(values).all(dim=(2, 3)) & (values.std(dim=2).amin(dim=2) > 1e-4)  # (M, R)
    if not control_ok.all():
        angles = torch.linspace(0, 2 * torch.pi, K + 1, dtype=control.dtype, device=device)[:K]
        radii = torch.linspace(0.2, 0.9, K, dtype=control.dtype, device=device)
        spiral = torch.stack([angles.cos(), angles.sin()], 1) * radii[:, None]  # (K, 2)
        control = torch.where(control_ok[:, None, None], control, spiral)
    good = values_ok & control_ok[:, None]  # (M, R)
    values = torch.where(good[:, :, None, None], values, control[:, None])
    kernel = _radial(torch.cdist(control, control).square())  # (M, K, K)
    kernel = kernel + regularization * torch.eye(K, dtype=kernel.dtype, device=device)
    affine = torch.cat([control.new_ones(M, K, 1), control], dim=2)  # (M, K, 3)
    top = torch.cat([kernel, affine], dim=2)  # (M, K, K+3)
    bottom = torch.cat([affine.transpose(1, 2), control.new_zeros(M, 3, 3)], dim=2)  # (M, 3, K+3)
    system = torch.cat([top, bottom], dim=1)  # (M, K+3, K+3)
    columns = values.permute(0, 2, 1, 3).reshape(M, K, 2 * R)  # (M, K, 2R): column r*2+d
    rhs = torch.cat([columns, columns.new_zeros(M, 3, 2 * R)], dim=1)  # (M, K+3, 2R)
    coefficients = torch.linalg.solve(system, rhs)  # (M, K+3, 2R)
    # The dense evaluation runs in float32 (it is M x HW x K kernel values); only the solve needs float64.
    # Never in bf16/fp16, even inside a mixed-precision forward: autocast would run the two products below in
    # bf16, whose rounding of large radial terms that cancel moved the grid by 0.23 px on average and up to
    # 7.3 px at 64x64 on real landmarks (2026-12-07), so a renderer trained so would learn another prior.
    with torch.autocast(device_type=device.type, enabled=False):
        weights, linear = coefficients[:, :K].float(), coefficients[:, K:].float()  # (M, K, 2R), (M, 3, 2R)
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height * 2 - 1
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * 2 - 1
        pixels = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(1, -1, 2)  # (1, HW, 2)
        pixels = pixels.expand(M, -1, -1)
        radial = _radial(torch.cdist(pixels, control.float()).square())  # (M, HW, K)
        mapped = torch.baddbmm(linear[:, :1], pixels, linear[:, 1:]) + radial @ weights  # (M, HW, 2R)
    grid = mapped.reshape(M, height, width, R, 2).permute(0, 3, 1, 2, 4).to(dtype)  # (M, R, H, W, 2)
    return grid if shared else grid[:, 0]


def tps_flow(
    source_points: torch.Tensor,
    target_points: torch.Tensor,
    size: tuple[int, int],
    regularization: float = 1e-4,
) -> torch.Tensor:
    """:func:`tps_grid` as a flow (M, 2, H, W) (or (M, R, 2, H, W) for shared targets): offsets from the
    identity grid, the renderer's flow units."""
    grid = tps_grid(source_points, target_points, size, regularization)  # (M, [R,] H, W, 2)
    height, width = size
    theta = torch.eye(2, 3, dtype=grid.dtype, device=grid.device).unsqueeze(0)
    identity = F.affine_grid(theta, [1, 1, height, width], align_corners=False)[0]  # (H, W, 2)
    return (grid - identity).movedim(-1, -3)  # (M, [R,] 2, H, W)


def mouth_similarity_logits(
    ref_mouths: torch.Tensor, target_mouth: torch.Tensor, sigma: float = 0.01
) -> torch.Tensor:
    """Fusion-weight prior (B, N): ``-mean_k |r_k - t_k|^2 / (2 sigma^2)`` on centred mouth landmarks.

    ref_mouths: (B, N, K, 2) and target_mouth: (B, K, 2), crop-normalised; each set is centred on its own
    mean so that the shape of the mouth (open, closed, wide), not where it sits in the crop, decides which
    reference supplies the mouth. ``sigma`` is in crop units (0.01 = 1.3 px at 128 px).
    """
    if ref_mouths.ndim != 4 or target_mouth.shape != (ref_mouths.shape[0], *ref_mouths.shape[2:]):
        raise ValueError(
            f"ref_mouths must be (B, N, K, 2) and target_mouth (B, K, 2), got {tuple(ref_mouths.shape)} "
            f"and {tuple(target_mouth.shape)}"
        )
    refs = ref_mouths - ref_mouths.mean(dim=2, keepdim=True)  # (B, N, K, 2)
    target = (target_mouth - target_mouth.mean(dim=1, keepdim=True)).unsqueeze(1)  # (B, 1, K, 2)
    return -(refs - target).square().sum(-1).mean(-1) / (2 * sigma**2)  # (B, N)
