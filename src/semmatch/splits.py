"""Train/validation splits: stratified random, or query-disjoint for an honest estimate.

A query-disjoint split keeps every query on one side. Queries linked by labeled pairs form
connected components of the query graph, and whole components are assigned to a side, so no
pair is lost and no validation query is ever seen in training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from semmatch.data import PairSet
from semmatch.errors import InputError

logger = logging.getLogger(__name__)


@dataclass
class Split:
    train: np.ndarray  # pair indices
    valid: np.ndarray


def random_split(labels: np.ndarray, valid_fraction: float, seed: int) -> Split:
    """Stratified random split (the reference's: 80/20, seed 42)."""
    indices = np.arange(len(labels))
    stratify = labels if len(np.unique(labels)) > 1 and np.bincount(labels).min() >= 2 else None
    train, valid = train_test_split(indices, test_size=valid_fraction, random_state=seed, stratify=stratify)
    return Split(np.sort(train), np.sort(valid))


def pair_components(a: np.ndarray, b: np.ndarray, num_queries: int) -> np.ndarray:
    """Connected-component label of every pair in the graph whose nodes are queries and edges pairs."""
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(num_queries, num_queries))
    _, query_labels = connected_components(graph, directed=False)
    return query_labels[a]


def query_split(pairs: PairSet, valid_fraction: float, seed: int) -> Split:
    """Split so that no query appears on both sides, keeping every pair.

    Components of the query graph are visited in a seeded random order and moved to
    validation while they fit in the remaining validation budget of `valid_fraction` of the pairs.
    """
    components = pair_components(pairs.a, pairs.b, len(pairs.queries))
    sizes = np.bincount(components)
    order = np.random.default_rng(seed).permutation(len(sizes))
    budget = round(valid_fraction * len(pairs))
    in_valid = np.zeros(len(sizes), dtype=bool)
    assigned = 0
    for component in order:
        if assigned + sizes[component] <= budget:
            in_valid[component] = True
            assigned += sizes[component]
            if assigned == budget:
                break
    valid_mask = in_valid[components]
    split = Split(np.flatnonzero(~valid_mask), np.flatnonzero(valid_mask))
    logger.info("query split: %d train pairs, %d validation pairs (%d query-graph components, the largest "
                "holding %d pairs)", len(split.train), len(split.valid), len(sizes), sizes.max())
    return split


def query_folds(pairs: PairSet, folds: int, seed: int) -> list[Split]:
    """K query-disjoint folds, each pair validated exactly once, stratified by label where possible."""
    if folds < 2:
        raise InputError(f"cross-validation needs at least 2 folds, got {folds}")
    components = pair_components(pairs.a, pairs.b, len(pairs.queries))
    if len(np.unique(components)) < folds:
        raise InputError(
            f"the pairs form {len(np.unique(components))} groups of linked queries, fewer than {folds} folds; "
            "use fewer folds or more data", ", ".join(pairs.sources),
        )
    class_counts = np.bincount(pairs.labels, minlength=2)
    if class_counts.min() < folds:
        raise InputError(
            f"cross-validation with {folds} folds needs at least {folds} pairs of each label, found "
            f"{class_counts[0]} with label 0 and {class_counts[1]} with label 1; use fewer folds or more data",
            ", ".join(pairs.sources),
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = [Split(train, valid) for train, valid in splitter.split(np.zeros(len(pairs)), pairs.labels, components)]
    for number, split in enumerate(splits, start=1):
        if len(np.unique(pairs.labels[split.valid])) < 2:
            raise InputError(
                f"fold {number} of {folds} would validate on pairs of one label only, where AUC is undefined, "
                "because linked queries must stay in one fold; use fewer folds or more data", ", ".join(pairs.sources),
            )
    return splits


MIN_PAIRS_TO_SPLIT = 10


def make_split(pairs: PairSet, mode: str, valid_fraction: float, seed: int) -> Split:
    if len(pairs) < MIN_PAIRS_TO_SPLIT:
        raise InputError(
            f"only {len(pairs)} valid pairs: too few to split off a validation set "
            f"(at least {MIN_PAIRS_TO_SPLIT}); add data or give a separate --valid file",
            ", ".join(pairs.sources),
        )
    if mode == "query":
        return query_split(pairs, valid_fraction, seed)
    return random_split(pairs.labels, valid_fraction, seed)
