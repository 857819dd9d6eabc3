"""Training refuses what it cannot use: non-finite numbers, broken files, a changed architecture,
and stops on a non-finite loss without overwriting the last good checkpoint."""

import pytest
import torch
from train_helpers import HandBuiltSource, tiny_config

from iggt.cli.main import main
from iggt.errors import CheckpointError, ConfigError, TrainingError
from iggt.train.checkpoint import latest_checkpoint
from iggt.train.config import load_run_config
from iggt.train.trainer import Trainer


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=nan", r"optim.lr=nan must be a finite number > 0"),
        ("optim.grad_clip=inf", r"optim.grad_clip=inf must be a finite number >= 0"),
        ("loss.depth.weight=-.inf", r"loss.depth.weight=-inf must be a finite number"),
        ("data.sources.0.weight=nan", r"data.sources.0.weight=nan must be a finite number >= 0"),
        ("train.max_time_minutes=nan", r"train.max_time_minutes=nan must be a finite number > 0"),
        ("optim.betas=[0.9,1.5]", r"optim.betas=\[0.9, 1.5\] must be two numbers in \[0, 1\)"),
        ("train.checkpoint_interval=0", r"train.checkpoint_interval=0 must be >= 1"),
        ("train.log_interval=0", r"train.log_interval=0 must be >= 1"),
    ],
)
def test_numbers_no_run_can_use_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(None, [override])


def test_malformed_yaml_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  steps: 5\n  seed: [1, 2\n")
    with pytest.raises(ConfigError, match=r"run.yaml is not valid YAML \(line 4"):
        load_run_config(path)
    with pytest.raises(ConfigError, match=r"override 'train.steps=\[1' has a value that is not valid YAML"):
        load_run_config(None, ["train.steps=[1"])


def test_cli_prints_one_line_for_a_zero_checkpoint_interval(tmp_path, capsys):
    code = main(["train", "train.checkpoint_interval=0", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "train.checkpoint_interval=0 must be >= 1" in err


def test_a_truncated_training_state_is_a_checkpoint_error(tmp_path):
    Trainer(tiny_config(tmp_path), source=HandBuiltSource(), show_progress=False).run(until_step=1)
    state = latest_checkpoint(tmp_path / "checkpoints") / "training_state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"training_state.pt of step_0000001 cannot be read .*truncated"):
        Trainer(tiny_config(tmp_path), source=HandBuiltSource(), show_progress=False)


def test_resuming_with_another_architecture_is_refused_naming_both(tmp_path):
    Trainer(tiny_config(tmp_path), source=HandBuiltSource(), show_progress=False).run(until_step=1)
    saved = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"step_0000001 .*model.preset=tiny.* this run asks for model.preset=small"):
        Trainer(tiny_config(tmp_path, "model.preset=small"), source=HandBuiltSource(), show_progress=False)
    assert (tmp_path / "config.yaml").read_text() == saved  # still names the network on disk
    with pytest.raises(ConfigError, match=r"this run asks for model.preset=tiny model.overrides.depth=5"):
        Trainer(tiny_config(tmp_path, "model.overrides.depth=5"), source=HandBuiltSource(), show_progress=False)
    # Run-time settings are not the architecture: changing them resumes.
    resumed = Trainer(tiny_config(tmp_path, "model.activation_checkpointing=true"), source=HandBuiltSource())
    assert resumed.step == 1


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("frames_chunk_size", "remove it"),
        ("trunk_dtype", "set train.precision instead"),
        ("activation_checkpointing", "set model.activation_checkpointing instead"),
    ],
)
def test_an_override_of_a_former_run_time_field_names_its_new_place(name, fix):
    with pytest.raises(ConfigError, match=rf"model.overrides.{name} is a run-time setting.*; {fix}"):
        load_run_config(None, [f"model.overrides.{name}=1"])


class CorruptAtStep(HandBuiltSource):
    """Batches of the hand-built source, with NaN images from batch ``bad`` on (a corrupt sample)."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad = bad

    def next_batch(self) -> dict:
        batch = super().next_batch()
        if self.index > self.bad - 1:
            batch["images"][0, 0, 0, 0, 0] = float("nan")
        return batch


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config(tmp_path, "train.checkpoint_interval=2", "train.log_interval=2")
    trainer = Trainer(config, source=CorruptAtStep(bad=3), show_progress=False)
    with pytest.raises(TrainingError, match=r"step 3: the loss is not finite \(nan\).*step_0000002 is kept"):
        trainer.run()
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step_0000002"
    assert not (tmp_path / "checkpoints" / "step_0000003").exists()
    assert not (tmp_path / "final").exists()


def test_a_checkpoint_is_never_written_from_non_finite_weights(tmp_path):
    trainer = Trainer(tiny_config(tmp_path), source=HandBuiltSource(), show_progress=False)
    trainer.run(until_step=1)
    with torch.no_grad():
        trainer.model.camera_head.trunk[0].norm1.weight[0] = float("inf")  # e.g. an overflowed update
    with pytest.raises(TrainingError, match=r"camera_head.trunk.0.norm1.weight.*not finite.*step_0000001 is kept"):
        trainer.save_checkpoint()
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step_0000001"
    with pytest.raises(TrainingError, match="not finite"):
        trainer.export()
    assert not (tmp_path / "final").exists()
