"""The trainer on the tiny preset at 28 x 28: freezing, learning, exact resume, time limit, export."""

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import HandBuiltSource, make_batch, tiny_config

from iggt import IGGT
from iggt.cli.main import main
from iggt.errors import ConfigError
from iggt.train import trainer as trainer_module
from iggt.train.config import FreezeConfig, load_run_config
from iggt.train.losses import LossConfig, total_loss
from iggt.train.optim import ALWAYS_FROZEN, GEOMETRY_HEADS, INSTANCE_MODULES, TRUNK, apply_freeze
from iggt.train.trainer import TIMING_FIELDS, Trainer, build_model


@pytest.mark.parametrize(
    "freeze, trained",
    [
        (FreezeConfig(), TRUNK + GEOMETRY_HEADS + INSTANCE_MODULES),
        (FreezeConfig(trunk=True), GEOMETRY_HEADS + INSTANCE_MODULES),
        (FreezeConfig(geometry_heads=True), TRUNK + INSTANCE_MODULES),
        (FreezeConfig(instance_only=True), INSTANCE_MODULES),
    ],
)
def test_gradients_reach_exactly_the_unfrozen_parameters(tmp_path, freeze, trained):
    # 56 x 56, not the shared 28 x 28: at 28 the coarsest head level is one token, so the instance
    # head's cross-attention there sees identical keys and its query path gets an exactly-zero
    # gradient wherever the CPU's GEMM rounds rows alike (AMD AVX2), a float-noise gradient elsewhere.
    batch = make_batch(height=56, width=56)
    config = tiny_config(tmp_path)
    torch.manual_seed(0)
    model = build_model(config)
    fixed_by_model = {name for name, p in model.named_parameters() if not p.requires_grad}
    apply_freeze(model, freeze)
    model.train()
    loss, _ = total_loss(model(batch["images"]), batch, LossConfig())
    loss.backward()
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
    expected = {
        name
        for name, _ in model.named_parameters()
        if name.split(".")[0] in trained and name.split(".")[0] not in ALWAYS_FROZEN and name not in fixed_by_model
    }
    assert with_grad == expected
    assert all(p.grad.abs().sum() > 0 for name, p in model.named_parameters() if name in expected and p.ndim > 1)


def test_a_few_steps_on_one_batch_lower_the_loss(tmp_path):
    config = tiny_config(tmp_path, "train.steps=8")
    result = Trainer(config, source=HandBuiltSource(fixed=True), show_progress=False).run()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < 0.8 * losses[0]
    assert result.finished


def _loss_log(output_dir):
    records = [json.loads(line) for line in (output_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in record.items() if k not in TIMING_FIELDS} for record in records]


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    # Logged every 3 steps, paused at 2: the record at step 3 averages over the pause.
    def config(name):
        return tiny_config(tmp_path / name, "train.log_interval=3")

    straight = Trainer(config("a"), source=HandBuiltSource(), show_progress=False).run()
    paused = Trainer(config("b"), source=HandBuiltSource(), show_progress=False).run(until_step=2)
    assert not paused.finished and paused.step == 2
    resumed = Trainer(config("b"), source=HandBuiltSource(), show_progress=False)
    assert resumed.step == 2 and resumed.source.index == 2
    finished = resumed.run()
    assert finished.finished and finished.step == 4
    weights_a, weights_b = load_file(straight.final_model), load_file(finished.final_model)
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    log_a, log_b = _loss_log(tmp_path / "a"), _loss_log(tmp_path / "b")
    assert [r["step"] for r in log_a] == [3, 4] and log_a == log_b


def test_time_limit_saves_and_the_same_command_continues(tmp_path):
    config = tiny_config(tmp_path, "train.steps=2", "train.max_time_minutes=0.0001")
    first = Trainer(config, source=HandBuiltSource(), show_progress=False).run()
    assert not first.finished and first.step == 1
    assert (first.checkpoint / "training_state.pt").is_file()
    rest = Trainer(tiny_config(tmp_path, "train.steps=2"), source=HandBuiltSource(), show_progress=False).run()
    assert rest.finished and rest.step == 2
    assert [r["step"] for r in _loss_log(tmp_path)] == [1, 2]


class SlowBatch(HandBuiltSource):
    """Batch ``index`` moves the trainer's clock on by ``delay`` seconds, as a step that compiles the
    model takes (a shifted clock: the test does not wait for it)."""

    def __init__(self, monkeypatch, delay: float, index: int) -> None:
        super().__init__()
        self.offset, self.delay, self.slow_index = 0.0, delay, index
        real = time.monotonic
        monkeypatch.setattr(trainer_module.time, "monotonic", lambda: real() + self.offset)

    def next_batch(self) -> dict:
        if self.index == self.slow_index:
            self.offset += self.delay
        return super().next_batch()


def test_a_slow_first_step_does_not_stop_the_run_at_the_time_limit(tmp_path, monkeypatch):
    # The first step (100 s) would leave no room for "one more step like it" before the 3-minute
    # limit, but it stands for compilation, not for the steps after it: those are fast and all fit.
    config = tiny_config(tmp_path, "train.steps=4", "train.max_time_minutes=3")
    result = Trainer(config, source=SlowBatch(monkeypatch, delay=100.0, index=0), show_progress=False).run()
    assert result.finished and result.step == 4
    # A later slow step still counts: 70 s in step 2 leaves no room for another like it before the limit.
    later_config = tiny_config(tmp_path / "later", "train.steps=4", "train.max_time_minutes=3")
    stopped = Trainer(later_config, source=SlowBatch(monkeypatch, delay=70.0, index=1), show_progress=False).run()
    assert not stopped.finished and stopped.step == 2


def test_starting_over_in_a_directory_with_checkpoints_is_refused(tmp_path):
    first = tiny_config(tmp_path, "train.steps=1", "train.resume=never")
    Trainer(first, source=HandBuiltSource(), show_progress=False).run()
    log_before = _loss_log(tmp_path)
    with pytest.raises(ConfigError, match="already holds a run .*train.resume=auto"):
        Trainer(tiny_config(tmp_path, "train.steps=2", "train.resume=never"), source=HandBuiltSource())
    assert _loss_log(tmp_path) == log_before  # nothing was overwritten
    rest = Trainer(tiny_config(tmp_path, "train.steps=2", "train.resume=auto"), source=HandBuiltSource()).run()
    assert rest.step == 2 and [r["step"] for r in _loss_log(tmp_path)] == [1, 2]


def test_final_export_loads_with_from_pretrained(tmp_path):
    config = tiny_config(tmp_path, "train.steps=1", "train.export_bf16=true")
    trainer = Trainer(config, source=HandBuiltSource(), show_progress=False)
    result = trainer.run()
    exported = load_file(result.final_model)
    assert all(v.dtype == torch.bfloat16 for v in exported.values() if v.is_floating_point())
    model = IGGT.from_pretrained(result.final_model)
    reference = trainer.model.state_dict()
    assert model.config.to_dict() == trainer.model.config.to_dict()
    assert all(torch.equal(model.state_dict()[k], reference[k].bfloat16().float()) for k in reference)


def test_init_checkpoint_starts_from_its_weights(tmp_path):
    source = IGGT.from_preset("tiny")
    source.save_pretrained(tmp_path / "init")
    config = tiny_config(tmp_path / "run", f"model.init_checkpoint={tmp_path / 'init'}")
    model = build_model(config)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())


TINY_CPU = Path(__file__).parents[2] / "configs" / "tiny_cpu.yaml"


def test_resume_with_the_synthetic_stream_is_bit_identical(tmp_path):
    def config(name):
        return load_run_config(TINY_CPU, [f"train.output_dir={tmp_path / name}", "train.steps=2"])

    straight = Trainer(config("a"), show_progress=False).run()
    Trainer(config("b"), show_progress=False).run(until_step=1)
    resumed = Trainer(config("b"), show_progress=False)
    assert resumed.source.state_dict()["sources"][0]["step"] == 1  # the stream's position came back
    finished = resumed.run()
    weights_a, weights_b = load_file(straight.final_model), load_file(finished.final_model)
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert _loss_log(tmp_path / "a") == _loss_log(tmp_path / "b")


def test_iggt_train_runs_the_tiny_cpu_config(tmp_path, capsys):
    code = main(["train", "--config", str(TINY_CPU), "train.steps=2", "--output-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    assert "step 2/2 finished" in capsys.readouterr().out
    assert len(_loss_log(tmp_path)) == 2
    assert IGGT.from_pretrained(tmp_path / "final").config.embed_dim == 64


def test_a_step_with_a_non_finite_gradient_changes_nothing_and_the_next_one_trains(tmp_path, batch):
    trainer = Trainer(tiny_config(tmp_path), source=HandBuiltSource(), show_progress=False)
    trainer.module.train()
    trainer.train_step(batch)  # the optimiser now holds moments and a step count
    weights = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    moments = [{key: value.clone() for key, value in state.items()} for state in trainer.optimizer.state.values()]
    poisoned = trainer.model.camera_head.trunk[0].norm1.weight
    hook = poisoned.register_hook(lambda grad: torch.full_like(grad, float("inf")))
    logged = trainer.train_step(batch)
    assert logged["skipped"].item() == 1.0 and not torch.isfinite(logged["grad_norm"])
    assert all(torch.equal(p, weights[name]) for name, p in trainer.model.named_parameters())
    for before, state in zip(moments, trainer.optimizer.state.values(), strict=True):
        assert all(torch.equal(value, before[key]) for key, value in state.items())
    trainer.check_losses()  # the loss itself was finite: nothing to report
    hook.remove()
    logged = trainer.train_step(batch)
    assert logged["skipped"].item() == 0.0
    assert not torch.equal(poisoned.detach(), weights["camera_head.trunk.0.norm1.weight"])


def test_channels_last_weights_train_like_the_default_layout(tmp_path, batch):
    losses, layouts = [], []
    for channels_last in (False, True):
        torch.manual_seed(0)
        config = tiny_config(tmp_path / str(channels_last), f"train.channels_last={str(channels_last).lower()}")
        trainer = Trainer(config, source=HandBuiltSource(), show_progress=False)
        trainer.module.train()
        losses.append([trainer.train_step(batch)["loss"].item() for _ in range(2)])
        convolutions = [p for p in trainer.model.parameters() if p.ndim == 4]
        layouts.append(all(p.is_contiguous(memory_format=torch.channels_last) for p in convolutions))
    assert layouts == [False, True]
    # The second loss follows an optimiser step: equal up to float32 kernel differences between layouts.
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
