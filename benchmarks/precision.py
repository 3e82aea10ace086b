"""Accuracy of bf16 autocast inference against fp32 on a trained model's validation pairs.

Run from the repository root after a training run (RUN_DIR/validation_predictions.csv lists the
validation pairs):

    .venv/bin/python benchmarks/precision.py RUN_DIR

Prints one JSON line with AUC under fp32 and bf16, their difference, and pairs/s of each.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

from common import emit
from semmatch.data import read_pairs
from semmatch.matcher import load_model
from semmatch.metrics import safe_auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    with open(args.run_dir / "validation_predictions.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as handle:
        for row in rows:
            handle.write(f"{row['query_a']}\t{row['query_b']}\t{row['label']}\n")
        valid_path = handle.name
    pairs = read_pairs(valid_path)
    labels = pairs.labels
    record = {"case": "precision", "run": str(args.run_dir), "pairs": len(pairs)}
    for precision in ("fp32", "bf16"):
        matcher = load_model(args.run_dir / "best", "cpu", precision)
        matcher.predict_pairset(pairs.subset(range(500)))  # warm-up
        start = time.perf_counter()
        probabilities = matcher.predict_pairset(pairs)
        record[f"{precision}_pairs_per_second"] = round(len(pairs) / (time.perf_counter() - start), 1)
        record[f"{precision}_auc"] = round(safe_auc(labels, probabilities), 5)
    record["auc_difference"] = round(record["bf16_auc"] - record["fp32_auc"], 5)
    Path(valid_path).unlink()
    emit(record)


if __name__ == "__main__":
    main()
