"""Fold-model ensembling against one model, on a query-disjoint holdout that no model saw.

Run from the repository root (about 20 minutes per configuration on 2 CPU cores):

    SEMMATCH_DATA=../shared/data .venv/bin/python benchmarks/ensemble.py --preset best

The Xiaobu pairs (text mode) are split 80/20 by query as in benchmarks/accuracy.py (seed 42), and
both sides are written to WORK_DIR as TSV files. `semmatch cv` then trains K fold models on the
80% side. The holdout is scored by each fold model, by the mean of their probabilities (the
ensemble), and by one model trained on the whole 80% side with the same recipe and budget.
--single-model takes that model from an earlier run on the same split, such as
benchmarks/accuracy.py's. The table goes into docs/accuracy.md between its ensemble markers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from accuracy import write_table
from common import data_dir, emit
from semmatch.config import ModelConfig, TrainConfig, build_config, preset_values
from semmatch.crossval import cross_validate
from semmatch.data import read_pairs
from semmatch.matcher import load_model
from semmatch.predict import evaluate_file
from semmatch.splits import make_split
from semmatch.train import fit, prepare_data

START, END = "<!-- ensemble table start -->", "<!-- ensemble table end -->"


def write_split(source: Path, work_dir: Path, seed: int) -> tuple[Path, Path]:
    """Write the query-disjoint 80/20 split of `source` as train.tsv and holdout.tsv (text, with labels)."""
    train_path, holdout_path = work_dir / "train.tsv", work_dir / "holdout.tsv"
    if train_path.is_file() and holdout_path.is_file():
        return train_path, holdout_path
    pairs = read_pairs(str(source))
    split = make_split(pairs, "query", 0.2, seed)
    for path, indices in ((train_path, split.train), (holdout_path, split.valid)):
        lines = [f"{a}\t{b}\t{label}\n" for a, b, label in
                 zip(pairs.query_text(pairs.a[indices]), pairs.query_text(pairs.b[indices]), pairs.labels[indices])]
        path.write_text("".join(lines), encoding="utf-8")
    return train_path, holdout_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="best", help="the recipe to train (default best)")
    parser.add_argument("--folds", type=int, default=3, help="fold models in the ensemble (default 3)")
    parser.add_argument("--epochs", type=int, default=2, help="epoch budget of every model (default 2)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (default 2)")
    parser.add_argument("--single-model", type=Path, metavar="DIR",
                        help="a run's best/ model trained with the same recipe on the same 80%% side; default: train one")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/ensemble"))
    parser.add_argument("--doc", type=Path, default=Path("docs/accuracy.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work_dir = args.work_dir.resolve() / args.preset
    work_dir.mkdir(parents=True, exist_ok=True)
    train_path, holdout_path = write_split(data_dir() / "xiaobu" / "pairs.tsv", work_dir.parent, args.seed)

    model_values, train_values = preset_values(args.preset)
    train_values.update(epochs=args.epochs, seed=args.seed, num_threads=args.threads)
    model_config = build_config(ModelConfig, model_values, f"preset {args.preset}")
    train_config = build_config(TrainConfig, train_values, f"preset {args.preset}")

    # Finished runs are reused, so a rerun only scores them again.
    single_dir = args.single_model.parent if args.single_model else work_dir / "single"
    if not (single_dir / "metrics.json").is_file():
        data = prepare_data([str(train_path)], str(holdout_path), train_config)
        fit(data, model_config, train_config, single_dir, progress=False)
    if not (work_dir / "cv" / "cv_metrics.json").is_file():
        cross_validate([str(train_path)], model_config, train_config, work_dir / "cv", args.folds, progress=False)
    single_seconds = json.loads((single_dir / "metrics.json").read_text())["train_seconds"]
    cv_seconds = sum(row["train_seconds"] for row in json.loads((work_dir / "cv" / "cv_metrics.json").read_text())["per_fold"])

    fold_models = [load_model(work_dir / "cv" / f"fold_{n}" / "best", device="cpu") for n in range(1, args.folds + 1)]
    rows = [("one model on the whole 80%", evaluate_file(load_model(single_dir / "best", device="cpu"),
                                                         holdout_path)["auc"])]
    rows += [(f"fold model {n}", evaluate_file(model, holdout_path)["auc"]) for n, model in enumerate(fold_models, 1)]
    rows.append((f"mean of the {args.folds} fold models", evaluate_file(fold_models, holdout_path)["auc"]))
    record = {"case": "ensemble", "preset": args.preset, "folds": args.folds, "epochs": args.epochs,
              "holdout_auc": {name: round(auc, 4) for name, auc in rows},
              "single_train_seconds": round(single_seconds, 1), "cv_train_seconds": round(cv_seconds, 1)}
    emit(record)
    (work_dir / "ensemble.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")

    lines = [f"`--preset {args.preset}`, {args.epochs} epochs per model, seed {args.seed}; holdout: the Xiaobu "
             "query-split 20%, which no model saw.", "",
             "| model | holdout AUC |", "|---|---|"]
    lines += [f"| {name} | {auc:.4f} |" for name, auc in rows]
    write_table("\n".join(lines), args.doc, START.replace("table", f"table {args.preset}"),
                END.replace("table", f"table {args.preset}"))


if __name__ == "__main__":
    main()
