"""Camera effects applied to rendered training views: lens distortion, exposure, white balance,
vignetting, motion blur, sensor noise and JPEG compression.

Every effect is drawn per view from a generator seeded by the scene seed, so a scene gets the
same effects wherever and with whatever it is batched, and a stream position reproduces its
batches exactly. Effects change only the images, except lens distortion, which moves every
per-pixel ground-truth map with the image (nearest neighbour, so each pixel keeps the exact
depth, point and labels of the surface it shows). After distortion the pinhole intrinsics only
approximate the camera: a pixel's depth and world point stay exact, but lifting its depth with
the pinhole intrinsics lands where an undistorted camera would see it.

Order, following the light through a camera: lens (distortion), sensor exposure and white
balance, vignetting, motion blur, shot and read noise, then 8-bit quantisation and JPEG.
Photometric effects work on linear intensity (display RGB ** 2.2).
"""

from __future__ import annotations

import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from iggt.errors import ConfigError
from iggt.synth.colour_temperature import WHITE_KELVIN, kelvin_to_rgb

_GAMMA = 2.2
_BLUR_TAPS = 9  # samples along a motion-blur streak
_UNDISTORT_ITERATIONS = 20  # fixed-point steps inverting the radial model; converges for |k1| r^2 < 0.5
_JPEG_THREADS = 8  # the training machine's 16 cores also run the scene-preparation workers
_EFFECTS_STREAM = 0x5EED_EFEC  # mixes the scene seed so effects draw numbers no layout or camera draws

PRESETS = ("off", "realistic")

_REALISTIC_PROBABILITIES = {
    "exposure_probability": 0.7,
    "white_balance_probability": 0.5,
    "vignetting_probability": 0.5,
    "motion_blur_probability": 0.2,
    "noise_probability": 0.7,
    "jpeg_probability": 0.5,
    "lens_distortion_probability": 0.3,
}


@dataclass
class CameraEffectsConfig:
    """Probabilities (per view) and ranges of each camera effect; every effect is off by default.

    A probability left unset (None) comes from ``preset``: 0 for "off", and for "realistic" a mix
    like phone and consumer cameras (_REALISTIC_PROBABILITIES); one given explicitly wins over the
    preset. The ranges' defaults are the realistic mix's.
    """

    preset: str = "off"
    """Where unset probabilities come from: "off" (all 0) or "realistic"."""
    exposure_probability: float | None = None
    """Chance that a view is over- or under-exposed."""
    exposure_stops_range: tuple[float, float] = (-1.0, 0.7)
    """Exposure change in stops: linear intensity is multiplied by 2 ** stops."""
    white_balance_probability: float | None = None
    """Chance that a view's white balance is set for another colour temperature than the light's."""
    white_balance_kelvin_range: tuple[float, float] = (4000.0, 10000.0)
    """Temperature the camera balances for; the light is taken as 6500 K, so 4000 K gives a blue cast."""
    vignetting_probability: float | None = None
    """Chance of vignetting."""
    vignetting_strength_range: tuple[float, float] = (0.1, 0.5)
    """Fraction of light lost in the image corners; falls off as the squared distance from the centre."""
    motion_blur_probability: float | None = None
    """Chance of motion blur."""
    motion_blur_length_range: tuple[float, float] = (1.0, 6.0)
    """Length in pixels of the straight blur streak, in a uniformly random direction."""
    noise_probability: float | None = None
    """Chance of sensor noise."""
    shot_noise_range: tuple[float, float] = (1e-4, 3e-3)
    """Shot-noise variance per unit of linear intensity (variance = shot * intensity + read)."""
    read_noise_range: tuple[float, float] = (1e-6, 1e-4)
    """Read-noise variance in linear intensity, independent of the signal."""
    jpeg_probability: float | None = None
    """Chance that a view goes through JPEG compression."""
    jpeg_quality_range: tuple[int, int] = (40, 95)
    """JPEG quality (1-100), drawn uniformly among the integers of the range."""
    lens_distortion_probability: float | None = None
    """Chance of radial lens distortion (image and ground truth move together)."""
    k1_range: tuple[float, float] = (-0.15, 0.05)
    """First radial coefficient: distorted = undistorted (1 + k1 r^2 + k2 r^4), r in focal lengths.
    Negative is barrel distortion, which leaves empty (invalid) corners."""
    k2_range: tuple[float, float] = (-0.02, 0.02)
    """Second radial coefficient."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"camera effects preset must be one of {PRESETS}, got {self.preset!r}")
        for name, probability in _REALISTIC_PROBABILITIES.items():
            if getattr(self, name) is None:
                setattr(self, name, probability if self.preset == "realistic" else 0.0)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_probability") and not (math.isfinite(value) and 0 <= value <= 1):
                raise ConfigError(f"camera effects {f.name}={value!r} must be a probability in [0, 1]")
            if f.name.endswith("_range"):
                value = tuple(value)  # YAML gives lists
                setattr(self, f.name, value)
                if len(value) != 2 or not all(math.isfinite(v) for v in value) or value[0] > value[1]:
                    raise ConfigError(f"camera effects {f.name} must be (min, max) with min <= max, got {value}")
        low_checks = {
            "shot_noise_range": 0.0,
            "read_noise_range": 0.0,
            "vignetting_strength_range": 0.0,
            "motion_blur_length_range": 0.0,
            "white_balance_kelvin_range": 1000.0,
            "jpeg_quality_range": 1,
        }
        for name, low in low_checks.items():
            if getattr(self, name)[0] < low:
                raise ConfigError(f"camera effects {name} must start at >= {low}, got {getattr(self, name)}")
        if self.vignetting_strength_range[1] > 1 or self.jpeg_quality_range[1] > 100:
            raise ConfigError("camera effects vignetting strength must be <= 1 and JPEG quality <= 100")
        if max(abs(k) for k in self.k1_range) > 0.4 or max(abs(k) for k in self.k2_range) > 0.2:
            raise ConfigError("camera effects |k1| must stay <= 0.4 and |k2| <= 0.2 (the radial model folds over)")

    @classmethod
    def realistic(cls) -> CameraEffectsConfig:
        """The realistic mix with the default ranges."""
        return cls(preset="realistic")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.endswith("_probability"))


@dataclass
class EffectParameters:
    """Per-view effect parameters of B scenes x S views; an effect that is off has its neutral value.

    Attributes:
        colour_gain: (B, S, 3) linear gain of exposure times white balance (1 = off).
        vignetting: (B, S) light lost in the corners (0 = off).
        blur_length: (B, S) streak length in pixels (0 = off).  blur_angle: (B, S) radians.
        shot_noise, read_noise: (B, S) variances (0 = off).
        jpeg_quality: (B, S) int64 (0 = off).
        k1, k2: (B, S) radial coefficients (0 = off).
        noise_seeds: (B,) int64 seeds of each scene's per-pixel noise.
    """

    colour_gain: torch.Tensor
    vignetting: torch.Tensor
    blur_length: torch.Tensor
    blur_angle: torch.Tensor
    shot_noise: torch.Tensor
    read_noise: torch.Tensor
    jpeg_quality: torch.Tensor
    k1: torch.Tensor
    k2: torch.Tensor
    noise_seeds: torch.Tensor


def _draw_scene(config: CameraEffectsConfig, seed: int, num_views: int) -> dict[str, torch.Tensor]:
    """One scene's (S,) parameters from a CPU generator seeded by the scene seed (device independent)."""
    generator = torch.Generator().manual_seed((seed ^ _EFFECTS_STREAM) % 2**63)

    def uniform(bounds: tuple[float, float]) -> torch.Tensor:
        return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(num_views, generator=generator, dtype=torch.float64)

    def chosen(probability: float) -> torch.Tensor:
        return torch.rand(num_views, generator=generator, dtype=torch.float64) < probability

    # Every draw happens whatever the probabilities, so changing one effect never reshuffles another.
    stops = torch.where(chosen(config.exposure_probability), uniform(config.exposure_stops_range), 0.0)
    kelvin = torch.where(
        chosen(config.white_balance_probability), uniform(config.white_balance_kelvin_range), WHITE_KELVIN
    )
    # A camera balancing for temperature T divides by T's colour: the scene's 6500 K light takes the opposite cast.
    balance = torch.from_numpy(1.0 / kelvin_to_rgb(kelvin.numpy()))
    quality_low, quality_high = config.jpeg_quality_range
    quality = torch.randint(int(quality_low), int(quality_high) + 1, (num_views,), generator=generator)
    return {
        "colour_gain": (2.0**stops)[:, None] * balance,
        "vignetting": torch.where(chosen(config.vignetting_probability), uniform(config.vignetting_strength_range), 0),
        "blur_length": torch.where(chosen(config.motion_blur_probability), uniform(config.motion_blur_length_range), 0),
        "blur_angle": uniform((0.0, 2 * math.pi)),
        "shot_noise": torch.where(chosen(config.noise_probability), uniform(config.shot_noise_range), 0.0),
        "read_noise": uniform(config.read_noise_range),
        "jpeg_quality": torch.where(chosen(config.jpeg_probability), quality, 0),
        "k1": torch.where(chosen(config.lens_distortion_probability), uniform(config.k1_range), 0.0),
        "k2": uniform(config.k2_range),
        "noise_seed": torch.randint(0, 2**62, (), generator=generator),
    }


def sample_effects(config: CameraEffectsConfig, scene_seeds: list[int], num_views: int) -> EffectParameters:
    """Effect parameters of every view of the scenes ``scene_seeds``, on the CPU."""
    scenes = [_draw_scene(config, seed, num_views) for seed in scene_seeds]
    stacked = {name: torch.stack([scene[name] for scene in scenes]) for name in scenes[0]}
    # Read noise and k2 only apply together with shot noise and k1 (one switch per effect).
    stacked["read_noise"] = torch.where(stacked["shot_noise"] > 0, stacked["read_noise"], 0.0)
    stacked["k2"] = torch.where(stacked["k1"] != 0, stacked["k2"], 0.0)
    noise_seeds = stacked.pop("noise_seed")
    as_float = {name: value.float() if value.is_floating_point() else value for name, value in stacked.items()}
    return EffectParameters(**as_float, noise_seeds=noise_seeds)


def _pixel_grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates u (1, 1, H, W), v (1, 1, H, W); pixel i's centre is at i."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return u[None, None], v[None, None]


def undistorted_pixels(intrinsic: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, size: tuple[int, int]):
    """Where each pixel of a distorted image comes from in the pinhole image.

    The lens maps a pinhole point x_u (in focal lengths from the principal point) to
    x_d = x_u (1 + k1 r_u^2 + k2 r_u^4); for every output pixel x_d this inverts that map.

    Args:
        intrinsic: (B, S, 3, 3) pixels.  k1, k2: (B, S).  size: (H, W).
    Returns:
        source u, v (B, S, H, W) float32 pixel coordinates in the undistorted image.
    """
    u, v = _pixel_grid(*size, intrinsic.device)
    fx, fy = intrinsic[..., 0, 0, None, None], intrinsic[..., 1, 1, None, None]
    cx, cy = intrinsic[..., 0, 2, None, None], intrinsic[..., 1, 2, None, None]
    k1, k2 = k1[..., None, None], k2[..., None, None]
    x_d, y_d = (u - cx) / fx, (v - cy) / fy
    x_u, y_u = x_d, y_d
    for _ in range(_UNDISTORT_ITERATIONS):
        r2 = x_u * x_u + y_u * y_u
        factor = 1 + k1 * r2 + k2 * r2 * r2
        x_u, y_u = x_d / factor, y_d / factor
    return x_u * fx + cx, y_u * fy + cy


def _remap_nearest(values: torch.Tensor, index: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """values (B, S, H, W, ...) read at flat source pixels index (B, S, H, W); zero where not inside."""
    b, s, h, w = index.shape
    trailing = values.shape[4:]
    flat = values.reshape(b, s, h * w, *trailing)
    gather_index = index.reshape(b, s, h * w, *([1] * len(trailing))).expand(b, s, h * w, *trailing)
    moved = flat.gather(2, gather_index).view(b, s, h, w, *trailing)
    mask = inside.view(b, s, h, w, *([1] * len(trailing)))
    return torch.where(mask, moved, torch.zeros((), dtype=values.dtype, device=values.device))


def _sample_bilinear(images: torch.Tensor, u: torch.Tensor, v: torch.Tensor, padding: str) -> torch.Tensor:
    """images (B, S, C, H, W) sampled at pixel coordinates u, v (B, S, H, W)."""
    b, s, c, h, w = images.shape
    grid = torch.stack([2 * u / max(w - 1, 1) - 1, 2 * v / max(h - 1, 1) - 1], -1).view(b * s, h, w, 2)
    sampled = F.grid_sample(images.view(b * s, c, h, w), grid, "bilinear", padding, align_corners=True)
    return sampled.view(b, s, c, h, w)


def distort_batch(batch: dict[str, torch.Tensor], k1: torch.Tensor, k2: torch.Tensor) -> dict[str, torch.Tensor]:
    """Radial lens distortion of a training batch (iggt.data.batch) with coefficients (B, S).

    Images are resampled bilinearly; depth, world points, valid mask, instance and class IDs are
    moved by nearest neighbour, so every value they hold was in the undistorted maps. Pixels that
    look outside the rendered image are black with no valid ground truth. Intrinsics are kept.
    """
    height, width = batch["depth"].shape[-2:]
    u, v = undistorted_pixels(
        batch["intrinsic"], k1.to(batch["depth"].device), k2.to(batch["depth"].device), (height, width)
    )
    column, row = u.round().long(), v.round().long()
    inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
    index = row.clamp(0, height - 1) * width + column.clamp(0, width - 1)
    distorted = dict(batch)
    for key in ("depth", "world_points", "valid_mask", "instance_ids", "class_ids"):
        distorted[key] = _remap_nearest(batch[key], index, inside)
    distorted["images"] = _sample_bilinear(batch["images"], u, v, "zeros")
    return distorted


def vignette_gain(strength: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, S, 1, H, W) gain 1 - strength * (r / r_corner)^2, r measured from the image centre."""
    height, width = size
    u, v = _pixel_grid(height, width, strength.device)
    du, dv = u - (width - 1) / 2, v - (height - 1) / 2
    relative = (du * du + dv * dv) / (((width - 1) / 2) ** 2 + ((height - 1) / 2) ** 2)
    return (1 - strength[..., None, None] * relative)[:, :, None]


def motion_blur(linear: torch.Tensor, length: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Average of images (B, S, 3, H, W) over a straight streak of ``length`` pixels at ``angle`` (B, S)."""
    height, width = linear.shape[-2:]
    u, v = _pixel_grid(height, width, linear.device)
    du, dv = (length * torch.cos(angle))[..., None, None], (length * torch.sin(angle))[..., None, None]
    total = torch.zeros_like(linear)
    for tap in range(_BLUR_TAPS):
        step = tap / (_BLUR_TAPS - 1) - 0.5
        total = total + _sample_bilinear(linear, u + step * du, v + step * dv, "border")
    blurred = total / _BLUR_TAPS
    return torch.where((length > 0)[..., None, None, None], blurred, linear)


def sensor_noise(linear: torch.Tensor, shot: torch.Tensor, read: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """linear (B, S, 3, H, W) plus Gaussian noise of variance shot * linear + read (shot, read (B, S)).

    Each scene's noise comes from its own generator on the images' device, seeded by ``seeds`` (B,).
    """
    noise = torch.empty_like(linear)
    for scene, seed in enumerate(seeds.tolist()):
        generator = torch.Generator(device=linear.device).manual_seed(seed)
        noise[scene] = torch.randn(linear.shape[1:], generator=generator, device=linear.device, dtype=linear.dtype)
    variance = shot[..., None, None, None] * linear.clamp_min(0) + read[..., None, None, None]
    return linear + variance.sqrt() * noise


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 encoded and decoded by libjpeg (Pillow) at ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.array(Image.open(buffer).convert("RGB"))


def jpeg_round_trip(images: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, S, 3, H, W) through a JPEG codec at ``quality`` (B, S) (0 = left as they are).

    The codec runs on the CPU (Pillow's libjpeg): torchvision's GPU codec is deprecated, and a CPU
    codec gives the same bytes on every machine. Views are coded on up to _JPEG_THREADS threads
    (libjpeg runs without the GIL); each view's bytes do not depend on the thread that codes it.
    """
    chosen = [tuple(index) for index in torch.nonzero(quality > 0).tolist()]
    if not chosen:
        return images
    on_host = images.permute(0, 1, 3, 4, 2).cpu().numpy()
    qualities = quality.cpu()
    threads = max(1, min(_JPEG_THREADS, len(chosen), os.cpu_count() or 1))
    with ThreadPoolExecutor(threads) as pool:
        decoded = list(pool.map(lambda sv: _jpeg(on_host[sv], int(qualities[sv])), chosen))
    out = images.clone()
    for (scene, view), image in zip(chosen, decoded, strict=True):
        out[scene, view] = torch.from_numpy(image).permute(2, 0, 1).to(images.device)
    return out


def apply_camera_effects(batch: dict[str, torch.Tensor], parameters: EffectParameters) -> dict[str, torch.Tensor]:
    """A training batch (iggt.data.batch) seen through the cameras ``parameters`` describe.

    ``batch["images"]`` (B, S, 3, H, W) float display RGB in [0, 1]; the result's images are
    quantised to 8 bits like every image read from disk. Ground truth changes only under lens
    distortion (see ``distort_batch``).
    """
    device = batch["images"].device
    p = {f.name: getattr(parameters, f.name).to(device) for f in fields(parameters) if f.name != "noise_seeds"}
    if bool((p["k1"] != 0).any()):
        batch = distort_batch(batch, p["k1"], p["k2"])
    linear = batch["images"].clamp(0, 1) ** _GAMMA
    linear = linear * p["colour_gain"][..., None, None]
    linear = linear * vignette_gain(p["vignetting"], linear.shape[-2:])
    if bool((p["blur_length"] > 0).any()):
        linear = motion_blur(linear, p["blur_length"], p["blur_angle"])
    if bool((p["shot_noise"] > 0).any()):
        linear = sensor_noise(linear, p["shot_noise"], p["read_noise"], parameters.noise_seeds)
    display = (linear.clamp(0, 1) ** (1 / _GAMMA) * 255).round().to(torch.uint8)
    display = jpeg_round_trip(display, p["jpeg_quality"])
    return {**batch, "images": display.float() / 255}
