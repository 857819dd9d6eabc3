"""Run configs: YAML + overrides, errors naming the bad key, the shipped named configs."""

from pathlib import Path

import pytest
from train_helpers import HandBuiltSource, tiny_config

from iggt.cli.main import main
from iggt.device import dtype_name
from iggt.errors import ConfigError
from iggt.model.config import get_config
from iggt.train.config import load_run_config, save_run_config
from iggt.train.trainer import Trainer

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_file_then_overrides_take_precedence(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  steps: 50\n  seed: 3\noptim:\n  lr: 1e-5\n")
    config = load_run_config(path, ["train.steps=7", "loss.contrastive.sampling.squared=true"])
    assert config.train.steps == 7  # override beats file
    assert config.train.seed == 3  # file beats default
    assert config.optim.lr == 1e-5  # "1e-5" (a YAML string) read as the float it means
    assert config.loss.contrastive.sampling.squared is True
    assert config.train.log_interval == 10  # default


def test_list_items_and_free_form_dicts_can_be_overridden():
    config = load_run_config(None, ["data.sources.0.weight=3", "model.overrides.depth=2", "data.image_size=[28,42]"])
    assert config.data.sources[0].weight == 3.0
    assert config.model.overrides == {"depth": 2}
    assert config.data.image_size == (28, 42)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.stepz=3", "unknown config key train.stepz"),
        ("trian.steps=3", "unknown config key trian"),
        ("train.steps=abc", "'train.steps' must be of type int"),
        ("train.resume", "not of the form key.sub=value"),
        ("data.sources.4.weight=1", "not an index below 1"),
        ("loss.contrastive.sampling.reduction=max", "reduction 'max' is not one of"),
        ("train.precision=fp8", "train.precision 'fp8'"),
        ("train.precision=fp16", r"train.precision 'fp16' is not one of bf16 \(bfloat16\) or fp32 \(float32\)"),
    ],
)
def test_bad_keys_and_values_raise_one_line_config_errors(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_run_config(None, [override])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("spelling", "trunk_dtype"), [("bf16", "bfloat16"), ("bfloat16", "bfloat16"), ("fp32", "float32")]
)
def test_precision_takes_every_spelling_of_the_shared_vocabulary(spelling, trunk_dtype, tmp_path):
    config = tiny_config(tmp_path, f"train.precision={spelling}")
    trainer = Trainer(config, source=HandBuiltSource(), show_progress=False)
    assert dtype_name(trainer.trunk_dtype) == trunk_dtype  # handed to every forward of the run
    assert trainer.model.config == get_config(config.model.preset, **config.model.overrides)  # as built


def test_saved_config_reads_back_equal(tmp_path):
    config = load_run_config(None, ["train.steps=9", "data.image_size=[28,42]", "freeze.trunk=true"])
    save_run_config(config, tmp_path / "config.yaml")
    assert load_run_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_load(path):
    config = load_run_config(path)
    assert config.data.image_size[0] % 14 == 0 and config.data.image_size[1] % 14 == 0


def test_the_named_configs_exist():
    assert {p.stem for p in CONFIGS} >= {"tiny_cpu", "small_synthetic", "finetune_from_vggt"}


def test_cli_reports_an_unknown_key_on_one_line(capsys):
    assert main(["train", "train.nonsense=1", "--print-config"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("iggt train: error: unknown config key train.nonsense") and "\n" not in error


def test_cli_prints_the_resolved_config(capsys):
    assert main(["train", "--config", str(CONFIGS[0]), "train.steps=5", "--max-minutes", "9", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "steps: 5" in printed and "max_time_minutes: 9.0" in printed
