"""Batches for the trainer: one source per data.sources entry, mixed by weight, with exact positions.

Every source yields batches of the training contract (docs/architecture.md, "Training batch
contract") and has state_dict() / load_state_dict(): what a checkpoint stores so a resumed run
sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from iggt.errors import ConfigError
from iggt.train.config import DataConfig, DataSourceConfig, build_dataclass


class BatchSource(Protocol):
    """An endless supply of training batches whose position can be saved and restored."""

    def next_batch(self) -> dict[str, torch.Tensor]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class StreamSource:
    """Batches from a stateful stream that already batches (iggt.data.synthetic_stream).

    The stream's own state_dict() is its position; it is iterated only through this object, so a
    saved position always falls between two batches.
    """

    def __init__(self, stream) -> None:
        self.stream = stream
        self._iterator: Iterator | None = None

    def next_batch(self) -> dict[str, torch.Tensor]:
        if self._iterator is None:
            self._iterator = iter(self.stream)
        return next(self._iterator)

    def state_dict(self) -> dict:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.close()
        self.stream.load_state_dict(state)

    def close(self) -> None:
        """Stop the stream's iterator (and the worker processes it holds); the next batch restarts it."""
        if self._iterator is not None:
            self._iterator.close()
            self._iterator = None


class IndexedSource:
    """Batches from a map-style dataset of scenes: a seeded permutation per epoch, this rank's
    share of it (every world_size-th index), B scenes per batch; the position is (epoch, batch)."""

    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, rank: int, world_size: int, num_workers: int = 0
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.num_workers = num_workers
        self.epoch, self.position = 0, 0
        self._batches: Iterator | None = None

    def _epoch_indices(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()
        shard = order[self.rank :: self.world_size]
        usable = len(shard) - len(shard) % self.batch_size
        if usable == 0:
            raise ConfigError(
                f"{len(self.dataset)} scenes cannot fill a batch of {self.batch_size} on each of "
                f"{self.world_size} ranks; lower data.batch_size or add scenes"
            )
        return shard[:usable]

    def _start_epoch_iterator(self) -> Iterator:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        remaining = self._epoch_indices()[self.position * self.batch_size :]
        batches = [remaining[i : i + self.batch_size] for i in range(0, len(remaining), self.batch_size)]
        # A generator tied to the position makes worker seeds the same after a resume.
        generator = torch.Generator().manual_seed(hash((self.seed, self.rank, self.epoch, self.position)) % 2**63)
        return iter(
            DataLoader(
                self.dataset,
                batch_sampler=batches,
                num_workers=self.num_workers,
                collate_fn=default_collate,
                generator=generator,
            )
        )

    def next_batch(self) -> dict[str, torch.Tensor]:
        if self._batches is None:
            self._batches = self._start_epoch_iterator()
        try:
            batch = next(self._batches)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._batches = self._start_epoch_iterator()
            batch = next(self._batches)
        self.position += 1
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self._batches = None


class MixtureSource:
    """Each batch from one of several sources, drawn with probabilities proportional to weights."""

    def __init__(self, sources: list[BatchSource], weights: Iterable[float], seed: int) -> None:
        self.sources = sources
        self.weights = torch.tensor(list(weights), dtype=torch.float64)
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> dict[str, torch.Tensor]:
        if len(self.sources) == 1:
            return self.sources[0].next_batch()
        choice = int(torch.multinomial(self.weights, 1, generator=self.generator))
        return self.sources[choice].next_batch()

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "sources": [s.state_dict() for s in self.sources]}

    def close(self) -> None:
        """Release what the sources hold (e.g. a stream's worker processes)."""
        for source in self.sources:
            if hasattr(source, "close"):
                source.close()

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        for source, source_state in zip(self.sources, state["sources"], strict=True):
            source.load_state_dict(source_state)


def build_source(config: DataConfig, seed: int, rank: int, world_size: int, device: torch.device) -> MixtureSource:
    """The mixture of every configured source for this rank (each rank draws different scenes)."""
    sources = [_build_one(config, entry, seed, rank, world_size, device) for entry in config.sources]
    return MixtureSource(sources, [entry.weight for entry in config.sources], seed * 1_000_003 + rank)


def _build_one(
    config: DataConfig, entry: DataSourceConfig, seed: int, rank: int, world_size: int, device: torch.device
) -> BatchSource:
    if entry.kind == "synthetic":
        from iggt.data.synthetic_stream import SyntheticSceneStream, SyntheticStreamConfig

        # options: scene / render (iggt.synth.config), prepare_workers, prefetch_steps, base_seed.
        values = {"base_seed": seed, **entry.options}
        values.update(num_views=config.views, image_size=list(config.image_size), batch_size=config.batch_size)
        stream_config = build_dataclass(SyntheticStreamConfig, values, "data.sources.options")
        return StreamSource(SyntheticSceneStream(stream_config, device, rank, world_size))
    from iggt.data.scene_dataset import SceneFolderDataset

    options = {"seed": seed, **entry.options}
    dataset = SceneFolderDataset(entry.path, config.views, tuple(config.image_size), **options)
    return IndexedSource(dataset, config.batch_size, seed, rank, world_size, config.num_workers)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}
