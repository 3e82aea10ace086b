"""Masked-language-model pretraining of the query encoder on the training queries.

Before pair training, a fraction of each query's tokens is replaced by the out-of-vocabulary
token, and the encoder's token states predict the original tokens. A linear layer maps each
state to the embedding width. Its dot products with the token embeddings are the logits, so the
output weights are tied to the input embeddings as in BERT and no vocabulary-sized layer is
added. The linear layer is discarded afterwards. The
queries are those of the training pairs only, so no validation query is seen, with or without
its label.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from semmatch.batching import EncodedQueries, bucketed_batches
from semmatch.config import TrainConfig
from semmatch.encoder import QueryEncoder
from semmatch.inference import autocast

logger = logging.getLogger(__name__)


def pretrain_encoder(encoder: QueryEncoder, queries: EncodedQueries, indices: np.ndarray, config: TrainConfig,
                     device: torch.device, oov_id: int, progress: bool = True) -> list[dict]:
    """Train `encoder` in place to predict masked tokens of the queries at `indices`.

    Args:
        encoder: the pair model's encoder.
        queries: encoded queries; `indices` selects the ones to pretrain on.
        config: mlm_epochs, mlm_mask_fraction, lr, batch_size (pairs, so 2 * batch_size queries per step), seed.
        oov_id: the token that replaces masked tokens.

    Returns:
        One record per epoch: masked-token loss and accuracy, masked tokens, seconds.
    """
    width = encoder.norm.normalized_shape[0]
    head = nn.Linear(width, encoder.token_embedding.embedding_dim).to(device)
    parameters = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=0.0)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    max_len = encoder.config.max_len
    lengths = np.minimum(queries.lengths[indices], max_len)
    encoder.train()
    history = []
    for epoch in range(1, config.mlm_epochs + 1):
        start = time.perf_counter()
        total_loss, correct, masked_total = 0.0, 0, 0
        batches = bucketed_batches(lengths, 2 * config.batch_size, rng, config.bucket_size_multiplier)
        for batch in tqdm(batches, desc=f"pretraining epoch {epoch}", unit="batch", disable=not progress, leave=False):
            token_ids, batch_lengths = queries.pad(indices[batch], max_len)
            real = torch.arange(token_ids.shape[1]).unsqueeze(0) < batch_lengths.unsqueeze(1)
            masked = real & (torch.rand(token_ids.shape, generator=generator) < config.mlm_mask_fraction)
            if not masked.any():
                continue
            inputs = token_ids.masked_fill(masked, oov_id).to(device)
            with autocast(device, config.precision):
                states, _ = encoder.contextualize(inputs, batch_lengths.to(device))
                # (masked tokens, embedding_dim) @ (embedding_dim, vocab_size)
                logits = head(states[masked.to(device)]) @ encoder.token_embedding.weight.t()
            targets = token_ids[masked].to(device)
            loss = F.cross_entropy(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(parameters, config.clip_grad_norm)
            optimizer.step()
            count = int(masked.sum())
            total_loss += loss.item() * count
            correct += int((logits.argmax(dim=-1) == targets).sum())
            masked_total += count
        record = {"epoch": epoch, "masked_token_loss": total_loss / max(masked_total, 1),
                  "masked_token_accuracy": correct / max(masked_total, 1), "masked_tokens": masked_total,
                  "seconds": time.perf_counter() - start}
        history.append(record)
        logger.info("pretraining epoch %d: masked-token loss %.4f, accuracy %.3f over %d tokens, %.1fs", epoch,
                    record["masked_token_loss"], record["masked_token_accuracy"], masked_total, record["seconds"])
    return history
