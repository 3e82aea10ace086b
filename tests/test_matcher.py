"""Saved models: round trip, Python API, OOV handling, corrupt directories."""

from __future__ import annotations

import json

import numpy as np
import pytest

import semmatch
from semmatch.data import read_pairs
from semmatch.errors import InputError, ModelFileError


def test_text_model_round_trip_gives_identical_scores(trained_text_model, tmp_path, sample_dir):
    matcher = semmatch.load_model(trained_text_model / "best", device="cpu")
    pairs = read_pairs(sample_dir / "valid.tsv")
    before = matcher.predict_pairset(pairs)
    matcher.save(tmp_path / "copy")
    after = semmatch.load_model(tmp_path / "copy", device="cpu").predict_pairset(pairs)
    assert np.array_equal(before, after)


def test_model_directory_contents(trained_text_model):
    best = trained_text_model / "best"
    assert sorted(path.name for path in best.iterdir()) == ["config.json", "model.safetensors", "vocab.txt"]
    document = json.loads((best / "config.json").read_text())
    assert document["input_format"] == "text"
    assert document["model"]["vocab_size"] == len((best / "vocab.txt").read_text(encoding="utf-8").splitlines())


def test_predict_proba_and_encode(trained_text_model):
    matcher = semmatch.load_model(trained_text_model / "best", device="cpu")
    probabilities = matcher.predict_proba([("打开蓝牙", "帮我打开蓝牙"), ("明天天气", "播放音乐")])
    assert probabilities.shape == (2,)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    vectors = matcher.encode(["打开蓝牙", "播放音乐", "打开蓝牙"])
    assert vectors.shape == (3, matcher.config.projection_dim)
    assert np.allclose(vectors[0], vectors[2])


def test_single_pair_matches_batch_score(trained_text_model):
    matcher = semmatch.load_model(trained_text_model / "best", device="cpu")
    long_query = "请帮我把明天早上七点半的闹钟改成八点然后再提醒我带伞" * 3
    alone = matcher.predict_proba([("打开蓝牙", "开一下蓝牙")])
    batched = matcher.predict_proba([("打开蓝牙", "开一下蓝牙"), (long_query, "好")])
    padded = matcher.predict_proba([("打开蓝牙", "开一下蓝牙")], pad_to=128)
    assert abs(alone[0] - batched[0]) < 1e-5
    assert abs(alone[0] - padded[0]) < 1e-5


def test_ids_model_maps_unseen_ids_without_error(trained_ids_model):
    matcher = semmatch.load_model(trained_ids_model / "best", device="cpu")
    max_id = matcher.vocabulary.max_id
    probabilities = matcher.predict_proba([([1, 2, max_id + 500], "3 4"), ([10 ** 12], [max_id])])
    assert np.all(np.isfinite(probabilities))


def test_ids_model_rejects_zero_id(trained_ids_model):
    matcher = semmatch.load_model(trained_ids_model / "best", device="cpu")
    with pytest.raises(InputError, match="positive"):
        matcher.predict_proba([([0, 1], [2])])


def test_missing_weights_file_named(trained_text_model, tmp_path):
    broken = tmp_path / "broken"
    semmatch.load_model(trained_text_model / "best", device="cpu").save(broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="model.safetensors"):
        semmatch.load_model(broken)


def test_corrupt_weights_file_named(trained_text_model, tmp_path):
    broken = tmp_path / "broken"
    semmatch.load_model(trained_text_model / "best", device="cpu").save(broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match="corrupt weights"):
        semmatch.load_model(broken)


def test_format_mismatch_explained(trained_ids_model, sample_dir):
    matcher = semmatch.load_model(trained_ids_model / "best", device="cpu")
    with pytest.raises(InputError, match="--format ids"):
        matcher.predict_pairset(read_pairs(sample_dir / "valid.tsv"))


def test_vector_cache_reuses_vectors_without_changing_scores(trained_text_model, sample_dir):
    from semmatch.inference import VectorCache

    matcher = semmatch.load_model(trained_text_model / "best", device="cpu")
    pairs = read_pairs(sample_dir / "valid.tsv")
    plain = matcher.predict_pairset(pairs)
    cache = VectorCache(max_entries=10_000)
    first = matcher.predict_pairset(pairs, cache=cache)
    assert cache.hits == 0
    second = matcher.predict_pairset(pairs, cache=cache)
    assert cache.hits == len(pairs.queries)
    assert np.allclose(plain, first, atol=1e-6)
    assert np.allclose(plain, second, atol=1e-6)


def test_vector_cache_evicts_least_recent():
    import torch

    from semmatch.inference import VectorCache

    cache = VectorCache(max_entries=2)
    cache.put("a", torch.zeros(1))
    cache.put("b", torch.ones(1))
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.put("c", torch.ones(1))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None


def test_pad_to_128_scores_equal_default(trained_ids_model, sample_dir):
    matcher = semmatch.load_model(trained_ids_model / "best", device="cpu")
    pairs = read_pairs(sample_dir / "test.ids.tsv")
    default = matcher.predict_pairset(pairs)
    padded = matcher.predict_pairset(pairs, pad_to=128)
    assert np.abs(default - padded).max() <= 1e-5
