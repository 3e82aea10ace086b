"""Training and prediction throughput, batch-1 latency, and arithmetic efficiency on the real data.

Run from the repository root (takes about 10 minutes on 2 CPU cores):

    SEMMATCH_DATA=../shared/data .venv/bin/python benchmarks/throughput.py [--train-pairs 20000]

Each case prints one JSON line. Cases compare semmatch's defaults (batches padded to their own
longest query, length-bucketed) with `pad_to=128` (every query padded to 128 positions, the
reference's regime) in the same process, so the ratio does not depend on machine load drift
between runs. The model is the reference size (the default ModelConfig).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import data_dir, emit, machine
from semmatch.config import ModelConfig, TrainConfig
from semmatch.data import read_pairs
from semmatch.matcher import Matcher
from semmatch.model import TwoTowerModel
from semmatch.tokenize import IdVocabulary
from semmatch.train import build_optimizer, prepare_data, train_epoch
from semmatch.distributed import DistributedContext


def flops_per_query(config: ModelConfig, tokens: float) -> float:
    """Forward multiply-add FLOPs (2 per MAC) to encode one query of `tokens` tokens.

    Per token: BiLSTM 2 directions x 4 gates x (embedding + hidden) x hidden; attention
    projections (q, k, v, out) 4 x width^2 plus scores and weighted sum 2 x tokens x width;
    convolutions kernel x in x out each. Per query: the 2*channels -> projection layer.
    """
    width = 2 * config.lstm_hidden
    lstm = 2 * 4 * (config.embedding_dim + config.lstm_hidden) * config.lstm_hidden
    attention = 4 * width * width + 2 * tokens * width
    convs, channels = 0, width
    for kernel in config.conv_kernel_sizes:
        convs += kernel * channels * config.conv_channels
        channels = config.conv_channels
    per_token = lstm + attention + convs
    return 2 * (tokens * per_token + 2 * config.conv_channels * config.projection_dim)


def flops_per_pair_head(config: ModelConfig) -> float:
    width = 3 * config.projection_dim
    total = 0
    for hidden in config.head_hidden:
        total += width * hidden
        width = hidden
    return 2 * (total + width)


def measured_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """fp32 GEMM rate of this CPU through PyTorch (oneDNN/MKL): the practical peak."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def bench_training(data, pad_to, precision, seconds_budget=None):
    config = TrainConfig(batch_size=512, pad_to=pad_to, precision=precision, seed=42)
    torch.manual_seed(42)
    model_config = ModelConfig(vocab_size=len(data.vocabulary), oov_id=data.vocabulary.oov_id)
    model = TwoTowerModel(model_config)
    optimizer = build_optimizer(model, config)
    result = train_epoch(model, optimizer, data, config, np.random.default_rng(42), torch.device("cpu"), 1,
                         False, DistributedContext(), model_config.max_len)
    return result.pairs / result.seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-pairs", type=int, default=20_000)
    parser.add_argument("--latency-calls", type=int, default=2_000)
    args = parser.parse_args()
    root = data_dir()
    emit({"case": "machine", **machine()})

    # 1. Training throughput on a fixed slice of pairs.ids.tsv.
    slice_path = f"/tmp/semmatch_bench_slice_{args.train_pairs}.tsv"
    with open(root / "xiaobu" / "pairs.ids.tsv", encoding="utf-8") as source, open(slice_path, "w", encoding="utf-8") as target:
        for _ in range(args.train_pairs):
            target.write(next(source))
    config = TrainConfig(valid_fraction=0.2)
    data = prepare_data([slice_path], None, config)
    train_pairs = len(data.train_a)
    rates = {}
    for name, pad_to, precision in [("default", None, "fp32"), ("pad_to_128", 128, "fp32"), ("default_bf16", None, "bf16")]:
        rates[name], _ = bench_training(data, pad_to, precision)
        emit({"case": "train", "variant": name, "pairs": train_pairs, "pairs_per_second": round(rates[name], 1)})
    emit({"case": "train", "variant": "ratio", "default_over_pad_to_128": round(rates["default"] / rates["pad_to_128"], 2)})

    # 2. Prediction throughput on test B, and 3. batch-1 latency, with an untrained reference-size model
    # (speed does not depend on the weights).
    test_b = read_pairs(root / "gaiic" / "gaiic_track3_round1_testB_20210317.tsv")
    torch.manual_seed(0)
    model = TwoTowerModel(ModelConfig(vocab_size=3702, oov_id=3701))
    matcher = Matcher(model, IdVocabulary(3700), "cpu")
    predict_rates = {}
    scores = {}
    for name, pad_to, precision in [("default", None, "fp32"), ("pad_to_128", 128, "fp32"), ("default_bf16", None, "bf16")]:
        matcher.precision = precision
        matcher.predict_pairset(test_b.subset(np.arange(1000)), pad_to)  # warm-up
        start = time.perf_counter()
        scores[name] = matcher.predict_pairset(test_b, pad_to)
        predict_rates[name] = len(test_b) / (time.perf_counter() - start)
        emit({"case": "predict", "variant": name, "pairs": len(test_b), "pairs_per_second": round(predict_rates[name], 1)})
    matcher.precision = "fp32"
    emit({"case": "predict", "variant": "ratio",
          "default_over_pad_to_128": round(predict_rates["default"] / predict_rates["pad_to_128"], 2),
          "max_abs_difference_default_vs_pad_to_128": float(np.abs(scores["default"] - scores["pad_to_128"]).max()),
          "max_abs_difference_default_vs_bf16": float(np.abs(scores["default"] - scores["default_bf16"]).max())})

    rng = np.random.default_rng(0)
    pairs = [(test_b.queries[test_b.a[i]], test_b.queries[test_b.b[i]]) for i in rng.integers(0, len(test_b), args.latency_calls)]
    for pair in pairs[:50]:
        matcher.predict_proba([pair])
    latencies = []
    for pair in pairs:
        start = time.perf_counter()
        matcher.predict_proba([pair])
        latencies.append((time.perf_counter() - start) * 1000)
    emit({"case": "latency_batch1", "calls": len(latencies), "p50_ms": round(float(np.percentile(latencies, 50)), 3),
          "p99_ms": round(float(np.percentile(latencies, 99)), 3)})

    # 6. Arithmetic efficiency of the default training and prediction paths.
    model_config = ModelConfig()
    lengths = np.concatenate([np.diff(test_b.query_offsets)])
    mean_tokens = float(lengths.mean())
    pair_forward = 2 * flops_per_query(model_config, mean_tokens) + flops_per_pair_head(model_config)
    peak = measured_peak_gflops()
    train_gflops = rates["default"] * 3 * pair_forward / 1e9  # backward ~ 2x forward
    predict_gflops = predict_rates["default"] * pair_forward / 1e9
    emit({"case": "efficiency", "mean_tokens_per_query": round(mean_tokens, 2),
          "forward_mflops_per_pair": round(pair_forward / 1e6, 2), "measured_fp32_gemm_peak_gflops": round(peak, 1),
          "train_gflops": round(train_gflops, 1), "train_fraction_of_peak": round(train_gflops / peak, 3),
          "predict_gflops": round(predict_gflops, 1), "predict_fraction_of_peak": round(predict_gflops / peak, 3)})


if __name__ == "__main__":
    main()
