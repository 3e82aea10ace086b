"""Turning pairs into padded tensors, and length-bucketed batch order.

Queries are padded only to the longest query of their batch (or to a fixed `pad_to`), and
training batches are built from pools of similar-length pairs, so little compute goes to
padding: real queries average 6 to 8 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from semmatch.tokenize import PAD_ID


@dataclass
class EncodedQueries:
    """Model token IDs of distinct queries, flat with offsets (query i is tokens[offsets[i]:offsets[i+1]])."""

    tokens: np.ndarray  # int32
    offsets: np.ndarray  # int64, len = number of queries + 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def count_longer_than(self, max_len: int) -> int:
        """Number of queries that will be truncated to `max_len` tokens."""
        return int(np.count_nonzero(self.lengths > max_len))

    def pad(self, indices: np.ndarray, max_len: int, pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather queries into a right-padded (batch, seq_len) int64 tensor and their lengths.

        Queries longer than `max_len` are truncated. The batch is padded to its own longest
        query, or to `pad_to` when given.
        """
        starts = self.offsets[indices]
        lengths = np.minimum(self.offsets[indices + 1] - starts, max_len)
        seq_len = int(pad_to) if pad_to else max(int(lengths.max(initial=1)), 1)
        positions = np.arange(seq_len)
        mask = positions[None, :] < lengths[:, None]  # (batch, seq_len)
        gather = np.where(mask, starts[:, None] + positions[None, :], 0)
        token_ids = np.where(mask, self.tokens[gather] if len(self.tokens) else 0, PAD_ID)
        return torch.from_numpy(token_ids.astype(np.int64)), torch.from_numpy(lengths.astype(np.int64))


def bucketed_batches(
    pair_lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    pool_batches: int = 50,
) -> list[np.ndarray]:
    """Shuffle pairs into batches of similar length.

    The pairs are shuffled, cut into pools of `pool_batches * batch_size`, each pool sorted by
    length and cut into batches, and the batch order shuffled again. Every pair appears in
    exactly one batch.
    """
    order = rng.permutation(len(pair_lengths))
    pool_size = batch_size * max(pool_batches, 1)
    batches = []
    for start in range(0, len(order), pool_size):
        pool = order[start:start + pool_size]
        pool = pool[np.argsort(pair_lengths[pool], kind="stable")]
        batches.extend(pool[i:i + batch_size] for i in range(0, len(pool), batch_size))
    permutation = rng.permutation(len(batches))
    return [batches[i] for i in permutation]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of items sorted by length, for inference (order is restored by the caller)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
