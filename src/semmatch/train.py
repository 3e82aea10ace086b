"""Training: the reference recipe (Adam 1e-3, BCE, batch 512, best-AUC checkpoint, early stopping,
learning rate x0.9 per epoch after epoch 5) on length-bucketed batches, with optional
regularization (AdamW, label smoothing, gradient clipping, an EMA of the weights) and
transitive augmentation of the training pairs.

Single process:
    semmatch train --train pairs.ids.tsv --output-dir runs/ids
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from semmatch import __version__
from semmatch.augment import pair_keys, transitive_pairs
from semmatch.batching import EncodedQueries, bucketed_batches
from semmatch.config import ModelConfig, TrainConfig, config_to_dict
from semmatch.data import PairSet, read_pairs
from semmatch.checkpoint import CHECKPOINT_DIR, load_checkpoint, save_checkpoint, save_rng_state
from semmatch.distributed import (
    DistributedContext,
    all_reduce_sum,
    barrier,
    gather_arrays,
    init_distributed,
    shard_batches,
    shutdown_distributed,
)
from semmatch.errors import ConfigError, InputError, TrainingError
from semmatch.fileio import atomic_directory, atomic_open, atomic_write_text
from semmatch.inference import autocast, resolve_device, score_pairs
from semmatch.matcher import Matcher, load_model_files, save_model
from semmatch.metrics import safe_auc
from semmatch.model import PairModel, build_model
from semmatch.plots import plot_training_history, plot_validation_auc
from semmatch.pretrain import pretrain_encoder
from semmatch.splits import Split, make_split
from semmatch.tokenize import IdVocabulary, Vocabulary

logger = logging.getLogger(__name__)

# One embedding row per ID: 2 million rows of 256 float32 values take about 2 GB.
MAX_ID_VOCABULARY = 2_000_000
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
    valid_probabilities: np.ndarray | None = None  # the best model's, in validation order (rank 0)


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
    pairs: PairSet | None = None,
    split: Split | None = None,
) -> TrainData:
    """Read, validate and split the data, build the vocabulary and map tokens to IDs.

    `pairs` (already read) and `split` (precomputed, e.g. a cross-validation fold) replace
    reading `train_files` and splitting by `config`.
    """
    if pairs is None:
        pairs = read_pairs(train_files, input_format, "required", on_invalid, encoding,
                           config.drop_duplicates, rejects_path)
    counts = {"train_file_pairs": len(pairs), "invalid_lines_skipped": pairs.stats.invalid,
              "duplicates_dropped": pairs.stats.duplicates_dropped}

    if valid_file:
        valid_pairs = read_pairs(valid_file, pairs.format, "required", on_invalid, encoding,
                                 rejects_path=None if rejects_path is None else rejects_path.with_name("rejects_valid.tsv"))
        train_index = np.arange(len(pairs))
    else:
        split = split or make_split(pairs, config.split, config.valid_fraction, config.seed)
        if len(split.valid) == 0 or len(split.train) == 0:
            raise InputError(f"the {config.split} split left an empty side ({len(split.train)} train, "
                             f"{len(split.valid)} validation pairs); give more data or a --valid file")
        valid_pairs = pairs.subset(split.valid)
        train_index = split.train

    # The vocabulary comes from training pairs only, so validation measures unseen-token handling honestly.
    used = _used_queries(pairs, train_index)
    if pairs.format == "text":
        vocabulary: Vocabulary | IdVocabulary = Vocabulary.build(pairs.queries[i] for i in used)
    else:
        query_used = np.zeros(len(pairs.queries), dtype=bool)
        query_used[used] = True
        token_used = np.repeat(query_used, np.diff(pairs.query_offsets))
        max_id = int(pairs.query_ids[token_used].max())
        if max_id > MAX_ID_VOCABULARY:
            raise InputError(
                f"the largest training ID is {max_id}, but the embedding has one row per ID up to the largest "
                f"and at most {MAX_ID_VOCABULARY} rows are supported (about 2 GB of weights at 256 "
                "dimensions); renumber the IDs densely from 1 (GAIIC files use IDs up to 33957)",
                ", ".join(pairs.sources),
            )
        vocabulary = IdVocabulary(max_id)

    train_a, train_b, train_labels = pairs.a[train_index], pairs.b[train_index], pairs.labels[train_index]
    if config.augment_transitive:
        implied = transitive_pairs(train_a, train_b, train_labels, len(pairs.queries), config.augment_transitive,
                                   config.seed, exclude=_validation_keys(pairs, valid_pairs))
        train_a, train_b = np.concatenate([train_a, implied.a]), np.concatenate([train_b, implied.b])
        train_labels = np.concatenate([train_labels, implied.labels])
        counts.update(implied_positive_pairs=int(implied.labels.sum()),
                      implied_negative_pairs=int((implied.labels == 0).sum()))

    queries, _ = _encode(pairs, vocabulary)
    valid_queries, valid_oov = _encode(valid_pairs, vocabulary)
    counts.update(train_pairs=len(train_a), valid_pairs=len(valid_pairs),
                  train_positive=int(train_labels.sum()),
                  valid_positive=int(valid_pairs.labels.sum()), vocabulary_size=len(vocabulary),
                  valid_oov_tokens=valid_oov)
    logger.info("training pairs: %d (%d positive); validation pairs: %d (%d positive); vocabulary: %d rows",
                counts["train_pairs"], counts["train_positive"], counts["valid_pairs"],
                counts["valid_positive"], len(vocabulary))
    if valid_oov:
        logger.info("validation: %d tokens unseen in training mapped to the OOV embedding", valid_oov)
    truncated = queries.count_longer_than(max_len) + valid_queries.count_longer_than(max_len)
    if truncated:
        logger.info("queries longer than max_len %d tokens, truncated: %d", max_len, truncated)
    counts["truncated_queries"] = truncated

    return TrainData(
        queries=queries,
        train_a=train_a, train_b=train_b, train_labels=train_labels.astype(np.float32),
        valid_queries=valid_queries, valid_a=valid_pairs.a, valid_b=valid_pairs.b,
        valid_labels=valid_pairs.labels.astype(np.int64),
        valid_texts=(valid_pairs.query_text(valid_pairs.a), valid_pairs.query_text(valid_pairs.b)),
        vocabulary=vocabulary, input_format=pairs.format, counts=counts,
    )


def _validation_keys(pairs: PairSet, valid_pairs: PairSet) -> np.ndarray:
    """Unordered pair keys, in `pairs`' query numbering, of validation pairs whose queries both occur in `pairs`."""
    if valid_pairs.queries is pairs.queries:
        return pair_keys(valid_pairs.a, valid_pairs.b, len(pairs.queries))
    index = {query: i for i, query in enumerate(pairs.queries)}
    mapped = np.array([index.get(query, -1) for query in valid_pairs.queries], dtype=np.int64)
    a, b = mapped[valid_pairs.a], mapped[valid_pairs.b]
    known = (a >= 0) & (b >= 0)
    return pair_keys(a[known], b[known], len(pairs.queries))


def build_optimizer(model: PairModel, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with an L2 penalty on embeddings and LSTM kernels only, as the reference had, or AdamW.

    A Keras L2 regularizer adds l2 * sum(w ** 2) to the loss; its gradient 2 * l2 * w is what
    Adam's (coupled) weight_decay adds, so weight_decay = 2 * l2 is the same penalty. AdamW
    replaces that penalty with decoupled decay of every matrix, embedding and kernel, but not of
    biases and normalization weights.
    """
    # The fused kernel updates all parameters in one pass. The default implementation's
    # per-parameter loop took about 9% of a CPU training step in torch.profiler.
    if config.optimizer == "adamw":
        decayed = [p for p in model.parameters() if p.dim() >= 2]
        others = [p for p in model.parameters() if p.dim() < 2]
        return torch.optim.AdamW(
            [{"params": decayed, "weight_decay": config.weight_decay}, {"params": others, "weight_decay": 0.0}],
            lr=config.lr,
            fused=True,
        )
    regularized = model.encoder.l2_parameters()
    regularized_ids = {id(p) for p in regularized}
    others = [p for p in model.parameters() if id(p) not in regularized_ids]
    return torch.optim.Adam(
        [{"params": regularized, "weight_decay": 2 * config.l2}, {"params": others, "weight_decay": 0.0}],
        lr=config.lr,
        fused=True,
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


@dataclass
class EpochResult:
    loss: float
    auc: float
    seconds: float
    pairs: int  # pairs trained by all ranks together
    batches: list[np.ndarray]  # this rank's batches of pair indices


def build_ema(model: PairModel, config: TrainConfig) -> AveragedModel | None:
    """Create the exponential moving average of the weights (updated after every step), or None when it is off."""
    if not config.ema_decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)


def train_epoch(model, optimizer, data: TrainData, config: TrainConfig, rng: np.random.Generator,
                device: torch.device, epoch: int, progress: bool, context: DistributedContext,
                max_len: int, ema: AveragedModel | None = None) -> EpochResult:
    """Run one epoch over this rank's share of the length-bucketed batches."""
    model.train()
    pair_lengths = np.maximum(data.queries.lengths[data.train_a], data.queries.lengths[data.train_b])
    batches = bucketed_batches(pair_lengths, config.batch_size, rng, config.bucket_size_multiplier)
    batches = shard_batches(batches, context)
    labels_all = torch.from_numpy(data.train_labels)
    total_loss, seen = 0.0, 0
    logits_seen, labels_seen = [], []
    start = time.perf_counter()
    bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not progress or not context.is_main, leave=False)
    for batch in bar:
        query_index = np.concatenate([data.train_a[batch], data.train_b[batch]])
        token_ids, lengths = data.queries.pad(query_index, max_len, config.pad_to)
        labels = labels_all[batch].to(device)
        targets = labels * (1.0 - config.label_smoothing) + 0.5 * config.label_smoothing
        with autocast(device, config.precision):
            logits = model(token_ids.to(device, non_blocking=True), lengths.to(device))
        loss = F.binary_cross_entropy_with_logits(logits.float(), targets)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"training loss became {loss.item()} in epoch {epoch}; training stopped. The last "
                "completed epoch's checkpoint and the best model are kept. Lower --lr or check the input data"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model.module if isinstance(model, DistributedDataParallel) else model)

        total_loss += loss.item() * len(batch)
        seen += len(batch)
        logits_seen.append(logits.detach().float().cpu())
        labels_seen.append(labels_all[batch])
        elapsed = time.perf_counter() - start
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", pairs_per_s=f"{seen * context.world_size / max(elapsed, 1e-9):.0f}")
    seconds = time.perf_counter() - start

    total_loss, seen = all_reduce_sum([total_loss, float(seen)], context, device)
    all_logits = np.concatenate(gather_arrays(torch.cat(logits_seen).numpy(), context))
    all_labels = np.concatenate(gather_arrays(torch.cat(labels_seen).numpy(), context))
    return EpochResult(total_loss / max(seen, 1), safe_auc(all_labels, all_logits), seconds, int(seen), batches)


def record_epoch(model: torch.nn.Module, pairs_used: list[np.ndarray], epoch: int, context: DistributedContext) -> None:
    """Save the pair indices this rank trained and a hash of its weights when SEMMATCH_RECORD_DIR is set.

    Tests use it to check that distributed ranks share out every pair exactly once and hold
    identical weights after each epoch.
    """
    directory = os.environ.get("SEMMATCH_RECORD_DIR")
    if not directory:
        return
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    used = np.concatenate(pairs_used) if pairs_used else np.zeros(0, np.int64)
    np.savez(Path(directory) / f"epoch{epoch}_rank{context.rank}.npz", pairs=used, weights_sha256=digest.hexdigest())


def evaluate_validation(model, data: TrainData, config: TrainConfig, device: torch.device,
                        context: DistributedContext) -> tuple[float, float, np.ndarray]:
    """Return (validation loss, validation AUC, probabilities) over the whole validation set.

    With several ranks, each scores a contiguous share and the shares are gathered in order.
    """
    shares = np.array_split(np.arange(len(data.valid_a)), context.world_size)
    share = shares[context.rank]
    local = score_pairs(model, data.valid_queries, data.valid_a[share], data.valid_b[share],
                        config.eval_batch_size, config.pad_to, device, config.precision)
    probabilities = np.concatenate(gather_arrays(local, context))
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    val_loss = float(log_loss(data.valid_labels, clipped, labels=[0, 1]))
    return val_loss, safe_auc(data.valid_labels, probabilities), probabilities


def _training_device(config: TrainConfig, context: DistributedContext) -> torch.device:
    device = resolve_device(config.device)
    if device.type == "cuda" and context.enabled:
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    return device


def fit(
    data: TrainData,
    model_config: ModelConfig,
    config: TrainConfig,
    output_dir: str | Path,
    progress: bool = True,
    run_info: dict | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a model on prepared data and write every artifact to `output_dir`.

    Under torchrun each process trains its share of every batch with DistributedDataParallel;
    only rank 0 writes files. With `resume`, training continues after the last epoch saved in
    `output_dir/checkpoint` with the same history, optimizer state and RNG state.
    """
    output_dir = Path(output_dir)
    context = init_distributed(resolve_device(config.device).type)
    device = _training_device(config, context)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model_config.vocab_size = len(data.vocabulary)
    model_config.oov_id = 1 if isinstance(data.vocabulary, Vocabulary) else data.vocabulary.oov_id
    if config.pad_to is not None and config.pad_to > model_config.max_len:
        raise InputError(f"--pad-to {config.pad_to} exceeds --max-len {model_config.max_len}")
    # Every rank builds the same initial weights from the seed; dropout streams then differ per rank.
    torch.manual_seed(config.seed)
    model = build_model(model_config).to(device)
    torch.manual_seed(config.seed + context.rank)
    optimizer = build_optimizer(model, config)
    # config.json comes first, so a run interrupted during pretraining is recognized by --resume.
    if context.is_main:
        logger.info("device: %s (%s, %d CPU threads, %d processes); %s model parameters: %d", device,
                    config.precision, torch.get_num_threads(), context.world_size, model_config.architecture,
                    sum(p.numel() for p in model.parameters()))
        effective = {"model": config_to_dict(model_config), "train": config_to_dict(config),
                     "input_format": data.input_format, **(run_info or {})}
        atomic_write_text(output_dir / "config.json", json.dumps(effective, indent=2, ensure_ascii=False) + "\n")
    pretraining = []
    if config.mlm_epochs and not resume:
        # NOTE: pretraining runs in one process: under torchrun the ranks would need their own
        # gradient synchronization for the encoder, which is not built.
        if context.enabled:
            raise ConfigError("--mlm-epochs is not supported under torchrun: train the first epoch in one process, "
                              "which pretrains before it, then continue under torchrun with --resume")
        train_queries = np.unique(np.concatenate([data.train_a, data.train_b]))
        pretraining = pretrain_encoder(model.encoder, data.queries, train_queries, config, device,
                                       model_config.oov_id, progress)
    ema = build_ema(model, config)  # after pretraining, so the average starts from the pretrained weights
    # Validation, the best and final models use the averaged weights when an EMA is kept.
    eval_model = model if ema is None else ema.module
    rng = np.random.default_rng(config.seed)
    history: list[dict] = []
    stopper = EarlyStopping(config.patience)

    checkpoint_dir = output_dir / CHECKPOINT_DIR
    if resume:
        saved = load_checkpoint(checkpoint_dir, model, optimizer, context.rank, ema)
        history = saved["history"]
        stopper.best, stopper.best_epoch, stopper.bad_epochs = saved["best"], saved["best_epoch"], saved["bad_epochs"]
        rng.bit_generator.state = saved["numpy_rng"]
        logger.info("resuming from %s after epoch %d (best val_auc %.4f at epoch %d)",
                    checkpoint_dir, len(history), stopper.best, stopper.best_epoch)
        if config.mlm_epochs:
            logger.info("the encoder was pretrained before epoch 1, so resuming does not pretrain again")
    train_model = DistributedDataParallel(model) if context.enabled else model

    train_pairs = len(data.train_a)
    stopped_early = bool(history) and stopper.should_stop
    for epoch_index in range(len(history), config.epochs):
        if stopped_early:
            break
        epoch = epoch_index + 1
        lr = config.lr * lr_factor(epoch_index, config)
        _set_lr(optimizer, lr)
        result = train_epoch(train_model, optimizer, data, config, rng, device, epoch, progress, context,
                             model_config.max_len, ema)
        record_epoch(model, result.batches, epoch, context)
        val_loss, val_auc, _ = evaluate_validation(eval_model, data, config, device, context)
        row = {"epoch": epoch, "loss": round(result.loss, 6), "auc": round(result.auc, 6),
               "val_loss": round(val_loss, 6), "val_auc": round(val_auc, 6), "lr": lr,
               "seconds": round(result.seconds, 3), "pairs_per_second": round(train_pairs / result.seconds, 1)}
        history.append(row)
        improved = stopper.update(val_auc, epoch)
        stopped_early = stopper.should_stop
        if context.is_main:
            logger.info("epoch %d: loss %.4f auc %.4f val_loss %.4f val_auc %.4f lr %.2e %.1fs %.0f pairs/s%s",
                        epoch, result.loss, result.auc, val_loss, val_auc, lr, result.seconds,
                        train_pairs / result.seconds, " (best)" if improved else "")
            if improved:
                save_model(eval_model, data.vocabulary, output_dir / "best")
            _write_history(history, output_dir / "history.csv")
            state = {"history": history, "best": stopper.best, "best_epoch": stopper.best_epoch,
                     "bad_epochs": stopper.bad_epochs, "numpy_rng": rng.bit_generator.state}
            with atomic_directory(checkpoint_dir) as directory:
                save_checkpoint(directory, model, optimizer, state, ema)
                save_rng_state(directory, context.rank)
        barrier(context)
        if not context.is_main:
            save_rng_state(checkpoint_dir, context.rank)
        if stopped_early and context.is_main:
            logger.info("early stopping: no validation AUC improvement for %d epochs", stopper.bad_epochs)

    barrier(context)
    metrics, probabilities = _finish(model, eval_model, data, config, output_dir, history, stopper, device, context,
                                     run_info, pretraining)
    shutdown_distributed(context)
    matcher = Matcher(model, data.vocabulary, device, config.precision)
    return TrainResult(matcher, history, metrics, output_dir, probabilities)


def _finish(model, eval_model, data: TrainData, config: TrainConfig, output_dir: Path, history: list[dict],
            stopper: EarlyStopping, device: torch.device, context: DistributedContext,
            run_info: dict | None, pretraining: list[dict]) -> tuple[dict, np.ndarray | None]:
    """Save final/ (from `eval_model`, the EMA when kept), restore the best weights into `model`,
    and write plots, predictions and metrics (rank 0)."""
    if context.is_main:
        save_model(eval_model, data.vocabulary, output_dir / "final")
    barrier(context)
    best_dir = output_dir / "best"
    if best_dir.is_dir():
        best_model, _ = load_model_files(best_dir)
        model.load_state_dict(best_model.state_dict())
    _, _, best_probabilities = evaluate_validation(model, data, config, device, context)
    if not context.is_main:
        return {}, None

    plot_training_history(history, output_dir / "training_history.png")
    plot_validation_auc(history, stopper.best_epoch or history[-1]["epoch"], output_dir / "validation_auc_history.png")
    _write_validation_predictions(data, best_probabilities, output_dir / "validation_predictions.csv")
    total_seconds = sum(row["seconds"] for row in history)
    metrics = {
        "best_val_auc": stopper.best if stopper.best > -math.inf else None,
        "best_epoch": stopper.best_epoch,
        "epochs_run": len(history),
        "train_pairs_per_second": round(len(data.train_a) * len(history) / total_seconds, 1),
        "train_seconds": round(total_seconds, 2),
        "device": str(device),
        "precision": config.precision,
        "processes": context.world_size,
        "semmatch_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        **data.counts,
        "inputs": (run_info or {}).get("inputs", {}),
    }
    if pretraining:  # a resumed run continues from a checkpoint taken after pretraining, so it has none
        metrics["pretraining"] = [{key: round(value, 4) if isinstance(value, float) else value
                                   for key, value in row.items()} for row in pretraining]
        metrics["pretrain_seconds"] = round(sum(row["seconds"] for row in pretraining), 2)
    atomic_write_text(output_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    logger.info("best validation AUC %.4f at epoch %d", stopper.best, stopper.best_epoch)
    logger.info("wrote %s: best/, final/, checkpoint/, history.csv, metrics.json, plots, validation_predictions.csv",
                output_dir)
    return metrics, best_probabilities
