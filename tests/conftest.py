"""Shared fixtures: the project's sample data, the real data directory, and a small trained model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semmatch.config import ModelConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real data directory named by SEMMATCH_DATA; skips when unset, fails when wrong."""
    value = os.environ.get("SEMMATCH_DATA")
    if not value:
        pytest.skip("real-data test: set SEMMATCH_DATA=../shared/data (the directory with xiaobu/ and gaiic/) to run it")
    path = Path(value)
    if not (path / "xiaobu" / "pairs.ids.tsv").is_file():
        pytest.fail(f"SEMMATCH_DATA={value} does not contain xiaobu/pairs.ids.tsv")
    return path


def small_model_config(**overrides) -> ModelConfig:
    """A reduced model for fast tests; the architecture is the same as the default."""
    values = dict(embedding_dim=32, lstm_hidden=16, attention_heads=2, attention_head_dim=16,
                  conv_channels=32, projection_dim=32, head_hidden=(32, 16), max_len=128)
    values.update(overrides)
    return ModelConfig(**values)


@pytest.fixture(scope="session")
def trained_text_model(tmp_path_factory, sample_dir):
    """A small text model trained for a few epochs on the sample; returns its run directory."""
    from semmatch.train import fit, prepare_data

    output = tmp_path_factory.mktemp("text_run")
    config = TrainConfig(epochs=3, batch_size=64, seed=1)
    data = prepare_data([str(sample_dir / "train.tsv")], str(sample_dir / "valid.tsv"), config)
    fit(data, small_model_config(), config, output, progress=False)
    return output


@pytest.fixture(scope="session")
def trained_ids_model(tmp_path_factory, sample_dir):
    """A small ID model trained for two epochs on the sample's ID files."""
    from semmatch.train import fit, prepare_data

    output = tmp_path_factory.mktemp("ids_run")
    config = TrainConfig(epochs=2, batch_size=64, seed=1)
    data = prepare_data([str(sample_dir / "train.ids.tsv")], str(sample_dir / "valid.ids.tsv"), config)
    fit(data, small_model_config(), config, output, progress=False)
    return output
