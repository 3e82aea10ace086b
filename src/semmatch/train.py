"""Training: the reference recipe (Adam 1e-3, BCE, batch 512, best-AUC checkpoint, early stopping,
learning rate x0.9 per epoch after epoch 5) on length-bucketed batches.

Single process:
    semmatch train --train pairs.ids.tsv --output-dir runs/ids
"""

from __future__ import annotations

import csv
import json
import logging
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss
from tqdm import tqdm

from semmatch import __version__
from semmatch.batching import EncodedQueries, bucketed_batches
from semmatch.config import ModelConfig, TrainConfig, config_to_dict
from semmatch.data import PairSet, read_pairs
from semmatch.errors import InputError
from semmatch.fileio import atomic_open, atomic_write_text
from semmatch.inference import autocast, resolve_device, score_pairs
from semmatch.matcher import Matcher, save_model
from semmatch.metrics import safe_auc
from semmatch.model import TwoTowerModel
from semmatch.plots import plot_training_history, plot_validation_auc
from semmatch.splits import make_split
from semmatch.tokenize import IdVocabulary, Vocabulary

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "loss", "auc", "val_loss", "val_auc", "lr", "seconds", "pairs_per_second"]


@dataclass
class TrainData:
    """Training and validation pairs mapped to model token IDs."""

    queries: EncodedQueries
    train_a: np.ndarray
    train_b: np.ndarray
    train_labels: np.ndarray
    valid_queries: EncodedQueries
    valid_a: np.ndarray
    valid_b: np.ndarray
    valid_labels: np.ndarray
    valid_texts: tuple[list[str], list[str]]
    vocabulary: Vocabulary | IdVocabulary
    input_format: str
    counts: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    matcher: Matcher
    history: list[dict]
    metrics: dict
    output_dir: Path


def _encode(pairs: PairSet, vocabulary: Vocabulary | IdVocabulary) -> tuple[EncodedQueries, int]:
    if isinstance(vocabulary, Vocabulary):
        tokens, offsets, oov = vocabulary.encode(pairs.queries)
        return EncodedQueries(tokens, offsets), oov
    tokens, oov = vocabulary.map_ids(pairs.query_ids)
    return EncodedQueries(tokens, pairs.query_offsets), oov


def _used_queries(pairs: PairSet, indices: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([pairs.a[indices], pairs.b[indices]]))


def prepare_data(
    train_files: list[str],
    valid_file: str | None,
    config: TrainConfig,
    max_len: int = 128,
    input_format: str = "auto",
    on_invalid: str = "error",
    encoding: str = "utf-8",
    rejects_path: Path | None = None,
) -> TrainData:
    """Read, validate and split the data, build the vocabulary and map tokens to IDs."""
    pairs = read_pairs(train_files, input_format, "required", on_invalid, encoding,
                       config.drop_duplicates, rejects_path)
    counts = {"train_file_pairs": len(pairs), "invalid_lines_skipped": pairs.stats.invalid,
              "duplicates_dropped": pairs.stats.duplicates_dropped}

    if valid_file:
        valid_pairs = read_pairs(valid_file, pairs.format, "required", on_invalid, encoding,
                                 rejects_path=None if rejects_path is None else rejects_path.with_name("rejects_valid.tsv"))
        train_index = np.arange(len(pairs))
    else:
        split = make_split(pairs, config.split, config.valid_fraction, config.seed)
        if len(split.valid) == 0 or len(split.train) == 0:
            raise InputError(f"the {config.split} split left an empty side ({len(split.train)} train, "
                             f"{len(split.valid)} validation pairs); give more data or a --valid file")
        valid_pairs = pairs.subset(split.valid)
        train_index = split.train
        counts["split_dropped_pairs"] = split.dropped

    # The vocabulary comes from training pairs only, so validation measures unseen-token handling honestly.
    used = _used_queries(pairs, train_index)
    if pairs.format == "text":
        vocabulary: Vocabulary | IdVocabulary = Vocabulary.build(pairs.queries[i] for i in used)
    else:
        query_used = np.zeros(len(pairs.queries), dtype=bool)
        query_used[used] = True
        token_used = np.repeat(query_used, np.diff(pairs.query_offsets))
        max_id = int(pairs.query_ids[token_used].max())
        vocabulary = IdVocabulary(max_id)

    queries, _ = _encode(pairs, vocabulary)
    valid_queries, valid_oov = _encode(valid_pairs, vocabulary)
    counts.update(train_pairs=len(train_index), valid_pairs=len(valid_pairs),
                  train_positive=int(pairs.labels[train_index].sum()),
                  valid_positive=int(valid_pairs.labels.sum()), vocabulary_size=len(vocabulary),
                  valid_oov_tokens=valid_oov)
    logger.info("training pairs: %d (%d positive); validation pairs: %d (%d positive); vocabulary: %d rows",
                counts["train_pairs"], counts["train_positive"], counts["valid_pairs"],
                counts["valid_positive"], len(vocabulary))
    if valid_oov:
        logger.info("validation: %d tokens unseen in training mapped to the OOV embedding", valid_oov)
    truncated = queries.count_longer_than(max_len) + valid_queries.count_longer_than(max_len)
    if truncated:
        logger.info("%d queries longer than max_len %d tokens will be truncated", truncated, max_len)
    counts["truncated_queries"] = truncated

    return TrainData(
        queries=queries,
        train_a=pairs.a[train_index], train_b=pairs.b[train_index],
        train_labels=pairs.labels[train_index].astype(np.float32),
        valid_queries=valid_queries, valid_a=valid_pairs.a, valid_b=valid_pairs.b,
        valid_labels=valid_pairs.labels.astype(np.int64),
        valid_texts=(valid_pairs.query_text(valid_pairs.a), valid_pairs.query_text(valid_pairs.b)),
        vocabulary=vocabulary, input_format=pairs.format, counts=counts,
    )


def build_optimizer(model: TwoTowerModel, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with an L2 penalty on embeddings and LSTM kernels only, as the reference had.

    A Keras L2 regularizer adds l2 * sum(w ** 2) to the loss; its gradient 2 * l2 * w is what
    Adam's (coupled) weight_decay adds, so weight_decay = 2 * l2 is the same penalty.
    """
    regularized = model.encoder.l2_parameters()
    regularized_ids = {id(p) for p in regularized}
    others = [p for p in model.parameters() if id(p) not in regularized_ids]
    return torch.optim.Adam(
        [{"params": regularized, "weight_decay": 2 * config.l2}, {"params": others, "weight_decay": 0.0}],
        lr=config.lr,
    )


def lr_factor(epoch_index: int, config: TrainConfig) -> float:
    """Learning-rate multiplier for a 0-based epoch: 1 for the first `lr_decay_after` epochs, then x0.9 each."""
    return config.lr_decay ** max(0, epoch_index - config.lr_decay_after + 1)


def _write_history(history: list[dict], path: Path) -> None:
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({key: row[key] for key in HISTORY_COLUMNS})


def _write_validation_predictions(data: TrainData, probabilities: np.ndarray, path: Path) -> None:
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["query_a", "query_b", "label", "probability"])
        for query_a, query_b, label, probability in zip(*data.valid_texts, data.valid_labels, probabilities):
            writer.writerow([query_a, query_b, int(label), f"{probability:.6f}"])


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class EarlyStopping:
    """Track the best validation AUC and count epochs without improvement."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best = -math.inf
        self.best_epoch = 0
        self.bad_epochs = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch's metric; returns True when it is a new best."""
        if not math.isnan(value) and value > self.best:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs > 0 and self.bad_epochs >= self.patience


def train_epoch(model, optimizer, data: TrainData, config: TrainConfig, rng: np.random.Generator,
                device: torch.device, epoch: int, progress: bool) -> tuple[float, float, float]:
    """Run one epoch; returns (mean loss, training AUC, seconds)."""
    model.train()
    pair_lengths = np.maximum(data.queries.lengths[data.train_a], data.queries.lengths[data.train_b])
    batches = bucketed_batches(pair_lengths, config.batch_size, rng, config.bucket_size_multiplier)
    labels_all = torch.from_numpy(data.train_labels)
    max_len = model.config.max_len
    total_loss, seen = 0.0, 0
    logits_seen, labels_seen = [], []
    start = time.perf_counter()
    bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not progress, leave=False)
    for batch in bar:
        query_index = np.concatenate([data.train_a[batch], data.train_b[batch]])
        token_ids, lengths = data.queries.pad(query_index, max_len, config.pad_to)
        labels = labels_all[batch].to(device)
        with autocast(device, config.precision):
            logits = model(token_ids.to(device, non_blocking=True), lengths.to(device))
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} in epoch {epoch}; "
                                     "lower --lr or check the input data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        total_loss += loss.item() * len(batch)
        seen += len(batch)
        logits_seen.append(logits.detach().float().cpu())
        labels_seen.append(labels_all[batch])
        elapsed = time.perf_counter() - start
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", pairs_per_s=f"{seen / max(elapsed, 1e-9):.0f}")
    seconds = time.perf_counter() - start
    train_auc = safe_auc(torch.cat(labels_seen).numpy(), torch.cat(logits_seen).numpy())
    return total_loss / max(seen, 1), train_auc, seconds


def evaluate_validation(model, data: TrainData, config: TrainConfig, device: torch.device) -> tuple[float, float, np.ndarray]:
    """Return (validation loss, validation AUC, probabilities) over the whole validation set."""
    probabilities = score_pairs(model, data.valid_queries, data.valid_a, data.valid_b,
                                config.eval_batch_size, config.pad_to, device, config.precision)
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    val_loss = float(log_loss(data.valid_labels, clipped, labels=[0, 1]))
    return val_loss, safe_auc(data.valid_labels, probabilities), probabilities


def fit(
    data: TrainData,
    model_config: ModelConfig,
    config: TrainConfig,
    output_dir: str | Path,
    progress: bool = True,
    run_info: dict | None = None,
) -> TrainResult:
    """Train a model on prepared data and write every artifact to `output_dir`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    model_config.vocab_size = len(data.vocabulary)
    model_config.oov_id = 1 if isinstance(data.vocabulary, Vocabulary) else data.vocabulary.oov_id
    if config.pad_to is not None and config.pad_to > model_config.max_len:
        raise InputError(f"--pad-to {config.pad_to} exceeds --max-len {model_config.max_len}")
    model = TwoTowerModel(model_config).to(device)
    optimizer = build_optimizer(model, config)
    logger.info("device: %s (%s, %d CPU threads); model parameters: %d", device, config.precision,
                torch.get_num_threads(), sum(p.numel() for p in model.parameters()))

    effective = {"model": config_to_dict(model_config), "train": config_to_dict(config),
                 "input_format": data.input_format, **(run_info or {})}
    atomic_write_text(output_dir / "config.json", json.dumps(effective, indent=2, ensure_ascii=False) + "\n")

    history: list[dict] = []
    stopper = EarlyStopping(config.patience)
    best_state = None
    best_probabilities = None
    train_pairs = len(data.train_a)
    for epoch_index in range(config.epochs):
        epoch = epoch_index + 1
        lr = config.lr * lr_factor(epoch_index, config)
        _set_lr(optimizer, lr)
        loss, train_auc, seconds = train_epoch(model, optimizer, data, config, rng, device, epoch, progress)
        val_loss, val_auc, probabilities = evaluate_validation(model, data, config, device)
        row = {"epoch": epoch, "loss": round(loss, 6), "auc": round(train_auc, 6),
               "val_loss": round(val_loss, 6), "val_auc": round(val_auc, 6), "lr": lr,
               "seconds": round(seconds, 3), "pairs_per_second": round(train_pairs / seconds, 1)}
        history.append(row)
        improved = stopper.update(val_auc, epoch)
        logger.info("epoch %d: loss %.4f auc %.4f val_loss %.4f val_auc %.4f lr %.2e %.1fs %.0f pairs/s%s",
                    epoch, loss, train_auc, val_loss, val_auc, lr, seconds, train_pairs / seconds,
                    " (best)" if improved else "")
        if improved:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_probabilities = probabilities
            save_model(model, data.vocabulary, output_dir / "best")
        _write_history(history, output_dir / "history.csv")
        if stopper.should_stop:
            logger.info("early stopping: no validation AUC improvement for %d epochs", stopper.bad_epochs)
            break

    save_model(model, data.vocabulary, output_dir / "final")
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_probabilities = probabilities
    plot_training_history(history, output_dir / "training_history.png")
    plot_validation_auc(history, stopper.best_epoch or history[-1]["epoch"], output_dir / "validation_auc_history.png")
    _write_validation_predictions(data, best_probabilities, output_dir / "validation_predictions.csv")

    total_seconds = sum(row["seconds"] for row in history)
    metrics = {
        "best_val_auc": stopper.best if stopper.best > -math.inf else None,
        "best_epoch": stopper.best_epoch,
        "epochs_run": len(history),
        "train_pairs_per_second": round(train_pairs * len(history) / total_seconds, 1),
        "train_seconds": round(total_seconds, 2),
        "device": str(device),
        "precision": config.precision,
        "semmatch_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        **data.counts,
    }
    atomic_write_text(output_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    logger.info("best validation AUC %.4f at epoch %d", stopper.best, stopper.best_epoch)
    logger.info("wrote %s: best/, final/, history.csv, metrics.json, plots, validation_predictions.csv", output_dir)
    matcher = Matcher(model, data.vocabulary, device, config.precision)
    return TrainResult(matcher, history, metrics, output_dir)
