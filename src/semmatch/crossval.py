"""K-fold cross-validation on query-disjoint folds.

    semmatch cv --train pairs.tsv --folds 5 --output-dir runs/cv

Every pair is validated exactly once, by a model that never saw either of its queries. Each
fold is a complete training run in OUTPUT_DIR/fold_N; the out-of-fold probabilities of all
folds together give one pooled AUC beside the mean and spread of the per-fold AUCs.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from semmatch.config import ModelConfig, TrainConfig
from semmatch.data import read_pairs
from semmatch.fileio import atomic_open, atomic_write_text
from semmatch.metrics import safe_auc
from semmatch.splits import query_folds
from semmatch.train import fit, prepare_data

logger = logging.getLogger(__name__)


def cross_validate(
    train_files: list[str],
    model_config: ModelConfig,
    config: TrainConfig,
    output_dir: str | Path,
    folds: int = 5,
    input_format: str = "auto",
    on_invalid: str = "error",
    encoding: str = "utf-8",
    progress: bool = True,
    run_info: dict | None = None,
) -> dict:
    """Train one model per fold and write oof_predictions.csv and cv_metrics.json; returns the metrics."""
    output_dir = Path(output_dir)
    # Each fold's config.json records the split the folds really use.
    config = dataclasses.replace(config, split="query", valid_fraction=1.0 / folds)
    pairs = read_pairs(train_files, input_format, "required", on_invalid, encoding, config.drop_duplicates,
                       output_dir / "rejects.tsv")
    splits = query_folds(pairs, folds, config.seed)
    current = {f"fold_{number}" for number in range(1, folds + 1)}
    stale = sorted(path.name for path in output_dir.glob("fold_*") if path.name not in current)
    if stale:
        logger.warning("%s also contains %s from an earlier run with more folds; they are not part of this result",
                       output_dir, ", ".join(stale))
    out_of_fold = np.full(len(pairs), np.nan)
    fold_of = np.zeros(len(pairs), dtype=np.int64)
    fold_rows = []
    for number, split in enumerate(splits, start=1):
        logger.info("fold %d of %d: %d training pairs, %d validation pairs", number, folds,
                    len(split.train), len(split.valid))
        data = prepare_data(train_files, None, config, model_config.max_len, pairs=pairs, split=split)
        result = fit(data, dataclasses.replace(model_config), config, output_dir / f"fold_{number}",
                     progress=progress, run_info=run_info)
        out_of_fold[split.valid] = result.valid_probabilities
        fold_of[split.valid] = number
        fold_rows.append({"fold": number, "best_val_auc": result.metrics["best_val_auc"],
                          "best_epoch": result.metrics["best_epoch"], "labeled_train_pairs": len(split.train),
                          "train_pairs_with_implied": len(data.train_a),
                          "valid_pairs": len(split.valid), "train_seconds": result.metrics["train_seconds"]})

    _write_out_of_fold(pairs, fold_of, out_of_fold, output_dir / "oof_predictions.csv")
    aucs = np.array([row["best_val_auc"] for row in fold_rows], dtype=float)
    metrics = {
        "folds": folds,
        "mean_auc": round(float(aucs.mean()), 6),
        "std_auc": round(float(aucs.std(ddof=1)), 6),
        "min_auc": round(float(aucs.min()), 6),
        "max_auc": round(float(aucs.max()), 6),
        "out_of_fold_auc": round(safe_auc(pairs.labels, out_of_fold), 6),
        "pairs": len(pairs),
        "invalid_lines_skipped": pairs.stats.invalid,
        "per_fold": fold_rows,
    }
    atomic_write_text(output_dir / "cv_metrics.json", json.dumps(metrics, indent=2) + "\n")
    logger.info("cross-validation over %d query-disjoint folds: AUC %.4f +- %.4f (pooled out-of-fold %.4f)",
                folds, metrics["mean_auc"], metrics["std_auc"], metrics["out_of_fold_auc"])
    return metrics


def _write_out_of_fold(pairs, fold_of: np.ndarray, probabilities: np.ndarray, path: Path) -> None:
    """Write one row per input pair, in input order, with the fold that validated it and that fold model's probability."""
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["source", "line", "query_a", "query_b", "label", "fold", "probability"])
        rows = zip(pairs.source_index, pairs.line_numbers, pairs.query_text(pairs.a), pairs.query_text(pairs.b),
                   pairs.labels, fold_of, probabilities)
        for source, line, query_a, query_b, label, fold, probability in rows:
            writer.writerow([pairs.sources[source], int(line), query_a, query_b, int(label), int(fold),
                             f"{probability:.6f}"])
