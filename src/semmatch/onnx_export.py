"""ONNX export of a trained model, and `OnnxMatcher`, which runs the graphs in ONNX Runtime.

    semmatch export --model runs/demo/best --format onnx --output runs/demo/onnx
    semmatch predict --backend onnx --model runs/demo/onnx --input test.tsv --output result.txt

An export directory contains two graphs with dynamic batch and length axes, the source model's
config.json and vocab.txt, and onnx.json (exporter, opset, versions, and the largest difference
from PyTorch measured right after export):

    encoder.onnx: token_ids (batch, seq_len) int64 right-padded with 0, lengths (batch,) int64
                  -> vectors (batch, projection_dim) float32
    head.onnx:    u, v (batch, projection_dim) float32 -> probability (batch,) float32

The default exporter is PyTorch's torch.export-based one (`dynamo=True`). `exporter="torchscript"`
selects the older TorchScript exporter, which PyTorch 2.13 marks as deprecated. Both export the
encoder's gather-based reversal and boolean-masked scaled_dot_product_attention at opset 17 and later.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from semmatch import __version__
from semmatch.bank import model_fingerprint
from semmatch.batching import EncodedQueries, sorted_batches
from semmatch.config import ModelConfig, build_config
from semmatch.errors import InputError, ModelFileError
from semmatch.fileio import atomic_write_text
from semmatch.inference import VectorCache, fill_from_cache
from semmatch.matcher import CONFIG_FILE, VOCAB_FILE, Matcher, load_model, load_vocabulary, require_vectors
from semmatch.model import TwoTowerModel
from semmatch.tokenize import IdVocabulary, Vocabulary

logger = logging.getLogger(__name__)

ONNX_FORMAT = "semmatch-onnx/1"
ENCODER_FILE = "encoder.onnx"
HEAD_FILE = "head.onnx"
EXPORT_FILE = "onnx.json"
EXPORTERS = ("dynamo", "torchscript")
MIN_OPSET = 17
TOLERANCE = 1e-4  # largest accepted difference from PyTorch, in vector values and probabilities


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise ModelFileError("the ONNX backend needs ONNX Runtime: pip install 'semmatch[export]'") from error
    return onnxruntime


class _HeadProbability(nn.Module):
    """The matching head with its sigmoid, so the graph outputs probabilities."""

    def __init__(self, model: TwoTowerModel):
        super().__init__()
        self.head = model.head

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(u, v))  # (batch,)


def _example_inputs(config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Return a right-padded batch of 3 queries of different lengths, so that no axis is traced as the constant 1."""
    seq_len = min(9, config.max_len)
    lengths = torch.tensor([seq_len, max(seq_len // 2, 1), 1])
    token_ids = torch.randint(1, config.vocab_size, (3, seq_len), generator=torch.Generator().manual_seed(0))
    token_ids[torch.arange(seq_len)[None, :] >= lengths[:, None]] = 0
    return token_ids, lengths


@contextlib.contextmanager
def _quiet_exporter_logs():
    """Raise the log levels of the exporter libraries, which log every optimization pass at INFO."""
    levels = {"onnxscript": logging.WARNING, "onnx_ir": logging.WARNING, "torch.onnx": logging.ERROR}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _export_graph(module: nn.Module, inputs: tuple, path: Path, input_names: list[str], output_name: str,
                  axes: dict[str, dict[int, str]], max_len: int, opset: int, exporter: str) -> None:
    """Export one module with named dynamic axes ("batch" and "seq_len")."""
    options = dict(input_names=input_names, output_names=[output_name], opset_version=opset)
    if exporter == "dynamo":
        dims = {"batch": torch.export.Dim("batch"), "seq_len": torch.export.Dim("seq_len", max=max_len)}
        dynamic_shapes = {name: {axis: dims[label] for axis, label in axes[name].items()} for name in input_names}
        with warnings.catch_warnings(), _quiet_exporter_logs():
            # The exporter warns that "batch" is used by several inputs, which is intended.
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            # nn.LSTM re-assigns its flat weight list while being traced; the values do not change.
            warnings.filterwarnings("ignore", message=".*_flat_weights.*")
            program = torch.onnx.export(module, inputs, dynamo=True, dynamic_shapes=dynamic_shapes,
                                        external_data=False, verbose=False, **options)
        program.save(str(path), external_data=False)
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            # The exporter warns that an LSTM exported at batch size 3 may fail at other batch sizes. That
            # concerns initial states traced as constants, which this encoder does not pass; the check
            # after export runs the graph on a batch of 64.
            warnings.filterwarnings("ignore", message=".*LSTM.*")
            torch.onnx.export(module, inputs, str(path), dynamo=False, dynamic_axes={**axes, output_name: {0: "batch"}},
                              **options)


def export_onnx(model_dir: str | Path, output_dir: str | Path, opset: int = 18,
                exporter: str = "dynamo") -> dict:
    """Export a saved model's encoder and head as ONNX graphs and check them against PyTorch.

    Args:
        model_dir: a model directory (config.json, model.safetensors, vocab.txt for text models).
        output_dir: where encoder.onnx, head.onnx, onnx.json, config.json and vocab.txt are written.
        opset: the ONNX opset, 17 or later.
        exporter: "dynamo" (torch.export-based, the default) or "torchscript".

    Returns:
        The onnx.json document, including the measured differences from PyTorch.

    Raises:
        ModelFileError: when the exported graphs differ from PyTorch by more than 1e-4.
    """
    if exporter not in EXPORTERS:
        raise InputError(f"invalid exporter {exporter!r}: use one of {', '.join(EXPORTERS)}")
    if opset < MIN_OPSET:
        raise InputError(f"opset {opset} is not supported: the encoder's masked attention needs opset {MIN_OPSET} or later")
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if output_dir.resolve() == model_dir.resolve():
        raise InputError(f"--output {output_dir} is the model directory; choose a new directory")
    matcher = load_model(model_dir, device="cpu")
    require_vectors(matcher, "ONNX export (an encoder graph and a head graph)")
    model = copy.deepcopy(matcher.model).eval()
    config = model.config
    output_dir.mkdir(parents=True, exist_ok=True)

    # A failed export or check removes what it wrote, so no directory looks like a usable export.
    written = [output_dir / name for name in (ENCODER_FILE, HEAD_FILE, EXPORT_FILE, CONFIG_FILE, VOCAB_FILE)]
    try:
        start = time.perf_counter()
        token_ids, lengths = _example_inputs(config)
        _export_graph(model.encoder, (token_ids, lengths), output_dir / ENCODER_FILE, ["token_ids", "lengths"],
                      "vectors", {"token_ids": {0: "batch", 1: "seq_len"}, "lengths": {0: "batch"}}, config.max_len,
                      opset, exporter)
        with torch.inference_mode():
            vectors = model.encoder(token_ids, lengths)
        head_inputs = (vectors, vectors.flip(0))
        _export_graph(_HeadProbability(model).eval(), head_inputs, output_dir / HEAD_FILE, ["u", "v"], "probability",
                      {"u": {0: "batch"}, "v": {0: "batch"}}, config.max_len, opset, exporter)
        export_seconds = time.perf_counter() - start

        for name in (CONFIG_FILE, VOCAB_FILE):
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, output_dir / name)
        document = {
            "format": ONNX_FORMAT,
            "exporter": exporter,
            "opset": opset,
            "source_model": str(model_dir),
            "model_fingerprint": model_fingerprint(matcher),
            "semmatch_version": __version__,
            "torch_version": torch.__version__,
            "onnxruntime_version": _onnxruntime().__version__,
            "export_seconds": round(export_seconds, 2),
        }
        atomic_write_text(output_dir / EXPORT_FILE, json.dumps(document, indent=2) + "\n")

        differences = compare_with_torch(matcher, OnnxMatcher.load(output_dir))
        document["max_abs_difference"] = differences
        atomic_write_text(output_dir / EXPORT_FILE, json.dumps(document, indent=2) + "\n")
        worst = max(differences.values())
        if worst > TOLERANCE:
            raise ModelFileError(f"the exported ONNX graphs differ from PyTorch by up to {worst:.2e} "
                                 f"(limit {TOLERANCE:.0e}): {differences}; the files were removed from "
                                 f"{output_dir}. Try --exporter torchscript")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    logger.info("exported %s and %s to %s with the %s exporter, opset %d, in %.1f s; largest difference "
                "from PyTorch %.1e", ENCODER_FILE, HEAD_FILE, output_dir, exporter, opset, export_seconds, worst)
    return document


def compare_with_torch(matcher: Matcher, onnx_matcher: "OnnxMatcher", count: int = 64, seed: int = 0) -> dict:
    """Return the largest absolute differences between the two backends on random queries.

    Queries have random IDs and lengths from 1 to max_len, and are encoded in one padded batch,
    so the check covers padding as well as full-length rows.
    """
    config = matcher.config
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, config.max_len + 1, count)
    lengths[0], lengths[-1] = 1, config.max_len
    tokens = rng.integers(1, config.vocab_size, int(lengths.sum())).astype(np.int32)
    queries = EncodedQueries(tokens, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    token_ids, length_tensor = queries.pad(np.arange(count), config.max_len)

    with torch.inference_mode():
        expected = matcher.model.encoder(token_ids.to(matcher.device), length_tensor.to(matcher.device)).float().cpu().numpy()
    vectors = onnx_matcher.run_encoder(token_ids.numpy(), length_tensor.numpy())
    partners = rng.permutation(count)
    expected_probabilities = matcher.score_vectors(expected, expected[partners])
    probabilities = onnx_matcher.score_vectors(expected, expected[partners])
    return {
        "vectors": float(np.abs(vectors - expected).max()),
        "probabilities": float(np.abs(probabilities - expected_probabilities).max()),
    }


class OnnxMatcher(Matcher):
    """A Matcher whose encoder and head run as ONNX graphs in ONNX Runtime.

    Input handling (tokenization, ID validation, pair files, `predict_proba`) is Matcher's own;
    `encode`, `score_encoded` and `score_vectors` run the graphs. There is no PyTorch model:
    `model` is None and `save` raises.

    Args:
        path: an export directory written by `export_onnx`.
        threads: ONNX Runtime intra-op threads (default: ONNX Runtime's choice).
        providers: ONNX Runtime execution providers (default: CPUExecutionProvider).
    """

    def __init__(self, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None):
        path = Path(path)
        config, vocabulary, document = _read_export(path)
        onnxruntime = _onnxruntime()
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = list(providers or ["CPUExecutionProvider"])
        try:
            self.encoder_session = onnxruntime.InferenceSession(str(path / ENCODER_FILE), options, providers=providers)
            self.head_session = onnxruntime.InferenceSession(str(path / HEAD_FILE), options, providers=providers)
        except Exception as error:  # ONNX Runtime raises its own exception types for invalid graphs
            raise ModelFileError(f"ONNX Runtime cannot load the graphs in {path}: {error}") from error
        self.model = None
        self.vocabulary = vocabulary
        self.device = torch.device("cpu")
        self.precision = "fp32"
        self.batch_size = 1024
        self.path = path
        self.fingerprint = document["model_fingerprint"]
        self.export_info = document
        self._config = config

    @property
    def config(self) -> ModelConfig:
        return self._config

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None) -> "OnnxMatcher":
        return cls(path, threads, providers)

    def save(self, path: str | Path) -> None:
        raise NotImplementedError("an OnnxMatcher has no PyTorch weights to save; copy its export directory instead")

    def run_encoder(self, token_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Run encoder.onnx on one padded batch: (batch, seq_len) int64 and (batch,) int64 -> (batch, dim) float32."""
        return self.encoder_session.run(None, {"token_ids": token_ids.astype(np.int64, copy=False),
                                               "lengths": lengths.astype(np.int64, copy=False)})[0]

    def _encode_indices(self, queries: EncodedQueries, indices: np.ndarray, pad_to: int | None = None) -> np.ndarray:
        max_len = self.config.max_len
        lengths = np.minimum(queries.lengths[indices], max_len)
        vectors = np.empty((len(indices), self.config.projection_dim), dtype=np.float32)
        for batch in sorted_batches(lengths, self.batch_size):
            token_ids, batch_lengths = queries.pad(indices[batch], max_len, pad_to)
            vectors[batch] = self.run_encoder(token_ids.numpy(), batch_lengths.numpy())
        return vectors

    def encode(self, queries) -> np.ndarray:
        """Encode queries into (len(queries), projection_dim) float32 vectors."""
        encoded = self._encode_raw_queries(list(queries))
        return self._encode_indices(encoded, np.arange(len(encoded)))

    def score_encoded(self, queries: EncodedQueries, a: np.ndarray, b: np.ndarray, pad_to: int | None = None,
                      keys: list[str] | None = None, cache: VectorCache | None = None) -> np.ndarray:
        """Score pairs of encoded query indices; `keys` (query texts) and `cache` reuse earlier vectors."""
        if pad_to is not None and pad_to > self.config.max_len:
            raise InputError(f"--pad-to {pad_to} exceeds the model's max_len {self.config.max_len}")
        if len(a) == 0:
            return np.zeros(0)
        distinct, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        if cache is not None and keys is not None:
            vectors = np.empty((len(distinct), self.config.projection_dim), dtype=np.float32)
            fill_from_cache(distinct, keys, cache, vectors,
                            lambda missing: self._encode_indices(queries, missing, pad_to))
        else:
            vectors = self._encode_indices(queries, distinct, pad_to)
        count = len(a)
        return self.score_vectors(vectors[inverse[:count]], vectors[inverse[count:]])

    def score_vectors(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Run head.onnx on row pairs of query vectors; returns (len(u),) float64 probabilities."""
        u = np.asarray(u, dtype=np.float32)
        v = np.asarray(v, dtype=np.float32)
        if u.ndim != 2 or u.shape != v.shape:
            raise InputError(f"expected two (count, dim) arrays of one shape, got {u.shape} and {v.shape}")
        probabilities = np.empty(len(u), dtype=np.float64)
        for start in range(0, len(u), 8192):
            stop = start + 8192
            probabilities[start:stop] = self.head_session.run(None, {"u": u[start:stop], "v": v[start:stop]})[0]
        return probabilities


def _read_export(path: Path) -> tuple[ModelConfig, Vocabulary | IdVocabulary, dict]:
    """Read an export directory's config.json, vocabulary and onnx.json, checking every file."""
    if not path.is_dir():
        raise ModelFileError(f"ONNX model directory not found: {path}")
    if not (path / ENCODER_FILE).is_file() and (path / "model.safetensors").is_file():
        raise ModelFileError(f"{path} is a PyTorch model directory; export it first with "
                             f"semmatch export --model {path} --format onnx --output DIR and pass --model DIR")
    for name in (CONFIG_FILE, ENCODER_FILE, HEAD_FILE, EXPORT_FILE):
        if not (path / name).is_file():
            raise ModelFileError(f"ONNX model file missing: {path / name}; export the model again with semmatch export")
    try:
        document = json.loads((path / EXPORT_FILE).read_text(encoding="utf-8"))
        if document.get("format") != ONNX_FORMAT:
            raise ValueError(f"format {document.get('format')!r}, expected {ONNX_FORMAT!r}")
        model_document = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        config = build_config(ModelConfig, model_document["model"], str(path / CONFIG_FILE))
        vocab_info = model_document["vocabulary"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(f"corrupt ONNX export {path}: {error}") from error

    return config, load_vocabulary(path, vocab_info, config.vocab_size, kind="ONNX model"), document


def load_backend(path: str | Path, backend: str = "torch", device: str = "auto", precision: str = "fp32",
                 threads: int | None = None) -> Matcher:
    """Load a model directory for the "torch" backend or an export directory for the "onnx" backend."""
    if backend == "torch":
        return load_model(path, device, precision)
    if backend == "onnx":
        if device not in ("auto", "cpu") or precision != "fp32":
            raise InputError("the onnx backend runs on the CPU in fp32; drop --device and --precision or use --backend torch")
        return OnnxMatcher.load(path, threads)
    raise InputError(f"invalid backend {backend!r}: use torch or onnx")
