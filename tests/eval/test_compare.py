"""Bootstrap intervals of eval runs over scenes and their paired differences."""

import csv

import numpy as np
import pytest

from iggt.errors import InputError
from iggt.eval.compare import compare_runs, read_per_scene
from iggt.eval.intervals import bootstrap_mean


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def runs(rng, scenes=16, shift=0.0, spread=0.2):
    """Two runs whose per-scene values vary a lot between scenes and little between the runs."""
    base = rng.uniform(0.2, 0.8, scenes)
    first = {f"scene_{i:03d}": {"t_miou": base[i]} for i in range(scenes)}
    second = {f"scene_{i:03d}": {"t_miou": base[i] + shift + spread * rng.normal() * 0.01} for i in range(scenes)}
    return first, second


def test_the_interval_holds_the_mean_and_shrinks_with_scenes(rng):
    few = bootstrap_mean(rng.normal(size=8))
    many = bootstrap_mean(rng.normal(size=800))
    for interval in (few, many):
        assert interval.low < interval.mean < interval.high
    assert many.high - many.low < 0.3 * (few.high - few.low)  # about sqrt(100) = 10x narrower
    constant = bootstrap_mean(np.full(5, 0.25))
    assert constant.low == constant.mean == constant.high == 0.25 and constant.resolved


def test_pairing_resolves_a_small_shift_that_the_scene_spread_hides(rng):
    first, second = runs(rng, shift=0.01)
    table = compare_runs(first, second)["t_miou"]
    # each run's interval is wide (scenes differ by up to 0.6) and they overlap ...
    assert table["first"].high > table["second"].low and table["second"].high > table["first"].low
    # ... but the paired difference is 0.01 within about 0.001 and leaves out 0
    assert table["difference"].mean == pytest.approx(0.01, abs=2e-3) and table["difference"].resolved
    same = compare_runs(*runs(rng, shift=0.0))["t_miou"]["difference"]
    assert same.low < 0 < same.high and not same.resolved


def test_metrics_missing_for_a_scene_are_compared_where_both_have_them(rng):
    first, second = runs(rng, scenes=6)
    first["scene_002"]["t_miou"] = float("nan")
    second["scene_004"].pop("t_miou")
    second["scene_000"]["auc@30"] = 0.5  # in one run only: not compared
    table = compare_runs(first, second)
    assert list(table) == ["t_miou"]
    kept = [s for s in sorted(first) if s not in ("scene_002", "scene_004")]
    expected = np.mean([second[s]["t_miou"] - first[s]["t_miou"] for s in kept])
    assert table["t_miou"]["difference"].mean == pytest.approx(expected)


def test_runs_of_different_benchmarks_are_refused(rng):
    first, second = runs(rng)
    second["scene_999"] = second.pop("scene_000")
    with pytest.raises(InputError, match="different scenes"):
        compare_runs(first, second)


def write_csv(folder, rows):
    folder.mkdir()
    with (folder / "per_scene.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["scene", "method", "num_views", "abs_rel", "t_miou", "seconds"])
        writer.writeheader()
        writer.writerows(rows)


def test_read_per_scene_takes_the_first_method_and_skips_empty_cells(tmp_path):
    write_csv(
        tmp_path / "run",
        [
            {"scene": "a", "method": "iggt-small", "num_views": 8, "abs_rel": 0.1, "t_miou": 0.5, "seconds": 3},
            {"scene": "a", "method": "xyzrgb baseline", "num_views": 8, "abs_rel": "", "t_miou": 0.2, "seconds": 1},
        ],
    )
    method, scenes = read_per_scene(tmp_path / "run")
    assert method == "iggt-small" and scenes == {"a": {"abs_rel": 0.1, "t_miou": 0.5}}
    assert read_per_scene(tmp_path / "run", "xyzrgb baseline")[1] == {"a": {"t_miou": 0.2}}
    with pytest.raises(InputError, match="no rows of method 'other'; it has iggt-small, xyzrgb baseline"):
        read_per_scene(tmp_path / "run", "other")
    with pytest.raises(InputError, match="does not exist"):
        read_per_scene(tmp_path / "missing")
