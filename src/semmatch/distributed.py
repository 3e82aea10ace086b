"""Multi-process training with PyTorch's DistributedDataParallel, launched by torchrun.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them everything here is a no-op and
training runs in one process. Backends: gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_main_process() -> bool:
    """True unless this process is a non-zero torchrun rank (readable before the group is joined)."""
    return int(os.environ.get("RANK", "0")) == 0


def init_distributed(device_type: str) -> DistributedContext:
    """Join the torchrun process group when launched by torchrun; otherwise return a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    context = DistributedContext(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size())
    logger.info("distributed training: rank %d of %d (%s backend)", context.rank, context.world_size, dist.get_backend())
    return context


def shutdown_distributed(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def shard_batches(batches: list[np.ndarray], context: DistributedContext) -> list[np.ndarray]:
    """Give this rank its disjoint share of every global batch.

    Each global batch is cut into `world_size` contiguous parts, so the batch size keeps its
    meaning as the number of pairs per optimizer step summed over all ranks. A batch with fewer
    pairs than ranks (the short remainder batch) is merged into a neighbouring batch so no rank
    gets an empty share.
    """
    if not context.enabled:
        return batches
    merged: list[np.ndarray] = []
    short: list[np.ndarray] = []
    for batch in batches:
        (short if len(batch) < context.world_size else merged).append(batch)
    if merged:
        for batch in short:
            merged[-1] = np.concatenate([merged[-1], batch])
    elif short:
        merged = [np.concatenate(short)]
    batches = merged
    return [np.array_split(batch, context.world_size)[context.rank] for batch in batches]


def gather_arrays(array: np.ndarray, context: DistributedContext) -> list[np.ndarray]:
    """Collect one array from every rank, in rank order (a list of one array when not distributed)."""
    if not context.enabled:
        return [array]
    gathered: list = [None] * context.world_size
    dist.all_gather_object(gathered, array)
    return gathered


def all_reduce_sum(values: list[float], context: DistributedContext, device: torch.device) -> list[float]:
    if not context.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()
