"""Retrieval benchmark: can a query bank find the held-out paraphrase of a query, and how fast?

    python benchmarks/retrieval.py --data ../shared/data/xiaobu/pairs.tsv --work-dir runs/bench-retrieval
    python benchmarks/retrieval.py --data ../shared/data/xiaobu/pairs.tsv --work-dir runs/bench-retrieval \
        --model runs/bench-retrieval/model/best    # reuse a trained model

Steps:
1. Split the pairs with the query-disjoint split (20% held out, seed 42), so that no held-out
   query occurs in a training pair, and write train.tsv and heldout.tsv to --work-dir.
2. Unless --model is given, train a text model on train.tsv (`semmatch train`, validation on
   heldout.tsv, --epochs epochs).
3. Build a bank of every distinct query in the data file, once per index type.
4. For each held-out positive pair (a, b), search the bank for a, with a itself removed from
   the results, and count b among the top 1, 5 and 10: recall@k. Both the ranking by vector
   similarity alone (`rerank=False`) and the ranking after the head reranks the candidates
   are reported.
5. Time batched search (all probes in one call) and single-query search (one call per query),
   both including the encoding of the probes.

Prints one JSON line per index type and ranking, and a first line describing the run.
NOTE: a bank query that also means the same as a but is not b counts against recall, so
recall@k is a lower bound on how often a correct match is returned.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from semmatch.bank import IndexSettings, QueryBank
from semmatch.data import read_pairs
from semmatch.matcher import load_model
from semmatch.splits import query_split

KS = (1, 5, 10)


def write_pairs(path: Path, pairs, indices: np.ndarray) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in indices:
            handle.write(f"{pairs.queries[pairs.a[i]]}\t{pairs.queries[pairs.b[i]]}\t{int(pairs.labels[i])}\n")


def train_model(work_dir: Path, epochs: int, batch_size: int) -> Path:
    output = work_dir / "model"
    command = [sys.executable, "-m", "semmatch", "train", "--train", str(work_dir / "train.tsv"),
               "--valid", str(work_dir / "heldout.tsv"), "--output-dir", str(output),
               "--epochs", str(epochs), "--batch-size", str(batch_size), "--no-progress"]
    subprocess.run(command, check=True, stdout=sys.stderr)  # keep standard output for the JSON records
    return output / "best"


def recall_at(ranked_ids: list[list[int]], targets: np.ndarray) -> dict[str, float]:
    """Fraction of probes whose target is among the first k ids, for each k in KS."""
    recall = {}
    for k in KS:
        hits = sum(int(target in ids[:k]) for ids, target in zip(ranked_ids, targets))
        recall[f"recall@{k}"] = round(hits / len(targets), 4)
    return recall


def without_self(ids, own_id: int, count: int) -> list[int]:
    return [int(i) for i in ids if i != own_id and i >= 0][:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="labeled text pair file (xiaobu/pairs.tsv)")
    parser.add_argument("--work-dir", required=True, help="directory for the split files and the trained model")
    parser.add_argument("--model", help="a trained text model directory; default: train one")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs when no --model is given (default 5)")
    parser.add_argument("--batch-size", type=int, default=512, help="training batch size (default 512)")
    parser.add_argument("--index-types", default="flat,hnsw,ivf", help="comma-separated index types (default flat,hnsw,ivf)")
    parser.add_argument("--candidates", type=int, default=50, help="candidates reranked by the head (default 50)")
    parser.add_argument("--single-queries", type=int, default=200, help="probes timed one at a time (default 200)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    pairs = read_pairs(args.data, "text", "required")
    split = query_split(pairs, 0.2, 42)
    write_pairs(work_dir / "train.tsv", pairs, split.train)
    write_pairs(work_dir / "heldout.tsv", pairs, split.valid)
    model_dir = Path(args.model) if args.model else train_model(work_dir, args.epochs, args.batch_size)
    matcher = load_model(model_dir, device="cpu")

    positives = split.valid[pairs.labels[split.valid] == 1]
    # Bank ids are the data file's query indices, because the bank keeps the first-seen order.
    probe_ids, targets = pairs.a[positives], pairs.b[positives]
    probes = [pairs.queries[i] for i in probe_ids]

    start = time.perf_counter()
    vectors = matcher.encode(pairs.queries)
    encode_seconds = time.perf_counter() - start
    print(json.dumps({
        "benchmark": "retrieval", "data": args.data, "model": str(model_dir), "bank_queries": len(pairs.queries),
        "heldout_positive_pairs": len(positives), "train_pairs": len(split.train), "heldout_pairs": len(split.valid),
        "bank_encode_seconds": round(encode_seconds, 1),
        "bank_encode_queries_per_second": round(len(pairs.queries) / encode_seconds, 1),
        "candidates": args.candidates, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2), "machine": platform.machine(), "python": platform.python_version(), "torch": torch.__version__,
    }), flush=True)

    rankings = {"vector similarity": False, f"head rerank of {args.candidates} candidates": True}
    for index_type in args.index_types.split(","):
        start = time.perf_counter()
        bank = QueryBank.from_vectors(matcher, pairs.queries, vectors, IndexSettings(index_type))
        build_seconds = time.perf_counter() - start

        for ranking, rerank in rankings.items():
            # Timings include encoding the probes, as a client's call would.
            start = time.perf_counter()
            results = bank.search(matcher, probes, k=max(KS) + 1, candidates=args.candidates, rerank=rerank)
            batch_seconds = time.perf_counter() - start
            ranked = [without_self([hit.bank_id for hit in hits], own, max(KS)) for hits, own in zip(results, probe_ids)]

            latencies = []
            for probe in probes[:args.single_queries]:
                start = time.perf_counter()
                bank.search(matcher, [probe], k=max(KS) + 1, candidates=args.candidates, rerank=rerank)
                latencies.append((time.perf_counter() - start) * 1000)

            print(json.dumps({
                "index_type": index_type, "ranking": ranking, "probes": len(probes), **recall_at(ranked, targets),
                "build_seconds": round(build_seconds, 2),
                "batch_queries_per_second": round(len(probes) / batch_seconds, 1),
                "single_query_p50_ms": round(float(np.percentile(latencies, 50)), 2),
                "single_query_p99_ms": round(float(np.percentile(latencies, 99)), 2),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }), flush=True)


if __name__ == "__main__":
    main()
