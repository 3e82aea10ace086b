"""The interaction architecture: cross attention between the queries, joint scoring, and its limits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from conftest import small_model_config
from semmatch.batching import EncodedQueries
from semmatch.config import ModelConfig, TrainConfig
from semmatch.errors import ConfigError, InputError
from semmatch.inference import score_pairs
from semmatch.matcher import load_model
from semmatch.model import InteractionModel, TwoTowerModel, build_model
from semmatch.serving import create_app
from test_cli import semmatch
from test_model import padded

FUSION = ("u", "v", "abs_diff", "product", "cosine")


@pytest.fixture(scope="module")
def interaction_run(tmp_path_factory, sample_dir):
    """A small interaction model trained for two epochs on the sample."""
    from semmatch.train import fit, prepare_data

    output = tmp_path_factory.mktemp("interaction_run")
    config = TrainConfig(epochs=2, batch_size=64, seed=1)
    data = prepare_data([str(sample_dir / "train.tsv")], str(sample_dir / "valid.tsv"), config)
    result = fit(data, small_model_config(architecture="interaction", symmetric=True, fusion=FUSION), config,
                 output, progress=False)
    return output, result


@pytest.fixture(scope="module")
def interaction_matcher(interaction_run):
    return load_model(interaction_run[0] / "best", device="cpu")


def test_build_model_follows_the_architecture():
    assert isinstance(build_model(small_model_config(vocab_size=20)), TwoTowerModel)
    assert isinstance(build_model(small_model_config(vocab_size=20, architecture="interaction")), InteractionModel)
    with pytest.raises(ConfigError, match="invalid architecture 'esim'"):
        ModelConfig(architecture="esim")
    with pytest.raises(ConfigError, match="build_model"):
        InteractionModel(small_model_config(vocab_size=20))


def test_scores_ignore_padding_and_query_order():
    torch.manual_seed(0)
    model = build_model(small_model_config(vocab_size=50, architecture="interaction", symmetric=True, fusion=FUSION)).eval()
    pair = [[5, 9, 13], [7, 2, 40, 8, 11]]
    with torch.no_grad():
        tight = model(*padded(pair, 5))
        wide = model(*padded(pair, 12))
        swapped = model(*padded(pair[::-1], 5))
    assert torch.allclose(tight, wide, atol=1e-6)
    assert torch.allclose(tight, swapped, atol=1e-6)


def first_query_vector(model, partner: list[int]) -> torch.Tensor:
    """Return the pooled vector of the query [5, 9, 13] when it is scored against `partner`."""
    captured = []
    hook = model.encoder.projection.register_forward_hook(lambda module, inputs, output: captured.append(output[0]))
    with torch.no_grad():
        model(*padded([[5, 9, 13], partner], 3))
    hook.remove()
    return captured[0]


@pytest.mark.parametrize("architecture", ["interaction", "two_tower"])
def test_partner_changes_query_vector(architecture):
    """An interaction model's vector of a query depends on its partner; a two-tower model's does not."""
    torch.manual_seed(0)
    model = build_model(small_model_config(vocab_size=50, architecture=architecture)).eval()
    first = first_query_vector(model, [7, 2, 40])
    second = first_query_vector(model, [30, 31, 32])
    assert torch.allclose(first, second) == (architecture == "two_tower")


def test_joint_scoring_matches_one_pair_at_a_time():
    torch.manual_seed(0)
    model = build_model(small_model_config(vocab_size=50, architecture="interaction")).eval()
    rng = np.random.default_rng(0)
    queries = [rng.integers(1, 50, size=rng.integers(1, 9)) for _ in range(30)]
    offsets = np.concatenate([[0], np.cumsum([len(query) for query in queries])])
    encoded = EncodedQueries(np.concatenate(queries).astype(np.int32), offsets)
    a, b = rng.integers(0, 30, size=40), rng.integers(0, 30, size=40)
    batched = score_pairs(model, encoded, a, b, batch_size=8)
    with torch.no_grad():
        single = [torch.sigmoid(model(*padded([queries[i].tolist(), queries[j].tolist()], 8))).item()
                  for i, j in zip(a, b)]
    assert np.abs(batched - np.array(single)).max() < 1e-5


def test_trained_model_round_trips(interaction_run, interaction_matcher, sample_dir):
    output, result = interaction_run
    saved = json.loads((output / "best" / "config.json").read_text(encoding="utf-8"))
    assert saved["model"]["architecture"] == "interaction"
    lines = (sample_dir / "valid.tsv").read_text(encoding="utf-8").splitlines()
    pairs = [tuple(line.split("\t")[:2]) for line in lines]
    probabilities = interaction_matcher.predict_proba(pairs)
    assert probabilities.shape == (len(pairs),)
    assert np.all((probabilities > 0) & (probabilities < 1))
    # The saved best model reproduces the validation predictions of the best epoch.
    assert np.abs(probabilities - result.valid_probabilities).max() < 1e-5


def test_vector_features_rejected_with_reason(interaction_matcher):
    with pytest.raises(InputError, match="encoding queries needs query vectors, but this is an interaction model"):
        interaction_matcher.encode(["打开蓝牙"])
    with pytest.raises(InputError, match="interaction model"):
        interaction_matcher.score_vectors(np.zeros((1, 32)), np.zeros((1, 32)))


@pytest.mark.parametrize("command", ["index", "export"])
def test_cli_rejects_vector_commands(interaction_run, sample_dir, tmp_path, command):
    model = interaction_run[0] / "best"
    args = {"index": ["index", "--model", model, "--queries", sample_dir / "train.tsv", "--output", tmp_path / "bank"],
            "export": ["export", "--model", model, "--output", tmp_path / "onnx"]}[command]
    result = semmatch(*args, check=False)
    assert result.returncode != 0
    assert "needs query vectors, but this is an interaction model" in result.stderr
    assert not (tmp_path / "bank").exists()
    assert not (tmp_path / "onnx").exists()


def test_service_matches_but_rejects_encoding(interaction_matcher):
    pairs = [["打开蓝牙", "蓝牙打开"], ["明天天气", "放首歌"], ["你好", "你好呀"]]
    with TestClient(create_app(interaction_matcher)) as client:
        response = client.post("/v1/match", json={"pairs": pairs})
        assert response.status_code == 200, response.text
        expected = interaction_matcher.predict_proba([tuple(pair) for pair in pairs])
        assert np.abs(np.array(response.json()["probabilities"]) - expected).max() < 1e-5

        response = client.post("/v1/encode", json={"queries": ["你好"]})
        assert response.status_code == 422
        assert "interaction model" in response.json()["error"]["message"]

        response = client.post("/v1/search", json={"query": "你好"})
        assert response.status_code == 404
        assert "--preset best_two_tower" in response.json()["error"]["message"]

        ready = client.get("/readyz").json()
        assert ready["architecture"] == "interaction"
        assert ready["dim"] is None
