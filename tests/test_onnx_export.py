"""ONNX export: graph shape, agreement with PyTorch, and the ONNX Runtime backend."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from semmatch import cli
from semmatch.bank import QueryBank, read_bank_queries
from semmatch.batching import EncodedQueries
from semmatch.data import read_pairs
from semmatch.errors import InputError, ModelFileError
from semmatch.matcher import load_model
from semmatch.onnx_export import OnnxMatcher, export_onnx, load_backend

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def ids_export(tmp_path_factory, trained_ids_model):
    """The sample ID model exported through the CLI with the default (dynamo) exporter."""
    output = tmp_path_factory.mktemp("ids_onnx")
    status = cli.main(["export", "--model", str(trained_ids_model / "best"), "--format", "onnx",
                       "--output", str(output), "-q"])
    assert status == 0
    return output


@pytest.fixture(scope="module")
def ids_matchers(trained_ids_model, ids_export):
    return load_model(trained_ids_model / "best", device="cpu"), OnnxMatcher.load(ids_export)


def spread_by_length(queries: EncodedQueries, count: int) -> np.ndarray:
    """Indices of `count` distinct queries spread evenly over the length range, longest included."""
    order = np.argsort(queries.lengths, kind="stable")
    picks = np.linspace(len(order) - 1, 0, count).round().astype(int)
    return order[picks]


def test_export_writes_graphs_with_dynamic_axes(ids_export):
    document = json.loads((ids_export / "onnx.json").read_text(encoding="utf-8"))
    assert document["exporter"] == "dynamo"
    assert document["opset"] >= 17
    assert max(document["max_abs_difference"].values()) < TOLERANCE
    assert (ids_export / "config.json").is_file()

    encoder = onnx.load(str(ids_export / "encoder.onnx"))
    shapes = {value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
              for value in [*encoder.graph.input, *encoder.graph.output]}
    assert shapes["token_ids"] == ["batch", "seq_len"]
    assert shapes["lengths"] == ["batch"]
    assert shapes["vectors"][0] == "batch"
    assert {value.name: value.type.tensor_type.elem_type for value in encoder.graph.input} == {
        "token_ids": onnx.TensorProto.INT64, "lengths": onnx.TensorProto.INT64}

    head = onnx.load(str(ids_export / "head.onnx"))
    assert [value.name for value in head.graph.input] == ["u", "v"]
    assert [value.name for value in head.graph.output] == ["probability"]


@pytest.mark.realdata
@pytest.mark.parametrize("batch_size", [1, 7, 512])
def test_onnx_matches_torch_on_test_b(real_data, ids_matchers, batch_size):
    matcher, onnx_matcher = ids_matchers
    pairs = read_pairs(real_data / "gaiic" / "gaiic_track3_round1_testB_20210317.tsv", "ids")
    queries, oov = matcher.encode_pairset(pairs)
    assert oov > 0  # test B IDs run to 21,962, and the sample model's vocabulary ends at 418

    indices = spread_by_length(queries, batch_size)
    token_ids, lengths = queries.pad(indices, matcher.config.max_len)
    assert int(lengths.max()) == int(queries.lengths.max())
    if batch_size > 1:
        assert int(lengths.min()) < int(lengths.max())
    with torch.inference_mode():
        expected = matcher.model.encoder(token_ids, lengths).numpy()
    vectors = onnx_matcher.run_encoder(token_ids.numpy(), lengths.numpy())
    assert vectors.shape == expected.shape
    assert np.abs(vectors - expected).max() < TOLERANCE

    partners = np.roll(np.arange(batch_size), 1)
    expected_probabilities = matcher.score_vectors(expected, expected[partners])
    probabilities = onnx_matcher.score_vectors(expected, expected[partners])
    assert np.abs(probabilities - expected_probabilities).max() < TOLERANCE


@pytest.mark.realdata
def test_onnx_backend_scores_all_test_b_pairs(real_data, ids_matchers):
    matcher, onnx_matcher = ids_matchers
    pairs = read_pairs(real_data / "gaiic" / "gaiic_track3_round1_testB_20210317.tsv", "ids")
    expected = matcher.predict_pairset(pairs)
    probabilities = onnx_matcher.predict_pairset(pairs)
    assert len(probabilities) == 25_000
    assert np.abs(probabilities - expected).max() < TOLERANCE


def test_predict_cli_onnx_backend_matches_torch(tmp_path, sample_dir, trained_ids_model, ids_export):
    torch_output, onnx_output = tmp_path / "torch.txt", tmp_path / "onnx.txt"
    common = ["--input", str(sample_dir / "test.ids.tsv"), "-q"]
    assert cli.main(["predict", "--model", str(trained_ids_model / "best"), "--output", str(torch_output), *common]) == 0
    assert cli.main(["predict", "--backend", "onnx", "--model", str(ids_export), "--output", str(onnx_output), *common]) == 0
    expected = np.loadtxt(torch_output)
    probabilities = np.loadtxt(onnx_output)
    assert len(probabilities) == 600
    assert np.abs(probabilities - expected).max() < TOLERANCE


def test_onnx_encode_and_predict_proba_match_torch(ids_matchers):
    matcher, onnx_matcher = ids_matchers
    queries = [[12, 5, 873], "7 9 11 400", [3] * 130, "50000 2"]  # over max_len, and an unseen ID
    assert np.abs(onnx_matcher.encode(queries) - matcher.encode(queries)).max() < TOLERANCE
    pairs = list(zip(queries, reversed(queries)))
    assert np.abs(onnx_matcher.predict_proba(pairs) - matcher.predict_proba(pairs)).max() < TOLERANCE
    with pytest.raises(InputError, match="positive"):
        onnx_matcher.encode([[4, 0]])


def test_torchscript_exporter_matches_torch(tmp_path, trained_ids_model):
    document = export_onnx(trained_ids_model / "best", tmp_path / "onnx", exporter="torchscript")
    assert document["exporter"] == "torchscript"
    matcher = load_model(trained_ids_model / "best", device="cpu")
    onnx_matcher = OnnxMatcher.load(tmp_path / "onnx")
    pairs = [("12 5 873", "12 5 874 3"), ([7] * 40, [8] * 3), ("1", "30000 31 32")]
    assert np.abs(onnx_matcher.predict_proba(pairs) - matcher.predict_proba(pairs)).max() < TOLERANCE


def test_bank_built_with_torch_searches_with_onnx(sample_dir, ids_matchers):
    matcher, onnx_matcher = ids_matchers
    bank = QueryBank.build(matcher, read_bank_queries(sample_dir / "test.ids.tsv", "ids"))
    bank.check_model(onnx_matcher)
    probes = bank.queries[:20]
    expected = bank.search(matcher, probes, k=5)
    results = bank.search(onnx_matcher, probes, k=5)
    for hits, expected_hits in zip(results, expected):
        assert hits[0].bank_id == expected_hits[0].bank_id
        assert abs(hits[0].probability - expected_hits[0].probability) < TOLERANCE


def test_onnx_backend_rejects_torch_directory(trained_ids_model):
    with pytest.raises(ModelFileError, match="export it first"):
        load_backend(trained_ids_model / "best", "onnx")


def test_onnx_backend_reports_missing_graph(tmp_path, ids_export):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "encoder.onnx", "onnx.json"):
        (broken / name).write_bytes((ids_export / name).read_bytes())
    with pytest.raises(ModelFileError, match="head.onnx"):
        OnnxMatcher.load(broken)


def test_export_rejects_old_opset(tmp_path, trained_ids_model):
    with pytest.raises(InputError, match="opset 16"):
        export_onnx(trained_ids_model / "best", tmp_path / "onnx", opset=16)


def test_symmetric_model_exports_and_scores_both_orders(tmp_path, sample_dir):
    """A symmetric head runs the MLP on both orders; its ONNX graph keeps a dynamic batch."""
    from conftest import small_model_config
    from semmatch.config import TrainConfig
    from semmatch.train import fit, prepare_data

    config = TrainConfig(epochs=1, batch_size=128, seed=2)
    data = prepare_data([str(sample_dir / "train.tsv")], str(sample_dir / "valid.tsv"), config)
    model_config = small_model_config(symmetric=True, fusion=("u", "v", "abs_diff", "product", "cosine"))
    fit(data, model_config, config, tmp_path / "run", progress=False)
    document = export_onnx(tmp_path / "run" / "best", tmp_path / "onnx")
    assert max(document["max_abs_difference"].values()) < TOLERANCE

    onnx_matcher = OnnxMatcher.load(tmp_path / "onnx")
    pairs = [("打开蓝牙", "帮我把蓝牙关掉"), ("明天会下雨吗", "播放周杰伦的歌"), ("你好", "你好呀")]
    forward = onnx_matcher.predict_proba(pairs)
    swapped = onnx_matcher.predict_proba([(b, a) for a, b in pairs])
    assert np.allclose(forward, swapped, atol=1e-6)
    torch_probabilities = load_model(tmp_path / "run" / "best", device="cpu").predict_proba(pairs)
    assert np.allclose(forward, torch_probabilities, atol=TOLERANCE)
