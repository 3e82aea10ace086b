"""Accuracy options: symmetric head, embedding dropout, AdamW, EMA with resume, presets, validation."""

from __future__ import annotations

import pytest
import torch

from conftest import small_model_config
from semmatch.config import ModelConfig, TrainConfig, build_config, preset_values
from semmatch.errors import ConfigError
from semmatch.model import TwoTowerModel
from semmatch.train import build_optimizer, fit, prepare_data
from test_model import padded

FUSION = ("u", "v", "abs_diff", "product", "cosine")


@pytest.mark.parametrize("symmetric", [True, False])
def test_symmetric_head_scores_both_orders_alike(symmetric):
    torch.manual_seed(0)
    model = TwoTowerModel(small_model_config(vocab_size=50, fusion=FUSION, symmetric=symmetric)).eval()
    with torch.no_grad():
        forward = model(*padded([[5, 9, 13], [7, 2, 40, 8]], 4))
        swapped = model(*padded([[7, 2, 40, 8], [5, 9, 13]], 4))
    assert torch.allclose(forward, swapped, atol=1e-6) == symmetric


def test_embedding_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = TwoTowerModel(small_model_config(vocab_size=50, embedding_dropout=0.5, dropout=0.0))
    inputs = padded([[5, 9, 13], [7, 2, 40, 8]], 4)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(*inputs), model(*inputs))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(*inputs), model(*inputs))


def test_adamw_decays_matrices_but_not_biases_or_norms():
    model = TwoTowerModel(small_model_config(vocab_size=30))
    optimizer = build_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.01))
    assert isinstance(optimizer, torch.optim.AdamW)
    decayed, others = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01
    assert others["weight_decay"] == 0.0
    assert any(p is model.encoder.token_embedding.weight for p in decayed["params"])
    assert any(p is model.head.mlp[0].weight for p in decayed["params"])
    assert all(p.dim() == 1 for p in others["params"])
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))


@pytest.mark.parametrize("values, message", [
    ({"weight_decay": 0.01}, "needs optimizer 'adamw'"),
    ({"optimizer": "sgd"}, "invalid optimizer"),
    ({"label_smoothing": 1.0}, "label_smoothing must be in"),
    ({"ema_decay": -0.1}, "ema_decay must be in"),
    ({"clip_grad_norm": -1.0}, "clip_grad_norm must be at least 0"),
    ({"augment_transitive": -0.5}, "augment_transitive must be at least 0"),
])
def test_invalid_train_options_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**values)


def test_invalid_embedding_dropout_rejected():
    with pytest.raises(ConfigError, match="embedding_dropout must be in"):
        ModelConfig(embedding_dropout=1.0)


@pytest.mark.parametrize("name", ["reference", "best"])
def test_presets_build_valid_configs(name):
    model_values, train_values = preset_values(name)
    build_config(ModelConfig, model_values, name)
    build_config(TrainConfig, train_values, name)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown preset 'fast'.*best"):
        preset_values("fast")


def test_all_options_resume_identically(sample_dir, tmp_path):
    """EMA weights, AdamW state and augmentation survive a resume: the history matches an uninterrupted run."""
    def config(epochs):
        return TrainConfig(epochs=epochs, batch_size=64, seed=5, optimizer="adamw", weight_decay=0.01,
                           label_smoothing=0.1, clip_grad_norm=1.0, ema_decay=0.9, augment_transitive=0.5)

    model_config = dict(fusion=FUSION, symmetric=True, embedding_dropout=0.1)
    data = prepare_data([str(sample_dir / "train.tsv")], str(sample_dir / "valid.tsv"), config(2))
    whole = fit(data, small_model_config(**model_config), config(2), tmp_path / "whole", progress=False)
    fit(data, small_model_config(**model_config), config(1), tmp_path / "parts", progress=False)
    assert (tmp_path / "parts" / "checkpoint" / "ema.safetensors").is_file()
    resumed = fit(data, small_model_config(**model_config), config(2), tmp_path / "parts", progress=False, resume=True)
    assert [row["val_auc"] for row in resumed.history] == [row["val_auc"] for row in whole.history]
    assert whole.history[-1]["val_auc"] > 0.5
