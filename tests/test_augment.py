"""Transitive augmentation: implied pairs, contradictions, exclusions, caps, and the split boundary."""

from __future__ import annotations

import numpy as np

from semmatch.augment import pair_keys, transitive_pairs
from semmatch.config import TrainConfig
from semmatch.train import prepare_data


def implied_set(result) -> set[tuple[int, int, int]]:
    return {(min(a, b), max(a, b), label) for a, b, label in zip(result.a.tolist(), result.b.tolist(),
                                                                   result.labels.tolist())}


def test_chain_implies_positive_and_negative_pairs():
    # 0 ~ 1 ~ 2 and 2 !~ 3: implied 0 ~ 2, 0 !~ 3 and 1 !~ 3.
    a, b, labels = np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([1, 1, 0])
    result = transitive_pairs(a, b, labels, num_queries=4, fraction=10.0, seed=0)
    assert implied_set(result) == {(0, 2, 1), (0, 3, 0), (1, 3, 0)}
    assert result.candidates == {"positive": 1, "negative": 2}


def test_contradictory_group_implies_nothing():
    # 0 ~ 1 ~ 2 but 0 !~ 2: the labels disagree, so the group yields no pairs.
    a, b, labels = np.array([0, 1, 0, 2]), np.array([1, 2, 2, 3]), np.array([1, 1, 0, 0])
    result = transitive_pairs(a, b, labels, num_queries=4, fraction=10.0, seed=0)
    assert len(result.labels) == 0


def test_excluded_and_labeled_pairs_are_never_generated():
    a, b, labels = np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([1, 1, 0])
    excluded = pair_keys(np.array([3]), np.array([0]), 4)
    result = transitive_pairs(a, b, labels, num_queries=4, fraction=10.0, seed=0, exclude=excluded)
    assert implied_set(result) == {(0, 2, 1), (1, 3, 0)}


def test_cap_limits_each_class():
    # One group of 10 queries linked by 9 positives implies 36 more positive pairs.
    a, b = np.arange(9), np.arange(1, 10)
    labels = np.ones(9, dtype=np.int64)
    capped = transitive_pairs(a, b, labels, num_queries=10, fraction=0.5, seed=0)
    assert capped.candidates["positive"] == 36
    assert len(capped.labels) == 4
    again = transitive_pairs(a, b, labels, num_queries=10, fraction=0.5, seed=0)
    assert implied_set(capped) == implied_set(again)


def _valid_keys(data) -> set:
    return set(pair_keys(data.valid_a, data.valid_b, 10**7).tolist())


def test_augmentation_keeps_validation_queries_out(sample_dir):
    config = TrainConfig(split="query", augment_transitive=0.5, seed=3)
    data = prepare_data([str(sample_dir / "train.tsv")], None, config)
    assert data.counts["implied_positive_pairs"] > 0
    assert data.counts["implied_negative_pairs"] > 0
    train_queries = set(data.train_a.tolist()) | set(data.train_b.tolist())
    valid_queries = set(data.valid_a.tolist()) | set(data.valid_b.tolist())
    assert not train_queries & valid_queries


def test_augmentation_skips_validation_pairs(sample_dir):
    config = TrainConfig(split="random", augment_transitive=1.0, seed=3)
    data = prepare_data([str(sample_dir / "train.tsv")], None, config)
    added = data.counts["implied_positive_pairs"] + data.counts["implied_negative_pairs"]
    assert added > 0
    # Implied pairs are appended after the labeled training pairs.
    implied_keys = set(pair_keys(data.train_a[-added:], data.train_b[-added:], 10**7).tolist())
    assert len(implied_keys) == added
    assert not implied_keys & _valid_keys(data)
