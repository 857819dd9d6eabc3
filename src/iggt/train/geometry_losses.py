"""Camera, depth and point-map losses, following VGGT's training recipe.

Notation (VGGT / IGGT papers): for view i, D_i the depth map, P_i the point map, Sigma_i the
predicted confidence (>= 1, ``expp1``), g_i the 9-d pose encoding.

- Camera: sum over refinement iterations k = 1..K of gamma^(K - k) * huber(g_hat_i^k - g_i),
  divided by K, split into translation (3), rotation (4) and field of view (2) parts weighted
  1, 1, 0.5 (VGGT's code: gamma 0.6, translation error clamped at 100 against outliers).
- Depth / points: mean over valid pixels of ||Sigma * (pred - gt)|| - alpha * log Sigma, plus a
  multi-scale gradient term |Sigma * (grad pred - grad gt)| (L1 over finite differences of the
  residual, VGGT's "grad" term), plus optionally the unweighted ||pred - gt|| that VGGT's code
  adds (``plain_weight``). As in VGGT's code, the per-pixel values of the first and last terms
  lose their top 2 % as outliers before the mean (``valid_quantile``).

Ground truth is already in the first camera's frame and scale-normalised (data contract);
predictions are compared as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from iggt.errors import ConfigError
from iggt.geometry import cameras_to_pose_encoding


@dataclass
class CameraLossConfig:
    """Huber loss on the pose encoding over the camera head's refinement iterations."""

    weight: float = 5.0
    """Weight of the camera loss in the total (VGGT's training config uses 5)."""
    loss_type: str = "huber"
    """"huber" (the VGGT paper) or "l1" (VGGT's released config, reported more stable)."""
    huber_beta: float = 0.1
    """Residual below which the Huber loss is quadratic; above it, it grows like L1 (slope 1)."""
    iteration_gamma: float = 0.6
    """Iteration k of K is weighted gamma^(K - k): the last refinement weighs 1."""
    translation_weight: float = 1.0
    rotation_weight: float = 1.0
    fov_weight: float = 0.5
    min_valid_pixels: int = 100
    """Views with fewer valid GT pixels are left out of the camera loss (VGGT: 100)."""
    translation_floor: float = 0.0
    """0 (VGGT): translations compared as they are, in the normalised units (mean point distance 1),
    so a wrong direction at a short baseline costs little. > 0: each view's predicted and GT
    translations are divided by max(|t_gt|, floor) first, so the error is relative to that view's
    baseline and short baselines count as much as long ones (the first view, t = 0, by the floor)."""


@dataclass
class DenseLossConfig:
    """Confidence-weighted regression of a dense map (depth or points)."""

    weight: float = 1.0
    """Weight of this loss in the total."""
    alpha: float = 0.2
    """Weight of the -alpha * log(confidence) term (VGGT: 0.2)."""
    gradient_weight: float = 1.0
    """Weight of the confidence-weighted gradient term; 0 disables it."""
    gradient_scales: int = 4
    """Scales of the gradient term: residual subsampled by 1, 2, 4, ... (VGGT: 4)."""
    plain_weight: float = 1.0
    """Weight of the unweighted ||pred - gt|| term VGGT's code adds; 0 gives the paper's formula."""
    min_valid_pixels: int = 100
    """Batches with fewer valid pixels contribute a zero loss (VGGT: 100)."""
    valid_quantile: float = 0.98
    """Per-pixel terms at or above this quantile are dropped as outliers, after clamping at 100
    (VGGT's valid_range 0.98; only with more than 1000 valid pixels); 1 keeps every pixel."""


def camera_loss(
    pose_enc_list: list[torch.Tensor],
    extrinsic: torch.Tensor,
    intrinsic: torch.Tensor,
    valid_mask: torch.Tensor,
    config: CameraLossConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted pose-encoding loss over refinement iterations.

    Args:
        pose_enc_list: K tensors (B, S, 9), the encoding after each refinement (last = final).
        extrinsic: (B, S, 3, 4) GT camera-from-world. intrinsic: (B, S, 3, 3) GT, pixels.
        valid_mask: (B, S, H, W) valid GT pixels; its size is the image size of the encoding.

    Returns:
        (weighted scalar loss, {"camera_translation", "camera_rotation", "camera_fov"}).
    """
    if config.loss_type not in ("huber", "l1"):
        raise ConfigError(f"unknown camera loss_type {config.loss_type!r}; use 'huber' or 'l1'")
    image_size = tuple(valid_mask.shape[-2:])
    target = cameras_to_pose_encoding(extrinsic.float(), intrinsic.float(), image_size)
    # Views are weighted 0 or 1 rather than selected, which would make the host wait for the GPU.
    frames = (valid_mask.flatten(-2).sum(-1) >= config.min_valid_pixels).float()  # (B, S)
    num_iterations = len(pose_enc_list)
    parts = torch.zeros(3, device=target.device)
    for index, prediction in enumerate(pose_enc_list):
        iteration_weight = config.iteration_gamma ** (num_iterations - index - 1)
        parts = parts + iteration_weight * _pose_error(prediction.float(), target, frames, config)
    parts = parts / num_iterations
    part_weights = torch.tensor(
        [config.translation_weight, config.rotation_weight, config.fov_weight], device=parts.device
    )
    total = config.weight * (parts * part_weights).sum()
    names = ("camera_translation", "camera_rotation", "camera_fov")
    return total, {name: value.detach() for name, value in zip(names, parts, strict=True)}


def _pose_error(
    prediction: torch.Tensor, target: torch.Tensor, frames: torch.Tensor, config: CameraLossConfig
) -> torch.Tensor:
    """(B, S, 9) predicted and GT encodings, (B, S) view weights in {0, 1} -> (3,) mean
    translation / rotation / fov error over the weighted views (0, still in the graph, without any)."""
    if config.translation_floor > 0:
        scale = target[..., :3].norm(dim=-1, keepdim=True).clamp(min=config.translation_floor)
        prediction = torch.cat([prediction[..., :3] / scale, prediction[..., 3:]], dim=-1)
        target = torch.cat([target[..., :3] / scale, target[..., 3:]], dim=-1)
    if config.loss_type == "huber":
        error = F.smooth_l1_loss(prediction, target, beta=config.huber_beta, reduction="none")
    else:
        error = (prediction - target).abs()
    error = torch.cat([error[..., :3].clamp(max=100), error[..., 3:]], dim=-1) * frames[..., None]
    count = frames.sum().clamp(min=1)
    return torch.stack(
        [error[..., :3].sum() / (3 * count), error[..., 3:7].sum() / (4 * count), error[..., 7:].sum() / (2 * count)]
    )


def confidence_regression_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    confidence: torch.Tensor,
    valid_mask: torch.Tensor,
    config: DenseLossConfig,
    prefix: str,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """||C * (pred - gt)|| + |C * (grad pred - grad gt)| - alpha * log C over valid pixels.

    Args:
        prediction, target: (B, S, H, W, C) predicted and GT maps (C = 1 for depth, 3 for points).
        confidence: (B, S, H, W) predicted confidence, >= 1.
        valid_mask: (B, S, H, W) bool, pixels with valid GT.
        prefix: name of the map in the logged components ("depth" or "points").

    Returns:
        (weighted scalar loss, {prefix_conf, prefix_grad, prefix_plain}), all 0 (in the graph) when
        fewer than ``min_valid_pixels`` pixels are valid.
        prefix_conf = mean_valid(C * ||pred - gt|| - alpha * log C);
        prefix_grad = mean over scales of sum_valid-pairs(C * |delta(pred - gt)|) / (valid pixels * C);
        prefix_plain = mean_valid ||pred - gt||.

    Every mean is a masked sum over fixed-size tensors: nothing here waits for the GPU.
    """
    prediction, target, confidence = prediction.float(), target.float(), confidence.float()
    # where, not a product: a non-finite target at an invalid pixel must not reach the gradient.
    difference = torch.where(valid_mask[..., None], prediction - target, 0.0)
    residual = torch.linalg.vector_norm(difference, dim=-1)  # (B, S, H, W)
    conf_values = confidence * residual - config.alpha * torch.log(confidence)
    conf_term = mean_without_outliers(conf_values, valid_mask, config.valid_quantile)
    plain_term = mean_without_outliers(residual, valid_mask, config.valid_quantile)
    grad_term = (prediction * 0).sum()
    if config.gradient_weight > 0:
        grad_term = multi_scale_gradient_loss(prediction, target, confidence, valid_mask, config.gradient_scales)
    enough = valid_mask.sum() >= config.min_valid_pixels
    zero = (prediction * 0).sum() + (confidence * 0).sum()
    conf_term, grad_term, plain_term = (torch.where(enough, term, zero) for term in (conf_term, grad_term, plain_term))
    total = config.weight * (conf_term + config.gradient_weight * grad_term + config.plain_weight * plain_term)
    logged = {f"{prefix}_conf": conf_term, f"{prefix}_grad": grad_term, f"{prefix}_plain": plain_term}
    return total, {name: value.detach() for name, value in logged.items()}


def mean_without_outliers(
    values: torch.Tensor, valid: torch.Tensor, quantile: float, min_elements: int = 1000, hard_max: float = 100.0
) -> torch.Tensor:
    """Mean of the valid ``values`` that :func:`outlier_mask` keeps (0 when none is valid)."""
    values, kept = outlier_mask(values, valid, quantile, min_elements, hard_max)
    return torch.where(kept, values, 0.0).sum() / kept.sum().clamp(min=1)


def outlier_mask(
    values: torch.Tensor, valid: torch.Tensor, quantile: float, min_elements: int = 1000, hard_max: float = 100.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel losses and their valid mask (same shape) -> (values, kept): VGGT's
    filter_by_quantile without selecting elements, so that it never waits for the GPU.

    With more than ``min_elements`` valid values they are clamped at ``hard_max`` and those at or
    above the ``quantile`` of the valid ones are dropped, unless at most ``min_elements`` would
    remain; with fewer (or quantile >= 1) every valid value is kept, unclamped.
    """
    if quantile >= 1:
        return values, valid
    count = valid.sum()
    clamped = values.clamp(max=hard_max)
    # Invalid values sort last, so the rank-th smallest of the flat tensor is that of the valid ones.
    ordered = torch.where(valid, clamped.detach(), torch.inf).flatten().sort().values
    rank = torch.round(quantile * (count - 1).clamp(min=0)).long()  # 0-based (half to even, as Python)
    threshold = ordered[rank]
    below = valid & (clamped < threshold)
    filtering = count > min_elements
    use_cut = filtering & (below.sum() > min_elements)
    kept = torch.where(use_cut, below, valid)
    return torch.where(filtering, clamped, values), kept


def multi_scale_gradient_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    confidence: torch.Tensor,
    valid_mask: torch.Tensor,
    scales: int,
) -> torch.Tensor:
    """Mean over scales 2^0..2^(scales-1) of :func:`gradient_loss` on subsampled maps.

    Shapes: prediction, target (B, S, H, W, C); confidence (B, S, H, W); valid_mask (B, S, H, W).
    """
    total = 0.0
    for scale in range(scales):
        step = 2**scale
        total = total + gradient_loss(
            prediction[:, :, ::step, ::step],
            target[:, :, ::step, ::step],
            confidence[:, :, ::step, ::step],
            valid_mask[:, :, ::step, ::step],
        )
    return total / scales


def gradient_loss(
    prediction: torch.Tensor, target: torch.Tensor, confidence: torch.Tensor, valid_mask: torch.Tensor
) -> torch.Tensor:
    """sum(C * |d(pred - gt)|) over horizontal and vertical neighbour pairs that are both valid,
    divided by the number of valid pixel-channels. grad pred - grad gt = grad (pred - gt).

    Shapes as :func:`multi_scale_gradient_loss`; the confidence of the second pixel of a pair
    weighs it (as VGGT).
    """
    mask = valid_mask[..., None].to(prediction.dtype)
    residual = torch.where(valid_mask[..., None], prediction - target, 0.0)
    conf = confidence[..., None]
    grad_x = (residual[:, :, :, 1:] - residual[:, :, :, :-1]).abs() * mask[:, :, :, 1:] * mask[:, :, :, :-1]
    grad_y = (residual[:, :, 1:] - residual[:, :, :-1]).abs() * mask[:, :, 1:] * mask[:, :, :-1]
    weighted = (grad_x.clamp(max=100) * conf[:, :, :, 1:]).sum() + (grad_y.clamp(max=100) * conf[:, :, 1:]).sum()
    count = mask.sum() * prediction.shape[-1]
    return weighted / count.clamp(min=1)
