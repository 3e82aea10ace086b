"""The HTTP service: results, request limits, micro-batching, and a bounded load and fault test.

Every server listens on 127.0.0.1 only. The load test starts `semmatch serve` in a subprocess on a
free port and always stops it (SIGTERM, then kill) in the fixture's teardown.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from semmatch.bank import QueryBank, read_bank_queries
from semmatch.errors import ConfigError
from semmatch.matcher import load_model
from semmatch.serving import MicroBatcher, ServeLimits, create_app

TOLERANCE = 1e-5
LOAD_REQUESTS = 2000
LOAD_CLIENTS = 16


@pytest.fixture(scope="module")
def text_matcher(trained_text_model):
    return load_model(trained_text_model / "best", device="cpu")


@pytest.fixture(scope="module")
def valid_pairs(sample_dir) -> list[tuple[str, str]]:
    lines = (sample_dir / "valid.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")[:2]) for line in lines]


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory, sample_dir, text_matcher) -> Path:
    path = tmp_path_factory.mktemp("serve_bank")
    bank = QueryBank.build(text_matcher, read_bank_queries(sample_dir / "train.tsv", "text"))
    bank.save(path)
    return path


@pytest.fixture(scope="module")
def bank(bank_dir, text_matcher) -> QueryBank:
    return QueryBank.load(bank_dir, text_matcher)


@pytest.fixture(scope="module")
def client(text_matcher, bank):
    limits = ServeLimits(max_pairs=50, max_query_length=40, max_body_bytes=64 * 1024, max_k=20)
    with TestClient(create_app(text_matcher, bank, limits)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ids_client(trained_ids_model):
    matcher = load_model(trained_ids_model / "best", device="cpu")
    with TestClient(create_app(matcher, limits=ServeLimits(max_query_length=10))) as test_client:
        yield test_client, matcher


def assert_error(response: httpx.Response, status: int, code: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert fragment in error["message"], error["message"]


def assert_same_hits(hits: list[dict], expected: list) -> None:
    """Equal results, except that hits whose probabilities tie within TOLERANCE may swap places."""
    assert len(hits) == len(expected)
    for hit, wanted in zip(hits, expected):
        assert abs(hit["probability"] - wanted.probability) < TOLERANCE
        if hit["id"] != wanted.bank_id:
            assert any(other.bank_id == hit["id"] and abs(other.probability - hit["probability"]) < TOLERANCE
                       for other in expected)


# Results -------------------------------------------------------------------------------------


def test_match_returns_model_probabilities(client, text_matcher, valid_pairs):
    pairs = valid_pairs[:40]
    response = client.post("/v1/match", json={"pairs": pairs})
    assert response.status_code == 200
    probabilities = np.array(response.json()["probabilities"])
    assert np.abs(probabilities - text_matcher.predict_proba(pairs)).max() < TOLERANCE


def test_encode_returns_model_vectors(client, text_matcher):
    queries = ["打开蓝牙", "明天早上七点叫我起床", "reno5多少钱"]
    body = client.post("/v1/encode", json={"queries": queries}).json()
    assert body["dim"] == text_matcher.config.projection_dim
    assert body["normalized"] is False
    assert np.abs(np.array(body["vectors"]) - text_matcher.encode(queries)).max() < TOLERANCE

    normalized = client.post("/v1/encode", json={"queries": queries, "normalize": True}).json()
    assert np.allclose(np.linalg.norm(np.array(normalized["vectors"]), axis=1), 1.0, atol=1e-5)


def test_search_returns_bank_results(client, text_matcher, bank):
    for query in ["明天早上七点叫我起床", "放一首周杰伦的歌"]:
        response = client.post("/v1/search", json={"query": query, "k": 5})
        assert response.status_code == 200
        (expected,) = bank.search(text_matcher, [query], k=5, candidates=50)
        hits = response.json()["results"]
        assert_same_hits(hits, expected)
        assert all(hit["query"] == bank.queries[hit["id"]] for hit in hits)


def test_search_without_rerank_orders_by_similarity(client, text_matcher, bank):
    response = client.post("/v1/search", json={"query": "打开蓝牙", "k": 5, "rerank": False})
    assert response.status_code == 200
    hits = response.json()["results"]
    (expected,) = bank.search(text_matcher, ["打开蓝牙"], k=5, rerank=False)
    assert [hit["id"] for hit in hits] == [hit.bank_id for hit in expected]
    similarities = [hit["similarity"] for hit in hits]
    assert similarities == sorted(similarities, reverse=True)


def test_health_and_readiness(client, bank):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["query_bank"]["queries"] == len(bank)
    assert client.get("/openapi.json").status_code == 200


def test_id_model_takes_lists_and_strings(ids_client):
    client, matcher = ids_client
    pairs = [[[12, 5, 873], "12 5 874"], ["7 9", [30000, 2]]]
    response = client.post("/v1/match", json={"pairs": pairs})
    assert response.status_code == 200
    expected = matcher.predict_proba([tuple(pair) for pair in pairs])
    assert np.abs(np.array(response.json()["probabilities"]) - expected).max() < TOLERANCE


# Request limits and errors -------------------------------------------------------------------


@pytest.mark.parametrize("body, fragment", [
    ('{"pairs": [["打开蓝牙", "关闭蓝牙"]', "not valid JSON"),
    ('{"pairs": []}', "at least 1 item"),
    ('{"pairs": [["打开蓝牙", 5]]}', "body.pairs.0.1: Input should be a valid string"),
    ('{"pairs": [["打开蓝牙"]]}', "body.pairs.0.1: Field required"),
    ('{"pairs": "打开蓝牙"}', "body.pairs"),
    ('{"pairs": [["打开蓝牙", "关闭蓝牙"]], "threshold": 0.5}', "body.threshold: Extra inputs are not permitted"),
    ('{"pairs": [["打开蓝牙", "   "]]}', "empty or only whitespace"),
    (json.dumps({"pairs": [["打开蓝牙", "很" * 41]]}), "41 characters; the limit is 40"),
    (json.dumps({"pairs": [["打开蓝牙", "关闭蓝牙"]] * 51}), "at most 50 items"),
    ("[]", "body: Input should be a valid dictionary"),
    ("null", "body"),
    (b'{"pairs": [["\xc3\x28", "a"]]}', "not valid JSON: 'utf-8' codec can't decode"),
])
def test_invalid_match_request_rejected(client, body, fragment):
    content = body if isinstance(body, bytes) else body.encode()
    response = client.post("/v1/match", content=content, headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_request", fragment)


@pytest.mark.parametrize("path, body, fragment", [
    ("/v1/encode", {"queries": []}, "at least 1 item"),
    ("/v1/encode", {"queries": ["打开蓝牙"], "normalize": "yes"}, "valid boolean"),
    ("/v1/search", {"query": "打开蓝牙", "k": 0}, "greater than or equal to 1"),
    ("/v1/search", {"query": "打开蓝牙", "k": 21}, "less than or equal to 20"),
    ("/v1/search", {"query": "打开蓝牙", "k": "5"}, "valid integer"),
    ("/v1/search", {"query": ["打开蓝牙"]}, "valid string"),
    ("/v1/search", {"query": "打开蓝牙", "rerank": "no"}, "valid boolean"),
])
def test_invalid_encode_and_search_rejected(client, path, body, fragment):
    assert_error(client.post(path, json=body), 422, "invalid_request", fragment)


@pytest.mark.parametrize("query, fragment", [
    ([12, 0], "ID at position 1 is 0; IDs run from 1"),
    ([12, -3], "ID at position 1 is -3"),
    ([12, True], "ID at position 1 is True; IDs are positive integers"),
    ([12, 1.5], "ID at position 1 is 1.5"),
    ([2**63], "IDs run from 1"),
    ([], "query has no IDs"),
    (list(range(1, 12)), "query has 11 IDs; the limit is 10"),
    ("12 0", "ID 0 is reserved"),
    ("12 x", "invalid token"),
    ({"ids": [12]}, "list of token IDs or a string"),
])
def test_invalid_id_query_rejected(ids_client, query, fragment):
    client, _ = ids_client
    assert_error(client.post("/v1/match", json={"pairs": [[query, [5]]]}), 422, "invalid_request", fragment)


def test_missing_content_type_explained(client):
    response = client.post("/v1/match", content=b'{"pairs": [["a", "b"]]}')
    assert_error(response, 422, "invalid_request", "Content-Type: application/json")


def test_oversized_body_rejected(client):
    body = json.dumps({"pairs": [["打开蓝牙", "关闭蓝牙"]] * 5000}).encode()
    assert len(body) > 64 * 1024
    response = client.post("/v1/match", content=body, headers={"content-type": "application/json"})
    assert_error(response, 413, "body_too_large", "exceeds the limit of 65536 bytes")


def test_oversized_chunked_body_rejected(client):
    def chunks():
        yield b'{"pairs": ['
        for _ in range(5000):
            yield '["打开蓝牙", "关闭蓝牙"],'.encode()
        yield b'["a", "b"]]}'

    response = client.post("/v1/match", content=chunks(), headers={"content-type": "application/json"})
    assert_error(response, 413, "body_too_large", "65536 bytes")


def test_unknown_path_and_method(client):
    assert_error(client.get("/v1/nothing"), 404, "not_found", "/v1/nothing")
    assert_error(client.get("/v1/match"), 405, "method_not_allowed", "GET")


def test_search_without_bank_explained(ids_client):
    client, _ = ids_client
    assert_error(client.post("/v1/search", json={"query": "12 5"}), 404, "no_query_bank", "--index")


def test_invalid_limits_rejected():
    with pytest.raises(ConfigError, match="max_pairs must be at least 1"):
        ServeLimits(max_pairs=0)


# Micro-batching ------------------------------------------------------------------------------


def test_concurrent_requests_share_model_calls(text_matcher, valid_pairs):
    app = create_app(text_matcher, limits=ServeLimits(batch_wait_ms=200))
    pairs = valid_pairs[:24]

    async def send_all():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                responses = await asyncio.gather(*(http.post("/v1/match", json={"pairs": [pair]}) for pair in pairs))
        return responses

    responses = asyncio.run(send_all())
    probabilities = np.array([response.json()["probabilities"][0] for response in responses])
    assert np.abs(probabilities - text_matcher.predict_proba(pairs)).max() < TOLERANCE
    batcher = app.state.batcher
    assert batcher.jobs_done == len(pairs)
    assert batcher.model_calls < len(pairs) // 2


def test_batched_searches_match_single_searches(text_matcher, bank):
    batcher = MicroBatcher(text_matcher, bank, ServeLimits(batch_wait_ms=200))
    requests = [("打开蓝牙", 5, True), ("放一首周杰伦的歌", 5, True), ("明天早上七点叫我起床", 3, True),
                ("北京明天会下雨吗", 5, False)]

    async def run():
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit("search", [query], k=k, rerank=rerank)
                                          for query, k, rerank in requests))
        finally:
            await batcher.stop()

    results = asyncio.run(run())
    assert batcher.model_calls == 1
    for (query, k, rerank), hits in zip(requests, results):
        (expected,) = bank.search(text_matcher, [query], k=k, candidates=max(k, 50), rerank=rerank)
        assert_same_hits([hit.to_dict() for hit in hits], expected)


class PoisonMatcher:
    """Wraps a matcher; encoding any batch that contains the query 'poison' raises."""

    def __init__(self, matcher):
        self.matcher = matcher
        self.input_format = matcher.input_format
        self.config = matcher.config

    def encode(self, queries):
        if "poison" in queries:
            raise RuntimeError("encoder failure")
        return self.matcher.encode(queries)

    def score_vectors(self, u, v):
        return self.matcher.score_vectors(u, v)


def test_failing_request_does_not_fail_its_batch(text_matcher):
    batcher = MicroBatcher(PoisonMatcher(text_matcher), None, ServeLimits(batch_wait_ms=200))

    async def run():
        await batcher.start()
        try:
            return await asyncio.gather(
                batcher.submit("match", ["打开蓝牙", "关闭蓝牙"]),
                batcher.submit("match", ["poison", "关闭蓝牙"]),
                batcher.submit("encode", ["放首歌"]),
                return_exceptions=True,
            )
        finally:
            await batcher.stop()

    good_match, failed, good_encode = asyncio.run(run())
    assert isinstance(failed, RuntimeError)
    assert abs(good_match[0] - text_matcher.predict_proba([("打开蓝牙", "关闭蓝牙")])[0]) < TOLERANCE
    assert np.abs(good_encode - text_matcher.encode(["放首歌"])).max() < TOLERANCE


# The server process under load and faults ----------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, trained_text_model, bank_dir):
    """`semmatch serve` in a subprocess on 127.0.0.1; yields (base URL, process, log path)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = [sys.executable, "-m", "semmatch", "serve", "--model", str(trained_text_model / "best"),
               "--index", str(bank_dir), "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text(encoding='utf-8')}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after 180 s:\n{log_path.read_text(encoding='utf-8')}")
            time.sleep(0.2)
        yield base_url, process, log_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def build_load_requests(valid_pairs, bank, count: int, seed: int = 0) -> list[tuple[str, dict]]:
    """A seeded mix: 70% match (1 to 8 pairs), 20% encode (1 to 4 queries), 10% search."""
    rng = np.random.default_rng(seed)
    queries = sorted({query for pair in valid_pairs for query in pair})
    probes = bank.queries[:10]
    requests = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.7:
            chosen = rng.choice(len(valid_pairs), rng.integers(1, 9), replace=False)
            requests.append(("/v1/match", {"pairs": [list(valid_pairs[i]) for i in chosen]}))
        elif draw < 0.9:
            chosen = rng.choice(len(queries), rng.integers(1, 5), replace=False)
            requests.append(("/v1/encode", {"queries": [queries[i] for i in chosen]}))
        else:
            requests.append(("/v1/search", {"query": probes[rng.integers(len(probes))], "k": 5}))
    return requests


async def send_concurrently(base_url: str, requests: list[tuple[str, dict]], clients: int) -> list[httpx.Response]:
    """Send the requests from `clients` concurrent HTTP clients, each with its own connection."""
    responses: list[httpx.Response | None] = [None] * len(requests)
    next_index = iter(range(len(requests)))

    async def client_loop():
        async with httpx.AsyncClient(base_url=base_url, timeout=60, trust_env=False) as http:
            for index in next_index:
                path, body = requests[index]
                responses[index] = await http.post(path, json=body)

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return responses


def test_server_under_load_and_faults(server, text_matcher, bank, valid_pairs):
    base_url, process, log_path = server
    requests = build_load_requests(valid_pairs, bank, LOAD_REQUESTS)
    pair_index = {pair: i for i, pair in enumerate(valid_pairs)}
    expected_probabilities = text_matcher.predict_proba(valid_pairs)
    expected_search = {probe: hits for probe, hits in zip(bank.queries[:10], bank.search(text_matcher, bank.queries[:10], k=5))}

    responses = asyncio.run(send_concurrently(base_url, requests, LOAD_CLIENTS))
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == LOAD_REQUESTS, {status: statuses.count(status) for status in set(statuses)}
    for (path, body), response in zip(requests, responses):
        result = response.json()
        if path == "/v1/match":
            expected = expected_probabilities[[pair_index[tuple(pair)] for pair in body["pairs"]]]
            assert np.abs(np.array(result["probabilities"]) - expected).max() < TOLERANCE
        elif path == "/v1/encode":
            assert np.abs(np.array(result["vectors"]) - text_matcher.encode(body["queries"])).max() < 1e-4
        else:
            assert_same_hits(result["results"], expected_search[body["query"]])

    oversized = json.dumps({"pairs": [["打开蓝牙", "关闭蓝牙"]] * 60_000}).encode()
    assert len(oversized) > 2**20

    def chunked_oversized():
        for _ in range(40):
            yield b" " * 65536

    json_header = {"content-type": "application/json"}
    faults = [
        (b'{"pairs": [["a", "b"]', json_header, 422),
        (b"\xff\xfe not json", json_header, 422),
        (b'{"pairs": [["a", 1]]}', json_header, 422),
        (b'{"pairs": [[["a"], "b"]]}', json_header, 422),
        (b'{"pairs": []}', json_header, 422),
        (b'{"pairs": [["a", "b"]], "extra": true}', json_header, 422),
        (oversized, json_header, 413),
        (chunked_oversized(), json_header, 413),
        (json.dumps({"pairs": [["a", "b"]] * 1001}).encode(), json_header, 422),
    ]
    fault_statuses = []
    with httpx.Client(base_url=base_url, timeout=60, trust_env=False) as http:
        for content, headers, status in faults:
            response = http.post("/v1/match", content=content, headers=headers)
            fault_statuses.append(response.status_code)
            assert response.status_code == status, response.text
            assert response.json()["error"]["message"]

        assert http.get("/healthz").json() == {"status": "ok"}
        pairs = valid_pairs[:5]
        after = http.post("/v1/match", json={"pairs": pairs}).json()["probabilities"]
        assert np.abs(np.array(after) - text_matcher.predict_proba(pairs)).max() < TOLERANCE
    assert not [status for status in statuses + fault_statuses if status >= 500]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    log = log_path.read_text(encoding="utf-8")
    assert log.count("POST /v1/") >= LOAD_REQUESTS + len(faults) + 1
    assert "error=request body is not valid JSON" in log
    assert "stopped after" in log
    assert "Application shutdown complete" in log
    assert "server stopped" in log
