"""`--fast-mode` of `iggt reconstruct` and `iggt eval`: the mode reaches the network, is recorded,
and a bad name is one line naming the choices."""

import json

import numpy as np

from iggt.cli.main import main


def reconstruct(capsys, photos, weights, out, *options) -> tuple[int, str, str]:
    arguments = [photos, "--out", out, "--model", weights, "--device", "cpu", "--quiet", *options]
    code = main(["reconstruct", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_unknown_fast_mode_is_one_line_naming_the_choices(capsys, tmp_path, photos, tiny_weights):
    code, _, err = reconstruct(capsys, photos, tiny_weights, tmp_path / "out", "--fast-mode", "fastest")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1, err
    assert lines[0] == (
        "iggt reconstruct: error: unknown fast mode 'fastest'; "
        "choose one of ['exact', 'avggt', 'kv-subsample', 'merge', 'fp8']"
    )


def test_fp8_where_fa3_cannot_run_is_one_line_and_writes_nothing(capsys, tmp_path, photos, tiny_weights):
    code, _, err = reconstruct(capsys, photos, tiny_weights, tmp_path / "out", "--fast-mode", "fp8")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("iggt reconstruct: error: fast mode 'fp8' needs FlashAttention-3, which cannot run here")
    assert not (tmp_path / "out").exists()
    code = main(["eval", "--data", str(tmp_path), "--out", str(tmp_path / "report"), "--fast-mode", "fp8"])
    assert code == 2 and "fast mode 'fp8' needs FlashAttention-3" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_the_fast_mode_runs_and_is_recorded_beside_the_exact_default(capsys, tmp_path, photos, tiny_weights):
    runs = {}
    for mode in ("exact", "merge"):
        options = () if mode == "exact" else ("--fast-mode", mode)
        code, out, _ = reconstruct(capsys, photos, tiny_weights, tmp_path / mode, *options)
        assert code == 0
        assert ("merge fast mode" in out) == (mode == "merge")
        summary = json.loads((tmp_path / mode / "reconstruction.json").read_text())
        assert summary["fast_mode"] == mode
        with np.load(tmp_path / mode / "predictions.npz") as data:
            runs[mode] = data["depth"]
    assert runs["exact"].shape == runs["merge"].shape
    assert not np.array_equal(runs["exact"], runs["merge"])  # the mode reached the network


def test_eval_refuses_an_unknown_fast_mode_before_reading_the_data(capsys, tmp_path):
    code = main(["eval", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "report"), "--fast-mode", "x"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1
    assert lines[0].endswith("unknown fast mode 'x'; choose one of ['exact', 'avggt', 'kv-subsample', 'merge', 'fp8']")
