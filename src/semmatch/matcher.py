"""A trained matcher as one object: load, save, encode queries and score pairs.

A model directory holds `config.json`, `model.safetensors` and, for text models, `vocab.txt`.
Loading reads JSON and safetensors only: nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from semmatch import __version__
from semmatch.batching import EncodedQueries
from semmatch.config import ModelConfig, build_config, config_to_dict
from semmatch.data import PairSet, _check_id_query
from semmatch.errors import InputError, ModelFileError
from semmatch.fileio import atomic_directory, atomic_write_bytes, atomic_write_text
from semmatch.inference import VectorCache, autocast, encode_indices, resolve_device, score_pairs
from semmatch.model import PairModel, build_model
from semmatch.tokenize import IdVocabulary, Vocabulary

logger = logging.getLogger(__name__)

MODEL_FORMAT = "semmatch-model/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"

QueryLike = str | Sequence[int]


def has_vectors(matcher) -> bool:
    """Return whether a `Matcher` or `OnnxMatcher` gives standalone query vectors (false for interaction models)."""
    return matcher.config.architecture == "two_tower"


def require_vectors(matcher, action: str) -> None:
    """Raise InputError when `action` needs query vectors that the matcher's model does not give."""
    if not has_vectors(matcher):
        raise InputError(f"{action} needs query vectors, but this is an interaction model, which scores pairs "
                         "jointly; use a two-tower model (trained with --preset best_two_tower, or without "
                         "--architecture interaction)")


class Matcher:
    """A trained model with its vocabulary, ready to score pairs and (two-tower models) encode queries.

    Args:
        model: the network.
        vocabulary: `Vocabulary` for text models, `IdVocabulary` for GAIIC ID models.
        device: where to run ("auto", "cpu", "cuda").
        precision: "fp32" or "bf16" (autocast).
    """

    def __init__(self, model: PairModel, vocabulary: Vocabulary | IdVocabulary,
                 device: str | torch.device = "auto", precision: str = "fp32"):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = model.to(self.device).eval()
        self.vocabulary = vocabulary
        self.precision = precision
        self.batch_size = 1024

    @property
    def input_format(self) -> str:
        return "text" if isinstance(self.vocabulary, Vocabulary) else "ids"

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    # Encoding inputs ---------------------------------------------------------------------

    def encode_pairset(self, pairs: PairSet) -> tuple[EncodedQueries, int]:
        """Map a PairSet's distinct queries to model token IDs; returns them and the OOV count."""
        if pairs.format != self.input_format:
            raise InputError(
                f"this model reads {self.input_format!r} input but the file is in {pairs.format!r} format; "
                f"pass --format {self.input_format} or use a model trained on {pairs.format} data",
                pairs.sources[0] if pairs.sources else None,
            )
        if isinstance(self.vocabulary, Vocabulary):
            tokens, offsets, oov = self.vocabulary.encode(pairs.queries)
        else:
            tokens, oov = self.vocabulary.map_ids(pairs.query_ids)
            offsets = pairs.query_offsets
        encoded = EncodedQueries(tokens, offsets)
        source = pairs.sources[0] if pairs.sources else "input"
        if oov:
            logger.info("%s: %d tokens unseen in training mapped to the OOV embedding", source, oov)
        truncated = encoded.count_longer_than(self.config.max_len)
        if truncated:
            logger.info("%s: queries longer than max_len %d tokens, truncated: %d", source, self.config.max_len, truncated)
        return encoded, oov

    def _encode_raw_queries(self, queries: Sequence[QueryLike]) -> EncodedQueries:
        if isinstance(self.vocabulary, Vocabulary):
            texts = []
            for position, query in enumerate(queries):
                if not isinstance(query, str):
                    raise InputError(f"query {position} is {type(query).__name__}; this text model takes strings")
                if not query.strip():
                    raise InputError(f"query {position} is empty")
                texts.append(query)
            tokens, offsets, _ = self.vocabulary.encode(texts)
            return EncodedQueries(tokens, offsets)

        parts = []
        for position, query in enumerate(queries):
            if isinstance(query, str):
                problem = _check_id_query(query.strip()) if query.strip() else "empty query"
                if problem:
                    raise InputError(f"query {position}: {problem}")
                ids = [int(token) for token in query.split()]
            else:
                ids = [int(token) for token in query]
                if not ids or min(ids) < 1:
                    raise InputError(f"query {position}: ID queries need at least one ID, all positive; got {list(query)!r}")
            parts.append(np.asarray(ids, dtype=np.int64))
        lengths = np.array([len(part) for part in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        raw = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        tokens, _ = self.vocabulary.map_ids(raw)
        return EncodedQueries(tokens, offsets)

    # Public API ---------------------------------------------------------------------------

    def encode(self, queries: Sequence[QueryLike]) -> np.ndarray:
        """Encode queries into vectors.

        Args:
            queries: strings for text models; ID lists or "12 5 873" strings for ID models.

        Returns:
            (len(queries), projection_dim) float32 array.
        """
        require_vectors(self, "encoding queries")
        encoded = self._encode_raw_queries(list(queries))
        indices = np.arange(len(encoded))
        vectors = encode_indices(self.model, encoded, indices, self.batch_size, None, self.device, self.precision)
        return vectors.cpu().numpy()

    def predict_proba(self, pairs: Sequence[tuple[QueryLike, QueryLike]], pad_to: int | None = None) -> np.ndarray:
        """Return the match probability of each (query_a, query_b) pair, in input order."""
        pairs = list(pairs)
        for position, pair in enumerate(pairs):
            if len(pair) != 2:
                raise InputError(f"pair {position} has {len(pair)} items; expected (query_a, query_b)")
        encoded = self._encode_raw_queries([pair[0] for pair in pairs] + [pair[1] for pair in pairs])
        count = len(pairs)
        a = np.arange(count)
        return self.score_encoded(encoded, a, a + count, pad_to)

    def score_encoded(self, queries: EncodedQueries, a: np.ndarray, b: np.ndarray, pad_to: int | None = None,
                      keys: list[str] | None = None, cache: VectorCache | None = None) -> np.ndarray:
        """Score pairs of encoded query indices; `keys` (query texts) and `cache` reuse earlier vectors."""
        if pad_to is not None and pad_to > self.config.max_len:
            raise InputError(f"--pad-to {pad_to} exceeds the model's max_len {self.config.max_len}")
        return score_pairs(self.model, queries, a, b, self.batch_size, pad_to, self.device, self.precision,
                           keys, cache)

    @torch.inference_mode()
    def score_vectors(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Run the head on query vectors from `encode`: row i of `u` against row i of `v`.

        Returns:
            (len(u),) float64 match probabilities.
        """
        require_vectors(self, "scoring query vectors")
        u_tensor = torch.as_tensor(np.asarray(u, dtype=np.float32), device=self.device)
        v_tensor = torch.as_tensor(np.asarray(v, dtype=np.float32), device=self.device)
        if u_tensor.ndim != 2 or u_tensor.shape != v_tensor.shape:
            raise InputError(f"expected two (count, dim) arrays of one shape, got {tuple(u_tensor.shape)} and {tuple(v_tensor.shape)}")
        probabilities = torch.empty(len(u_tensor), device=self.device)
        for start in range(0, len(u_tensor), 8192):
            stop = start + 8192
            with autocast(self.device, self.precision):
                probabilities[start:stop] = torch.sigmoid(self.model.head(u_tensor[start:stop], v_tensor[start:stop]).float())
        return probabilities.cpu().numpy().astype(np.float64)

    def predict_pairset(self, pairs: PairSet, pad_to: int | None = None, cache: VectorCache | None = None) -> np.ndarray:
        """Score every pair of a PairSet read from a file, reusing vectors from `cache` when given."""
        queries, _ = self.encode_pairset(pairs)
        return self.score_encoded(queries, pairs.a, pairs.b, pad_to, pairs.queries, cache)

    # Persistence -------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        save_model(self.model, self.vocabulary, path)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", precision: str = "fp32") -> "Matcher":
        model, vocabulary = load_model_files(path)
        return cls(model, vocabulary, device, precision)


def save_model(model: PairModel, vocabulary: Vocabulary | IdVocabulary, path: str | Path) -> None:
    """Write a model directory (config.json, model.safetensors, vocab.txt for text models).

    The directory is built under a temporary name and renamed into place, so a crash never
    leaves a half-written model at `path`.
    """
    with atomic_directory(path) as directory:
        if isinstance(vocabulary, Vocabulary):
            vocabulary.save(directory / VOCAB_FILE)
            vocab_info = {"kind": "text", "file": VOCAB_FILE, "size": len(vocabulary)}
        else:
            vocab_info = {"kind": "ids", "max_id": vocabulary.max_id}
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
        atomic_write_bytes(directory / WEIGHTS_FILE, save_safetensors(state, metadata={"format": MODEL_FORMAT}))
        document = {
            "format": MODEL_FORMAT,
            "semmatch_version": __version__,
            "input_format": "text" if isinstance(vocabulary, Vocabulary) else "ids",
            "vocabulary": vocab_info,
            "model": config_to_dict(model.config),
        }
        atomic_write_text(directory / CONFIG_FILE, json.dumps(document, indent=2) + "\n")


def load_vocabulary(path: Path, vocab_info: dict, vocab_size: int, kind: str = "model") -> Vocabulary | IdVocabulary:
    """Load the vocabulary that config.json's "vocabulary" entry describes, checking its size against the model."""
    if vocab_info.get("kind") != "text":
        return IdVocabulary(int(vocab_info["max_id"]))
    vocab_path = path / vocab_info.get("file", VOCAB_FILE)
    if not vocab_path.is_file():
        raise ModelFileError(f"{kind} file missing: {vocab_path}")
    vocabulary = Vocabulary.load(vocab_path)
    if len(vocabulary) != vocab_size:
        raise ModelFileError(f"{vocab_path} has {len(vocabulary)} tokens but the model expects {vocab_size}")
    return vocabulary


def load_model_files(path: str | Path) -> tuple[PairModel, Vocabulary | IdVocabulary]:
    """Read a model directory, checking every file before building the network."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"model directory not found: {path}")
    config_path = path / CONFIG_FILE
    weights_path = path / WEIGHTS_FILE
    for required in (config_path, weights_path):
        if not required.is_file():
            raise ModelFileError(f"model file missing: {required}; a model directory needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
        model_config = build_config(ModelConfig, document["model"], str(config_path))
        vocab_info = document["vocabulary"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"corrupt model config {config_path}: {error}") from error

    vocabulary = load_vocabulary(path, vocab_info, model_config.vocab_size)

    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"corrupt weights file {weights_path}: {error}") from error
    model = build_model(model_config)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ModelFileError(f"weights in {weights_path} do not match {config_path}: {error}") from error
    return model, vocabulary


def load_model(path: str | Path, device: str = "auto", precision: str = "fp32") -> Matcher:
    """Load a saved model directory as a `Matcher` (`predict_proba(pairs)`, `encode(queries)`)."""
    return Matcher.load(path, device, precision)
