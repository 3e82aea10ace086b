"""Accuracy of the reference recipe and each lever, on query-disjoint and random holdouts.

Run from the repository root (about 90 minutes on 2 CPU cores):

    SEMMATCH_DATA=../shared/data .venv/bin/python benchmarks/accuracy.py --confirm-seeds 7

Starting from the reference recipe, each lever is added to the best configuration so far and
kept when it raises the query-split validation AUC on the Xiaobu pairs (text mode). Every
configuration trains with the same seed and epoch budget:
- on `xiaobu/pairs.tsv` with a query-disjoint 80/20 split;
- on one query-disjoint half of `general/lcqmc_dev.tsv` and of `general/bq_dev.tsv`, scored on the other half.
The reference and the winner also train on a stratified random 80/20 split of the Xiaobu pairs.
Then every preset of `semmatch train --preset` is scored on the same cases (a search row with the
same settings is reused), and with --confirm-seeds the presets train again on Xiaobu query splits
drawn with other seeds, which took no part in choosing the levers.

Runs go one at a time with two PyTorch threads (--jobs and --threads change that). Prints one JSON line per run, keeps them in
WORK_DIR/results.json, and writes the table into docs/accuracy.md between its table markers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

from common import data_dir, emit
from semmatch.config import PRESETS, preset_values

# (name, model values, train values) added on top of the best configuration so far.
LEVERS = [
    ("+ symmetric head", {"symmetric": True}, {}),
    ("+ u*v and cosine features", {"fusion": ["u", "v", "abs_diff", "product", "cosine"]}, {}),
    ("+ embedding dropout 0.1, AdamW 0.01, clip 1.0, label smoothing 0.1", {"embedding_dropout": 0.1},
     {"optimizer": "adamw", "weight_decay": 0.01, "clip_grad_norm": 1.0, "label_smoothing": 0.1}),
    ("+ EMA of weights 0.99", {}, {"ema_decay": 0.99}),
    ("+ transitive augmentation 0.5", {}, {"augment_transitive": 0.5}),
    ("+ interaction model (ESIM-style cross attention)", {"architecture": "interaction"}, {}),
    ("+ MLM pretraining of the encoder, 2 epochs", {}, {"mlm_epochs": 2}),
]
TABLE_START, TABLE_END = "<!-- accuracy table start -->", "<!-- accuracy table end -->"
CONFIRM_START, CONFIRM_END = "<!-- confirmation table start -->", "<!-- confirmation table end -->"
PRESETS_START, PRESETS_END = "<!-- presets table start -->", "<!-- presets table end -->"
CASE_KEYS = {"xiaobu_query": ("xiaobu", "query"), "lcqmc": ("lcqmc", "query"), "bq": ("bq", "query")}


def cached_result(job: dict) -> dict | None:
    """Return the result that an earlier run of exactly this job left in its benchmark_run.json, if any."""
    record_path = Path(job["output_dir"]) / "benchmark_run.json"
    if record_path.is_file():
        saved = json.loads(record_path.read_text(encoding="utf-8"))
        if saved["job"] == job:
            return saved["result"]
    return None


def run_one(job: dict) -> dict:
    """Train one configuration on one dataset and split; runs in a worker process.

    A finished run leaves benchmark_run.json in its directory; a rerun with the same job reuses it.
    """
    import torch

    cached = cached_result(job)
    if cached is not None:
        return cached
    record_path = Path(job["output_dir"]) / "benchmark_run.json"

    from semmatch.config import ModelConfig, TrainConfig, build_config
    from semmatch.data import read_pairs
    from semmatch.splits import make_split
    from semmatch.train import fit, prepare_data

    torch.set_num_threads(job["threads"])
    start = time.perf_counter()
    train_values = {**job["train"], "epochs": job["epochs"], "split": job["split"],
                    "valid_fraction": job["valid_fraction"], "seed": job["seed"], "num_threads": job["threads"]}
    train_config = build_config(TrainConfig, train_values, "benchmark")
    model_config = build_config(ModelConfig, dict(job["model"]), "benchmark")
    pairs = read_pairs(job["path"])
    split = make_split(pairs, job["split"], job["valid_fraction"], job["seed"])
    data = prepare_data([job["path"]], None, train_config, pairs=pairs, split=split)
    result = fit(data, model_config, train_config, job["output_dir"], progress=False)
    last = result.history[-1]
    record = {"config": job["config"], "dataset": job["dataset"], "split": job["split"],
            "best_val_auc": round(result.metrics["best_val_auc"], 4), "best_epoch": result.metrics["best_epoch"],
            "last_val_auc": round(last["val_auc"], 4), "epochs": len(result.history),
            "train_pairs": data.counts["train_pairs"], "valid_pairs": data.counts["valid_pairs"],
            "seconds": round(time.perf_counter() - start, 1)}
    record_path.write_text(json.dumps({"job": job, "result": record}, indent=1) + "\n", encoding="utf-8")
    return record


def jobs_for(name: str, model: dict, train: dict, args: argparse.Namespace, root: Path,
             cases: tuple[str, ...] = ("xiaobu_query", "lcqmc", "bq")) -> list[dict]:
    """Build the run specifications of one configuration for the named cases.

    The cases run in the order xiaobu_query, xiaobu_random, lcqmc, bq.
    """
    base = {"config": name, "model": model, "train": train, "seed": args.seed, "threads": args.threads}
    slug = name.replace(" ", "_").replace("+", "").replace("*", "x").replace(",", "").strip("_")
    known = {"xiaobu_query": ("xiaobu", root / "xiaobu" / "pairs.tsv", "query", 0.2, args.epochs),
             "xiaobu_random": ("xiaobu", root / "xiaobu" / "pairs.tsv", "random", 0.2, args.epochs),
             "lcqmc": ("lcqmc", root / "general" / "lcqmc_dev.tsv", "query", 0.5, args.small_epochs),
             "bq": ("bq", root / "general" / "bq_dev.tsv", "query", 0.5, args.small_epochs)}
    cases = [value for key, value in known.items() if key in cases]
    return [{**base, "dataset": dataset, "path": str(path), "split": split, "valid_fraction": fraction,
             "epochs": epochs, "output_dir": str(args.work_dir / slug / f"{dataset}_{split}")}
            for dataset, path, split, fraction, epochs in cases]


def table(results: list[dict], kept_levers: list[str], args: argparse.Namespace) -> str:
    by_config: dict[str, dict] = {}
    for record in results:
        by_config.setdefault(record["config"], {})[(record["dataset"], record["split"])] = record
    lines = [
        f"Budget: {args.epochs} epochs on Xiaobu, {args.small_epochs} on the LCQMC and BQ halves; seed {args.seed}. "
        "AUC is the best epoch's validation AUC (its epoch in brackets). Wall time: the Xiaobu query-split run "
        f"with {args.threads} PyTorch threads, {args.jobs} run(s) at a time.",
        "",
        "| config | kept | Xiaobu query-split AUC | Xiaobu random-split AUC | LCQMC half AUC | BQ half AUC | wall time, s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in by_config.items():
        def cell(key):
            record = runs.get(key)
            return "" if record is None else f"{record['best_val_auc']:.4f} ({record['best_epoch']})"
        seconds = runs[("xiaobu", "query")]["seconds"]
        status = "yes" if name in kept_levers else "no"
        if name == "reference":
            status = "base"
        lines.append(f"| {name} | {status} | {cell(('xiaobu', 'query'))} | {cell(('xiaobu', 'random'))} | "
                     f"{cell(('lcqmc', 'query'))} | {cell(('bq', 'query'))} | {seconds:.0f} |")
    return "\n".join(lines)


def presets_table(rows: dict[str, dict[tuple[str, str], dict]]) -> str:
    """Format one row per preset: AUC on each case and the change against the reference preset."""
    reference = rows["reference"]
    lines = ["| preset | Xiaobu query-split AUC | LCQMC half AUC | BQ half AUC |", "|---|---|---|---|"]
    for name, runs in rows.items():
        cells = []
        for key in CASE_KEYS.values():
            auc = runs[key]["best_val_auc"]
            gain = "" if name == "reference" else f", {auc - reference[key]['best_val_auc']:+.4f}"
            cells.append(f"{auc:.4f} ({runs[key]['best_epoch']}){gain}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def confirmation_table(rows: list[tuple[int, dict[str, dict]]]) -> str:
    names = list(rows[0][1])
    lines = ["| split seed | " + " | ".join(f"`--preset {name}` AUC" for name in names) + " |",
             "|---|" + "---|" * len(names)]
    for seed, runs in rows:
        reference = runs["reference"]["best_val_auc"]
        cells = [f"{runs[name]['best_val_auc']:.4f} ({runs[name]['best_epoch']})"
                 + ("" if name == "reference" else f", {runs[name]['best_val_auc'] - reference:+.4f}")
                 for name in names]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def find_run(results: list[dict], jobs_by_config: dict[str, dict], model: dict, train: dict,
             key: tuple[str, str]) -> dict | None:
    """Return a search run on case `key` whose configuration has exactly these model and train values."""
    for record in results:
        job = jobs_by_config.get(record["config"])
        if job and job["model"] == model and job["train"] == train and (record["dataset"], record["split"]) == key:
            return record
    return None


def write_table(markdown: str, path: Path, start: str = TABLE_START, end: str = TABLE_END) -> None:
    """Replace the text between the `start` and `end` markers of `path`, appending the markers when missing."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Accuracy\n"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    path.write_text(f"{before}{start}\n{markdown}\n{end}{after}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epoch budget on Xiaobu (default 2)")
    parser.add_argument("--small-epochs", type=int, default=10, help="epoch budget on the LCQMC and BQ halves (default 10)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads per run (default 2)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (default 1)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/accuracy"))
    parser.add_argument("--doc", type=Path, default=Path("docs/accuracy.md"))
    parser.add_argument("--confirm-seeds", type=int, nargs="*", default=[],
                        help="after the search, train the reference and best presets on query splits "
                             "with these seeds: holdouts that took no part in choosing the levers")
    args = parser.parse_args()
    root = data_dir()
    args.work_dir = args.work_dir.resolve()  # cached runs match however the directory is spelled
    args.work_dir.mkdir(parents=True, exist_ok=True)

    results: list[dict] = []
    jobs_by_config: dict[str, dict] = {}
    kept_levers: list[str] = []
    best_model: dict = {}
    best_train: dict = {}
    best_auc = None
    candidates = [("reference", {}, {})] + LEVERS
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for name, model_values, train_values in candidates:
            model, train = {**best_model, **model_values}, {**best_train, **train_values}
            jobs_by_config[name] = {"model": model, "train": train}
            cases = ("xiaobu_query", "lcqmc", "bq")
            if name == "reference":
                cases = ("xiaobu_query", "xiaobu_random", "lcqmc", "bq")
            runs = pool.map(run_one, jobs_for(name, model, train, args, root, cases), chunksize=1)
            for record in runs:
                emit(record)
            results.extend(runs)
            auc = next(r["best_val_auc"] for r in runs if r["dataset"] == "xiaobu" and r["split"] == "query")
            if best_auc is None or auc > best_auc:
                if best_auc is not None:
                    kept_levers.append(name)
                best_auc, best_model, best_train = auc, model, train
            summary = {"results": results, "kept_levers": kept_levers, "best_model": best_model,
                       "best_train": best_train,
                       "epochs": args.epochs, "small_epochs": args.small_epochs, "seed": args.seed}
            (args.work_dir / "results.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
            write_table(table(results, kept_levers, args), args.doc)

        # The random split shares queries between the sides. It runs for the reference and the winner,
        # and other kept levers show it when an earlier run left it in the cache.
        if kept_levers:
            for name in kept_levers:
                values = jobs_by_config[name]
                [job] = jobs_for(name, values["model"], values["train"], args, root, ("xiaobu_random",))
                if name == kept_levers[-1] or cached_result(job) is not None:
                    record = pool.apply(run_one, (job,))
                    emit(record)
                    results.append(record)
            write_table(table(results, kept_levers, args), args.doc)

        # The presets users get can differ from the search's rows, so each is scored on every case.
        presets = [(name, *preset_values(name)) for name in ("reference", *sorted(set(PRESETS) - {"reference"}))]
        preset_rows: dict[str, dict] = {}
        for name, model, train in presets:
            runs = {key: find_run(results, jobs_by_config, model, train, key) for key in CASE_KEYS.values()}
            missing = tuple(case for case, key in CASE_KEYS.items() if runs[key] is None)
            for record in pool.map(run_one, jobs_for(f"preset {name}", model, train, args, root, missing), chunksize=1):
                emit(record)
                runs[(record["dataset"], record["split"])] = record
            preset_rows[name] = runs
            write_table(presets_table(preset_rows), args.doc, PRESETS_START, PRESETS_END)

        # The confirmation trains the presets on splits that took no part in choosing the levers.
        confirmations = []
        for seed in args.confirm_seeds:
            jobs = [{**job, "seed": seed, "output_dir": str(args.work_dir / "confirm" / f"seed{seed}" / name)}
                    for name, model, train in presets
                    for job in jobs_for(name, model, train, args, root, ("xiaobu_query",))]
            runs = pool.map(run_one, jobs, chunksize=1)
            for record in runs:
                emit(record)
            confirmations.append((seed, {name: record for (name, _, _), record in zip(presets, runs)}))
            write_table(confirmation_table(confirmations), args.doc, CONFIRM_START, CONFIRM_END)
    emit({"case": "accuracy", "best_model": best_model, "best_train": best_train, "kept_levers": kept_levers})


if __name__ == "__main__":
    main()
