"""Named held-out evaluation sets of procedural scenes, all drawn from the reserved seed range.

A set is fully defined by its entry here (and the generator version stored in every scene), so
`iggt synth --benchmark NAME` writes the same scenes on every machine. Training streams derive
their seeds below ``BENCHMARK_SEED_START`` and therefore never render these scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

from iggt.errors import ConfigError
from iggt.synth.seeds import benchmark_seed, is_benchmark_seed


@dataclass(frozen=True)
class BenchmarkSet:
    """A fixed list of scenes: seeds ``benchmark_seed(first_offset + i)`` for i < num_scenes."""

    name: str
    description: str
    num_scenes: int
    num_views: int
    image_size: tuple[int, int]
    first_offset: int

    def __post_init__(self) -> None:
        if not all(is_benchmark_seed(seed) for seed in self.seeds()):
            raise ConfigError(f"benchmark {self.name!r} has seeds outside the reserved benchmark range")

    def seeds(self) -> list[int]:
        return [benchmark_seed(self.first_offset + i) for i in range(self.num_scenes)]


BENCHMARKS: dict[str, BenchmarkSet] = {
    entry.name: entry
    for entry in (
        BenchmarkSet(
            "synthetic-val",
            "validation during training: 16 scenes x 8 views at 224 x 224",
            num_scenes=16,
            num_views=8,
            image_size=(224, 224),
            first_offset=0,
        ),
        BenchmarkSet(
            "synthetic-test",
            "final evaluation: 32 scenes x 10 views at 224 x 224",
            num_scenes=32,
            num_views=10,
            image_size=(224, 224),
            first_offset=1_000_000,
        ),
        BenchmarkSet(
            "synthetic-mini",
            "smoke tests and demos: 4 scenes x 4 views at 64 x 64",
            num_scenes=4,
            num_views=4,
            image_size=(64, 64),
            first_offset=2_000_000,
        ),
    )
}


def get_benchmark(name: str) -> BenchmarkSet:
    """The benchmark set called ``name``."""
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]
