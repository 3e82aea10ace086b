"""Transitive augmentation: training pairs implied by the labeled pair graph.

Positive pairs link queries into groups that mean the same thing. Any two queries of one group
form an implied positive (a ~ b, b ~ c => a ~ c), and a negative pair between two groups makes
every cross pair an implied negative (a ~ b, b !~ c => a !~ c). A group with a negative pair
inside it is contradictory and implies nothing. Implied pairs that are already labeled, or that
appear in `exclude` (the validation pairs), are dropped, and each class is capped at a fraction
of its labeled count by seeded sampling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

logger = logging.getLogger(__name__)


@dataclass
class ImpliedPairs:
    a: np.ndarray
    b: np.ndarray
    labels: np.ndarray
    candidates: dict  # implied pairs found per class before the cap


def pair_keys(a: np.ndarray, b: np.ndarray, num_queries: int) -> np.ndarray:
    """Return one integer key per unordered pair {a, b}: min * num_queries + max."""
    return np.minimum(a, b).astype(np.int64) * num_queries + np.maximum(a, b)


def _group_members(group_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(group_of, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(group_of))])
    return order, starts


def transitive_pairs(a: np.ndarray, b: np.ndarray, labels: np.ndarray, num_queries: int, fraction: float,
                     seed: int, exclude: np.ndarray | None = None) -> ImpliedPairs:
    """Implied pairs from labeled pairs (a[i], b[i], labels[i]) over query indices < num_queries.

    `exclude` contains unordered pair keys (see pair_keys) that must not be generated.
    """
    labels = np.asarray(labels).astype(np.int64)
    positive = labels == 1
    graph = coo_matrix((np.ones(int(positive.sum()), dtype=np.int8), (a[positive], b[positive])),
                       shape=(num_queries, num_queries))
    _, group_of = connected_components(graph, directed=False)
    members, starts = _group_members(group_of)
    sizes = np.diff(starts)

    group_a, group_b = group_of[a[~positive]], group_of[b[~positive]]
    contradictory = np.zeros(len(sizes), dtype=bool)
    contradictory[group_a[group_a == group_b]] = True

    implied_positive = []
    for group in np.flatnonzero((sizes >= 3) & ~contradictory):
        group_members = members[starts[group]:starts[group + 1]]
        first, second = np.triu_indices(len(group_members), k=1)
        implied_positive.append(pair_keys(group_members[first], group_members[second], num_queries))

    implied_negative = []
    across = (group_a != group_b) & ~contradictory[group_a] & ~contradictory[group_b]
    group_pairs = np.unique(np.stack([np.minimum(group_a, group_b), np.maximum(group_a, group_b)], 1)[across], axis=0)
    for left, right in group_pairs:
        if sizes[left] * sizes[right] < 2:
            continue  # two single queries: only the labeled pair itself
        left_members = members[starts[left]:starts[left + 1]]
        right_members = members[starts[right]:starts[right + 1]]
        grid_left, grid_right = np.meshgrid(left_members, right_members, indexing="ij")
        implied_negative.append(pair_keys(grid_left.ravel(), grid_right.ravel(), num_queries))

    known = pair_keys(a, b, num_queries)
    if exclude is not None:
        known = np.concatenate([known, exclude])
    rng = np.random.default_rng(seed)
    chosen, chosen_labels, candidates = [], [], {}
    for label, keys in ((1, implied_positive), (0, implied_negative)):
        keys = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        keys = keys[~np.isin(keys, known)]
        candidates["positive" if label else "negative"] = len(keys)
        limit = int(fraction * int((labels == label).sum()))
        if len(keys) > limit:
            keys = np.sort(rng.choice(keys, size=limit, replace=False))
        chosen.append(keys)
        chosen_labels.append(np.full(len(keys), label, dtype=np.int64))
    keys = np.concatenate(chosen)
    result = ImpliedPairs(keys // num_queries, keys % num_queries, np.concatenate(chosen_labels), candidates)
    logger.info("transitive augmentation: %d implied positive and %d implied negative pairs found, %d and %d "
                "added (cap %.2f of each labeled class); %d contradictory groups skipped",
                candidates["positive"], candidates["negative"], int(result.labels.sum()),
                int((result.labels == 0).sum()), fraction, int(contradictory.sum()))
    return result
