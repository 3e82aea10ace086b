"""Query banks: building, saving and loading FAISS indexes, and search with reranking by the head."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semmatch import cli
from semmatch.bank import IndexSettings, QueryBank, model_fingerprint, read_bank_queries, read_query_lines
from semmatch.errors import InputError, ModelFileError
from semmatch.matcher import Matcher, load_model
from semmatch.model import TwoTowerModel

PROBES = ["明天早上七点叫我起床", "放一首周杰伦的歌", "打开蓝牙", "北京明天会下雨吗", "reno5多少钱"]


@pytest.fixture(scope="module")
def text_matcher(trained_text_model):
    return load_model(trained_text_model / "best", device="cpu")


@pytest.fixture(scope="module")
def bank_queries(sample_dir, text_matcher):
    return read_bank_queries(sample_dir / "train.tsv", text_matcher.input_format)


@pytest.fixture(scope="module")
def flat_bank(text_matcher, bank_queries):
    return QueryBank.build(text_matcher, bank_queries, source="train.tsv")


def faiss_candidates(matcher: Matcher, bank: QueryBank, query: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The bank ids and cosine similarities that the index itself returns for one query."""
    probe = matcher.encode([query])
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    similarities, ids = bank.index.search(probe, count)
    return ids[0], similarities[0]


def test_pair_file_gives_distinct_queries(sample_dir, bank_queries):
    rows = [line.split("\t") for line in (sample_dir / "train.tsv").read_text(encoding="utf-8").splitlines()]
    expected = list(dict.fromkeys(query.strip() for row in rows for query in row[:2]))
    assert bank_queries == expected


def test_query_file_skips_blanks_and_duplicates(tmp_path):
    path = tmp_path / "queries.txt"
    path.write_text("\ufeff打开蓝牙\n\n放首歌\n打开蓝牙\n  \n关闭wifi\n", encoding="utf-8")
    assert read_bank_queries(path, "text") == ["打开蓝牙", "放首歌", "关闭wifi"]
    assert read_query_lines(path, "text") == ["打开蓝牙", "放首歌", "打开蓝牙", "关闭wifi"]


def test_query_file_rejects_tab_with_line(tmp_path):
    path = tmp_path / "queries.txt"
    path.write_text("打开蓝牙\n放首歌\t来首歌\n", encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_bank_queries(path, "text", layout="lines")
    assert error.value.line == 2
    assert "--layout pairs" in str(error.value)


def test_id_query_file_rejects_invalid_id(tmp_path):
    path = tmp_path / "queries.txt"
    path.write_text("12 5 873\n12 0 5\n", encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_bank_queries(path, "ids")
    assert error.value.line == 2
    assert "ID 0" in str(error.value)


def test_pair_file_format_must_match_model(sample_dir):
    with pytest.raises(InputError, match="model reads 'text'"):
        read_bank_queries(sample_dir / "train.ids.tsv", "text")


def test_undecodable_query_file_names_line(tmp_path):
    path = tmp_path / "queries.txt"
    path.write_bytes("打开蓝牙\n".encode() + "放首歌\n".encode("gbk"))
    with pytest.raises(InputError) as error:
        read_bank_queries(path, "text")
    assert error.value.line == 2
    assert "--encoding" in str(error.value)


def test_saved_bank_round_trips(tmp_path, text_matcher, flat_bank):
    flat_bank.save(tmp_path / "bank")
    for name in ("index.faiss", "queries.txt", "norms.npy", "bank.json"):
        assert (tmp_path / "bank" / name).is_file()
    metadata = json.loads((tmp_path / "bank" / "bank.json").read_text(encoding="utf-8"))
    assert metadata["normalized"] is True
    assert metadata["metric"] == "inner_product"
    assert metadata["count"] == len(flat_bank)

    loaded = QueryBank.load(tmp_path / "bank", text_matcher)
    assert loaded.queries == flat_bank.queries
    before = flat_bank.search(text_matcher, PROBES, k=5)
    after = loaded.search(text_matcher, PROBES, k=5)
    assert [[hit.bank_id for hit in hits] for hits in after] == [[hit.bank_id for hit in hits] for hits in before]


def test_index_holds_normalized_vectors_and_norms(text_matcher, flat_bank):
    ids = np.arange(0, len(flat_bank), 97)
    stored = flat_bank.index.reconstruct_batch(ids)
    assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)
    raw = text_matcher.encode([flat_bank.queries[i] for i in ids])
    assert np.abs(stored * flat_bank.norms[ids, None] - raw).max() < 1e-5


def test_search_reranks_candidates_by_head(text_matcher, flat_bank):
    candidates, k = 20, 5
    results = flat_bank.search(text_matcher, PROBES, k=k, candidates=candidates)
    bank_vectors = text_matcher.encode(flat_bank.queries)
    bank_vectors /= np.linalg.norm(bank_vectors, axis=1, keepdims=True)
    for probe, hits in zip(PROBES, results):
        pool, similarities = faiss_candidates(text_matcher, flat_bank, probe, candidates)
        scores = text_matcher.predict_proba([(probe, flat_bank.queries[i]) for i in pool])
        expected = pool[np.argsort(-scores, kind="stable")[:k]]
        assert len(hits) == k
        assert sorted(hit.bank_id for hit in hits) == sorted(expected.tolist())
        probabilities = [hit.probability for hit in hits]
        assert probabilities == sorted(probabilities, reverse=True)
        by_id = dict(zip(pool.tolist(), scores))
        assert max(abs(hit.probability - by_id[hit.bank_id]) for hit in hits) < 1e-5

        # The exact index's similarities are the cosines numpy computes.
        probe_vector = text_matcher.encode([probe])[0]
        cosines = bank_vectors[pool] @ (probe_vector / np.linalg.norm(probe_vector))
        assert np.abs(cosines - similarities).max() < 1e-5


def test_search_without_rerank_keeps_vector_order(text_matcher, flat_bank):
    results = flat_bank.search(text_matcher, PROBES, k=7, rerank=False)
    for probe, hits in zip(PROBES, results):
        pool, similarities = faiss_candidates(text_matcher, flat_bank, probe, 7)
        assert [hit.bank_id for hit in hits] == pool.tolist()
        assert np.allclose([hit.similarity for hit in hits], similarities)
        scores = text_matcher.predict_proba([(probe, flat_bank.queries[i]) for i in pool])
        assert np.abs(np.array([hit.probability for hit in hits]) - scores).max() < 1e-5


def test_search_finds_bank_query_itself(text_matcher, flat_bank):
    queries = flat_bank.queries[:40]
    results = flat_bank.search(text_matcher, queries, k=50, candidates=50)
    for position, hits in enumerate(results):
        own = [hit for hit in hits if hit.bank_id == position]
        assert own, f"bank query {position} not among its own 50 candidates"
        assert own[0].similarity == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_index_finds_own_vector(text_matcher, bank_queries, index_type):
    bank = QueryBank.build(text_matcher, bank_queries, IndexSettings(index_type))
    if index_type == "ivf":
        # The default cell count is 4 * sqrt(count), capped so that each cell gets 39 training vectors.
        assert bank.index.nlist == min(int(4 * np.sqrt(len(bank))), len(bank) // 39)
    results = bank.search(text_matcher, bank.queries[:200], k=50, candidates=50)
    found = sum(any(hit.bank_id == position for hit in hits) for position, hits in enumerate(results))
    assert found >= 196  # at least 98%: approximate search may miss a few


def test_k_larger_than_bank_returns_whole_bank(text_matcher):
    bank = QueryBank.build(text_matcher, ["打开蓝牙", "关闭蓝牙", "放首歌"])
    (hits,) = bank.search(text_matcher, ["打开蓝牙"], k=10)
    assert sorted(hit.bank_id for hit in hits) == [0, 1, 2]


def test_repeated_queries_are_stored_once(text_matcher):
    bank = QueryBank.build(text_matcher, ["打开蓝牙", " 打开蓝牙 ", "放首歌"])
    assert bank.queries == ["打开蓝牙", "放首歌"]


def test_invalid_search_arguments_rejected(text_matcher, flat_bank):
    with pytest.raises(InputError, match="k must be at least 1"):
        flat_bank.search(text_matcher, ["打开蓝牙"], k=0)
    with pytest.raises(InputError, match="candidates"):
        flat_bank.search(text_matcher, ["打开蓝牙"], k=10, candidates=5)


def test_bank_rejects_other_model(tmp_path, text_matcher, flat_bank, trained_ids_model):
    flat_bank.save(tmp_path / "bank")
    retrained = Matcher(TwoTowerModel(text_matcher.config), text_matcher.vocabulary, device="cpu")
    assert model_fingerprint(retrained) != model_fingerprint(text_matcher)
    with pytest.raises(ModelFileError, match="another model"):
        QueryBank.load(tmp_path / "bank", retrained)
    with pytest.raises(ModelFileError, match="ids queries"):
        QueryBank.load(tmp_path / "bank", load_model(trained_ids_model / "best", device="cpu"))


def test_truncated_queries_file_detected(tmp_path, flat_bank):
    flat_bank.save(tmp_path / "bank")
    path = tmp_path / "bank" / "queries.txt"
    path.write_text("".join(line + "\n" for line in flat_bank.queries[:-1]), encoding="utf-8")
    with pytest.raises(ModelFileError, match="corrupt query bank"):
        QueryBank.load(tmp_path / "bank")


def test_id_bank_stores_canonical_queries(trained_ids_model):
    matcher = load_model(trained_ids_model / "best", device="cpu")
    bank = QueryBank.build(matcher, [[12, 5, 873], "12 5 873", "7 9", [5000]])
    assert bank.queries == ["12 5 873", "7 9", "5000"]
    (hits,) = bank.search(matcher, [[7, 9]], k=1, candidates=3)
    assert hits[0].query == "7 9"
    with pytest.raises(InputError, match="positive"):
        QueryBank.build(matcher, [[3, 0]])


def test_cli_index_and_search(tmp_path, capsys, trained_text_model, sample_dir):
    model = str(trained_text_model / "best")
    bank_dir = tmp_path / "bank"
    status = cli.main(["index", "--model", model, "--queries", str(sample_dir / "train.tsv"),
                       "--output", str(bank_dir), "--index-type", "hnsw", "-q"])
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["index_type"] == "hnsw"

    queries = tmp_path / "queries.txt"
    queries.write_text("打开蓝牙\n放一首周杰伦的歌\n", encoding="utf-8")
    status = cli.main(["search", "--index", str(bank_dir), "--model", model, "--queries", str(queries), "-k", "3", "-q"])
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == ["打开蓝牙", "放一首周杰伦的歌"]
    assert all(len(line["results"]) == 3 for line in lines)
    assert set(lines[0]["results"][0]) == {"id", "query", "probability", "similarity"}


def test_cli_search_needs_one_query_source(tmp_path, trained_text_model):
    status = cli.main(["search", "--index", str(tmp_path), "--model", str(trained_text_model / "best"), "-q"])
    assert status == 2


@pytest.mark.realdata
def test_real_pairs_bank_search(real_data, text_matcher):
    queries = read_bank_queries(real_data / "xiaobu" / "pairs.tsv", "text")
    assert len(queries) == len(set(queries))
    bank = QueryBank.build(text_matcher, queries[:3000])
    # Real queries contain many characters that the sample model never saw, and those share its
    # OOV row. So several bank queries can have the probe's vector, and one of them must come first.
    results = bank.search(text_matcher, queries[:100], k=50, candidates=50)
    for hits in results:
        assert len(hits) == 50
        assert max(hit.similarity for hit in hits) == pytest.approx(1.0, abs=1e-4)
        assert all(0.0 <= hit.probability <= 1.0 for hit in hits)
    found = sum(any(hit.bank_id == position for hit in hits) for position, hits in enumerate(results))
    assert found >= 90
