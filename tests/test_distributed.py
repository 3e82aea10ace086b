"""DistributedDataParallel training with 2 CPU processes (gloo), launched by torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from semmatch.batching import bucketed_batches
from semmatch.distributed import DistributedContext, shard_batches

SMALL_TOML = (
    "[model]\nembedding_dim = 32\nlstm_hidden = 16\nattention_heads = 2\nattention_head_dim = 16\n"
    "conv_channels = 32\nprojection_dim = 32\nhead_hidden = [32, 16]\n"
)


def test_shards_partition_every_global_batch():
    lengths = np.random.default_rng(0).integers(1, 30, size=1003)
    batches = bucketed_batches(lengths, 100, np.random.default_rng(1))
    shards = [shard_batches(batches, DistributedContext(rank, 0, 3)) for rank in range(3)]
    assert all(len(rank_batches) == len(shards[0]) for rank_batches in shards)
    for step in range(len(shards[0])):
        sizes = [len(rank_batches[step]) for rank_batches in shards]
        assert min(sizes) >= 1
        assert max(sizes) - min(sizes) <= 1
    flat = np.concatenate([np.concatenate(rank_batches) for rank_batches in shards])
    assert np.array_equal(np.sort(flat), np.arange(1003))


def test_tiny_last_batch_merged_so_no_rank_is_empty():
    batches = [np.arange(0, 8), np.arange(8, 9)]
    shards = [shard_batches(batches, DistributedContext(rank, 0, 2)) for rank in range(2)]
    assert [len(rank_batches) for rank_batches in shards] == [1, 1]
    assert sorted(np.concatenate([shards[0][0], shards[1][0]]).tolist()) == list(range(9))


def run_training(arguments, run_dir, record_dir, processes):
    environment = dict(os.environ, SEMMATCH_RECORD_DIR=str(record_dir), OMP_NUM_THREADS="1")
    record_dir.mkdir()
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                    "-m", "semmatch"]
    else:
        launcher = [sys.executable, "-m", "semmatch"]
    result = subprocess.run([*launcher, "train", *arguments, "--output-dir", str(run_dir)],
                            capture_output=True, text=True, env=environment, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run_dir / "metrics.json").read_text())


def test_two_process_training_matches_single_process(real_data, tmp_path):
    source = real_data / "xiaobu" / "pairs.ids.tsv"
    slice_path = tmp_path / "slice.tsv"
    with open(source, encoding="utf-8") as handle:
        slice_path.write_text("".join(next(handle) for _ in range(12_000)), encoding="utf-8")
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML, encoding="utf-8")
    arguments = ["--train", str(slice_path), "--config", str(config), "--epochs", "2", "--batch-size", "128",
                 "--threads", "1", "--no-progress"]

    distributed = run_training(arguments, tmp_path / "ddp", tmp_path / "ddp_record", processes=2)
    single = run_training(arguments, tmp_path / "single", tmp_path / "single_record", processes=1)

    assert distributed["processes"] == 2
    train_pairs = distributed["train_pairs"]
    for epoch in (1, 2):
        ranks = [np.load(tmp_path / "ddp_record" / f"epoch{epoch}_rank{rank}.npz") for rank in (0, 1)]
        used = np.concatenate([rank["pairs"] for rank in ranks])
        assert np.array_equal(np.sort(used), np.arange(train_pairs)), f"epoch {epoch}: pairs not used exactly once"
        assert str(ranks[0]["weights_sha256"]) == str(ranks[1]["weights_sha256"]), f"epoch {epoch}: weights differ"
    assert abs(distributed["best_val_auc"] - single["best_val_auc"]) <= 0.01
    assert not (tmp_path / "ddp" / "rank1").exists()
    assert (tmp_path / "ddp" / "best" / "model.safetensors").is_file()
