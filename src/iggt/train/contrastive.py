"""The multi-view contrastive loss L_mvc on instance features, with explicit pixel sampling.

Paper (IGGT, Sec. 3): over a set P of pixels sampled across all views of a scene, with
3D-consistent instance IDs m_i and L2-normalised features f_i,

    L_mvc = lambda_pull * sum_{i,j in P, m_i = m_j} d(f_i, f_j)
          + lambda_push * sum_{i,j in P, m_i != m_j} max(0, M - d(f_i, f_j)),

d = ||f_i - f_j||_2, lambda_pull = 2, lambda_push = 1, M = 1. The paper does not say how P is
built, whether d is squared, or whether the sums are normalised; ContrastiveSamplingConfig makes
each choice explicit (docs/training.md, "Contrastive loss"). Our construction of P, per scene:

1. I = the instance IDs > 0 present in any view; if |I| > max_instances, a uniformly random
   subset of max_instances of them (a fresh draw every step).
2. balanced_views = True: for every instance m in I and every view s where m is visible,
   k = pixels_per_instance_per_view pixels drawn uniformly without replacement from m's pixels
   in view s (all of them if fewer than k). An object large in one view and small in another
   thus gets the same number of samples in both, so cross-view pairs are never dominated by
   one view. balanced_views = False: k * (number of views where m is visible) pixels drawn
   uniformly from m's pixels pooled over all views (proportional to visible area).
3. include_unlabelled = True adds ID-0 pixels, drawn like one more instance; they take part only
   in different-ID pairs (pushed away from every instance, never pulled together, since
   "no instance" is not one object). False: ID-0 pixels are never sampled.

Pairs are all ordered pairs (i, j), i != j, of P, within and across views. With
reduction = "mean" each sum is divided by its number of pairs (scale independent of |P|);
"sum" keeps the paper's plain sums. squared = True uses d^2 and max(0, M - d)^2 (Hadsell et al.).
Scenes are averaged ("mean") or summed ("sum") over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from iggt.errors import ConfigError

REDUCTIONS = ("mean", "sum")


@dataclass
class ContrastiveSamplingConfig:
    """How the pixel set P of L_mvc is drawn and how its pair terms are combined."""

    pixels_per_instance_per_view: int = 32
    """k: pixels drawn per instance and view (balanced) or per instance and visible view (pooled)."""
    max_instances: int = 16
    """Instances per scene kept in P; a random subset is drawn when a scene has more."""
    include_unlabelled: bool = False
    """Also sample ID-0 pixels as a negative-only group (pushed from every instance)."""
    balanced_views: bool = True
    """Draw k pixels in every view an instance is visible in (True) or pool its pixels over views."""
    squared: bool = False
    """Use d^2 and max(0, M - d)^2 instead of d and max(0, M - d)."""
    reduction: str = "mean"
    """"mean": each sum divided by its number of pairs, scenes averaged; "sum": plain sums."""

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise ConfigError(f"contrastive reduction {self.reduction!r} is not one of {REDUCTIONS}")
        if self.pixels_per_instance_per_view < 1 or self.max_instances < 1:
            raise ConfigError(
                "contrastive pixels_per_instance_per_view and max_instances must be >= 1, got "
                f"{self.pixels_per_instance_per_view} and {self.max_instances}"
            )


@dataclass
class ContrastiveLossConfig:
    """Weights of L_mvc (the paper's values) and its sampling."""

    weight: float = 1.0
    """lambda: weight of L_mvc in the total loss (the paper's ablation: 1 to 2 is best)."""
    pull_weight: float = 2.0
    """lambda_pull."""
    push_weight: float = 1.0
    """lambda_push."""
    margin: float = 1.0
    """M: different-ID features closer than this are pushed apart."""
    sampling: ContrastiveSamplingConfig = field(default_factory=ContrastiveSamplingConfig)


@dataclass
class PixelSample:
    """The sampled sets P of a batch of scenes: N slots per scene, some of them padding."""

    flat_index: torch.Tensor
    """(B, N) int64 index into each scene's S * H * W pixels."""
    label: torch.Tensor
    """(B, N) int64 group of each slot: 1..G for the scene's sampled instances (one number per
    instance ID, not the ID itself), 0 for unlabelled pixels."""
    valid: torch.Tensor
    """(B, N) bool, False for padding slots."""
    instances: torch.Tensor
    """(B,) float number of instances with at least one sampled pixel."""


def multi_view_contrastive_loss(
    instance_feat: torch.Tensor, instance_ids: torch.Tensor, config: ContrastiveLossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_mvc over a batch, all scenes at once (fixed shapes: nothing waits for the GPU).

    Args:
        instance_feat: (B, S, H, W, C) unit-norm instance features.
        instance_ids: (B, S, H, W) int64 3D-consistent IDs, 0 = none.

    Returns:
        (lambda * L_mvc, {"mvc_pull", "mvc_push", "mvc_instances"}) where pull and push are the
        unweighted terms averaged (or summed) over scenes.
    """
    batch, views = instance_ids.shape[:2]
    sample = sample_pixels(instance_ids.reshape(batch, views, -1), config.sampling)
    features = instance_feat.flatten(1, 3).float()  # (B, S*H*W, C)
    gathered = features.gather(1, sample.flat_index[..., None].expand(-1, -1, features.shape[-1]))
    pull, push = pair_terms(gathered, sample, config)
    combine = torch.mean if config.sampling.reduction == "mean" else torch.sum
    pull, push = combine(pull), combine(push)
    total = config.weight * (config.pull_weight * pull + config.push_weight * push)
    # A scene without sampled pixels leaves the features out of the graph; this keeps them in.
    total = total + 0.0 * instance_feat.sum()
    logged = {"mvc_pull": pull.detach(), "mvc_push": push.detach(), "mvc_instances": sample.instances.mean()}
    return total, logged


def sample_pixels(ids: torch.Tensor, config: ContrastiveSamplingConfig) -> PixelSample:
    """Draw P for every scene of a batch.

    Args:
        ids: (B, S, H * W) int64 instance IDs of each scene's views.

    Returns:
        PixelSample with N = (max_instances + unlabelled group) * S * k slots per scene.
    """
    group = _instance_groups(ids.flatten(1), config.max_instances).view(ids.shape)  # (B, S, P)
    num_groups = config.max_instances + int(config.include_unlabelled)
    member = group[:, None] == torch.arange(num_groups, device=ids.device)[None, :, None, None]  # (B, G, S, P)
    scores = torch.where(member, torch.rand(member.shape, device=ids.device), -1.0)
    # Group g < max_instances is instance g + 1 of the sample; the unlabelled group is label 0.
    labels = torch.arange(1, num_groups + 1, device=ids.device)
    if config.include_unlabelled:
        labels[-1] = 0
    instances = member[:, : config.max_instances].flatten(2).any(-1).sum(-1).float()
    k = config.pixels_per_instance_per_view
    if config.balanced_views:
        flat_index, label, valid = _balanced_sample(scores, labels, k)
    else:
        flat_index, label, valid = _pooled_sample(scores, member, labels, k)
    return PixelSample(flat_index, label, valid, instances)


def _instance_groups(ids: torch.Tensor, max_instances: int) -> torch.Tensor:
    """(B, P) instance IDs -> (B, P) group per pixel: 0..max_instances - 1 for the instances of a
    uniformly random subset of at most max_instances of each scene's IDs > 0 (a fresh draw per
    call), max_instances for ID 0, max_instances + 1 for instances left out.

    Computed by sorting rather than ``torch.unique``, whose output size the host would wait for.
    """
    unlabelled = ids <= 0
    sorted_ids, order = torch.where(unlabelled, torch.iinfo(ids.dtype).max, ids).sort(dim=-1)
    positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    labelled_sorted = ~unlabelled.gather(1, order)
    first = torch.ones_like(labelled_sorted)
    first[:, 1:] = sorted_ids[:, 1:] != sorted_ids[:, :-1]
    first &= labelled_sorted  # the first pixel of every instance, in sorted order
    # Random priorities for the instances; the max_instances smallest are kept.
    priority = torch.where(first, torch.rand(ids.shape, device=ids.device), 2.0)
    count = min(max_instances, ids.shape[1])
    chosen_priority, chosen = priority.topk(count, dim=-1, largest=False)  # (B, count) positions
    chosen = torch.where(chosen_priority < 2.0, chosen, -1)
    # Each sorted position's instance starts at the last first-pixel at or before it.
    start = torch.where(first, positions, 0).cummax(dim=-1).values
    matches = start[..., None] == chosen[:, None]  # (B, P, count)
    slot = matches.int().argmax(-1)
    kept = matches.any(-1) & labelled_sorted
    sorted_group = torch.where(kept, slot, max_instances + 1)
    sorted_group = torch.where(labelled_sorted, sorted_group, max_instances)
    return torch.empty_like(sorted_group).scatter_(1, order, sorted_group)


def _balanced_sample(
    scores: torch.Tensor, labels: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, G, S, P) scores (-1 = not a member), (G,) labels -> k slots per group and view."""
    num_views, num_pixels = scores.shape[2], scores.shape[3]
    top, index = scores.topk(min(k, num_pixels), dim=-1)  # (B, G, S, k)
    view_offset = torch.arange(num_views, device=scores.device)[None, None, :, None] * num_pixels
    label = labels[None, :, None, None].expand_as(index)
    return (index + view_offset).flatten(1), label.flatten(1), (top >= 0).flatten(1)


def _pooled_sample(
    scores: torch.Tensor, member: torch.Tensor, labels: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, G, S, P) scores -> k * (views where visible) slots per group, drawn over all views."""
    num_views = scores.shape[2]
    pooled = scores.flatten(2)  # (B, G, S*P)
    top, index = pooled.topk(min(k * num_views, pooled.shape[-1]), dim=-1)
    visible_views = member.any(-1).sum(-1)  # (B, G)
    rank = torch.arange(index.shape[-1], device=scores.device)
    valid = (top >= 0) & (rank < k * visible_views[..., None])
    label = labels[None, :, None].expand_as(index)
    return index.flatten(1), label.flatten(1), valid.flatten(1)


def pair_terms(
    features: torch.Tensor, sample: PixelSample, config: ContrastiveLossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pull and push terms of every scene.

    Args:
        features: (B, N, C) features of the sampled slots (padding slots included).

    Returns:
        (pull, push), each (B,): sums over same-ID / different-ID pairs, divided by their pair
        counts when reduction = "mean"; 0 when a scene has no such pair.
    """
    squared_norm = (features * features).sum(-1)
    squared_distance = squared_norm[:, :, None] + squared_norm[:, None] - 2 * features @ features.transpose(1, 2)
    # The clamp keeps d differentiable where two features coincide (sqrt'(0) is infinite).
    distance = squared_distance.clamp(min=1e-12).sqrt()
    labelled = sample.valid & (sample.label > 0)
    both_valid = sample.valid[:, :, None] & sample.valid[:, None]
    same_label = sample.label[:, :, None] == sample.label[:, None]
    not_self = ~torch.eye(features.shape[1], dtype=torch.bool, device=features.device)
    same = same_label & labelled[:, :, None] & labelled[:, None] & not_self
    different = ~same_label & both_valid
    pull_values = distance.square() if config.sampling.squared else distance
    push_values = (config.margin - distance).clamp(min=0)
    if config.sampling.squared:
        push_values = push_values.square()
    pull = (pull_values * same).sum((1, 2))
    push = (push_values * different).sum((1, 2))
    if config.sampling.reduction == "mean":
        pull = pull / same.sum((1, 2)).clamp(min=1)
        push = push / different.sum((1, 2)).clamp(min=1)
    return pull, push
