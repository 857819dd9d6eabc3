"""Scene seeds: training scenes and held-out benchmark scenes come from disjoint seed ranges.

A scene is fully determined by its seed (and the generator config). Training seeds are derived
from a base seed and a running index and always lie in [0, 2**62); benchmark seeds lie in
[2**62, 2**63), so no training stream can ever render a benchmark scene.
"""

from iggt.errors import ConfigError

TRAINING_SEED_LIMIT = 2**62
BENCHMARK_SEED_START = 2**62
BENCHMARK_SEED_END = 2**63
_MASK64 = 2**64 - 1


def _splitmix64(value: int) -> int:
    """One step of the SplitMix64 mixer: a bijection of 64-bit integers with good avalanche."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_training_seed(base_seed: int, index: int) -> int:
    """Seed of the ``index``-th training scene of a stream started from ``base_seed``.

    The result is below ``TRAINING_SEED_LIMIT`` by construction (low 62 bits), hence never a
    benchmark seed.
    """
    if base_seed < 0 or index < 0:
        raise ConfigError(f"seeds and indices must be >= 0, got base_seed={base_seed}, index={index}")
    mixed = _splitmix64(_splitmix64(base_seed & _MASK64) ^ (index & _MASK64))
    return mixed % TRAINING_SEED_LIMIT


def is_benchmark_seed(seed: int) -> bool:
    """Whether ``seed`` lies in the range reserved for held-out benchmark scenes."""
    return BENCHMARK_SEED_START <= seed < BENCHMARK_SEED_END


def benchmark_seed(offset: int) -> int:
    """The ``offset``-th seed of the reserved benchmark range."""
    seed = BENCHMARK_SEED_START + offset
    if offset < 0 or not is_benchmark_seed(seed):
        raise ConfigError(f"benchmark seed offset {offset} is outside [0, {BENCHMARK_SEED_END - BENCHMARK_SEED_START})")
    return seed
