"""The command line end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest


def semmatch(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "semmatch", *map(str, args)], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"semmatch {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, sample_dir):
    """Train through the CLI with a small model config file."""
    output = tmp_path_factory.mktemp("cli_run")
    config = output / "small.toml"
    config.write_text(
        "[model]\nembedding_dim = 32\nlstm_hidden = 16\nattention_heads = 2\nattention_head_dim = 16\n"
        "conv_channels = 32\nprojection_dim = 32\nhead_hidden = [32, 16]\n\n[train]\nbatch_size = 64\n",
        encoding="utf-8",
    )
    run_dir = output / "run"
    result = semmatch("train", "--train", sample_dir / "train.tsv", "--valid-fraction", "0.2", "--split", "query",
                      "--epochs", 2, "--config", config, "--output-dir", run_dir, "--no-progress")
    return run_dir, result


def test_train_writes_every_artifact(cli_run):
    run_dir, result = cli_run
    expected = {"config.json", "best", "final", "history.csv", "training_history.png", "validation_auc_history.png",
                "validation_predictions.csv", "train.log", "metrics.json"}
    assert expected <= {path.name for path in run_dir.iterdir()}
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,auc,val_loss,val_auc,lr,seconds,pairs_per_second"
    assert len(history) == 3
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"best_val_auc", "best_epoch", "train_pairs_per_second"} <= set(metrics)
    assert metrics["train_pairs"] + metrics["valid_pairs"] == metrics["train_file_pairs"]
    assert json.loads(result.stdout)["epochs_run"] == 2
    effective = json.loads((run_dir / "config.json").read_text())
    assert effective["model"]["embedding_dim"] == 32
    assert effective["train"]["split"] == "query"
    assert "epoch 2" in (run_dir / "train.log").read_text(encoding="utf-8")


def test_predict_writes_one_line_per_pair_and_zip(cli_run, sample_dir, tmp_path):
    run_dir, _ = cli_run
    output = tmp_path / "result.txt"
    semmatch("predict", "--model", run_dir / "best", "--input", sample_dir / "test.tsv", "--output", output,
             "--zip", tmp_path / "submission.zip")
    lines = output.read_text().splitlines()
    assert len(lines) == len((sample_dir / "test.tsv").read_text(encoding="utf-8").splitlines())
    assert all(len(line.split(".")[1]) == 6 and 0 <= float(line) <= 1 for line in lines)
    with zipfile.ZipFile(tmp_path / "submission.zip") as archive:
        assert archive.namelist() == ["result.txt"]
        assert archive.read("result.txt").decode() == output.read_text()


def test_predict_three_column_file(cli_run, sample_dir, tmp_path):
    run_dir, _ = cli_run
    output = tmp_path / "valid_result.txt"
    semmatch("predict", "--model", run_dir / "best", "--input", sample_dir / "valid.tsv", "--output", output)
    assert len(output.read_text().splitlines()) == 600


def test_predict_averages_several_models(cli_run, sample_dir, tmp_path):
    run_dir, _ = cli_run
    outputs = {}
    for name, models in {"best": [run_dir / "best"], "final": [run_dir / "final"],
                         "both": [run_dir / "best", run_dir / "final"]}.items():
        outputs[name] = tmp_path / f"{name}.txt"
        semmatch("predict", "--model", *models, "--input", sample_dir / "valid.tsv", "--output", outputs[name])
    best, final, both = (np.loadtxt(outputs[name]) for name in ("best", "final", "both"))
    assert np.abs(both - (best + final) / 2).max() <= 1e-6


def test_ensemble_of_mixed_formats_rejected(cli_run, trained_ids_model, sample_dir, tmp_path):
    run_dir, _ = cli_run
    result = semmatch("evaluate", "--model", run_dir / "best", trained_ids_model / "best", "--input",
                      sample_dir / "valid.tsv", check=False)
    assert result.returncode != 0
    assert "the ensemble mixes input formats ['ids', 'text']" in result.stderr


def test_evaluate_prints_metrics_and_roc(cli_run, sample_dir, tmp_path):
    run_dir, _ = cli_run
    result = semmatch("evaluate", "--model", run_dir / "best", "--input", sample_dir / "valid.tsv",
                      "--output-dir", tmp_path / "evaluation")
    metrics = json.loads(result.stdout)
    assert {"auc", "log_loss", "accuracy", "f1", "best_f1_threshold", "best_f1", "accuracy_at_best_f1"} <= set(metrics)
    assert (tmp_path / "evaluation" / "roc_curve.png").stat().st_size > 0


def test_invalid_line_exits_2_with_location(tmp_path, sample_dir):
    bad = tmp_path / "bad.tsv"
    bad.write_text("打开蓝牙\t开蓝牙\t1\n打开\t关闭\tyes\n", encoding="utf-8")
    result = semmatch("train", "--train", bad, "--output-dir", tmp_path / "run", check=False)
    assert result.returncode == 2
    assert f"{bad}:2: invalid label 'yes'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_model_exits_2(tmp_path, sample_dir):
    result = semmatch("predict", "--model", tmp_path / "none", "--input", sample_dir / "test.tsv",
                      "--output", tmp_path / "out.txt", check=False)
    assert result.returncode == 2
    assert "model directory not found" in result.stderr
