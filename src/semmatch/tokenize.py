"""Text tokenization and the vocabulary of text-mode models.

Chinese is split per character; a run of Latin letters or digits stays one token, so brand
names and device models ("oppo", "reno5", "5g") keep their identity. Text is normalized with
Unicode NFKC (full-width letters, digits and punctuation become their ASCII forms) and
lowercased before splitting.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

PAD_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1

_TOKEN_PATTERN = re.compile(r"[a-z0-9]+|\S")


def normalize_text(text: str) -> str:
    """Apply NFKC normalization and lowercase, the form every text query is matched in."""
    return unicodedata.normalize("NFKC", text).lower()


def tokenize(text: str) -> list[str]:
    """Split a query into tokens: one per Chinese character or symbol, one per Latin/digit run.

    >>> tokenize("我的Reno5 Pro多少钱")
    ['我', '的', 'reno5', 'pro', '多', '少', '钱']
    """
    return _TOKEN_PATTERN.findall(normalize_text(text))


class Vocabulary:
    """Map text tokens to embedding rows: 0 is padding, 1 is out-of-vocabulary."""

    def __init__(self, tokens: list[str]):
        if tokens[:2] != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(f"a vocabulary must start with {PAD_TOKEN} and {OOV_TOKEN}")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, queries: Iterable[str], min_count: int = 1) -> "Vocabulary":
        """Build a vocabulary from training queries, most frequent tokens first."""
        counts: Counter[str] = Counter()
        for query in queries:
            counts.update(tokenize(query))
        kept = [token for token, count in counts.items() if count >= min_count]
        # Ties are broken by the token itself so the same data always gives the same IDs.
        kept.sort(key=lambda token: (-counts[token], token))
        return cls([PAD_TOKEN, OOV_TOKEN, *kept])

    def encode(self, queries: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
        """Tokenize queries into one flat ID array with offsets.

        Returns:
            (token_ids int32, offsets int64 of len(queries) + 1, number of OOV tokens).
        """
        ids: list[int] = []
        offsets = np.zeros(len(queries) + 1, dtype=np.int64)
        lookup = self.index.get
        for i, query in enumerate(queries):
            ids.extend(lookup(token, OOV_ID) for token in tokenize(query))
            offsets[i + 1] = len(ids)
        token_ids = np.asarray(ids, dtype=np.int32)
        return token_ids, offsets, int(np.count_nonzero(token_ids == OOV_ID))

    def save(self, path: str | Path) -> None:
        """Write one token per line; the line index (from 0) is the token's ID."""
        from semmatch.fileio import atomic_write_text

        atomic_write_text(path, "".join(token + "\n" for token in self.tokens))

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        text = Path(path).read_text(encoding="utf-8")
        return cls(text.split("\n")[:-1])


class IdVocabulary:
    """Map GAIIC token IDs to embedding rows: IDs up to `max_id` keep their value.

    Row 0 is padding and row `max_id + 1` is the out-of-vocabulary row that every larger ID,
    unseen in training, maps to instead of overflowing the embedding.
    """

    def __init__(self, max_id: int):
        self.max_id = int(max_id)
        self.oov_id = self.max_id + 1

    def __len__(self) -> int:
        return self.max_id + 2

    @classmethod
    def build(cls, token_ids: np.ndarray) -> "IdVocabulary":
        return cls(int(token_ids.max()) if len(token_ids) else 0)

    def map_ids(self, token_ids: np.ndarray) -> tuple[np.ndarray, int]:
        """Return int32 embedding rows for raw IDs and the number of IDs mapped to OOV."""
        unseen = token_ids > self.max_id
        rows = np.where(unseen, self.oov_id, token_ids).astype(np.int32)
        return rows, int(np.count_nonzero(unseen))
