"""Train/validation splits: stratified random, or query-disjoint for an honest estimate."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from semmatch.data import PairSet
from semmatch.errors import InputError

logger = logging.getLogger(__name__)


@dataclass
class Split:
    train: np.ndarray  # pair indices
    valid: np.ndarray
    dropped: int = 0  # pairs left out because their queries fell on both sides (query split)


def random_split(labels: np.ndarray, valid_fraction: float, seed: int) -> Split:
    """Stratified random split (the reference's: 80/20, seed 42)."""
    indices = np.arange(len(labels))
    stratify = labels if len(np.unique(labels)) > 1 and np.bincount(labels).min() >= 2 else None
    train, valid = train_test_split(indices, test_size=valid_fraction, random_state=seed, stratify=stratify)
    return Split(np.sort(train), np.sort(valid))


def query_split(pairs: PairSet, valid_fraction: float, seed: int) -> Split:
    """Split so that no query appears on both sides.

    Each distinct query goes to validation with probability p, chosen so that validation
    receives about `valid_fraction` of the kept pairs (p^2 / (p^2 + (1 - p)^2) = fraction).
    A pair is kept only when both its queries fall on the same side; the others are dropped
    and counted, because keeping them would leak a validation query into training.
    """
    ratio = np.sqrt(valid_fraction / (1.0 - valid_fraction))
    probability = ratio / (1.0 + ratio)
    rng = np.random.default_rng(seed)
    in_valid = rng.random(len(pairs.queries)) < probability
    valid_a, valid_b = in_valid[pairs.a], in_valid[pairs.b]
    valid = np.flatnonzero(valid_a & valid_b)
    train = np.flatnonzero(~valid_a & ~valid_b)
    dropped = len(pairs) - len(valid) - len(train)
    logger.info(
        "query split: %d train pairs, %d validation pairs, %d pairs dropped because their two "
        "queries fell on different sides", len(train), len(valid), dropped,
    )
    return Split(train, valid, dropped)


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
