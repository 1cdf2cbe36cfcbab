"""Multi-process training under ``torchrun``: who am I, and the few collectives the loop needs.

We do not launch processes ourselves. ``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; :func:`setup` turns them into a process group (NCCL on CUDA, gloo on CPU).
Without those variables everything here is a cheap no-op, so the single-process path is
the same code with ``world == 1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# Rank 0 may featurize a whole corpus while the others wait in a barrier.
_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Topology:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def topology_from_env() -> Topology:
    """Read torchrun's variables (no process group needed): safe to call in the CLI before torch work."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return Topology(rank, world, int(os.environ.get("LOCAL_RANK", str(rank))))


def setup(device: torch.device | str | None = None) -> Topology:
    """Join the process group torchrun describes (idempotent); returns this process's place in it.

    ``device`` picks the backend: NCCL for CUDA (and binds this process to GPU ``LOCAL_RANK``),
    gloo otherwise.
    """
    topo = topology_from_env()
    if not topo.distributed or dist.is_initialized():
        return topo
    use_cuda = device is not None and torch.device(device).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(topo.local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=_TIMEOUT)
    return topo


def local_device(device: torch.device, topo: Topology) -> torch.device:
    """One GPU per process: ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", topo.local_rank if topo.distributed else torch.cuda.current_device())
    return device


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over ranks (float64); identity in a single process."""
    if not dist.is_initialized():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def any_rank(flags: list[bool], device: torch.device) -> list[bool]:
    """Element-wise OR over ranks, so that time-based decisions (stop, save) agree everywhere."""
    if not dist.is_initialized():
        return list(flags)
    return [total > 0 for total in all_reduce_sum([float(f) for f in flags], device)]


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
