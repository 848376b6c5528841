{% set p = cookiecutter | project %}
{# the package by name where the lines stay within 100 columns #}
{% set pkg = p.package_name if p.package_name|length <= 30 else "<package>" %}
{% if p.fsdp %}
"""Distributed training through torchrun: FSDP2 sharding (or DDP), ranks and reductions.

    torchrun --nproc_per_node=N -m {{ pkg }}.train ...            # FSDP
    torchrun --nproc_per_node=N -m {{ pkg }}.train --strategy ddp  # DDP
{% else %}
"""Distributed data parallel (DDP) through torchrun: process group, ranks and reductions.

    torchrun --nproc_per_node=N -m {{ pkg }}.train ...
{% endif %}

torchrun starts one process per device, with RANK, LOCAL_RANK and WORLD_SIZE in its
environment. Without torchrun everything here is a no-op: one ordinary process.
"""

from __future__ import annotations

{% if p.fsdp %}
import gc
import importlib
{% endif %}
import os
{% if p.fsdp %}
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
{% endif %}
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
{% if p.fsdp %}
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    apply_activation_checkpointing,
)
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
{% endif %}
from torch.nn.parallel import DistributedDataParallel
{% if p.fsdp %}

from .model import BLOCKS
{% endif %}


@dataclass(frozen=True)
class World:
    rank: int = 0  # this process among all processes; rank 0 alone prints, logs and saves
    local_rank: int = 0  # this process on its machine: picks its GPU
    size: int = 1  # number of processes

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    return World(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def init_process_group(world: World, device: torch.device) -> None:
    """NCCL between GPUs, gloo on CPU; the address and port come from torchrun's environment."""
    if not world.distributed or dist.is_initialized():
        return
    # Imported after the group exists, this module would bind it as a default argument and
    # keep it alive past destroy_process_group: gloo's threads would abort Python's exit.
    import torch.distributed.nn.functional  # noqa: F401

    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=world.rank, world_size=world.size)


def local_device(world: World, device: torch.device) -> torch.device:
    """Each process on a machine drives its own GPU: cuda:LOCAL_RANK."""
    if device.type != "cuda" or not world.distributed:
        return device
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)


def barrier(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()


def broadcast_from_main(value: str, world: World) -> str:
    """Rank 0's value on every rank (the run folder it created)."""
    holder = [value]
    if world.distributed and dist.is_initialized():
        dist.broadcast_object_list(holder, src=0)
    return holder[0]


def shutdown(world: World) -> None:
    """After every rank is done (rank 0 may still be writing), leave the process group: its
    threads are joined before the interpreter exits."""
    if world.distributed and dist.is_initialized():
        dist.barrier()
{% if p.fsdp %}
        _release_dtensor_caches()
{% endif %}
        dist.destroy_process_group()
{% if p.fsdp %}


# DTensor (FSDP2's parameters) caches sharding and redistribution plans that hold the device
# mesh, and so the process group: kept, the group would outlive destroy_process_group and its
# gloo threads would end at interpreter exit, where they can abort the process ("terminate
# called without an active exception"). torch 2.13's caches; one another version lacks is
# skipped.
_DTENSOR_CACHES = (
    "torch.distributed.tensor.debug._clear_sharding_prop_cache",
    "torch.distributed.tensor._redistribute.clear_redistribute_planner_cache",
    "torch.distributed.tensor._redistribute._gen_transform_infos.cache_clear",
    "torch.distributed.tensor._collective_utils.MeshTopoInfo.build_from_mesh.cache_clear",
    "torch.distributed.tensor._api.DTensor._op_dispatcher.sharding_propagator"
    "._propagate_tensor_meta_cached.cache_clear",
)


def _release_dtensor_caches() -> None:
    gc.collect()  # the model's own reference cycles hold DTensors too
    for path in _DTENSOR_CACHES:
        clear = _resolve(path)
        if callable(clear):
            clear()
    gc.collect()  # what they held, in reference cycles of its own


def _resolve(path: str) -> object | None:
    """The object at a dotted path (a module, then attributes), or None if there is none."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            found = getattr(found, name, None)
        return found
    return None
{% endif %}


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The sum over ranks, in place."""
    if world.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def wrap_ddp(model: nn.Module, world: World, device: torch.device, strategy: str) -> nn.Module:
    """DDP around the model when there are several processes; the model itself otherwise."""
    if not world.distributed:
        return model
    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=strategy == "ddp_find_unused_parameters_true",
    )


def without_ddp(model: nn.Module) -> nn.Module:
    """The network inside DDP (state_dict keys without the `module.` prefix)."""
    return model.module if isinstance(model, DistributedDataParallel) else model
{% if p.fsdp %}


def shard_model(
    model: nn.Module, world: World, precision: str, activation_checkpointing: bool
) -> nn.Module:
    """FSDP2: each block, then the root, sharded over all processes (in place).

    Mixed precision is FSDP's own: parameters are gathered in bf16/fp16 for compute and
    gradients reduced in fp32. A single process trains the model as it is.
    """
    if activation_checkpointing:
        apply_activation_checkpointing(model, check_fn=lambda module: isinstance(module, BLOCKS))
    if not world.distributed:
        return model
    compute_dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    policy = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32)
    for module in model.modules():
        if isinstance(module, BLOCKS):
            fully_shard(module, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def gradient_sync_skipper(model: nn.Module) -> Callable[[], AbstractContextManager] | None:
    """What skips the gradient reduction on accumulation micro-steps, or None."""
    if isinstance(model, DistributedDataParallel):
        return model.no_sync
    if isinstance(model, FSDPModule):
        return lambda: _without_gradient_sync(model)
    return None


@contextmanager
def _without_gradient_sync(model: FSDPModule) -> Iterator[None]:
    """FSDP keeps the micro-steps' gradients unsharded, reduce-scattered at the step's backward."""
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)
{% endif %}
