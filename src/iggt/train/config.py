"""Training configuration: typed dataclasses read from YAML, with ``key.sub=value`` overrides.

A run is described by one :class:`RunConfig` with sections model, freeze, optim, loss, data and
train. ``load_run_config("configs/small_synthetic.yaml", ["train.steps=100"])`` starts from the
defaults below, applies the file, then the overrides; an unknown key or a value of the wrong type
raises ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from iggt.device import DTYPES
from iggt.errors import ConfigError
from iggt.model.config import RETIRED_FIELDS
from iggt.train.config_checks import check_numbers
from iggt.train.losses import LossConfig

SOURCE_KINDS = ("synthetic", "folder")
TRAIN_DTYPES = (torch.bfloat16, torch.float32)
"""Trunk precisions training supports; float16 would need loss scaling, which the trainer has not."""
STRATEGIES = ("ddp", "fsdp")
RETIRED_OVERRIDE_FIXES = {
    "frames_chunk_size": "remove it (training runs the heads over all views at once)",
    "trunk_dtype": "set train.precision instead",
    "activation_checkpointing": "set model.activation_checkpointing instead",
    "extra": "remove it",
}
"""What to do with a model.override of a former IGGTConfig field (see iggt.model.config.RETIRED_FIELDS)."""


@dataclass
class ModelConfig:
    """Which network to train and where its weights start."""

    preset: str = "tiny"
    """IGGT preset: "tiny", "small" or "large"."""
    overrides: dict = field(default_factory=dict)
    """IGGTConfig fields changed from the preset (e.g. {img_size: 224})."""
    init_checkpoint: str | None = None
    """Weights to start from: any file or folder IGGT.from_pretrained reads (ours, official, VGGT)."""
    activation_checkpointing: bool = False
    """Recompute transformer blocks in the backward pass (less memory, ~30 % slower)."""


@dataclass
class FreezeConfig:
    """Parameters kept fixed. The track head has no loss here and is always frozen."""

    trunk: bool = False
    """Freeze the aggregator (patch embedding and alternating attention)."""
    geometry_heads: bool = False
    """Freeze the camera, depth and point heads."""
    instance_only: bool = False
    """Train only part_adaptor and part_head (implies trunk and geometry_heads)."""


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, and gradient clipping."""

    lr: float = 1e-4
    """Peak learning rate of the heads (the paper's fine-tuning from VGGT: 1e-5)."""
    trunk_lr_scale: float = 1.0
    """Trunk (aggregator) learning rate = lr * trunk_lr_scale (the paper: 0.1, 1e-6 vs 1e-5)."""
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    """Steps of linear warm-up from 0 to the peak."""
    min_lr_ratio: float = 0.01
    """The cosine decays to this fraction of the peak at the last step."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables clipping."""


@dataclass
class DataSourceConfig:
    """One source of training scenes; sources are mixed per batch by weight."""

    kind: str = "synthetic"
    """"synthetic" (iggt.data.synthetic_stream, rendered on the fly) or "folder" (scene folders)."""
    weight: float = 1.0
    """Relative probability that a batch is drawn from this source."""
    path: str | None = None
    """Root folder of the scenes (kind "folder")."""
    options: dict = field(default_factory=dict)
    """Extra keyword arguments of the source's constructor."""


@dataclass
class DataConfig:
    """What one optimisation step sees on one process."""

    sources: list[DataSourceConfig] = field(default_factory=lambda: [DataSourceConfig()])
    batch_size: int = 2
    """Scenes per step and process (the global batch is batch_size * world size)."""
    views: int = 8
    """Views per scene."""
    image_size: tuple[int, int] = (224, 224)
    """(H, W) of the training images; multiples of the patch size."""
    num_workers: int = 0
    """DataLoader workers of folder sources (the synthetic stream renders in the main process)."""


@dataclass
class TrainConfig:
    """Run length, logging, checkpoints, precision and distribution."""

    steps: int = 1000
    max_time_minutes: float | None = None
    """Save a checkpoint and exit cleanly once this much wall time has passed; None: no limit."""
    log_interval: int = 10
    checkpoint_interval: int = 500
    keep_checkpoints: int = 2
    """Most recent step checkpoints kept on disk (older ones are deleted)."""
    output_dir: str = "outputs/train"
    seed: int = 0
    device: str = "auto"
    """"auto" (CUDA when available), "cpu", "cuda" or "cuda:N" (:mod:`iggt.device`)."""
    precision: str = "bf16"
    """"bf16" (or "bfloat16"): bfloat16 autocast of the trunk on CUDA (float32 on CPU); "fp32" (or
    "float32"): no autocast. Spellings of :data:`iggt.device.DTYPES`."""
    head_precision: str = "fp32"
    """Autocast dtype of the depth, point and instance heads on CUDA ("bf16" or "fp32"); their last
    layers, the camera head and every loss stay in float32 whatever is chosen."""
    compile: bool = False
    """Run the forward pass through torch.compile (the first steps then take minutes to compile)."""
    compile_cache: str | None = None
    """File of torch.compile's artifacts (iggt.train.compile_cache): loaded at the start when it exists,
    rewritten at every checkpoint, so a fresh machine skips most compilation of the model and the
    renderer. Carry it between machines; torch ignores artifacts that do not match its version or device."""
    channels_last: bool = False
    """Keep convolution weights (and so the heads' activations) channels-last (NHWC) on the device."""
    strategy: str = "ddp"
    """Multi-process wrapping under torchrun: "ddp" or "fsdp" (shards parameters; for large)."""
    resume: str = "auto"
    """"auto": continue from output_dir's latest checkpoint if any (else start, from model.init_checkpoint when
    set); "never": start from step 0, refused when output_dir already holds a checkpoint; or a checkpoint path."""
    transfer_checkpoint: bool = False
    """Also write each checkpoint as parts smaller than transfer_part_mb (output_dir/transfer)."""
    transfer_part_mb: float = 15.0
    transfer_bf16: bool = False
    """Store the transfer checkpoint's weights in bfloat16 (lossy, half the size)."""
    transfer_training_state: bool = True
    """Include optimiser, scheduler, RNG and data position in the transfer checkpoint."""
    transfer_compact_state: bool = False
    """Store the transfer checkpoint's optimiser state compactly: AdamW's second moments in 4 bits
    (rounded up), first moments dropped (zeros on resume); scheduler, RNG and data position stay
    exact (iggt.train.compact_state). 12 MB instead of 170 MB for `small`."""
    export_bf16: bool = False
    """Write the final model export (output_dir/final) in bfloat16."""


@dataclass
class RunConfig:
    """Everything one training run needs; saved as output_dir/config.yaml."""

    model: ModelConfig = field(default_factory=ModelConfig)
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        """Plain dict (tuples become lists) that :func:`run_config_from_dict` reads back."""
        return _plain(dataclasses.asdict(self))

    def validate(self) -> None:
        """Raise ConfigError on values no run can use."""
        check_numbers(self)
        for name in RETIRED_FIELDS:
            if name in self.model.overrides:
                raise ConfigError(
                    f"model.overrides.{name} is a run-time setting, not part of the architecture any more; "
                    f"{RETIRED_OVERRIDE_FIXES[name]}"
                )
        for source in self.data.sources:
            if source.kind not in SOURCE_KINDS:
                raise ConfigError(f"data source kind {source.kind!r} is not one of {SOURCE_KINDS}")
            if source.kind == "folder" and not source.path:
                raise ConfigError("data source of kind 'folder' needs path: set data.sources.N.path")
        if not self.data.sources or sum(s.weight for s in self.data.sources) <= 0:
            raise ConfigError("data.sources needs at least one source with a positive weight")
        if DTYPES.get(self.train.precision) not in TRAIN_DTYPES:
            raise ConfigError(
                f"train.precision {self.train.precision!r} is not one of bf16 (bfloat16) or fp32 (float32)"
            )
        if DTYPES.get(self.train.head_precision) not in TRAIN_DTYPES:
            raise ConfigError(
                f"train.head_precision {self.train.head_precision!r} is not one of bf16 (bfloat16) or fp32 (float32)"
            )
        if self.train.strategy not in STRATEGIES:
            raise ConfigError(f"train.strategy {self.train.strategy!r} is not one of {STRATEGIES}")
        if self.train.steps < 1 or self.data.batch_size < 1 or self.data.views < 1:
            raise ConfigError("train.steps, data.batch_size and data.views must be >= 1")
        weights = (self.loss.camera.weight, self.loss.depth.weight, self.loss.points.weight)
        if not any(weights) and not self.loss.contrastive.weight:
            raise ConfigError("every loss weight is 0; set at least one of loss.*.weight")


def load_run_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Defaults, then the YAML file at ``path`` (if given), then ``key.sub=value`` overrides."""
    values = RunConfig().to_dict()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found; pass an existing YAML file")
        with open(path) as stream:
            from_file = _parse_yaml(stream, f"config file {path}") or {}
        if not isinstance(from_file, dict):
            raise ConfigError(f"config file {str(path)!r} must hold a mapping of sections")
        values = _merge(values, from_file)
    for override in overrides:
        apply_override(values, override)
    config = run_config_from_dict(values)
    config.validate()
    return config


def _merge(base: dict, update: dict) -> dict:
    """``update`` laid over ``base``: mappings merge key by key, anything else (lists too) replaces."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def save_run_config(config: RunConfig, path: str | Path) -> None:
    """Write ``config`` as YAML (read back by load_run_config)."""
    with open(path, "w") as stream:
        yaml.safe_dump(config.to_dict(), stream, sort_keys=False)


def apply_override(values: dict, override: str) -> None:
    """Set ``a.b.c=value`` (value parsed as YAML) in the nested dict ``values``; list items by index."""
    key, separator, text = override.partition("=")
    if not separator or not key:
        raise ConfigError(f"override {override!r} is not of the form key.sub=value")
    parts = key.strip().split(".")
    node = values
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: depth + 1]))
    _set(node, parts[-1], _parse_yaml(text, f"override {override!r} has a value that"), key)


def _parse_yaml(text, what: str):
    """``text`` (a string or stream) parsed as YAML; ConfigError naming ``what`` and the line if malformed."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(f"{what} is not valid YAML ({where}{problem}); fix the syntax") from None


def _child(node, part: str, key: str):
    if isinstance(node, list):
        return node[_list_index(node, part, key)]
    if not isinstance(node.get(part, {}), dict | list):
        raise ConfigError(f"override key {key!r} is a value, not a section")
    return node.setdefault(part, {})


def _set(node, part: str, value, key: str) -> None:
    if isinstance(node, list):
        node[_list_index(node, part, key)] = value
    else:
        node[part] = value


def _list_index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"override key {key!r}: {part!r} is not an index below {len(node)}")
    return int(part)


def run_config_from_dict(values: dict) -> RunConfig:
    """Build a RunConfig from nested dicts; unknown keys or wrong types raise ConfigError."""
    return build_dataclass(RunConfig, values, "")


def build_dataclass(cls, values, key: str):
    """An instance of the (nested) dataclass ``cls`` from dicts; ``key`` names it in errors."""
    if not isinstance(values, dict):
        raise ConfigError(f"config key {key or '<root>'!r} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f"{key}." if key else ""
        raise ConfigError(f"unknown config key {where}{unknown[0]}; valid keys here: {sorted(names)}")
    built = {name: _convert(hints[name], value, f"{key}.{name}" if key else name) for name, value in values.items()}
    try:
        return cls(**built)
    except ConfigError as exc:
        raise ConfigError(f"{key or 'config'}: {exc}") from None


def _convert(annotation, value, key: str):
    """``value`` as the type ``annotation`` (dataclass, list, tuple, dict, scalar or Optional)."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        annotation = next(a for a in arguments if a is not type(None))
        return _convert(annotation, value, key)
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        return [_convert(arguments[0], item, f"{key}.{index}") for index, item in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(arguments):
            raise ConfigError(f"config key {key!r} must be a list of {len(arguments)} values, got {value!r}")
        return tuple(_convert(a, item, key) for a, item in zip(arguments, value, strict=True))
    if annotation is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
        return dict(value)
    return _scalar(annotation, value, key)


def _scalar(annotation, value, key: str):
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation is float and not isinstance(value, bool):
        # YAML reads "1e-5" (no dot) as a string; accept it as the number it means.
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    if annotation is str and isinstance(value, str):
        return value
    raise ConfigError(f"config key {key!r} must be of type {annotation.__name__}, got {value!r}")


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
