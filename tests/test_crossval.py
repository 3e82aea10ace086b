"""`semmatch cv`: query-disjoint folds, out-of-fold predictions, presets, in a subprocess as a user runs it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from test_cli import semmatch

SMALL_TOML = (
    "[model]\nembedding_dim = 32\nlstm_hidden = 16\nattention_heads = 2\nattention_head_dim = 16\n"
    "conv_channels = 32\nprojection_dim = 32\nhead_hidden = [32, 16]\n\n[train]\nbatch_size = 128\n"
)


def test_cv_validates_each_pair_once(sample_dir, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML, encoding="utf-8")
    output = tmp_path / "cv"
    result = semmatch("cv", "--train", sample_dir / "train.tsv", "--folds", 3, "--epochs", 1, "--preset", "best",
                      "--config", config, "--output-dir", output, "--no-progress", "--threads", 1)
    summary = json.loads(result.stdout)
    metrics = json.loads((output / "cv_metrics.json").read_text())
    assert summary["folds"] == 3
    assert len(metrics["per_fold"]) == 3
    aucs = [fold["best_val_auc"] for fold in metrics["per_fold"]]
    assert metrics["mean_auc"] == round(float(np.mean(aucs)), 6)
    assert metrics["std_auc"] == round(float(np.std(aucs, ddof=1)), 6)

    with open(output / "oof_predictions.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    lines = (sample_dir / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert [int(row["line"]) for row in rows] == list(range(1, len(lines) + 1))
    assert {row["fold"] for row in rows} == {"1", "2", "3"}
    labels = [int(row["label"]) for row in rows]
    probabilities = [float(row["probability"]) for row in rows]
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    # The file rounds probabilities to 6 decimals, which can move the AUC in its last digits.
    assert metrics["out_of_fold_auc"] == pytest.approx(roc_auc_score(labels, probabilities), abs=1e-4)
    for fold in (1, 2, 3):
        train_queries, valid_queries = set(), set()
        for row in rows:
            target = valid_queries if row["fold"] == str(fold) else train_queries
            target.update((row["query_a"], row["query_b"]))
        assert not train_queries & valid_queries

    effective = json.loads((output / "fold_1" / "config.json").read_text())
    assert effective["model"]["symmetric"] is True  # from the preset
    assert effective["model"]["embedding_dim"] == 32  # the TOML file overrides the preset
    assert effective["train"]["epochs"] == 1  # and flags override both
    assert (output / "fold_3" / "best").is_dir()
    assert (output / "cv.log").is_file()


def test_unknown_preset_is_reported(sample_dir, tmp_path):
    result = semmatch("train", "--train", sample_dir / "train.tsv", "--preset", "fastest", "--output-dir", tmp_path,
                      check=False)
    assert result.returncode != 0
    assert "unknown preset 'fastest'" in result.stderr


def write_pairs(path, rows):
    path.write_text("".join(f"{a}\t{b}\t{label}\n" for a, b, label in rows), encoding="utf-8")
    return path


def test_cv_rejects_class_smaller_than_folds(tmp_path):
    rows = [(f"问题{i}", f"回答{i}", 1) for i in range(6)] + [("问题x", "回答x", 0)]
    result = semmatch("cv", "--train", write_pairs(tmp_path / "few.tsv", rows), "--folds", 3,
                      "--output-dir", tmp_path / "cv", check=False)
    assert result.returncode == 2
    assert "needs at least 3 pairs of each label, found 1 with label 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert "needs at least 3 pairs of each label" in (tmp_path / "cv" / "cv.log").read_text(encoding="utf-8")


def test_cv_rejects_one_label_fold(tmp_path):
    # Two negatives share a query, so they stay in one fold and the other fold has positives only.
    rows = [("开灯", "关灯", 0), ("开灯", "把灯关了", 0)] + [(f"问题{i}", f"回答{i}", 1) for i in range(4)]
    result = semmatch("cv", "--train", write_pairs(tmp_path / "linked.tsv", rows), "--folds", 2,
                      "--output-dir", tmp_path / "cv", check=False)
    assert result.returncode == 2
    assert "one label only" in result.stderr


def test_cv_rejects_one_fold_before_writing(tmp_path, sample_dir):
    result = semmatch("cv", "--train", sample_dir / "train.tsv", "--folds", 1, "--output-dir", tmp_path / "cv",
                      check=False)
    assert result.returncode != 0
    assert "at least 2 folds" in result.stderr
    assert not (tmp_path / "cv").exists()
