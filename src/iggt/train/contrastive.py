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
    """The sampled set P of one scene: N slots, some of them padding."""

    flat_index: torch.Tensor
    """(N,) int64 index into the scene's S * H * W pixels."""
    label: torch.Tensor
    """(N,) int64 instance ID of each slot (0 = unlabelled)."""
    valid: torch.Tensor
    """(N,) bool, False for padding slots."""


def multi_view_contrastive_loss(
    instance_feat: torch.Tensor, instance_ids: torch.Tensor, config: ContrastiveLossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_mvc over a batch.

    Args:
        instance_feat: (B, S, H, W, C) unit-norm instance features.
        instance_ids: (B, S, H, W) int64 3D-consistent IDs, 0 = none.

    Returns:
        (lambda * L_mvc, {"mvc_pull", "mvc_push", "mvc_instances"}) where pull and push are the
        unweighted terms averaged (or summed) over scenes.
    """
    pulls, pushes, counts = [], [], []
    for features, ids in zip(instance_feat.flatten(1, 3), instance_ids.flatten(1, 3), strict=True):
        sample = sample_pixels(ids.view(instance_ids.shape[1], -1), config.sampling)
        pull, push = pair_terms(features.float()[sample.flat_index], sample, config)
        pulls.append(pull)
        pushes.append(push)
        counts.append(torch.unique(sample.label[sample.valid & (sample.label > 0)]).numel())
    pull, push = torch.stack(pulls), torch.stack(pushes)
    combine = torch.mean if config.sampling.reduction == "mean" else torch.sum
    pull, push = combine(pull), combine(push)
    total = config.weight * (config.pull_weight * pull + config.push_weight * push)
    # A scene without sampled pixels leaves the features out of the graph; this keeps them in.
    total = total + 0.0 * instance_feat.sum()
    logged = {
        "mvc_pull": pull.detach(),
        "mvc_push": push.detach(),
        "mvc_instances": torch.tensor(float(sum(counts)) / len(counts)),
    }
    return total, logged


def sample_pixels(ids: torch.Tensor, config: ContrastiveSamplingConfig) -> PixelSample:
    """Draw P for one scene.

    Args:
        ids: (S, H * W) int64 instance IDs of the scene's views.

    Returns:
        PixelSample with N = (instances + unlabelled group) * S * k slots.
    """
    instances = torch.unique(ids[ids > 0])
    if instances.numel() > config.max_instances:
        keep = torch.randperm(instances.numel(), device=ids.device)[: config.max_instances]
        instances = instances[keep.sort().values]
    groups = instances
    if config.include_unlabelled:
        groups = torch.cat([instances, instances.new_zeros(1)])
    member = ids[None] == groups[:, None, None]  # (G, S, H*W)
    scores = torch.where(member, torch.rand(member.shape, device=ids.device), -1.0)
    k = config.pixels_per_instance_per_view
    if config.balanced_views:
        return _balanced_sample(scores, groups, k)
    return _pooled_sample(scores, member, groups, k)


def _balanced_sample(scores: torch.Tensor, groups: torch.Tensor, k: int) -> PixelSample:
    """(G, S, P) scores (-1 = not a member) -> k slots per group and view."""
    num_views, num_pixels = scores.shape[1:]
    top, index = scores.topk(min(k, num_pixels), dim=-1)  # (G, S, k)
    view_offset = torch.arange(num_views, device=scores.device)[None, :, None] * num_pixels
    label = groups[:, None, None].expand_as(index)
    return PixelSample((index + view_offset).flatten(), label.flatten(), (top >= 0).flatten())


def _pooled_sample(scores: torch.Tensor, member: torch.Tensor, groups: torch.Tensor, k: int) -> PixelSample:
    """(G, S, P) scores -> k * (views where visible) slots per group, drawn over all views."""
    num_views = scores.shape[1]
    pooled = scores.flatten(1)  # (G, S*P)
    top, index = pooled.topk(min(k * num_views, pooled.shape[1]), dim=-1)
    visible_views = member.any(-1).sum(-1)  # (G,)
    rank = torch.arange(index.shape[1], device=scores.device)[None]
    valid = (top >= 0) & (rank < k * visible_views[:, None])
    label = groups[:, None].expand_as(index)
    return PixelSample(index.flatten(), label.flatten(), valid.flatten())


def pair_terms(
    features: torch.Tensor, sample: PixelSample, config: ContrastiveLossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pull and push terms of one scene.

    Args:
        features: (N, C) features of the sampled slots (padding slots included).

    Returns:
        (pull, push) scalars: sums over same-ID / different-ID pairs, divided by their pair counts
        when reduction = "mean"; 0 when a scene has no such pair.
    """
    squared_norm = (features * features).sum(-1)
    squared_distance = squared_norm[:, None] + squared_norm[None] - 2 * features @ features.T
    # The clamp keeps d differentiable where two features coincide (sqrt'(0) is infinite).
    distance = squared_distance.clamp(min=1e-12).sqrt()
    labelled = sample.valid & (sample.label > 0)
    both_valid = sample.valid[:, None] & sample.valid[None]
    same_label = sample.label[:, None] == sample.label[None]
    not_self = ~torch.eye(len(features), dtype=torch.bool, device=features.device)
    same = same_label & labelled[:, None] & labelled[None] & not_self
    different = ~same_label & both_valid
    pull_values = distance.square() if config.sampling.squared else distance
    push_values = (config.margin - distance).clamp(min=0)
    if config.sampling.squared:
        push_values = push_values.square()
    pull = (pull_values * same).sum()
    push = (push_values * different).sum()
    if config.sampling.reduction == "mean":
        pull = pull / same.sum().clamp(min=1)
        push = push / different.sum().clamp(min=1)
    return pull, push
