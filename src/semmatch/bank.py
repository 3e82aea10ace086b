"""A query bank: known queries and a FAISS index of their vectors, searched with reranking.

    semmatch index --model runs/demo/best --queries known_queries.txt --output runs/demo/bank
    semmatch search --index runs/demo/bank --model runs/demo/best --query "明天早上七点叫我起床"

Search runs in two stages. FAISS returns the `candidates` bank queries whose vectors are most
similar to the query's, then the trained head scores each (query, candidate) pair and the k most
probable matches are returned.

Vectors are L2-normalized before they enter the index, so its inner product is the cosine
similarity. The head was trained on unnormalized vectors, so each vector's L2 norm is stored
beside the index and a candidate's raw vector is rebuilt as normalized vector times norm.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semmatch import __version__
from semmatch.data import _check_id_query, read_pairs, resolve_format
from semmatch.errors import InputError, ModelFileError
from semmatch.fileio import atomic_open, atomic_write_bytes, atomic_write_text
from semmatch.tokenize import Vocabulary

logger = logging.getLogger(__name__)

BANK_FORMAT = "semmatch-bank/1"
INDEX_FILE = "index.faiss"
QUERIES_FILE = "queries.txt"
NORMS_FILE = "norms.npy"
METADATA_FILE = "bank.json"
INDEX_TYPES = ("flat", "hnsw", "ivf")
LAYOUTS = ("auto", "lines", "pairs")
ENCODE_CHUNK = 50_000  # queries per encode call while building, to log progress on large banks
SEARCH_CHUNK = 1024  # queries per FAISS search and rerank step


def _faiss():
    # faiss logs each CPU-feature variant it tries at INFO level; only its warnings are useful here.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        import faiss
    except ImportError as error:
        raise ModelFileError("query banks need FAISS: pip install 'semmatch[search]' (faiss-cpu)") from error
    return faiss


@dataclass
class IndexSettings:
    """Settings of the FAISS index: its type and the parameters of building and searching it.

    flat: exact inner product over every vector. hnsw: an HNSW graph with `hnsw_m` links per
    vector, searched with `ef_search` (raised to the candidate count when that is larger).
    ivf: `nlist` k-means cells (default about 4 * sqrt(count)), searching `nprobe` of them.
    """

    index_type: str = "flat"
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 16

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise InputError(f"invalid index type {self.index_type!r}: use one of {', '.join(INDEX_TYPES)}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.nlist is not None and self.nlist < 1:
            raise InputError(f"nlist must be at least 1, got {self.nlist}")


@dataclass
class SearchHit:
    """One bank query returned for a search query."""

    bank_id: int  # line index in the bank's queries.txt, from 0
    query: str
    similarity: float  # cosine similarity of the two query vectors
    probability: float  # the head's match probability

    def to_dict(self) -> dict:
        return {"id": self.bank_id, "query": self.query, "probability": self.probability,
                "similarity": self.similarity}


def model_fingerprint(matcher) -> str:
    """Return a SHA-256 over the model's weights and vocabulary, which a bank records and checks.

    An `OnnxMatcher` carries the fingerprint of the PyTorch model it was exported from, so a bank
    built with either backend can be searched with the other.
    """
    recorded = getattr(matcher, "fingerprint", None)
    if recorded:
        return recorded
    digest = hashlib.sha256()
    for name, tensor in sorted(matcher.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if isinstance(matcher.vocabulary, Vocabulary):
        digest.update("\n".join(matcher.vocabulary.tokens).encode())
    else:
        digest.update(f"max_id={matcher.vocabulary.max_id}".encode())
    return digest.hexdigest()


def canonical_query(query, position: int, input_format: str) -> str:
    """Return the one-line form a bank stores: the stripped text, or IDs joined by single spaces."""
    if input_format == "ids" and not isinstance(query, str):
        ids = [int(token) for token in query]
        if not ids or min(ids) < 1:
            raise InputError(f"query {position}: ID queries need at least one ID, all positive; got {list(query)!r}")
        return " ".join(map(str, ids))
    if not isinstance(query, str):
        raise InputError(f"query {position} is {type(query).__name__}; this text model takes strings")
    text = query.strip()
    if not text:
        raise InputError(f"query {position} is empty")
    if "\n" in text or "\r" in text:
        raise InputError(f"query {position} contains a line break; a bank stores one query per line")
    if input_format == "ids":
        problem = _check_id_query(text)
        if problem:
            raise InputError(f"query {position}: {problem}")
    return text


def _iter_text_lines(path: Path, encoding: str):
    """Yield (line number, stripped text) for every line; a UTF-8 byte order mark is dropped."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as error:
                raise InputError(f"cannot decode the line as {encoding} ({error.reason} at byte {error.start}); "
                                 "pass --encoding with the file's encoding (for example gbk) or convert it to UTF-8",
                                 str(path), number) from None
            if number == 1:
                text = text.lstrip("\ufeff")
            yield number, text.strip()


def read_query_lines(path: str | Path, input_format: str, encoding: str = "utf-8") -> list[str]:
    """Read one query per line, in file order; blank lines are skipped and counted.

    Raises:
        InputError: naming the line, for a line with a tab or an invalid ID query.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "is not a file", str(path))
    queries: list[str] = []
    blank = 0
    for number, query in _iter_text_lines(path, encoding):
        if not query:
            blank += 1
            continue
        if "\t" in query:
            raise InputError("line contains a tab: a query file has one query per line; "
                             "pass --layout pairs for a pair file", str(path), number)
        if input_format == "ids":
            problem = _check_id_query(query)
            if problem:
                raise InputError(f"{problem}; this model reads ID queries", str(path), number)
        queries.append(query)
    if blank:
        logger.info("%s: skipped %d blank lines", path, blank)
    if not queries:
        raise InputError("no queries: the file is empty", str(path))
    return queries


def read_bank_queries(path: str | Path, input_format: str, layout: str = "auto", encoding: str = "utf-8") -> list[str]:
    """Read the distinct queries of a query file (one per line) or of a pair file, in first-seen order.

    Args:
        path: the file.
        input_format: the model's input format, "text" or "ids".
        layout: "lines", "pairs", or "auto": a file whose first non-blank line has a tab is a pair file.
        encoding: the file's text encoding.
    """
    if layout not in LAYOUTS:
        raise InputError(f"invalid layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "is not a file", str(path))
    if layout == "auto":
        first = next((text for _, text in _iter_text_lines(path, encoding) if text), "")
        layout = "pairs" if "\t" in first else "lines"

    if layout == "pairs":
        detected = resolve_format([path], "auto", encoding)
        if detected != input_format:
            raise InputError(f"the pairs look like {detected!r} data but the model reads {input_format!r}; "
                             "use a model trained on this kind of data", str(path))
        pairs = read_pairs(path, input_format, "optional", "error", encoding)
        queries = list(pairs.queries)
        logger.info("%s: %d distinct queries from %d pairs", path, len(queries), len(pairs))
        return queries

    lines = read_query_lines(path, input_format, encoding)
    queries = list(dict.fromkeys(lines))
    logger.info("%s: %d distinct queries from %d lines (%d duplicates dropped)",
                path, len(queries), len(lines), len(lines) - len(queries))
    return queries


class QueryBank:
    """Known queries with a FAISS index of their L2-normalized vectors.

    Build one with `QueryBank.build`, write it with `save` and read it with `QueryBank.load`,
    which checks that the bank was built with the same model.
    """

    def __init__(self, index, queries: list[str], norms: np.ndarray, metadata: dict):
        self.index = index
        self.queries = queries
        self.norms = norms.astype(np.float32)
        self.metadata = metadata
        self.settings = IndexSettings(**metadata["settings"])

    def __len__(self) -> int:
        return len(self.queries)

    @classmethod
    def build(cls, matcher, queries: Sequence, settings: IndexSettings | None = None,
              source: str | None = None) -> "QueryBank":
        """Encode distinct queries and index their normalized vectors.

        Args:
            matcher: a `Matcher` or `OnnxMatcher`.
            queries: strings; for ID models also ID lists. Repeated queries are kept once.
            settings: the index type and its parameters (default: exact inner product).
            source: where the queries came from, recorded in the metadata.
        """
        input_format = matcher.input_format
        texts = list(dict.fromkeys(canonical_query(query, i, input_format) for i, query in enumerate(queries)))
        if not texts:
            raise InputError("cannot build a query bank from no queries")

        start = time.perf_counter()
        vectors = np.empty((len(texts), matcher.config.projection_dim), dtype=np.float32)
        for offset in range(0, len(texts), ENCODE_CHUNK):
            chunk = texts[offset:offset + ENCODE_CHUNK]
            vectors[offset:offset + len(chunk)] = matcher.encode(chunk)
            logger.info("encoded %d / %d bank queries", offset + len(chunk), len(texts))
        seconds = time.perf_counter() - start
        logger.info("encoded %d bank queries in %.1f s (%.0f queries/s)", len(texts), seconds,
                    len(texts) / max(seconds, 1e-9))
        return cls.from_vectors(matcher, texts, vectors, settings, source)

    @classmethod
    def from_vectors(cls, matcher, texts: list[str], vectors: np.ndarray, settings: IndexSettings | None = None,
                     source: str | None = None) -> "QueryBank":
        """Index vectors that `matcher.encode` made for `texts` (distinct, in canonical form).

        `vectors` is not changed, because the index receives a normalized copy.
        """
        faiss = _faiss()
        settings = settings or IndexSettings()
        if len(texts) != len(vectors):
            raise InputError(f"{len(texts)} queries but {len(vectors)} vectors")
        start = time.perf_counter()
        normalized = np.array(vectors, dtype=np.float32)  # a copy: normalize_L2 works in place
        norms = np.linalg.norm(normalized, axis=1).astype(np.float32)
        faiss.normalize_L2(normalized)
        index = _new_index(faiss, settings, normalized.shape[1], normalized)
        index.add(normalized)
        if settings.index_type == "ivf":
            index.make_direct_map()  # so candidates' vectors can be reconstructed for reranking
        del normalized
        zero = int(np.count_nonzero(norms == 0))
        if zero:
            # NOTE: a zero vector has cosine 0 with every query, so vector search ranks it low.
            # The head still scores it when it is among the candidates.
            logger.warning("%d bank queries have an all-zero vector", zero)

        metadata = {
            "format": BANK_FORMAT,
            "count": len(texts),
            "dim": int(vectors.shape[1]),
            "metric": "inner_product",
            "normalized": True,
            "input_format": matcher.input_format,
            "model_fingerprint": model_fingerprint(matcher),
            "settings": {**settings.__dict__, "nlist": getattr(index, "nlist", settings.nlist)},
            "source": source,
            "semmatch_version": __version__,
            "faiss_version": faiss.__version__,
        }
        logger.info("built the %s index of %d queries in %.1f s", settings.index_type, len(texts),
                    time.perf_counter() - start)
        return cls(index, list(texts), norms, metadata)

    def save(self, path: str | Path) -> None:
        """Write index.faiss, queries.txt, norms.npy and bank.json into directory `path`."""
        faiss = _faiss()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path / INDEX_FILE, faiss.serialize_index(self.index).tobytes())
        atomic_write_text(path / QUERIES_FILE, "".join(query + "\n" for query in self.queries))
        with atomic_open(path / NORMS_FILE, "wb") as handle:
            np.save(handle, self.norms)
        atomic_write_text(path / METADATA_FILE, json.dumps(self.metadata, indent=2, ensure_ascii=False) + "\n")
        logger.info("wrote query bank of %d queries to %s", len(self), path)

    @classmethod
    def load(cls, path: str | Path, matcher=None, threads: int | None = None) -> "QueryBank":
        """Read a bank directory; with `matcher`, check that the bank was built with that model.

        `threads` sets FAISS's OpenMP thread count, for every index of the process.

        Raises:
            ModelFileError: for a missing or corrupt file, or a bank built with another model.
        """
        faiss = _faiss()
        if threads:
            faiss.omp_set_num_threads(threads)
        path = Path(path)
        if not path.is_dir():
            raise ModelFileError(f"query bank directory not found: {path}; build one with semmatch index")
        for name in (INDEX_FILE, QUERIES_FILE, NORMS_FILE, METADATA_FILE):
            if not (path / name).is_file():
                raise ModelFileError(f"query bank file missing: {path / name}; rebuild the bank with semmatch index")
        try:
            metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
            if metadata.get("format") != BANK_FORMAT:
                raise ValueError(f"format {metadata.get('format')!r}, expected {BANK_FORMAT!r}")
            index = faiss.read_index(str(path / INDEX_FILE))
            norms = np.load(path / NORMS_FILE, allow_pickle=False)
            queries = (path / QUERIES_FILE).read_text(encoding="utf-8").split("\n")[:-1]
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise ModelFileError(f"corrupt query bank {path}: {error}") from error
        if not (index.ntotal == len(queries) == len(norms) == metadata["count"]):
            raise ModelFileError(f"corrupt query bank {path}: {index.ntotal} vectors, {len(queries)} queries, "
                                 f"{len(norms)} norms, {metadata['count']} in {METADATA_FILE}; rebuild it")
        bank = cls(index, queries, norms, metadata)
        if matcher is not None:
            bank.check_model(matcher, path)
        logger.info("loaded query bank %s: %d queries, %s index", path, len(bank), bank.settings.index_type)
        return bank

    def check_model(self, matcher, path: str | Path = "bank") -> None:
        """Raise ModelFileError unless `matcher` is the model the bank was built with."""
        fix = "rebuild the bank with semmatch index --model DIR, or pass the model it was built with"
        if self.metadata["input_format"] != matcher.input_format or self.metadata["dim"] != matcher.config.projection_dim:
            raise ModelFileError(f"query bank {path} contains {self.metadata['dim']}-d vectors of "
                                 f"{self.metadata['input_format']} queries but the model makes "
                                 f"{matcher.config.projection_dim}-d vectors of {matcher.input_format} queries; {fix}")
        if self.metadata["model_fingerprint"] != model_fingerprint(matcher):
            raise ModelFileError(f"query bank {path} was built with another model "
                                 f"(fingerprint {self.metadata['model_fingerprint'][:12]}); {fix}")

    # Search ---------------------------------------------------------------------------------

    def search(self, matcher, queries: Sequence, k: int = 10, candidates: int | None = None,
               rerank: bool = True) -> list[list[SearchHit]]:
        """Return the k best matches in the bank for each query, best first.

        Args:
            matcher: the model the bank was built with.
            queries: strings; for ID models also ID lists.
            k: results per query.
            candidates: bank queries retrieved by vector similarity and rescored by the head
                (default max(k, 50)). More candidates find more matches that the vectors rank
                low, and cost more head evaluations.
            rerank: order the candidates by the head's probability (default). With False, the k
                most similar bank queries are returned in order of similarity, each still with
                its probability, and `candidates` is not used.
        """
        queries = list(queries)
        results: list[list[SearchHit]] = []
        for start in range(0, len(queries), SEARCH_CHUNK):
            vectors = matcher.encode(queries[start:start + SEARCH_CHUNK])
            results.extend(self.search_vectors(matcher, vectors, k, candidates, rerank))
        return results

    def search_vectors(self, matcher, vectors: np.ndarray, k: int = 10, candidates: int | None = None,
                       rerank: bool = True) -> list[list[SearchHit]]:
        """Search with query vectors from `matcher.encode`; see `search`."""
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        if not rerank:
            candidates = k
        candidates = max(k, 50) if candidates is None else candidates
        if candidates < k:
            raise InputError(f"candidates ({candidates}) must be at least k ({k})")
        candidates = min(candidates, len(self))
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) == 0:
            return []

        normalized = vectors.copy()
        _faiss().normalize_L2(normalized)
        similarities, ids = self.index.search(normalized, candidates, params=self.search_parameters(candidates))

        # Rebuild each found candidate's raw vector and score every (query, candidate) pair at once.
        found = ids >= 0  # FAISS pads with -1 when an approximate index finds fewer
        query_rows, candidate_columns = np.nonzero(found)
        candidate_ids = ids[found]
        candidate_vectors = self.index.reconstruct_batch(candidate_ids) * self.norms[candidate_ids, None]
        probabilities = np.full(ids.shape, -1.0)
        if len(candidate_ids):
            probabilities[found] = matcher.score_vectors(vectors[query_rows], candidate_vectors)

        results = []
        for row in range(len(vectors)):
            columns = np.flatnonzero(found[row])
            if rerank:
                # Sort by probability, then by similarity among equal probabilities.
                order = columns[np.lexsort((-similarities[row, columns], -probabilities[row, columns]))][:k]
            else:
                order = columns[:k]  # FAISS returns them by decreasing similarity
            results.append([
                SearchHit(int(ids[row, column]), self.queries[ids[row, column]],
                          float(similarities[row, column]), float(probabilities[row, column]))
                for column in order
            ])
        return results

    def search_parameters(self, candidates: int):
        """Return the FAISS search parameters for this index type and candidate count (None for flat)."""
        faiss = _faiss()
        if self.settings.index_type == "hnsw":
            return faiss.SearchParametersHNSW(efSearch=max(self.settings.ef_search, candidates))
        if self.settings.index_type == "ivf":
            return faiss.SearchParametersIVF(nprobe=self.settings.nprobe)
        return None

    def describe(self) -> dict:
        """Return the metadata that /readyz and logs show: size, index type, source."""
        return {"queries": len(self), "index_type": self.settings.index_type, "source": self.metadata.get("source")}


def _new_index(faiss, settings: IndexSettings, dim: int, vectors: np.ndarray):
    """Create an empty inner-product index, trained on `vectors` when the type needs it."""
    if settings.index_type == "flat":
        return faiss.IndexFlatIP(dim)
    if settings.index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.ef_construction
        return index

    count = len(vectors)
    # FAISS k-means warns below 39 training points per cell and samples at most 256 per cell
    # (ClusteringParameters.min/max_points_per_centroid). NOTE: 4 * sqrt(count) cells is a common
    # starting point for IVF, not a value tuned on this data; --nlist and --nprobe override it.
    nlist = settings.nlist or max(1, min(int(4 * math.sqrt(count)), count // 39))
    if nlist > count:
        raise InputError(f"nlist {nlist} exceeds the {count} bank queries; pass a smaller --nlist")
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample_size = min(count, 256 * nlist)
    sample = vectors[np.random.default_rng(0).choice(count, sample_size, replace=False)]
    logger.info("training the IVF index: %d cells on %d vectors", nlist, sample_size)
    index.train(sample)
    return index
