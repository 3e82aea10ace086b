"""Training and prediction speed of each preset, as ratios to the reference within one process.

Run from the repository root:

    SEMMATCH_DATA=../shared/data .venv/bin/python benchmarks/preset_cost.py

Each preset trains one epoch over the first 20,000 pairs of `xiaobu/pairs.tsv` (80% train,
text mode) and then scores the last 4,000 of those pairs. The presets alternate over `--rounds`
rounds so that load on the machine affects all of them alike. Prints one JSON line per preset
with the median pairs/s and its ratio to the reference preset.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from common import data_dir, emit, machine
from semmatch.config import ModelConfig, PRESETS, TrainConfig, build_config, preset_values
from semmatch.data import read_pairs
from semmatch.train import fit, prepare_data


def measure(name: str, path: str, pairs) -> tuple[float, float, int]:
    """Train one epoch with preset `name`; returns (train pairs/s, prediction pairs/s, parameter count)."""
    model_values, train_values = preset_values(name)
    train_config = build_config(TrainConfig, {**train_values, "epochs": 1, "split": "random"}, name)
    model_config = build_config(ModelConfig, model_values, name)
    data = prepare_data([path], None, train_config, pairs=pairs)
    with tempfile.TemporaryDirectory() as output_dir:
        result = fit(data, model_config, train_config, output_dir, progress=False)
    train_rate = result.metrics["train_pairs_per_second"]
    valid = pairs.subset(range(len(pairs) - 4000, len(pairs)))
    start = time.perf_counter()
    result.matcher.predict_pairset(valid)
    predict_rate = len(valid) / (time.perf_counter() - start)
    return train_rate, predict_rate, sum(p.numel() for p in result.matcher.model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20_000, help="pairs read from the start of the file")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per preset (default 2)")
    args = parser.parse_args()
    path = str(data_dir() / "xiaobu" / "pairs.tsv")
    pairs = read_pairs(path)
    pairs = pairs.subset(range(args.pairs))
    rates: dict[str, list[tuple[float, float, int]]] = {name: [] for name in PRESETS}
    for _ in range(args.rounds):
        for name in PRESETS:
            rates[name].append(measure(name, path, pairs))
    reference_train = statistics.median(rate[0] for rate in rates["reference"])
    reference_predict = statistics.median(rate[1] for rate in rates["reference"])
    for name, values in rates.items():
        train_rate = statistics.median(value[0] for value in values)
        predict_rate = statistics.median(value[1] for value in values)
        emit({"case": "preset_cost", "preset": name, "train_pairs_per_second": round(train_rate, 1),
              "train_ratio_to_reference": round(train_rate / reference_train, 3),
              "predict_pairs_per_second": round(predict_rate, 1),
              "predict_ratio_to_reference": round(predict_rate / reference_predict, 3),
              "parameters": values[0][2], "rounds": args.rounds, **machine()})


if __name__ == "__main__":
    main()
