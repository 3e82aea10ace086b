"""ONNX Runtime against PyTorch: scoring throughput, single-pair latency and agreement.

    python benchmarks/onnx_speed.py --data ../shared/data/gaiic/gaiic_track3_round1_testB_20210317.tsv \
        --work-dir runs/bench-onnx
    python benchmarks/onnx_speed.py --data ../shared/data/xiaobu/pairs.tsv --model runs/bench-retrieval/model/best \
        --work-dir runs/bench-onnx-text

Without --model, a model of the default (reference) size with random weights is built for the
data's ID range: speed does not depend on the weight values. The model is exported with
`semmatch export` (default exporter). Then each backend, in its own process, scores the first
--pairs pairs in bulk (best of --repeats runs) and --single pairs one call at a time. Prints one
JSON line per backend and a last line with the largest difference between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from semmatch.config import ModelConfig
from semmatch.data import read_pairs
from semmatch.matcher import load_model, save_model
from semmatch.model import TwoTowerModel
from semmatch.onnx_export import OnnxMatcher
from semmatch.tokenize import IdVocabulary


def random_id_model(pairs, path: Path) -> Path:
    max_id = int(pairs.query_ids.max())
    config = ModelConfig(vocab_size=max_id + 2, oov_id=max_id + 1)
    torch.manual_seed(0)
    save_model(TwoTowerModel(config), IdVocabulary(max_id), path)
    return path


def bulk_seconds(matcher, pairs, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        matcher.predict_pairset(pairs)
        timings.append(time.perf_counter() - start)
    return min(timings)


def single_latencies(matcher, pairs) -> list[float]:
    latencies = []
    for a, b in zip(pairs.a, pairs.b):
        start = time.perf_counter()
        matcher.predict_proba([(pairs.queries[a], pairs.queries[b])])
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def measure(backend: str, model_dir: Path, export_dir: Path, args) -> None:
    """Time one backend and save its probabilities for the comparison (runs in its own process)."""
    all_pairs = read_pairs(args.data, "auto")
    matcher = load_model(model_dir, device="cpu") if backend == "torch" else OnnxMatcher.load(export_dir)
    pairs = all_pairs.subset(np.arange(min(args.pairs, len(all_pairs))))
    single = all_pairs.subset(np.arange(min(args.single, len(all_pairs))))
    probabilities = matcher.predict_pairset(pairs)  # also warms up
    np.save(Path(args.work_dir) / f"probabilities-{backend}.npy", probabilities)
    seconds = bulk_seconds(matcher, pairs, args.repeats)
    latencies = single_latencies(matcher, single)
    print(json.dumps({
        "benchmark": "onnx_speed", "backend": backend, "data": Path(args.data).name,
        "model": str(model_dir) if args.model else "random, default ModelConfig", "exporter": args.exporter,
        "pairs": len(pairs), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "machine": platform.machine(),
        "bulk_pairs_per_second": round(len(pairs) / seconds, 1),
        "single_pair_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "single_pair_p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="pair file (IDs for the random model, or the model's format)")
    parser.add_argument("--work-dir", required=True, help="directory for the model and its ONNX export")
    parser.add_argument("--model", help="a trained model directory (default: a random model of reference size)")
    parser.add_argument("--exporter", default="dynamo", choices=["dynamo", "torchscript"])
    parser.add_argument("--pairs", type=int, default=5000, help="pairs scored in bulk (default 5000)")
    parser.add_argument("--single", type=int, default=200, help="pairs scored one call at a time (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="bulk runs per backend; the fastest counts (default 3)")
    parser.add_argument("--only", choices=["torch", "onnx"], help=argparse.SUPPRESS)  # used by the child processes
    args = parser.parse_args()

    work_dir = Path(args.work_dir)
    model_dir = Path(args.model) if args.model else work_dir / "model"
    export_dir = work_dir / f"onnx-{args.exporter}"
    if args.only:
        measure(args.only, model_dir, export_dir, args)
        return

    work_dir.mkdir(parents=True, exist_ok=True)
    if not args.model:
        random_id_model(read_pairs(args.data, "ids"), model_dir)
    subprocess.run([sys.executable, "-m", "semmatch", "export", "--model", str(model_dir), "--output", str(export_dir),
                    "--exporter", args.exporter, "-q"], check=True, stdout=sys.stderr)
    # Each backend runs in a fresh process, so that one library's idle worker threads do not
    # slow the other down.
    for backend in ("torch", "onnx"):
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", backend], check=True)
    probabilities = {backend: np.load(work_dir / f"probabilities-{backend}.npy") for backend in ("torch", "onnx")}
    difference = float(np.abs(probabilities["onnx"] - probabilities["torch"]).max())
    print(json.dumps({"benchmark": "onnx_speed", "max_abs_probability_difference": difference,
                      "pairs": len(probabilities["torch"])}))


if __name__ == "__main__":
    main()
