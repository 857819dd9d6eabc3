"""Multi-process training on the CPU (gloo), as torchrun would launch it: ranks stay identical."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from train_helpers import HandBuiltSource, tiny_config

from iggt.train.distributed import shutdown
from iggt.train.trainer import Trainer


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def _parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Full parameter values on every rank (FSDP shards are gathered: a collective call).

    Parameters only: BatchNorm running statistics (instance adaptor) are per rank; DDP broadcasts
    rank 0's at every forward, and checkpoints hold rank 0's.
    """
    gathered = {}
    for name, parameter in model.named_parameters():
        value = parameter.full_tensor() if hasattr(parameter, "full_tensor") else parameter
        gathered[name] = value.detach().to("cpu", copy=True)
    return gathered


def _worker(rank: int, world_size: int, port: int, output_dir: str, strategy: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    config = tiny_config(output_dir, "train.steps=2", f"train.strategy={strategy}")
    # Each rank sees different scenes, as the configured sources would give it.
    trainer = Trainer(config, source=HandBuiltSource(seed=rank), show_progress=False)
    initial = _parameters(trainer.model)
    result = trainer.run()
    final = _parameters(trainer.model)
    wrapped = type(trainer.module).__name__
    torch.save(
        {"initial": initial, "final": final, "step": result.step, "wrapped": wrapped},
        os.path.join(output_dir, f"rank{rank}.pt"),
    )
    shutdown(trainer.context)


def _launch(tmp_path, world_size: int, strategy: str) -> list[dict]:
    mp.spawn(_worker, args=(world_size, _free_port(), str(tmp_path), strategy), nprocs=world_size, join=True)
    return [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(world_size)]


def _equal(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("strategy", ["ddp", pytest.param("fsdp", marks=pytest.mark.slow)])
def test_two_processes_end_with_identical_weights(tmp_path, strategy):
    ranks = _launch(tmp_path, 2, strategy)
    assert [r["step"] for r in ranks] == [2, 2]
    assert _equal(ranks[0]["final"], ranks[1]["final"])
    assert not _equal(ranks[0]["initial"], ranks[0]["final"])
    assert (tmp_path / "final" / "model.safetensors").is_file()


def test_world_size_one_takes_the_ddp_path(tmp_path):
    (rank,) = _launch(tmp_path, 1, "ddp")
    assert rank["wrapped"] == "DistributedDataParallel" and rank["step"] == 2
