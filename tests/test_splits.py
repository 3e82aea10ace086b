"""Random and query-disjoint splits."""

from __future__ import annotations

import numpy as np

from semmatch.data import read_pairs
from semmatch.splits import query_split, random_split


def test_random_split_is_stratified_and_seeded():
    labels = np.array([0] * 80 + [1] * 20)
    first = random_split(labels, 0.2, seed=42)
    second = random_split(labels, 0.2, seed=42)
    assert np.array_equal(first.valid, second.valid)
    assert len(first.valid) == 20
    assert labels[first.valid].sum() == 4
    assert len(np.intersect1d(first.train, first.valid)) == 0


def test_query_split_shares_no_query(sample_dir):
    pairs = read_pairs(sample_dir / "train.tsv")
    split = query_split(pairs, 0.2, seed=42)
    train_queries = set(pairs.a[split.train]) | set(pairs.b[split.train])
    valid_queries = set(pairs.a[split.valid]) | set(pairs.b[split.valid])
    assert not train_queries & valid_queries
    assert len(split.train) + len(split.valid) + split.dropped == len(pairs)
    fraction = len(split.valid) / (len(split.train) + len(split.valid))
    assert 0.1 < fraction < 0.3


def test_query_split_on_real_pairs(real_data):
    pairs = read_pairs(real_data / "xiaobu" / "pairs.tsv")
    split = query_split(pairs, 0.2, seed=42)
    train_queries = np.union1d(pairs.a[split.train], pairs.b[split.train])
    valid_queries = np.union1d(pairs.a[split.valid], pairs.b[split.valid])
    assert len(np.intersect1d(train_queries, valid_queries)) == 0
    assert len(split.valid) > 5_000
