"""Batched scoring with a trained model: each distinct query is encoded once per call."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from semmatch.batching import EncodedQueries, sorted_batches
from semmatch.errors import ConfigError
from semmatch.model import TwoTowerModel


def resolve_device(name: str = "auto") -> torch.device:
    """Turn 'auto', 'cpu', 'cuda' or 'cuda:N' into a device, checking that it exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA GPU is available; use --device cpu")
    return device


def autocast(device: torch.device, precision: str):
    """bf16 autocast when requested, otherwise a no-op context."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def encode_indices(
    model: TwoTowerModel,
    queries: EncodedQueries,
    indices: np.ndarray,
    batch_size: int = 1024,
    pad_to: int | None = None,
    device: torch.device = torch.device("cpu"),
    precision: str = "fp32",
) -> torch.Tensor:
    """Encode the queries at `indices`, batching by length; returns (len(indices), dim) float32 on `device`."""
    max_len = model.config.max_len
    lengths = np.minimum(queries.lengths[indices], max_len)
    vectors = torch.empty(len(indices), model.config.projection_dim, device=device)
    for batch in sorted_batches(lengths, batch_size):
        token_ids, batch_lengths = queries.pad(indices[batch], max_len, pad_to)
        with autocast(device, precision):
            encoded = model.encoder(token_ids.to(device, non_blocking=True), batch_lengths.to(device))
        vectors[torch.from_numpy(batch).to(device)] = encoded.float()
    return vectors


@torch.inference_mode()
def score_pairs(
    model: TwoTowerModel,
    queries: EncodedQueries,
    a: np.ndarray,
    b: np.ndarray,
    batch_size: int = 1024,
    pad_to: int | None = None,
    device: torch.device = torch.device("cpu"),
    precision: str = "fp32",
) -> np.ndarray:
    """Return match probabilities (float64) for pairs (a[i], b[i]) of query indices."""
    model.eval()
    if len(a) == 0:
        return np.zeros(0)
    distinct, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    vectors = encode_indices(model, queries, distinct, batch_size, pad_to, device, precision)
    inverse = torch.from_numpy(inverse).to(device)
    pair_count = len(a)
    probabilities = torch.empty(pair_count, device=device)
    head_batch = max(batch_size, 8192)
    for start in range(0, pair_count, head_batch):
        stop = min(start + head_batch, pair_count)
        u = vectors[inverse[start:stop]]
        v = vectors[inverse[pair_count + start:pair_count + stop]]
        with autocast(device, precision):
            probabilities[start:stop] = torch.sigmoid(model.head(u, v).float())
    return probabilities.cpu().numpy().astype(np.float64)
