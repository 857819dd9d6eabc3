"""What keeps a run from going on with a state it cannot use.

- Resuming: the checkpoint's architecture must be the one the config asks for, or the run would
  keep training the old network while config.yaml names the new one.
- A non-finite loss stops the run at that step, and no checkpoint or export is ever written from
  non-finite weights, so the last good checkpoint on disk stays the one a resume starts from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from iggt.errors import ConfigError, TrainingError
from iggt.model.checkpoint import first_non_finite

__all__ = ["check_finite_weights", "check_resumed_architecture", "first_non_finite", "non_finite_loss"]
from iggt.model.config import RETIRED_FIELDS, IGGTConfig, get_config
from iggt.train import checkpoint as ckpt


def check_resumed_architecture(
    model_section, checkpoint_config: IGGTConfig, state: dict | None, directory: Path
) -> None:
    """Raise ConfigError when ``model_section`` (a ModelConfig) asks for another network than the
    checkpoint in ``directory`` holds. A run started from model.init_checkpoint takes its file's
    architecture, which the config does not state, so only preset + overrides are compared."""
    if model_section.init_checkpoint:
        return
    asked = get_config(model_section.preset, **model_section.overrides)
    differing = [
        f.name for f in dataclasses.fields(IGGTConfig) if getattr(asked, f.name) != getattr(checkpoint_config, f.name)
    ]
    if not differing:
        return
    written = (state or {}).get("config", {}).get("model")
    trained_as = _describe(written["preset"], written.get("overrides", {})) if written else "another"
    raise ConfigError(
        f"checkpoint {directory.name} was trained as {trained_as}, but this run asks for "
        f"{_describe(model_section.preset, model_section.overrides)} ({', '.join(differing[:4])} "
        "differ); resume with the model settings it was trained with, or choose another train.output_dir"
    )


def _describe(preset: str, overrides: dict) -> str:
    # Runs written before run-time settings left IGGTConfig may name them among the overrides.
    architectural = sorted((k, v) for k, v in overrides.items() if k not in RETIRED_FIELDS)
    return " ".join([f"model.preset={preset}", *(f"model.overrides.{k}={v}" for k, v in architectural)])


def _kept(checkpoints_dir: Path) -> str:
    latest = ckpt.latest_checkpoint(checkpoints_dir) if checkpoints_dir.is_dir() else None
    if latest is None:
        return "no checkpoint was written before it"
    return f"the last good checkpoint {latest.name} is kept (train.resume=auto continues from it)"


def non_finite_loss(step: int, loss: float, checkpoints_dir: Path) -> TrainingError:
    """The error that stops a run whose loss at ``step`` is NaN or infinite."""
    return TrainingError(
        f"training stopped at step {step}: the loss is not finite ({loss}); {_kept(checkpoints_dir)}; "
        "lower optim.lr or optim.grad_clip, or check the training data"
    )


def check_finite_weights(model_state: dict | None, bad_anywhere: bool, step: int, checkpoints_dir: Path) -> None:
    """Raise TrainingError when the weights about to be saved at ``step`` hold NaN or infinity.

    ``bad_anywhere`` is the decision shared by every rank; ``model_state`` (the full state, on the
    main rank) names the tensor."""
    if not bad_anywhere:
        return
    key = first_non_finite(model_state) if model_state else None
    which = f"tensor {key!r}" if key else "a tensor"
    raise TrainingError(
        f"not saving step {step}: {which} of the model is not finite; {_kept(checkpoints_dir)}; "
        "lower optim.lr or optim.grad_clip, or check the training data"
    )
