"""Seed ranges: benchmark scenes are held out from every training stream by construction."""

import pytest

from iggt.data.synthetic_stream import SyntheticSceneStream, SyntheticStreamConfig
from iggt.errors import ConfigError
from iggt.synth.benchmarks import BENCHMARKS, get_benchmark
from iggt.synth.seeds import BENCHMARK_SEED_START, benchmark_seed, derive_training_seed, is_benchmark_seed


def test_benchmark_seeds_lie_in_the_reserved_range_and_sets_are_disjoint():
    seen = set()
    for benchmark in BENCHMARKS.values():
        seeds = benchmark.seeds()
        assert len(seeds) == benchmark.num_scenes == len(set(seeds))
        assert all(is_benchmark_seed(seed) for seed in seeds)
        assert not seen & set(seeds), benchmark.name
        seen |= set(seeds)


def test_training_seeds_never_fall_in_the_benchmark_range():
    # Extreme and benchmark-valued base seeds included: the range is excluded by construction.
    bases = [
        0,
        1,
        12345,
        BENCHMARK_SEED_START,
        BENCHMARK_SEED_START + 7,
        2**64 - 1,
        *get_benchmark("synthetic-val").seeds(),
    ]
    for base in bases:
        seeds = [derive_training_seed(base, index) for index in range(2000)]
        assert not any(is_benchmark_seed(seed) for seed in seeds), base
        assert len(set(seeds)) == len(seeds)


def test_stream_scene_seeds_avoid_every_benchmark_scene():
    benchmark_seeds = {seed for b in BENCHMARKS.values() for seed in b.seeds()}
    for base_seed in (0, 3, BENCHMARK_SEED_START):
        for rank in (0, 1):
            stream = SyntheticSceneStream(
                SyntheticStreamConfig(batch_size=4, base_seed=base_seed), rank=rank, world_size=2
            )
            seeds = [seed for step in range(300) for seed in stream.scene_seeds(step)]
            assert not benchmark_seeds & set(seeds)
            assert all(seed < BENCHMARK_SEED_START for seed in seeds)


def test_ranks_and_steps_draw_distinct_scenes():
    streams = [SyntheticSceneStream(SyntheticStreamConfig(batch_size=3), rank=r, world_size=2) for r in (0, 1)]
    seeds = [seed for step in range(50) for stream in streams for seed in stream.scene_seeds(step)]
    assert len(set(seeds)) == len(seeds)


def test_bad_names_and_offsets_are_config_errors():
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'"):
        get_benchmark("nope")
    with pytest.raises(ConfigError, match="outside"):
        benchmark_seed(-1)
    with pytest.raises(ConfigError, match=">= 0"):
        derive_training_seed(-1, 0)
