"""Each loss term on hand-built cases whose value is known in closed form."""

import math

import pytest
import torch
import torch.nn.functional as F

from iggt.geometry import cameras_to_pose_encoding
from iggt.train.contrastive import sample_pixels
from iggt.train.geometry_losses import _pose_error, outlier_mask
from iggt.train.losses import (
    CameraLossConfig,
    ContrastiveLossConfig,
    ContrastiveSamplingConfig,
    DenseLossConfig,
    LossConfig,
    camera_loss,
    confidence_regression_loss,
    multi_view_contrastive_loss,
    total_loss,
)


def contrastive(features, ids, **sampling):
    config = ContrastiveLossConfig(sampling=ContrastiveSamplingConfig(**sampling))
    return multi_view_contrastive_loss(features, ids, config)


# ----------------------------------------------------------------------------- contrastive


def test_contrastive_is_zero_for_one_hot_instance_features(batch):
    ids = batch["instance_ids"]  # IDs 1..4 in both views
    features = F.one_hot(ids, 8).float()  # identical within an instance, orthogonal across: d = sqrt(2) > M
    loss, logged = contrastive(features, ids)
    assert loss.item() < 1e-3
    assert logged["mvc_push"].item() == 0.0
    assert logged["mvc_instances"].item() == 4


def test_contrastive_is_large_for_shuffled_features(batch):
    ids = batch["instance_ids"]
    features = F.one_hot(ids, 8).float().flatten(0, 3)
    shuffled = features[torch.randperm(len(features), generator=torch.Generator().manual_seed(0))]
    loss, logged = contrastive(shuffled.view(*ids.shape, 8), ids)
    # About 3 of 4 same-ID pairs now sit sqrt(2) apart: pull ~ 0.75 * sqrt(2), weighted by 2.
    assert loss.item() > 1.5
    assert logged["mvc_pull"].item() > 0.8


def three_pixel_case():
    """One view of 1 x 3 pixels, IDs [1, 1, 2]; f0 = f2 = e_x, f1 = e_y.
    Ordered same-ID pairs (0,1),(1,0): d = sqrt 2. Different-ID pairs (0,2),(2,0): d = 0;
    (1,2),(2,1): d = sqrt 2."""
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]).view(1, 1, 1, 3, 2)
    ids = torch.tensor([1, 1, 2]).view(1, 1, 1, 3)
    return features, ids


@pytest.mark.parametrize(
    "squared, reduction, expected",
    [
        (False, "mean", 2 * math.sqrt(2) + 1 * (2 * 1.0) / 4),  # pull mean sqrt2; push mean 2/4
        (True, "mean", 2 * 2.0 + 1 * (2 * 1.0) / 4),  # d^2 = 2; max(0, 1 - 0)^2 = 1
        (False, "sum", 2 * (2 * math.sqrt(2)) + 1 * 2.0),
    ],
)
def test_contrastive_matches_hand_computation(squared, reduction, expected):
    features, ids = three_pixel_case()
    loss, _ = contrastive(features, ids, squared=squared, reduction=reduction, pixels_per_instance_per_view=4)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_unlabelled_pixels_are_pushed_but_never_pulled():
    # IDs [0, 0, 1]; the two ID-0 pixels differ (not pulled together), the instance pixel equals f0.
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]).view(1, 1, 1, 3, 2)
    ids = torch.tensor([0, 0, 1]).view(1, 1, 1, 3)
    ignored, _ = contrastive(features, ids, pixels_per_instance_per_view=4)
    assert ignored.item() == 0.0  # a single labelled pixel forms no pair
    included, logged = contrastive(features, ids, pixels_per_instance_per_view=4, include_unlabelled=True)
    # Different-ID pairs: (0,2),(2,0) at d = 0 -> hinge 1; (1,2),(2,1) at sqrt 2 -> 0; mean 0.5.
    assert logged["mvc_pull"].item() == 0.0
    assert included.item() == pytest.approx(0.5, rel=1e-5)


def test_balanced_sampling_draws_k_pixels_per_view_and_pooled_follows_area():
    ids = torch.zeros(1, 2, 100, dtype=torch.long)
    ids[0, 0, :60] = 7  # large in view 0
    ids[0, 1, :3] = 7  # small in view 1
    k = 10
    balanced = sample_pixels(ids, ContrastiveSamplingConfig(pixels_per_instance_per_view=k))
    views = balanced.flat_index[balanced.valid] // 100
    assert torch.equal(torch.bincount(views, minlength=2), torch.tensor([10, 3]))
    assert (ids.flatten()[balanced.flat_index[balanced.valid]] == 7).all()
    pooled = sample_pixels(ids, ContrastiveSamplingConfig(pixels_per_instance_per_view=k, balanced_views=False))
    assert int(pooled.valid.sum()) == 2 * k  # k per visible view, drawn from the pooled pixels
    assert (ids.flatten()[pooled.flat_index[pooled.valid]] == 7).all()
    assert len(set(pooled.flat_index[pooled.valid].tolist())) == 2 * k  # without replacement


def test_max_instances_limits_the_sampled_instances():
    ids = torch.arange(1, 6).repeat_interleave(20).view(1, 1, 100)
    sample = sample_pixels(ids, ContrastiveSamplingConfig(max_instances=2))
    assert len(torch.unique(sample.label[sample.valid])) == 2
    assert sample.instances.tolist() == [2.0]


def test_the_instance_subset_is_uniform_and_its_samples_keep_their_ids():
    # Scene 0 has IDs 3, 10, 11, 40, 41, 42 (ID 0 elsewhere); scene 1 only ID 5.
    ids = torch.zeros(2, 2, 60, dtype=torch.long)
    for position, value in enumerate((3, 10, 11, 40, 41, 42)):
        ids[0, position % 2, 10 * position : 10 * position + 10] = value
    ids[1, 1, :7] = 5
    config = ContrastiveSamplingConfig(max_instances=3, pixels_per_instance_per_view=4, include_unlabelled=True)
    torch.manual_seed(0)
    chosen = torch.zeros(43)
    for _ in range(300):
        sample = sample_pixels(ids, config)
        sampled_ids = ids.flatten(1).gather(1, sample.flat_index)
        # One group per ID: a group's valid slots all hold one ID, different groups different IDs.
        for scene in range(2):
            groups = {}
            valid = sample.valid[scene]
            for label, value in zip(sample.label[scene][valid], sampled_ids[scene][valid], strict=True):
                groups.setdefault(int(label), set()).add(int(value))
            assert all(len(values) == 1 for values in groups.values())
            assert groups.pop(0) == {0}  # the unlabelled group holds ID 0 only
            assert len({next(iter(v)) for v in groups.values()}) == len(groups)
        scene0 = {int(v) for v in sampled_ids[0][sample.valid[0] & (sample.label[0] > 0)]}
        assert len(scene0) == 3
        chosen[list(scene0)] += 1
        assert {int(v) for v in sampled_ids[1][sample.valid[1] & (sample.label[1] > 0)]} == {5}
        assert sample.instances.tolist() == [3.0, 1.0]
    # Each of the six IDs is drawn with probability 1/2: 150 of 300 (binomial sd 8.7).
    assert ((chosen[[3, 10, 11, 40, 41, 42]] - 150).abs() < 45).all()


def test_a_batch_is_the_mean_of_its_scenes_each_alone():
    # With every pixel sampled the loss is deterministic; scenes of one batch must not mix.
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 4, (3, 2, 5, 6), generator=generator)
    ids[1][ids[1] == 2] = 17
    features = F.normalize(torch.randn(3, 2, 5, 6, 4, generator=generator), dim=-1)
    settings = {"pixels_per_instance_per_view": 64, "include_unlabelled": True}
    batch_loss, logged = contrastive(features, ids, **settings)
    alone = [contrastive(features[i : i + 1], ids[i : i + 1], **settings) for i in range(3)]
    assert batch_loss.item() == pytest.approx(sum(loss.item() for loss, _ in alone) / 3, rel=1e-5)
    counts = [part["mvc_instances"].item() for _, part in alone]
    assert logged["mvc_instances"].item() == pytest.approx(sum(counts) / 3)


def test_contrastive_gradient_is_finite_where_features_coincide(batch):
    features = F.one_hot(batch["instance_ids"], 8).float().requires_grad_()
    loss, _ = contrastive(features, batch["instance_ids"])
    loss.backward()
    assert torch.isfinite(features.grad).all()


# ----------------------------------------------------------------------------- camera


def camera_case(batch):
    target = cameras_to_pose_encoding(batch["extrinsic"], batch["intrinsic"], batch["valid_mask"].shape[-2:])
    return target, batch["extrinsic"], batch["intrinsic"], batch["valid_mask"]


def test_camera_loss_is_zero_for_the_true_encoding(batch):
    target, extrinsic, intrinsic, valid = camera_case(batch)
    loss, parts = camera_loss([target.clone() for _ in range(4)], extrinsic, intrinsic, valid, CameraLossConfig())
    assert loss.item() == 0.0
    assert all(value.item() == 0.0 for value in parts.values())


def test_camera_loss_weights_iterations_by_gamma(batch):
    target, extrinsic, intrinsic, valid = camera_case(batch)
    wrong = target.clone()
    wrong[..., 0] += 1.0  # t_x off by 1 in every view, first of two iterations only
    config = CameraLossConfig(iteration_gamma=0.6, huber_beta=0.1)
    loss, parts = camera_loss([wrong, target], extrinsic, intrinsic, valid, config)
    huber = 1.0 - 0.5 * 0.1  # smooth L1 beyond beta: |x| - beta / 2
    translation = 0.6 * (huber / 3) / 2  # weight gamma^1, mean over 3 dims, divided by 2 iterations
    assert parts["camera_translation"].item() == pytest.approx(translation, rel=1e-5)
    assert loss.item() == pytest.approx(config.weight * translation, rel=1e-5)


def test_camera_loss_skips_views_with_few_valid_pixels(batch):
    target, extrinsic, intrinsic, valid = camera_case(batch)
    wrong = target.clone()
    wrong[:, 1, 0] += 5.0  # only the second view is wrong ...
    valid = valid.clone()
    valid[:, 1] = False  # ... and it has no valid pixel
    loss, _ = camera_loss([wrong], extrinsic, intrinsic, valid, CameraLossConfig())
    assert loss.item() == 0.0


def _translation_loss(gt_translation, predicted_translation, config):
    """camera_translation of one scene of 2 views whose encodings differ only in view 1's translation."""
    target = torch.zeros(1, 2, 9)
    target[..., 6] = 1.0  # identity quaternion (xyzw)
    target[..., 7:] = 1.0
    target[0, 1, :3] = torch.tensor(gt_translation)
    prediction = target.clone()
    prediction[0, 1, :3] = torch.tensor(predicted_translation)
    frames = torch.ones(1, 2)
    return _pose_error(prediction, target, frames, config)[0].item()


@pytest.mark.parametrize("loss_type", ["huber", "l1"])
def test_translation_floor_makes_the_error_relative_to_the_baseline(loss_type):
    relative = CameraLossConfig(loss_type=loss_type, translation_floor=0.05)
    absolute = CameraLossConfig(loss_type=loss_type)
    # A reversed direction costs the same at a baseline of 0.1 as at 1 when relative ...
    short = _translation_loss([0.1, 0.0, 0.0], [-0.1, 0.0, 0.0], relative)
    long = _translation_loss([1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], relative)
    assert short == pytest.approx(long, rel=1e-6) and short > 0
    # ... and ten times less (L1, and Huber beyond beta nearly so) when absolute.
    assert _translation_loss([0.1, 0.0, 0.0], [-0.1, 0.0, 0.0], absolute) < 0.2 * _translation_loss(
        [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], absolute
    )
    # Below the floor the scale is the floor: an error of 0.01 at t = 0 counts as 0.01 / 0.05.
    at_zero = _translation_loss([0.0, 0.0, 0.0], [0.01, 0.0, 0.0], relative)
    assert at_zero == pytest.approx(_translation_loss([0.0, 0.0, 0.0], [0.2, 0.0, 0.0], absolute), rel=1e-6)


def test_translation_floor_zero_is_the_absolute_loss(batch):
    target, extrinsic, intrinsic, valid = camera_case(batch)
    wrong = target.clone()
    wrong[..., :3] += torch.linspace(-0.3, 0.4, wrong[..., :3].numel()).view_as(wrong[..., :3])
    plain = camera_loss([wrong], extrinsic, intrinsic, valid, CameraLossConfig())[0]
    zero = camera_loss([wrong], extrinsic, intrinsic, valid, CameraLossConfig(translation_floor=0.0))[0]
    floored = camera_loss([wrong], extrinsic, intrinsic, valid, CameraLossConfig(translation_floor=0.05))[0]
    assert zero.item() == plain.item() and floored.item() != plain.item()


# ----------------------------------------------------------------------------- depth / points


def two_pixel_case():
    prediction = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2, 1)
    target = torch.tensor([1.5, 2.0]).view(1, 1, 1, 2, 1)
    confidence = torch.tensor([2.0, 3.0]).view(1, 1, 1, 2)
    valid = torch.ones(1, 1, 1, 2, dtype=torch.bool)
    return prediction, target, confidence, valid


def test_confidence_weighting_matches_its_formula():
    prediction, target, confidence, valid = two_pixel_case()
    config = DenseLossConfig(alpha=0.2, gradient_scales=1, min_valid_pixels=1)
    loss, parts = confidence_regression_loss(prediction, target, confidence, valid, config, "depth")
    # Pixel 1: C=2, |r|=0.5; pixel 2: C=3, |r|=0.
    conf_term = ((2 * 0.5 - 0.2 * math.log(2)) + (3 * 0.0 - 0.2 * math.log(3))) / 2
    # Residual [-0.5, 0]: one horizontal pair, |0 - (-0.5)| weighted by the second pixel's C=3,
    # divided by 2 valid pixel-channels.
    grad_term = 3 * 0.5 / 2
    plain_term = (0.5 + 0.0) / 2
    assert parts["depth_conf"].item() == pytest.approx(conf_term, rel=1e-6)
    assert parts["depth_grad"].item() == pytest.approx(grad_term, rel=1e-6)
    assert parts["depth_plain"].item() == pytest.approx(plain_term, rel=1e-6)
    assert loss.item() == pytest.approx(conf_term + grad_term + plain_term, rel=1e-6)


def test_identical_maps_leave_only_the_confidence_prior(batch):
    confidence = 1 + torch.rand(batch["valid_mask"].shape)
    config = DenseLossConfig(valid_quantile=1.0)  # every pixel in the mean
    points = batch["world_points"]
    _, parts = confidence_regression_loss(points, points.clone(), confidence, batch["valid_mask"], config, "points")
    assert parts["points_grad"].item() == 0.0
    assert parts["points_plain"].item() == 0.0
    expected = -config.alpha * torch.log(confidence[batch["valid_mask"]]).mean()
    assert parts["points_conf"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_invalid_pixels_do_not_change_the_dense_loss(batch):
    depth = batch["depth"][..., None]
    confidence = torch.full(batch["valid_mask"].shape, 1.5)
    prediction = depth + 0.1
    first, _ = confidence_regression_loss(prediction, depth, confidence, batch["valid_mask"], DenseLossConfig(), "d")
    changed = prediction.clone()
    changed[~batch["valid_mask"]] = 100.0
    second, _ = confidence_regression_loss(changed, depth, confidence, batch["valid_mask"], DenseLossConfig(), "d")
    assert first.item() == pytest.approx(second.item(), rel=1e-7)


def test_outlier_filter_drops_the_top_values_only_when_there_are_many():
    few = torch.arange(10.0)
    values, kept = outlier_mask(few, torch.ones(10, dtype=torch.bool), 0.98)
    assert torch.equal(values, few) and kept.all()
    many = torch.cat([torch.linspace(0, 1, 2000), torch.full((20,), 1e6)])
    every = torch.ones(len(many), dtype=torch.bool)
    values, kept = outlier_mask(many, every, 0.98)
    # The 98 % point of 2020 values is the 1980th smallest; the 41 values at or above it go.
    assert int(kept.sum()) == 1979 and values[kept].max() < 1
    assert values.max() == 100  # clamped at hard_max before the cut
    values, kept = outlier_mask(many, every, 1.0)
    assert torch.equal(values, many) and kept.all()


def test_outlier_filter_ranks_only_the_valid_values():
    # The same 2020 valid values as above, shuffled among 3000 invalid ones of any size.
    many = torch.cat([torch.linspace(0, 1, 2000), torch.full((20,), 1e6)])
    values = torch.cat([many, torch.full((3000,), -5.0), torch.full((3000,), 1e9)])
    valid = torch.cat([torch.ones(2020, dtype=torch.bool), torch.zeros(6000, dtype=torch.bool)])
    order = torch.randperm(len(values), generator=torch.Generator().manual_seed(0))
    _, kept = outlier_mask(values[order], valid[order], 0.98)
    assert int(kept.sum()) == 1979 and not (kept & ~valid[order]).any()
    assert values[order][kept].max() < 1
    # With at most min_elements valid values, every valid one stays, unclamped.
    few = valid.clone()
    few[1000:] = False
    few[2019] = True  # one of the 1e6 values among 1001 valid
    kept_values, kept = outlier_mask(values, few, 0.98, min_elements=1001)
    assert torch.equal(kept, few) and kept_values[2019] == 1e6


# ----------------------------------------------------------------------------- total


def test_total_loss_is_the_sum_of_weighted_terms(batch):
    ids = batch["instance_ids"]
    predictions = {
        "pose_enc_list": [camera_case(batch)[0] + 0.1],
        "depth": batch["depth"][..., None] + 0.1,
        "depth_conf": torch.full(ids.shape, 2.0),
        "world_points": batch["world_points"] + 0.1,
        "world_points_conf": torch.full(ids.shape, 2.0),
        "instance_feat": F.normalize(torch.randn(*ids.shape, 8), dim=-1),
    }
    loss, logged = total_loss(predictions, batch, LossConfig())
    parts = sum(logged[f"loss_{name}"] for name in ("camera", "depth", "points", "mvc"))
    assert loss.item() == pytest.approx(parts.item(), rel=1e-6)
    config = LossConfig()
    config.contrastive.weight = 0.0
    without, logged = total_loss(predictions, batch, config)
    assert "loss_mvc" not in logged
    assert without.item() < loss.item()
