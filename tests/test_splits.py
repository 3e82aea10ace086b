"""Random and query-disjoint splits, and query-disjoint cross-validation folds."""

from __future__ import annotations

import numpy as np
import pytest

from semmatch.data import read_pairs
from semmatch.errors import InputError
from semmatch.splits import pair_components, query_folds, query_split, random_split


def _queries(pairs, indices) -> set:
    return set(pairs.a[indices]) | set(pairs.b[indices])


def test_random_split_is_stratified_and_seeded():
    labels = np.array([0] * 80 + [1] * 20)
    first = random_split(labels, 0.2, seed=42)
    second = random_split(labels, 0.2, seed=42)
    assert np.array_equal(first.valid, second.valid)
    assert len(first.valid) == 20
    assert labels[first.valid].sum() == 4
    assert len(np.intersect1d(first.train, first.valid)) == 0


def test_pair_components_follow_shared_queries():
    # Pairs 0-1 and 1-2 share query 1. Pair 3-4 is separate, and pair 5-5 matches a query with itself.
    a = np.array([0, 1, 3, 5])
    b = np.array([1, 2, 4, 5])
    components = pair_components(a, b, 6)
    assert components[0] == components[1]
    assert len({components[0], components[2], components[3]}) == 3


def test_query_split_keeps_every_pair(sample_dir):
    pairs = read_pairs(sample_dir / "train.tsv")
    split = query_split(pairs, 0.2, seed=42)
    assert not _queries(pairs, split.train) & _queries(pairs, split.valid)
    assert sorted(np.concatenate([split.train, split.valid]).tolist()) == list(range(len(pairs)))
    assert 0.1 < len(split.valid) / len(pairs) <= 0.2
    again = query_split(pairs, 0.2, seed=42)
    assert np.array_equal(split.valid, again.valid)
    assert not np.array_equal(split.valid, query_split(pairs, 0.2, seed=7).valid)


def test_query_folds_validate_each_pair_once(sample_dir):
    pairs = read_pairs(sample_dir / "train.tsv")
    folds = query_folds(pairs, 3, seed=42)
    assert len(folds) == 3
    validated = np.concatenate([fold.valid for fold in folds])
    assert sorted(validated.tolist()) == list(range(len(pairs)))
    for fold in folds:
        assert not _queries(pairs, fold.train) & _queries(pairs, fold.valid)
        assert len(fold.train) + len(fold.valid) == len(pairs)


def test_query_folds_reject_too_few_groups(sample_dir):
    pairs = read_pairs(sample_dir / "train.tsv").subset(np.arange(3))
    with pytest.raises(InputError, match="fewer than 5 folds"):
        query_folds(pairs, 5, seed=42)
    with pytest.raises(InputError, match="at least 2 folds"):
        query_folds(pairs, 1, seed=42)


def test_query_split_on_real_pairs(real_data):
    pairs = read_pairs(real_data / "xiaobu" / "pairs.tsv")
    split = query_split(pairs, 0.2, seed=42)
    train_queries = np.union1d(pairs.a[split.train], pairs.b[split.train])
    valid_queries = np.union1d(pairs.a[split.valid], pairs.b[split.valid])
    assert len(np.intersect1d(train_queries, valid_queries)) == 0
    assert len(split.train) + len(split.valid) == len(pairs)
    assert abs(len(split.valid) / len(pairs) - 0.2) < 0.01
