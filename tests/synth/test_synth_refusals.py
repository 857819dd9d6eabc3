"""`iggt synth` and the scene configs refuse what would crash or exhaust memory, in one line."""

import pytest

from iggt.cli.main import main
from iggt.errors import ConfigError
from iggt.synth.config import RenderConfig, SceneConfig


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--scenes-per-batch", "0"], "--scenes-per-batch must be >= 1, got 0"),
        (["--size", "20000x20000"], "--size 20000x20000 is above the largest size 2048x2048"),
        (["--size", "3000x100"], "--size 3000x100 is above the largest size 2048x2048"),
    ],
)
def test_bad_arguments_are_one_line_before_anything_is_written(tmp_path, capsys, arguments, message):
    code = main(["synth", "--out", str(tmp_path / "data"), "--scenes", "1", "--views", "1", *arguments])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SceneConfig(rug_probability=float("nan")), r"rug_probability=nan must be a probability in \[0, 1\]"),
        (lambda: SceneConfig(open_ceiling_probability=1.5), r"open_ceiling_probability=1.5 must be a probability"),
        (lambda: SceneConfig(camera_clearance=float("inf")), r"camera_clearance=inf must be a finite number >= 0"),
        (lambda: SceneConfig(fov_jitter_deg=float("nan")), r"fov_jitter_deg=nan must be a finite number >= 0"),
        (lambda: SceneConfig(room_size_range=(4.0, float("inf"))), r"room_size_range .* finite"),
        (lambda: SceneConfig(trajectory_weights={"orbit": float("nan")}), r"trajectory_weights .* finite"),
    ],
)
def test_scene_config_numbers_must_be_finite_and_in_range(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_render_config_keeps_its_checks():
    with pytest.raises(ConfigError, match="supersample"):
        RenderConfig(supersample=2)
