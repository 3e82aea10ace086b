"""Masked-language-model pretraining of the encoder before pair training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import small_model_config
from semmatch.config import TrainConfig
from semmatch.errors import ConfigError
from semmatch.model import build_model
from semmatch.pretrain import pretrain_encoder
from semmatch.train import fit, prepare_data


@pytest.fixture(scope="module")
def sample_data(sample_dir):
    config = TrainConfig(batch_size=64, seed=1)
    return prepare_data([str(sample_dir / "train.tsv")], str(sample_dir / "valid.tsv"), config)


def test_pretraining_learns_masked_tokens(sample_data):
    torch.manual_seed(0)
    model = build_model(small_model_config(vocab_size=len(sample_data.vocabulary)))
    head_before = {name: value.clone() for name, value in model.head.state_dict().items()}
    embedding_before = model.encoder.token_embedding.weight.detach().clone()
    indices = np.unique(np.concatenate([sample_data.train_a, sample_data.train_b]))
    config = TrainConfig(mlm_epochs=4, batch_size=64, lr=3e-3, seed=1)
    history = pretrain_encoder(model.encoder, sample_data.queries, indices, config, torch.device("cpu"), 1,
                               progress=False)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["masked_token_loss"] < history[0]["masked_token_loss"]
    assert history[0]["masked_tokens"] > 0
    assert not torch.equal(model.encoder.token_embedding.weight, embedding_before)
    for name, value in model.head.state_dict().items():
        assert torch.equal(value, head_before[name])


def test_fit_records_pretraining(sample_data, tmp_path):
    config = TrainConfig(epochs=1, batch_size=64, seed=1, mlm_epochs=1)
    result = fit(sample_data, small_model_config(), config, tmp_path, progress=False)
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert len(metrics["pretraining"]) == 1
    assert metrics["pretraining"][0]["masked_token_accuracy"] >= 0
    assert metrics["pretrain_seconds"] > 0
    assert result.metrics["best_val_auc"] is not None


@pytest.mark.parametrize("values, message", [
    ({"mlm_epochs": -1}, "mlm_epochs must be at least 0"),
    ({"mlm_mask_fraction": 0.0}, "mlm_mask_fraction must be between 0 and 1"),
    ({"mlm_mask_fraction": 1.0}, "mlm_mask_fraction must be between 0 and 1"),
])
def test_invalid_pretraining_settings_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**values)


def test_config_written_before_pretraining(sample_data, tmp_path, monkeypatch):
    """A run stopped during pretraining leaves config.json, so --resume explains the missing checkpoint."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("semmatch.train.pretrain_encoder", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(sample_data, small_model_config(), TrainConfig(epochs=1, batch_size=64, mlm_epochs=1), tmp_path,
            progress=False)
    assert (tmp_path / "config.json").is_file()
    assert not (tmp_path / "checkpoint").exists()
