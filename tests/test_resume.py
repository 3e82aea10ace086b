"""Crash recovery: checkpoints, --resume after SIGKILL, NaN loss, unwritable output, reproducibility."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import small_model_config
from semmatch.config import TrainConfig
from semmatch.errors import TrainingError
from semmatch.train import fit, prepare_data

SMALL_TOML = (
    "[model]\nembedding_dim = 32\nlstm_hidden = 16\nattention_heads = 2\nattention_head_dim = 16\n"
    "conv_channels = 32\nprojection_dim = 32\nhead_hidden = [32, 16]\n\n[train]\nbatch_size = 32\nseed = 7\n"
)


def read_history(run_dir):
    with open(run_dir / "history.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def train_command(sample_dir, run_dir, config, epochs):
    return [sys.executable, "-m", "semmatch", "train", "--train", str(sample_dir / "train.tsv"),
            "--valid", str(sample_dir / "valid.tsv"), "--config", str(config), "--epochs", str(epochs),
            "--output-dir", str(run_dir), "--no-progress", "--threads", "1"]


def test_resume_after_sigkill_continues_history(tmp_path, sample_dir):
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML, encoding="utf-8")
    epochs = 4

    reference_dir = tmp_path / "uninterrupted"
    subprocess.run(train_command(sample_dir, reference_dir, config, epochs), check=True, capture_output=True)
    reference = read_history(reference_dir)

    run_dir = tmp_path / "killed"
    process = subprocess.Popen(train_command(sample_dir, run_dir, config, epochs),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if (run_dir / "checkpoint" / "state.json").exists():
                break
            time.sleep(0.05)
        time.sleep(0.3)  # into epoch 2
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    completed = read_history(run_dir)
    assert 1 <= len(completed) < epochs

    result = subprocess.run([sys.executable, "-m", "semmatch", "train", "--resume", str(run_dir), "--no-progress"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stderr
    resumed = read_history(run_dir)
    assert [row["epoch"] for row in resumed] == [str(epoch) for epoch in range(1, epochs + 1)]
    assert resumed[:len(completed)] == completed
    for column in ("loss", "val_loss", "val_auc", "lr"):
        assert [row[column] for row in resumed] == [row[column] for row in reference], column
    assert json.loads(result.stdout)["epochs_run"] == epochs


def test_resume_without_checkpoint_explains(tmp_path):
    result = subprocess.run([sys.executable, "-m", "semmatch", "train", "--resume", str(tmp_path / "nothing")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "cannot resume" in result.stderr


def test_nan_loss_stops_and_keeps_checkpoint(tmp_path, sample_dir):
    config = TrainConfig(epochs=3, batch_size=64, seed=1, lr=1e6)
    data = prepare_data([str(sample_dir / "train.tsv")], str(sample_dir / "valid.tsv"), config)
    with pytest.raises(TrainingError, match="training loss became"):
        fit(data, small_model_config(), config, tmp_path / "run", progress=False)


def test_unwritable_output_dir_fails_before_reading(tmp_path, sample_dir):
    if os.geteuid() == 0:
        target = "/proc/semmatch-run"  # root may write anywhere else
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "run")
    result = subprocess.run([sys.executable, "-m", "semmatch", "train", "--train", str(tmp_path / "missing.tsv"),
                             "--output-dir", target], capture_output=True, text=True)
    assert result.returncode == 2
    assert f"output directory is not writable: {target}" in result.stderr


def test_metrics_record_versions_and_input_hashes(tmp_path, sample_dir):
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML, encoding="utf-8")
    run_dir = tmp_path / "run"
    subprocess.run(train_command(sample_dir, run_dir, config, 1), check=True, capture_output=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"semmatch_version", "torch_version", "python_version"} <= set(metrics)
    assert set(metrics["inputs"]) == {str(sample_dir / "train.tsv"), str(sample_dir / "valid.tsv")}
    assert all(len(digest) == 64 for digest in metrics["inputs"].values())


def test_resume_rejects_changed_settings(tmp_path):
    result = subprocess.run([sys.executable, "-m", "semmatch", "train", "--resume", str(tmp_path), "--ema-decay", "0.5",
                             "--lr", "0.01"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "only --epochs may change, not --lr, --ema-decay" in result.stderr
