"""Several processes, one model: the small part of ``torch.distributed`` the trainer needs.

Under ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
address) ``start`` joins the process group: NCCL when the run is on CUDA, gloo on CPUs. A plain
``python`` process gets ``None`` and never touches ``torch.distributed``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from .errors import ConfigError


@dataclass(frozen=True)
class Distributed:
    """This process's place among ``world_size`` processes training one model."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def start(device_preference: str) -> Distributed | None:
    """Join the process group if launched by torchrun; ``None`` for a single plain process."""
    if not launched_by_torchrun():
        return None
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed: run without torchrun")
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device_preference in ("auto", "cuda") and torch.cuda.is_available()
    if device_preference.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device_preference} under torchrun, but CUDA is not available here")
    backend = "nccl" if use_cuda or device_preference.startswith("cuda") else "gloo"
    if backend == "nccl" and not dist.is_nccl_available():
        raise ConfigError(
            "NCCL, the GPU backend, is missing from this PyTorch build: run with --device cpu (gloo)"
        )
    if backend == "gloo" and not dist.is_gloo_available():
        raise ConfigError("gloo, the CPU backend, is missing from this PyTorch build")
    if backend == "nccl":
        # Checked against the node's process count, so that every process refuses alike and the
        # first one's message is the one printed (cli.main).
        local_world = max(int(os.environ.get("LOCAL_WORLD_SIZE", local_rank + 1)), local_rank + 1)
        if local_world > torch.cuda.device_count():
            raise ConfigError(
                f"{local_world} processes on this node, but it has {torch.cuda.device_count()} GPU(s): "
                "start at most that many processes per node (--nproc_per_node)"
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Distributed(rank, world_size, local_rank, backend)


def device_for(context: Distributed | None, preference: str) -> str:
    """Each process its own GPU (``cuda:LOCAL_RANK``); CPUs are shared."""
    if context is not None and context.backend == "nccl":
        return f"cuda:{context.local_rank}"
    return preference


def stop(context: Distributed | None) -> None:
    if context is not None and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: Tensor, context: Distributed | None) -> Tensor:
    """The sum over processes (in place); the tensor itself for a single process."""
    if context is not None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_rows(rows: Tensor, context: Distributed | None) -> list[Tensor]:
    """Every process's ``rows`` (their lengths may differ), in rank order."""
    if context is None:
        return [rows]
    lengths = [torch.zeros((), dtype=torch.long, device=rows.device) for _ in range(context.world_size)]
    dist.all_gather(lengths, torch.tensor(len(rows), device=rows.device))
    longest = int(max(length.item() for length in lengths))
    padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    padded[: len(rows)] = rows
    gathered = [torch.empty_like(padded) for _ in range(context.world_size)]
    dist.all_gather(gathered, padded)
    return [part[: int(length.item())] for part, length in zip(gathered, lengths, strict=True)]


def share(value: Any, context: Distributed | None) -> Any:
    """Rank 0's ``value`` on every process (any picklable value)."""
    if context is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_same_settings(settings: dict[str, Any], context: Distributed | None) -> None:
    """Refuse to train when the processes were started with different settings."""
    if context is None:
        return
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    digests: list[str] = [""] * context.world_size
    dist.all_gather_object(digests, digest)
    odd = [rank for rank, other in enumerate(digests) if other != digests[0]]
    if odd:
        raise ConfigError(
            f"processes {odd} were started with other settings than process 0: every rank must get the "
            "same command line (check per-node scripts and environment variables)"
        )
