"""The training loop: one process (CPU or one GPU) or many under torchrun (DDP or FSDP).

    trainer = Trainer(load_run_config("configs/tiny_cpu.yaml"))
    result = trainer.run()

Each step: forward (the trunk autocasts to ``train.precision`` and the dense heads to
``train.head_precision`` on CUDA, passed to the model per call; losses run in float32), the total
loss, backward, gradient clipping, AdamW, one scheduler step. A step whose loss or gradient norm
is not finite is skipped on every rank; with the fused AdamW kernel (one process or DDP) the
kernel itself skips it, so a step never waits for the GPU, and a non-finite loss stops the run at
the next log or checkpoint, naming its step. Checkpoints
(see iggt.train.checkpoint) restore the run exactly; ``train.max_time_minutes`` saves and returns
before the limit so a run can be continued by calling the same command again.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from iggt.device import DTYPES
from iggt.errors import CheckpointError, ConfigError
from iggt.model.iggt import IGGT
from iggt.train import checkpoint as ckpt
from iggt.train import compile_cache, guards
from iggt.train import distributed as dist_utils
from iggt.train.config import RunConfig, save_run_config
from iggt.train.data import BatchSource, build_source, to_device
from iggt.train.losses import total_loss
from iggt.train.optim import WarmupCosine, apply_freeze, build_optimizer, build_scheduler
from iggt.train.run_log import RunLog, Throughput
from iggt.train.stage_timer import StageTimer

logger = logging.getLogger(__name__)

TIMING_FIELDS = ("samples_per_s", "views_per_s", "elapsed_s", "max_memory_gb")


@dataclass
class TrainResult:
    """How a call of Trainer.run ended."""

    step: int
    finished: bool
    """True when train.steps were reached; False when the time limit stopped the run early."""
    output_dir: Path
    checkpoint: Path | None = None
    final_model: Path | None = None
    last_record: dict = field(default_factory=dict)


class Trainer:
    """Builds model, optimiser, schedule and data from a RunConfig, restoring a checkpoint if any.

    ``source`` replaces the configured data sources (any object with next_batch / state_dict /
    load_state_dict, e.g. a fixed batch for a smoke test).
    """

    def __init__(self, config: RunConfig, source: BatchSource | None = None, show_progress: bool = True) -> None:
        self.start_time = time.monotonic()
        self.last_save_seconds = 10.0
        self.log_sums: dict[str, torch.Tensor] = {}
        self.log_count = 0
        self.config = config
        self.show_progress = show_progress
        self.context = dist_utils.init_distributed(config.train.device)
        self.output_dir = Path(config.train.output_dir)
        self.checkpoints_dir = self.output_dir / "checkpoints"
        if self.context.is_main:
            self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        if self.context.device.type == "cuda":
            torch.set_float32_matmul_precision("high")
        _seed_everything(config.train.seed)  # same initial weights on every rank
        resume_dir = self._resume_directory()
        state = ckpt.read_training_state(resume_dir) if resume_dir else None
        self.model = build_model(config, resume_dir, state)
        # Handed to every forward: the trunk autocasts to it on CUDA (the model ignores it on the CPU).
        self.trunk_dtype = DTYPES[config.train.precision]
        self.head_dtype = DTYPES[config.train.head_precision]
        if self.context.is_main:  # after the resume checks, so a refused run leaves config.yaml as it was
            save_run_config(config, self.output_dir / "config.yaml")
        self.step = state["step"] if state else 0
        apply_freeze(self.model, config.freeze)
        self.model.to(self.context.device)
        if config.train.channels_last:  # 4-D weights only; convolutions then run NHWC
            self.model.to(memory_format=torch.channels_last)
        self.module = dist_utils.wrap_model(self.model, self.context, config.train.strategy, _has_unused_heads(config))
        if config.train.compile_cache:  # before anything compiles: the model and the renderer
            compile_cache.load_compile_cache(config.train.compile_cache)
        if config.train.compile:
            self.module = torch.compile(self.module)
        # The fused kernel (CUDA and CPU), except on FSDP's sharded parameters.
        self.fused = self._optimizer_format() == "plain"
        self.optimizer = build_optimizer(self.model, config.optim, self.fused)
        # (step, loss) of the first non-finite loss since the last check, kept on the device.
        self.first_bad_loss = torch.tensor([math.inf, math.nan], dtype=torch.float64, device=self.context.device)
        self.device_step = torch.tensor(float(self.step), dtype=torch.float64, device=self.context.device)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.train.steps)
        _seed_everything(config.train.seed * 1_000_003 + self.context.rank)  # per-rank sampling
        self.source = source or build_source(
            config.data, config.train.seed, self.context.rank, self.context.world_size, self.context.device
        )
        if state:
            self._restore(state)
            logger.info("resumed from %s at step %d", resume_dir, self.step)

    # ------------------------------------------------------------------------------ set-up

    def _resume_directory(self) -> Path | None:
        setting = self.config.train.resume
        if setting == "never":
            # Starting over would overwrite this run's log and checkpoints: a repeated "never" on a
            # continuation call once threw away 936 steps (docs/model_card_iggt-small.md).
            existing = self.checkpoints_dir.is_dir() and ckpt.latest_checkpoint(self.checkpoints_dir)
            if existing:
                raise ConfigError(
                    f"{self.output_dir} already holds a run (latest checkpoint {existing.name}) and train.resume is "
                    "'never'; pass train.resume=auto to continue it, or choose another train.output_dir"
                )
            return None
        if setting == "auto":
            return ckpt.latest_checkpoint(self.checkpoints_dir)
        path = Path(setting)
        if ckpt.is_transfer_checkpoint(path):
            return self._unpack_transfer(path)
        if not path.is_dir():
            raise CheckpointError(
                f"train.resume {setting!r} is not a checkpoint directory; pass one, 'auto' or 'never'"
            )
        return path

    def _unpack_transfer(self, transfer_dir: Path) -> Path:
        """Rebuild a transfer checkpoint into checkpoints/ (main rank) and return its directory."""
        import json

        name = json.loads((transfer_dir / ckpt.MANIFEST_FILENAME).read_text())["source"]
        directory = self.checkpoints_dir / name
        if self.context.is_main:
            ckpt.join_transfer_checkpoint(transfer_dir, directory)
            ckpt.mark_latest(self.checkpoints_dir, directory, self.config.train.keep_checkpoints)
        dist_utils.barrier(self.context)
        return directory

    def _restore(self, state: dict) -> None:
        strategy = self.config.train.strategy
        if state["optimizer_format"] != self._optimizer_format():
            raise ConfigError(
                f"the checkpoint's optimiser state is in the {state['optimizer_format']} format but this run "
                f"uses {self._optimizer_format()}; resume with the train.strategy and launcher it was written with"
            )
        dist_utils.load_optimizer_state(self.model, self.optimizer, state["optimizer"], strategy)
        self.scheduler.load_state_dict(state["scheduler"])
        # The schedule's shape follows the current config (e.g. a longer train.steps).
        optim = self.config.optim
        factor = WarmupCosine(optim.warmup_steps, self.config.train.steps, optim.min_lr_ratio)
        self.scheduler.lr_lambdas = [factor] * len(self.optimizer.param_groups)
        ranks = state["ranks"]
        if len(ranks) != self.context.world_size:
            logger.warning(
                "checkpoint was written by %d ranks, this run has %d: data positions and random "
                "states restart for ranks beyond the first %d",
                len(ranks),
                self.context.world_size,
                min(len(ranks), self.context.world_size),
            )
        if self.context.rank < len(ranks):
            mine = ranks[self.context.rank]
            ckpt.set_rng_state(mine["rng"])
            self.source.load_state_dict(mine["data"])
            sums, self.log_count = mine["log"]
            self.log_sums = {name: value.to(self.context.device) for name, value in sums.items()}

    # ------------------------------------------------------------------------------ training

    def train_step(self, batch: dict[str, torch.Tensor], timer: StageTimer | None = None) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch already on the device; returns detached logged values.

        ``timer`` (benchmarks only) is marked after the forward pass, the loss, the backward pass
        and the optimiser step, synchronising the device at each mark.
        """
        mark = timer.mark if timer is not None else lambda stage: None
        predictions = self.module(batch["images"], trunk_dtype=self.trunk_dtype, head_dtype=self.head_dtype)
        mark("forward")
        loss, logged = total_loss(predictions, batch, self.config.loss)
        mark("loss")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        mark("backward")
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        max_norm = self.config.optim.grad_clip if self.config.optim.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        if hasattr(grad_norm, "full_tensor"):  # FSDP returns a distributed tensor
            grad_norm = grad_norm.full_tensor()
        # [gradient finite, loss finite], averaged over ranks so that every rank skips the same steps.
        flags = torch.stack([torch.isfinite(grad_norm), torch.isfinite(loss.detach())]).float()
        gradient_finite, loss_finite = dist_utils.mean_over_ranks(flags, self.context) == 1.0
        finite = gradient_finite & loss_finite
        self.device_step += 1
        first = ~loss_finite & torch.isinf(self.first_bad_loss[0])
        bad = torch.stack([self.device_step, loss.detach().double()])
        self.first_bad_loss = torch.where(first, bad, self.first_bad_loss)
        if self.fused:
            # The kernel reads found_inf on the device and leaves weights, moments and its step
            # count as they were when it is 1 (as under torch.amp.GradScaler).
            self.optimizer.found_inf = (~finite).float()
            self.optimizer.step()
        elif finite.item():  # FSDP: the unfused optimiser cannot skip on the device
            self.optimizer.step()
        self.scheduler.step()
        mark("optimiser")
        logged["grad_norm"] = grad_norm.detach()
        logged["skipped"] = (~finite).float()
        return logged

    def check_losses(self) -> None:
        """Raise a TrainingError if a step since the last check had a non-finite loss (waits for the GPU)."""
        step, value = self.first_bad_loss.tolist()
        if math.isfinite(step):
            raise guards.non_finite_loss(int(step), value, self.checkpoints_dir)

    def run(self, until_step: int | None = None) -> TrainResult:
        """Train until train.steps, the time limit, or ``until_step`` (a pause: the schedule still
        spans train.steps); save a checkpoint and return."""
        config = self.config.train
        pause_at = config.steps if until_step is None else min(until_step, config.steps)
        run_log = RunLog(self.output_dir, self.step) if self.context.is_main else None
        self.module.train()
        progress = tqdm(
            total=config.steps,
            initial=self.step,
            disable=not (self.context.is_main and self.show_progress),
            mininterval=5,
            dynamic_ncols=True,
        )
        try:
            return self._train_until(pause_at, run_log, progress)
        finally:
            progress.close()
            if run_log:
                run_log.close()

    def _train_until(self, pause_at: int, run_log: RunLog | None, progress: tqdm) -> TrainResult:
        """The loop of :meth:`run`; a TrainingError (non-finite loss) leaves it without saving."""
        config = self.config.train
        throughput = Throughput()
        record: dict = {}
        step_start = time.monotonic()
        if self.step >= config.steps:
            return self._finish({})
        first_step = True
        while self.step < config.steps:
            batch = to_device(self.source.next_batch(), self.context.device)
            logged = self.train_step(batch)
            self.step += 1
            throughput.add(batch["images"].shape[0] * self.context.world_size)
            self._accumulate(logged)
            progress.update(1)
            if self.step % config.log_interval == 0 or self.step == config.steps:
                record = self._log_record(throughput)
                if run_log:
                    run_log.write(record)
                progress.set_postfix(loss=f"{record['loss']:.4f}")
            step_seconds, step_start = time.monotonic() - step_start, time.monotonic()
            # A process's first step compiles and warms up: it says nothing about the next one's time.
            paused = self.step == pause_at or self._time_is_up(0.0 if first_step else step_seconds)
            first_step = False
            if paused and self.step < config.steps:
                progress.close()
                directory = self.save_checkpoint()
                logger.info("paused at step %d; run the same command again to continue", self.step)
                return TrainResult(self.step, False, self.output_dir, directory, None, record)
            if self.step % config.checkpoint_interval == 0 and self.step < config.steps:
                self.save_checkpoint()
        progress.close()
        return self._finish(record)

    def _finish(self, record: dict) -> TrainResult:
        self.check_losses()
        needs_checkpoint = dist_utils.broadcast_flag(self._needs_final_checkpoint(), self.context)
        directory = (
            self.save_checkpoint() if needs_checkpoint else self.checkpoints_dir / ckpt.checkpoint_name(self.step)
        )
        final = self.export()
        return TrainResult(self.step, True, self.output_dir, directory, final, record)

    def _needs_final_checkpoint(self) -> bool:
        latest = ckpt.latest_checkpoint(self.checkpoints_dir) if self.checkpoints_dir.is_dir() else None
        return latest is None or latest.name != ckpt.checkpoint_name(self.step)

    def _time_is_up(self, step_seconds: float) -> bool:
        limit = self.config.train.max_time_minutes
        if limit is None:
            return False
        elapsed = time.monotonic() - self.start_time
        # Leave room for one more step and a checkpoint save before the limit.
        up = elapsed + 2 * step_seconds + 1.5 * self.last_save_seconds >= 60 * limit
        return dist_utils.broadcast_flag(up, self.context)

    def _accumulate(self, logged: dict[str, torch.Tensor]) -> None:
        """Add a step's values to the sums of the current log interval (kept on the device)."""
        for name, value in logged.items():
            self.log_sums[name] = self.log_sums.get(name, 0.0) + value.float().to(self.context.device)
        self.log_count += 1

    def _log_record(self, throughput: Throughput) -> dict:
        """Means over the interval and the ranks, learning rates and throughput; resets the sums."""
        self.check_losses()
        names = sorted(self.log_sums)
        stacked = torch.stack([self.log_sums[n] for n in names]) / self.log_count
        means = dist_utils.mean_over_ranks(stacked, self.context)
        self.log_sums, self.log_count = {}, 0
        record = {"step": self.step}
        record.update(zip(names, means.tolist(), strict=True))
        for group in self.optimizer.param_groups:
            record[f"lr_{group['name']}"] = group["lr"]
        record.update(throughput.rates(self.config.data.views))
        record["elapsed_s"] = time.monotonic() - self.start_time
        if self.context.device.type == "cuda":
            record["max_memory_gb"] = torch.cuda.max_memory_allocated(self.context.device) / 2**30
        return record

    # ------------------------------------------------------------------------------ saving

    def save_checkpoint(self) -> Path:
        """Write checkpoints/step_N (all ranks take part; the main rank writes) and return it."""
        self.check_losses()
        started = time.monotonic()
        strategy = self.config.train.strategy
        model_state = dist_utils.full_model_state(self.model, strategy)
        self._check_finite(model_state)
        optimizer_state = dist_utils.full_optimizer_state(self.model, self.optimizer, strategy)
        # The partial log interval travels too, so a resumed run logs the same means.
        sums = {name: value.cpu() for name, value in self.log_sums.items()}
        rank_state = {"rng": ckpt.rng_state(), "data": self.source.state_dict(), "log": (sums, self.log_count)}
        per_rank = dist_utils.gather_objects(rank_state, self.context)
        directory = self.checkpoints_dir / ckpt.checkpoint_name(self.step)
        if self.context.is_main:
            training_state = {
                "step": self.step,
                "optimizer": optimizer_state,
                "optimizer_format": self._optimizer_format(),
                "scheduler": self.scheduler.state_dict(),
                "ranks": per_rank,
                "config": self.config.to_dict(),
            }
            ckpt.write_checkpoint(directory, model_state, self.model.config.to_dict(), training_state)
            ckpt.mark_latest(self.checkpoints_dir, directory, self.config.train.keep_checkpoints)
            if self.config.train.transfer_checkpoint:
                ckpt.split_into_parts(
                    directory,
                    self.output_dir / "transfer",
                    int(self.config.train.transfer_part_mb * 2**20),
                    self.config.train.transfer_bf16,
                    self.config.train.transfer_training_state,
                    self.config.train.transfer_compact_state,
                )
            if self.config.train.compile_cache:
                compile_cache.save_compile_cache(self.config.train.compile_cache)
        dist_utils.barrier(self.context)
        self.last_save_seconds = time.monotonic() - started
        return directory

    def _check_finite(self, model_state: dict) -> None:
        """Refuse to write weights holding NaN or infinity (decided on the main rank, which holds them all)."""
        bad = self.context.is_main and guards.first_non_finite(model_state) is not None
        bad = dist_utils.broadcast_flag(bad, self.context)
        guards.check_finite_weights(model_state if self.context.is_main else None, bad, self.step, self.checkpoints_dir)

    def _optimizer_format(self) -> str:
        """ "fsdp" (keyed by parameter name) under torchrun with FSDP, else "plain" (keyed by index)."""
        return "fsdp" if self.context.distributed and self.config.train.strategy == "fsdp" else "plain"

    def export(self) -> Path | None:
        """The shipping weights: output_dir/final/model.safetensors (config embedded)."""
        model_state = dist_utils.full_model_state(self.model, self.config.train.strategy)
        self._check_finite(model_state)
        path = None
        if self.context.is_main:
            path = ckpt.export_model(
                model_state,
                self.model.config.to_dict(),
                self.output_dir / "final",
                self.config.train.export_bf16,
            )
        dist_utils.barrier(self.context)
        return path


def build_model(config: RunConfig, resume_dir: Path | None = None, state: dict | None = None) -> IGGT:
    """The network of config.model: the architecture and weights of the checkpoint being resumed
    (refused when config.model asks for another architecture; ``state`` is its training state),
    else those of model.init_checkpoint, else a freshly initialised preset."""
    model_config = config.model
    overrides = dict(model_config.overrides)
    if resume_dir is not None:
        # The checkpoint embeds the architecture it was trained with, overrides included.
        model = IGGT.from_pretrained(resume_dir)
        guards.check_resumed_architecture(model_config, model.config, state, resume_dir)
    elif model_config.init_checkpoint:
        if overrides:
            raise ConfigError(
                f"model.overrides {sorted(overrides)} change the architecture of model.init_checkpoint, "
                "which its file decides; remove them"
            )
        model = IGGT.from_pretrained(model_config.init_checkpoint)
    else:
        model = IGGT.from_preset(model_config.preset, **overrides)
    model.set_activation_checkpointing(model_config.activation_checkpointing)
    return model


def _has_unused_heads(config: RunConfig) -> bool:
    """True when a loss weight is 0: its head then gets no gradient, which DDP must be told."""
    loss = config.loss
    return not all((loss.camera.weight, loss.depth.weight, loss.points.weight, loss.contrastive.weight))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
