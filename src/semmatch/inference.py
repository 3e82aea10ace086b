"""Batched scoring with a trained model: a two-tower model encodes each distinct query once per call."""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np
import torch

from semmatch.batching import EncodedQueries, sorted_batches
from semmatch.errors import ConfigError
from semmatch.model import PairModel, TwoTowerModel


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


class VectorCache:
    """Least-recently-used cache of query vectors keyed by query text, bounded by entry count.

    Prediction streams large files in chunks; queries that repeat across chunks (common in
    assistant logs and in test files) are encoded once. Each entry costs projection_dim * 4 bytes
    (2 KiB at the reference size), so the default 100,000 entries hold about 200 MiB.
    """

    def __init__(self, max_entries: int = 100_000):
        self.max_entries = max_entries
        self.vectors: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> torch.Tensor | None:
        vector = self.vectors.get(key)
        if vector is not None:
            self.vectors.move_to_end(key)
        return vector

    def put(self, key: str, vector: torch.Tensor) -> None:
        self.vectors[key] = vector
        self.vectors.move_to_end(key)
        if len(self.vectors) > self.max_entries:
            self.vectors.popitem(last=False)


def fill_from_cache(indices: np.ndarray, keys: list[str], cache: VectorCache, vectors, encode_missing):
    """Fill `vectors` (one row per index) from `cache`, encoding only the queries it lacks.

    Args:
        indices: query indices; `keys[index]` is the query text used as the cache key.
        vectors: preallocated (len(indices), dim) torch tensor or NumPy array, filled in place.
        encode_missing: function from an array of query indices to their vectors (same kind as `vectors`).
    """
    missing = []
    for position, index in enumerate(indices):
        cached = cache.get(keys[index])
        if cached is None:
            missing.append(position)
        else:
            vectors[position] = cached
    cache.hits += len(indices) - len(missing)
    cache.misses += len(missing)
    if missing:
        missing = np.asarray(missing)
        vectors[missing] = encode_missing(indices[missing])
        for position in missing:
            row = vectors[position]
            cache.put(keys[indices[position]], row.copy() if isinstance(row, np.ndarray) else row.clone())
    return vectors


@torch.inference_mode()
def score_pairs(
    model: PairModel,
    queries: EncodedQueries,
    a: np.ndarray,
    b: np.ndarray,
    batch_size: int = 1024,
    pad_to: int | None = None,
    device: torch.device = torch.device("cpu"),
    precision: str = "fp32",
    keys: list[str] | None = None,
    cache: VectorCache | None = None,
) -> np.ndarray:
    """Return match probabilities (float64) for pairs (a[i], b[i]) of query indices.

    A two-tower model encodes each distinct query index once; with `cache` and `keys` (the query
    texts), vectors of queries met in earlier calls are reused. An interaction model scores each
    pair jointly and uses no cache.
    """
    model.eval()
    if len(a) == 0:
        return np.zeros(0)
    if model.config.architecture == "interaction":
        return _score_jointly(model, queries, a, b, batch_size, pad_to, device, precision)
    distinct, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    if cache is not None and keys is not None:
        vectors = torch.empty(len(distinct), model.config.projection_dim, device=device)
        fill_from_cache(distinct, keys, cache, vectors,
                        lambda missing: encode_indices(model, queries, missing, batch_size, pad_to, device, precision))
    else:
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


@torch.inference_mode()
def _score_jointly(model: PairModel, queries: EncodedQueries, a: np.ndarray, b: np.ndarray, batch_size: int,
                   pad_to: int | None, device: torch.device, precision: str) -> np.ndarray:
    """Score pairs with the whole model, in batches of pairs of similar length."""
    max_len = model.config.max_len
    pair_lengths = np.minimum(np.maximum(queries.lengths[a], queries.lengths[b]), max_len)
    probabilities = torch.empty(len(a), device=device)
    for batch in sorted_batches(pair_lengths, max(batch_size // 2, 1)):
        token_ids, lengths = queries.pad(np.concatenate([a[batch], b[batch]]), max_len, pad_to)
        with autocast(device, precision):
            logits = model(token_ids.to(device, non_blocking=True), lengths.to(device))
        probabilities[torch.from_numpy(batch).to(device)] = torch.sigmoid(logits.float())
    return probabilities.cpu().numpy().astype(np.float64)
