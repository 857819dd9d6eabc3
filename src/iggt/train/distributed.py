"""Process group set-up under torchrun, model wrapping (DDP or FSDP), and full state dicts.

A single process (no torchrun environment) trains the bare model. Under torchrun every process
joins one group (NCCL on CUDA, gloo on CPU), and the model is wrapped in DDP, even at world
size 1, or sharded with FSDP (``fully_shard`` on every trunk block and on the whole model).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from iggt.device import resolve_device


@dataclass
class DistributedContext:
    """Where this process sits in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    distributed: bool = False
    """True under torchrun (a process group exists), even with one process."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_device(setting: str, local_rank: int = 0) -> torch.device:
    """``train.device`` resolved by :func:`iggt.device.resolve_device`; a plain "cuda" (or "auto"
    on a GPU machine) becomes this process's GPU, cuda:LOCAL_RANK, under torchrun."""
    device = resolve_device(setting)
    if device.type == "cuda" and device.index is None:
        return resolve_device(f"cuda:{local_rank}")
    return device


def init_distributed(device_setting: str) -> DistributedContext:
    """Join the torchrun process group if the environment defines one."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistributedContext(device=process_device(device_setting))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = process_device(device_setting, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, device, distributed=True)


def wrap_model(model: nn.Module, context: DistributedContext, strategy: str, find_unused: bool) -> nn.Module:
    """The module the training step calls: the model itself, DDP around it, or the FSDP-sharded model."""
    if not context.distributed:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in [*model.aggregator.frame_blocks, *model.aggregator.global_blocks]:
            fully_shard(block)
        fully_shard(model)
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused)


def full_model_state(model: nn.Module, strategy: str) -> dict[str, torch.Tensor]:
    """A snapshot of the unsharded weights on the CPU (collective under FSDP: every rank calls it)."""
    if strategy == "fsdp" and dist.is_initialized():
        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    # A copy, so the snapshot does not follow later optimiser steps on the CPU.
    return {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()}


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, strategy: str) -> dict:
    """Unsharded optimiser state (collective under FSDP)."""
    if strategy == "fsdp" and dist.is_initialized():
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(model, optimizer, options=options)
    return optimizer.state_dict()


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict, strategy: str) -> None:
    """Inverse of :func:`full_optimizer_state`."""
    if strategy == "fsdp" and dist.is_initialized():
        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(model, optimizer, state, options=options)
    else:
        optimizer.load_state_dict(state)


def gather_objects(value, context: DistributedContext) -> list:
    """[value of rank 0, value of rank 1, ...] on every rank."""
    if not context.distributed:
        return [value]
    gathered = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_flag(flag: bool, context: DistributedContext) -> bool:
    """Rank 0's ``flag`` on every rank (so all ranks stop at the same step)."""
    if not context.distributed:
        return flag
    holder = [flag]
    dist.broadcast_object_list(holder, src=0)
    return bool(holder[0])


def mean_over_ranks(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Element-wise mean of a tensor over ranks."""
    if context.distributed:
        values = values.clone()
        dist.all_reduce(values)
        values /= context.world_size
    return values


def barrier(context: DistributedContext) -> None:
    if context.distributed:
        dist.barrier()


def shutdown(context: DistributedContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()
