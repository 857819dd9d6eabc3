"""Camera effects: each changes what it should and nothing else, reproducibly from the scene seed."""

import math
from itertools import islice

import pytest
import torch

from iggt.data.batch import check_training_batch
from iggt.data.synthetic_stream import SyntheticSceneStream, SyntheticStreamConfig
from iggt.errors import ConfigError
from iggt.synth.camera_effects import (
    CameraEffectsConfig,
    EffectParameters,
    apply_camera_effects,
    jpeg_round_trip,
    sample_effects,
    sensor_noise,
)
from iggt.synth.config import RenderConfig
from iggt.train.config import build_dataclass

H, W, FOCAL = 40, 56, 30.0


def neutral(views: int = 1, **changes) -> EffectParameters:
    """Parameters with every effect off for 1 scene x ``views``, except the (1, views) tensors in ``changes``."""
    zeros = torch.zeros(1, views)
    values = {
        "colour_gain": torch.ones(1, views, 3),
        "vignetting": zeros,
        "blur_length": zeros,
        "blur_angle": zeros,
        "shot_noise": zeros,
        "read_noise": zeros,
        "jpeg_quality": torch.zeros(1, views, dtype=torch.int64),
        "k1": zeros,
        "k2": zeros,
        "noise_seeds": torch.tensor([7]),
    }
    return EffectParameters(**{**values, **changes})


def textured_batch(views: int = 1) -> dict[str, torch.Tensor]:
    """A training batch of 1 scene: a smooth colour image and ground truth that names every pixel."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    image = torch.stack([0.2 + 0.6 * u / W, 0.3 + 0.5 * v / H, 0.5 + 0.3 * torch.sin(u / 5)], 0)
    pixel = (v * W + u).long() + 1
    intrinsic = torch.tensor([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1]])
    return {
        "images": image.expand(1, views, 3, H, W).clone(),
        "depth": (1 + pixel.float() / 1000).expand(1, views, H, W).clone(),
        "world_points": torch.stack([u, v, pixel.float()], -1).expand(1, views, H, W, 3).clone(),
        "valid_mask": torch.ones(1, views, H, W, dtype=torch.bool),
        "instance_ids": pixel.expand(1, views, H, W).clone(),
        "class_ids": (pixel % 5).expand(1, views, H, W).clone(),
        "intrinsic": intrinsic.expand(1, views, 3, 3).clone(),
        "extrinsic": torch.eye(3, 4).expand(1, views, 3, 4).clone(),
    }


def linear(images: torch.Tensor) -> torch.Tensor:
    return images**2.2


def assert_ground_truth_unchanged(before, after):
    for key in before:
        if key != "images":
            assert torch.equal(before[key], after[key]), key


def test_all_off_only_quantises_to_8_bits():
    batch = textured_batch()
    out = apply_camera_effects(batch, neutral())
    assert (out["images"] - batch["images"]).abs().max() <= 0.5 / 255 + 1e-6
    quantised = {**batch, "images": out["images"]}  # 8-bit images come back unchanged
    assert torch.equal(apply_camera_effects(quantised, neutral())["images"], out["images"])
    assert_ground_truth_unchanged(batch, out)


def test_exposure_scales_linear_intensity():
    batch = textured_batch()
    batch["images"] = batch["images"] * 0.7  # stays below 1 after one stop up
    gain = 2.0**0.5
    out = apply_camera_effects(batch, neutral(colour_gain=torch.full((1, 1, 3), gain)))
    ratio = linear(out["images"]) / linear(batch["images"])
    # 8-bit rounding of display values of at least 0.14 moves linear values by at most ~3 %.
    assert torch.allclose(ratio, torch.full_like(ratio, gain), rtol=0.04)
    assert_ground_truth_unchanged(batch, out)


def test_noise_has_the_requested_signal_dependent_variance():
    level, shot, read = 0.25, 2e-3, 1e-4
    flat = torch.full((1, 1, 3, 128, 128), level)
    noisy = sensor_noise(flat, torch.tensor([[shot]]), torch.tensor([[read]]), torch.tensor([3]))
    expected = shot * level + read
    assert math.isclose(noisy.var().item(), expected, rel_tol=0.03)
    assert math.isclose(noisy.mean().item(), level, abs_tol=3 * math.sqrt(expected / noisy.numel()))
    dark = sensor_noise(torch.zeros_like(flat), torch.tensor([[shot]]), torch.tensor([[read]]), torch.tensor([3]))
    assert math.isclose(dark.var().item(), read, rel_tol=0.03)  # only read noise without signal


def test_vignetting_darkens_the_corners_not_the_centre():
    batch = textured_batch()
    batch["images"][:] = 0.6
    out = apply_camera_effects(batch, neutral(vignetting=torch.tensor([[0.4]])))
    image = linear(out["images"][0, 0, 0])
    centre = image[H // 2 - 1 : H // 2 + 1, W // 2 - 1 : W // 2 + 1]
    assert torch.allclose(centre, torch.full_like(centre, 0.6**2.2), rtol=0.03)
    for corner in (image[0, 0], image[0, -1], image[-1, 0], image[-1, -1]):
        assert math.isclose(corner.item(), 0.6**2.2 * 0.6, rel_tol=0.03)  # 40 % of the light lost
    assert_ground_truth_unchanged(batch, out)


def test_motion_blur_smears_along_its_direction_only():
    batch = textured_batch()
    batch["images"][:] = 0.2
    batch["images"][..., :, 28] = 0.9  # one bright vertical line
    out = apply_camera_effects(batch, neutral(blur_length=torch.tensor([[6.0]])))  # angle 0: horizontal
    row = out["images"][0, 0, 0, 20]
    assert row[28] < 0.8 and row[26] > 0.3 and row[30] > 0.3 and row[20] < 0.21
    vertical = apply_camera_effects(
        batch, neutral(blur_length=torch.tensor([[6.0]]), blur_angle=torch.tensor([[math.pi / 2]]))
    )
    assert torch.allclose(vertical["images"], (batch["images"] * 255).round() / 255, atol=1 / 255)
    assert_ground_truth_unchanged(batch, out)


def test_jpeg_changes_the_image_but_stays_close():
    batch = textured_batch()
    out = apply_camera_effects(batch, neutral(jpeg_quality=torch.tensor([[50]])))
    reference = (batch["images"] * 255).round() / 255
    mse = ((out["images"] - reference) ** 2).mean().item()
    psnr = 10 * math.log10(1 / mse)
    assert 28 < psnr < 50, psnr
    better = apply_camera_effects(batch, neutral(jpeg_quality=torch.tensor([[95]])))
    assert ((better["images"] - reference) ** 2).mean().item() < mse
    assert_ground_truth_unchanged(batch, out)


def test_jpeg_codes_each_view_at_its_own_quality_whatever_the_threads():
    """Views coded on a pool give the bytes of coding each alone, and views at quality 0 stay as they are."""
    generator = torch.Generator().manual_seed(3)
    images = (torch.rand(2, 6, 3, H, W, generator=generator) * 255).round().to(torch.uint8)
    quality = torch.tensor([[0, 30, 95, 60, 0, 10], [75, 0, 45, 90, 20, 0]])
    out = jpeg_round_trip(images, quality)
    for scene in range(2):
        for view in range(6):
            q = int(quality[scene, view])
            alone = jpeg_round_trip(images[scene, view][None, None], torch.tensor([[q]]))[0, 0]
            assert torch.equal(out[scene, view], alone), (scene, view)
            assert torch.equal(out[scene, view], images[scene, view]) == (q == 0), (scene, view)


def test_lens_distortion_moves_points_by_the_radial_model_and_labels_with_them():
    batch = textured_batch()
    k1, k2 = -0.12, 0.01
    out = apply_camera_effects(batch, neutral(k1=torch.tensor([[k1]]), k2=torch.tensor([[k2]])))
    for u0, v0 in ((50, 35), (5, 6), (40, 10)):
        x, y = (u0 - W / 2) / FOCAL, (v0 - H / 2) / FOCAL
        r2 = x * x + y * y
        factor = 1 + k1 * r2 + k2 * r2 * r2
        u1, v1 = round(x * factor * FOCAL + W / 2), round(y * factor * FOCAL + H / 2)
        window = out["instance_ids"][0, 0, v1 - 1 : v1 + 2, u1 - 1 : u1 + 2]  # rounding may shift one pixel
        assert (window == batch["instance_ids"][0, 0, v0, u0]).any(), (u0, v0, u1, v1)
    valid = out["valid_mask"][0, 0]
    assert valid[H // 2, W // 2] and not valid[0, 0]  # barrel distortion empties the corners
    moved = out["instance_ids"][0, 0][valid]
    for key in ("depth", "world_points", "class_ids"):
        # Each pixel keeps the exact ground truth of the pixel it shows: never an interpolated value.
        source = moved - 1
        expected = batch[key][0, 0].reshape(H * W, *batch[key].shape[4:])[source]
        assert torch.equal(out[key][0, 0][valid], expected), key
    assert set(out["depth"][0, 0][valid].tolist()) <= set(batch["depth"].flatten().tolist())
    assert (out["depth"][0, 0][~valid] == 0).all() and (out["instance_ids"][0, 0][~valid] == 0).all()
    assert torch.equal(out["intrinsic"], batch["intrinsic"])


def test_effects_are_drawn_from_the_scene_seed():
    config = CameraEffectsConfig.realistic()
    first = sample_effects(config, [11, 12], 6)
    again = sample_effects(config, [12], 6)
    assert torch.equal(first.colour_gain[1], again.colour_gain[0]) and torch.equal(first.k1[1], again.k1[0])
    assert not torch.equal(first.colour_gain[0], first.colour_gain[1])
    off = sample_effects(CameraEffectsConfig(), [11], 6)
    assert torch.equal(off.colour_gain, torch.ones(1, 6, 3)) and not off.jpeg_quality.any() and not off.k1.any()
    # The realistic mix turns each effect on for some views and off for others.
    many = sample_effects(config, list(range(40)), 8)
    for on in (many.vignetting > 0, many.blur_length > 0, many.shot_noise > 0, many.jpeg_quality > 0, many.k1 != 0):
        assert 0.05 < on.float().mean() < 0.95


def small_stream(effects: CameraEffectsConfig) -> SyntheticSceneStream:
    config = SyntheticStreamConfig(
        num_views=2, image_size=(24, 32), batch_size=2, base_seed=3, render=RenderConfig(shadows=False), effects=effects
    )
    return SyntheticSceneStream(config)


def test_stream_with_effects_resumes_exactly_and_keeps_labels():
    effects = CameraEffectsConfig(preset="realistic", lens_distortion_probability=0.0)
    batches = list(islice(iter(small_stream(effects)), 2))
    resumed = small_stream(effects)
    resumed.load_state_dict({"base_seed": 3, "step": 1})
    again = next(iter(resumed))
    for key in batches[1]:
        assert torch.equal(again[key], batches[1][key]), key
    plain = small_stream(CameraEffectsConfig()).batch_at(1)
    assert not torch.equal(plain["images"], again["images"])
    for key in ("depth", "world_points", "instance_ids", "valid_mask"):  # no distortion: ground truth as rendered
        assert torch.equal(plain[key], again[key]), key


def test_stream_with_lens_distortion_keeps_the_batch_contract():
    distorted = small_stream(CameraEffectsConfig(lens_distortion_probability=1.0)).batch_at(0)
    check_training_batch(distorted)
    plain = small_stream(CameraEffectsConfig()).batch_at(0)
    valid = distorted["valid_mask"]
    assert (distorted["instance_ids"][valid] > 0).all() and (distorted["depth"][valid] > 0).all()
    assert (distorted["depth"][~valid] == 0).all() and valid.sum() < plain["valid_mask"].sum()
    assert set(distorted["instance_ids"].unique().tolist()) - {0} <= set(plain["instance_ids"].unique().tolist())


def test_bad_effect_configs_are_config_errors():
    with pytest.raises(ConfigError, match="preset"):
        CameraEffectsConfig(preset="cinematic")
    with pytest.raises(ConfigError, match="noise_probability"):
        CameraEffectsConfig(noise_probability=1.5)
    with pytest.raises(ConfigError, match="jpeg_quality_range"):
        CameraEffectsConfig(jpeg_quality_range=(90, 10))


def test_a_training_config_turns_on_the_realistic_mix():
    """The YAML of data.sources[0].options, as the trainer reads it (docs/scene_engine.md)."""
    options = {
        "effects": {"preset": "realistic", "lens_distortion_probability": 0},
        "scene": {"lights_range": [1, 3], "light_kelvin_range": [2700, 8000], "specular_probability": 0.3},
    }
    config = build_dataclass(SyntheticStreamConfig, options, "data.sources.options")
    assert config.effects.enabled and config.effects.jpeg_probability == 0.5
    assert config.effects.lens_distortion_probability == 0  # given explicitly: wins over the preset
    assert config.scene.lights_range == (1, 3) and config.scene.specular_probability == 0.3
    assert not SyntheticStreamConfig().effects.enabled
