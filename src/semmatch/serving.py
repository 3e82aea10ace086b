"""The HTTP service: match, encode and search over one loaded model, with micro-batching.

    semmatch serve --model runs/demo/best --index runs/demo/bank --port 8000

Endpoints: POST /v1/match, /v1/encode, /v1/search; GET /healthz (the process is up), /readyz
(the model is loaded and warmed up); OpenAPI documentation at /docs.

Concurrent requests share model calls. Each request becomes a job on an asyncio queue. One
worker takes every waiting job and runs them as one encoder call in a model thread, so the event
loop keeps accepting requests while the model runs. When a job arrives alone, the worker first
waits `batch_wait_ms` for others. Requests are validated completely before they are queued, so
one invalid request cannot fail a batch.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at runtime,
# and the request models are classes local to create_app, which string annotations cannot name.
import asyncio
import logging
import signal
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, StrictBool, WithJsonSchema
from starlette.exceptions import HTTPException

from semmatch import __version__
from semmatch.data import _check_id_query
from semmatch.errors import ConfigError, SemmatchError
from semmatch.matcher import has_vectors, require_vectors
from semmatch.tokenize import tokenize

logger = logging.getLogger(__name__)

INT64_MAX = 2**63 - 1
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# Bytes of an over-limit body read and discarded before the 413 reply, so that the client, which
# is still sending, reads the reply instead of a connection reset. Larger bodies are cut off.
DRAIN_LIMIT_BYTES = 16 * 2**20


@dataclass
class ServeLimits:
    """Request limits and batching settings of the service."""

    max_pairs: int = 1000  # pairs per /v1/match request
    max_queries: int = 1000  # queries per /v1/encode request
    max_query_length: int = 512  # characters of a text query, or IDs of an ID query
    max_body_bytes: int = 2**20  # request body size in bytes
    max_k: int = 100  # results per /v1/search request
    search_candidates: int = 50  # bank queries rescored by the head per search (at least k)
    batch_wait_ms: float = 2.0  # how long the worker waits for more requests after the first
    max_batch_queries: int = 4096  # queries per model call, summed over the requests batched
    max_queue: int = 1024  # requests waiting for the model before new ones get 503

    def __post_init__(self) -> None:
        for name in ("max_pairs", "max_queries", "max_query_length", "max_body_bytes", "max_k",
                     "search_candidates", "max_batch_queries", "max_queue"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_wait_ms < 0:
            raise ConfigError(f"batch_wait_ms must be 0 or more, got {self.batch_wait_ms}")


class ServiceUnavailable(Exception):
    """The service cannot take the request now (queue full, or shutting down)."""


# Request and response bodies ---------------------------------------------------------------


def _request_models(input_format: str, limits: ServeLimits) -> dict[str, type[BaseModel]]:
    """Build the request models; their query type and limits depend on the model and settings."""
    max_length = limits.max_query_length

    def check_text(query: str) -> str:
        if not query.strip():
            raise ValueError("query is empty or only whitespace")
        if len(query) > max_length:
            raise ValueError(f"query has {len(query)} characters; the limit is {max_length}")
        if not tokenize(query):
            raise ValueError("query has no tokens after Unicode normalization")
        return query

    def check_id_query(query: Any) -> Any:
        if isinstance(query, str):
            problem = _check_id_query(query.strip()) if query.strip() else "query is empty or only whitespace"
            if problem:
                raise ValueError(problem)
            count = len(query.split())
        elif isinstance(query, list):
            if not query:
                raise ValueError("query has no IDs")
            for position, token in enumerate(query):
                if isinstance(token, bool) or not isinstance(token, int):
                    raise ValueError(f"ID at position {position} is {token!r}; IDs are positive integers")
                if not 1 <= token <= INT64_MAX:
                    raise ValueError(f"ID at position {position} is {token}; IDs run from 1 "
                                     f"(0 is reserved for padding) to {INT64_MAX}")
            count = len(query)
        else:
            raise ValueError("an ID query is a list of token IDs or a string of space-separated IDs")
        if count > max_length:
            raise ValueError(f"query has {count} IDs; the limit is {max_length}")
        return query

    if input_format == "text":
        query_type: Any = Annotated[str, Field(strict=True), AfterValidator(check_text)]
        query_doc = "a query in plain text"
    else:
        # One validator for both forms gives one clear error, where a union reports each branch's error.
        schema = {"anyOf": [{"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
                             "minItems": 1, "maxItems": max_length},
                            {"type": "string", "examples": ["12 5 873"]}]}
        query_type = Annotated[Any, PlainValidator(check_id_query), WithJsonSchema(schema)]
        query_doc = 'a query as a list of token IDs, or as one string of space-separated IDs ("12 5 873")'

    class MatchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        pairs: list[tuple[query_type, query_type]] = Field(
            min_length=1, max_length=limits.max_pairs,
            description=f"query pairs to score, 1 to {limits.max_pairs}; each query is {query_doc}")

    class EncodeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        queries: list[query_type] = Field(
            min_length=1, max_length=limits.max_queries,
            description=f"queries to encode, 1 to {limits.max_queries}; each is {query_doc}")
        normalize: StrictBool = Field(False, description="L2-normalize each vector (for cosine similarity)")

    class SearchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: query_type = Field(description=query_doc)
        k: int = Field(10, strict=True, ge=1, le=limits.max_k, description=f"results to return, 1 to {limits.max_k}")
        rerank: StrictBool = Field(True, description="order by the head's match probability (default); "
                                                     "false: return the k most similar bank queries by cosine")

    return {"match": MatchRequest, "encode": EncodeRequest, "search": SearchRequest}


class MatchResponse(BaseModel):
    probabilities: list[float] = Field(description="match probability of each pair, in request order")


class EncodeResponse(BaseModel):
    dim: int
    normalized: bool
    vectors: list[list[float]]


class SearchResult(BaseModel):
    id: int = Field(description="line index of the bank query in the bank's queries.txt, from 0")
    query: str
    probability: float = Field(description="the head's match probability, which orders the results")
    similarity: float = Field(description="cosine similarity of the two query vectors")


class SearchResponse(BaseModel):
    results: list[SearchResult]


# Micro-batching ----------------------------------------------------------------------------


@dataclass
class _Job:
    kind: str  # "match", "encode" or "search"
    queries: list  # queries to encode: a match job lists all first queries, then all second ones
    options: dict
    future: asyncio.Future


class MicroBatcher:
    """Run concurrent requests' model work together: one queue, one worker, one model thread.

    Args:
        matcher: a `Matcher` or `OnnxMatcher`.
        bank: a `QueryBank` for search jobs, or None.
        limits: batching settings (batch_wait_ms, max_batch_queries, max_queue, search_candidates).
    """

    def __init__(self, matcher, bank, limits: ServeLimits):
        self.matcher = matcher
        self.bank = bank
        self.limits = limits
        self.model_calls = 0
        self.jobs_done = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._held: deque[_Job] = deque()  # a job taken from the queue that did not fit the last batch
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semmatch-model")
        self._closing = False
        self._busy = False

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="semmatch-batcher")

    async def run_in_model_thread(self, function, *args):
        """Run a function in the model thread, outside any batch (used for the warm-up call)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def submit(self, kind: str, queries: list, **options) -> Any:
        """Queue one request's work and return its result once its batch has run."""
        if self._closing or self._queue is None:
            raise ServiceUnavailable("the server is shutting down")
        if self._queue.qsize() + len(self._held) >= self.limits.max_queue:
            raise ServiceUnavailable(f"the server is busy: {self.limits.max_queue} requests are waiting; retry later")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(kind, queries, options, future))
        return await future

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs (waiting up to `timeout` seconds), then stop the worker and the model thread."""
        self._closing = True
        if self._queue is None:  # never started
            self._executor.shutdown(wait=True)
            return
        deadline = time.monotonic() + timeout
        while (self._busy or self._held or not self._queue.empty()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        left = list(self._held)
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        for job in left:
            _set_exception(job, ServiceUnavailable("the server stopped before this request ran"))
        if left:
            logger.warning("stopped with %d requests not run", len(left))
        self._executor.shutdown(wait=True)

    async def _next_batch(self) -> list[_Job]:
        first = self._held.popleft() if self._held else await self._queue.get()
        if self.limits.batch_wait_ms > 0 and self._queue.empty():
            # Nothing else is waiting, so give requests sent at about the same time a chance to join.
            # Under load the queue fills while the model runs and batches form without waiting.
            await asyncio.sleep(self.limits.batch_wait_ms / 1000)
        batch, size = [first], len(first.queries)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if size + len(job.queries) > self.limits.max_batch_queries:
                self._held.append(job)
                break
            batch.append(job)
            size += len(job.queries)
        return [job for job in batch if not job.future.done()]  # done: the request was cancelled

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            self._busy = True
            try:
                await self._run_batch(loop, batch)
            finally:
                self._busy = False

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> None:
        try:
            results = await loop.run_in_executor(self._executor, self._process, batch)
        except Exception as error:
            if len(batch) == 1:
                _fail(batch[0], error)
                return
            # Run the jobs one by one, so that only a job that fails gets the error.
            logger.warning("a batch of %d requests failed; running them one at a time", len(batch))
            for job in batch:
                try:
                    (result,) = await loop.run_in_executor(self._executor, self._process, [job])
                except Exception as job_error:
                    _fail(job, job_error)
                else:
                    _set_result(job, result)
            return
        for job, result in zip(batch, results):
            _set_result(job, result)

    def _process(self, batch: list[_Job]) -> list[Any]:
        """Encode every job's queries in one call, then score pairs and search (model thread)."""
        if not has_vectors(self.matcher):
            return self._process_jointly(batch)
        queries = [query for job in batch for query in job.queries]
        vectors = self.matcher.encode(queries)  # (total queries, dim)
        self.model_calls += 1
        self.jobs_done += len(batch)

        slices, start = [], 0
        for job in batch:
            slices.append(vectors[start:start + len(job.queries)])
            start += len(job.queries)

        # All pairs of all match jobs go through the head together.
        match_jobs = [i for i, job in enumerate(batch) if job.kind == "match"]
        probabilities: list[np.ndarray] = []
        if match_jobs:
            halves = [np.split(slices[i], 2) for i in match_jobs]
            scores = self.matcher.score_vectors(np.concatenate([u for u, _ in halves]),
                                                np.concatenate([v for _, v in halves]))
            probabilities = np.split(scores, np.cumsum([len(u) for u, _ in halves])[:-1])

        results: list[Any] = [None] * len(batch)
        for i, scores in zip(match_jobs, probabilities):
            results[i] = scores
        for i, job in enumerate(batch):
            if job.kind == "encode":
                results[i] = _normalize(slices[i]) if job.options.get("normalize") else slices[i]

        # Searches with the same k and order share one FAISS search: one matrix product over the
        # bank for all their queries is much faster than one product per query.
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, job in enumerate(batch):
            if job.kind == "search":
                groups.setdefault((job.options["k"], job.options.get("rerank", True)), []).append(i)
        for (k, rerank), members in groups.items():
            hits = self.bank.search_vectors(self.matcher, np.concatenate([slices[i] for i in members]), k,
                                            max(k, self.limits.search_candidates), rerank)
            for i, job_hits in zip(members, hits):
                results[i] = job_hits
        return results

    def _process_jointly(self, batch: list[_Job]) -> list[Any]:
        """Score every match job's pairs in one call to an interaction model.

        Such a model has no query vectors, so create_app rejects encode requests and query banks.
        """
        pairs, sizes = [], []
        for job in batch:
            half = len(job.queries) // 2
            pairs.extend(zip(job.queries[:half], job.queries[half:]))
            sizes.append(half)
        scores = self.matcher.predict_proba(pairs)
        self.model_calls += 1
        self.jobs_done += len(batch)
        return np.split(scores, np.cumsum(sizes)[:-1])


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _set_result(job: _Job, result: Any) -> None:
    if not job.future.done():
        job.future.set_result(result)


def _fail(job: _Job, error: Exception) -> None:
    """Pass an input error to the request as it is; log anything else and pass a generic error."""
    if isinstance(error, SemmatchError):
        _set_exception(job, error)
        return
    logger.error("model call failed for a %s request of %d queries", job.kind, len(job.queries), exc_info=error)
    _set_exception(job, RuntimeError("the model call failed; see the server log"))


def _set_exception(job: _Job, error: Exception) -> None:
    if not job.future.done():
        job.future.set_exception(error)


# Middleware --------------------------------------------------------------------------------


def _error_body(code: str, message: str, details: list | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class BodySizeLimit:
    """Reject request bodies over `max_bytes` with 413, by Content-Length or by counting chunks."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive, DRAIN_LIMIT_BYTES)
            message = f"request body of {int(declared)} bytes exceeds the limit of {self.max_bytes} bytes"
            scope.setdefault("state", {})["error"] = message
            response = JSONResponse(_error_body("body_too_large", message), status_code=413,
                                    headers={"Connection": "close"})
            await response(scope, receive, send)
            return

        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_LIMIT_BYTES)
                    raise _BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


async def _drain(receive, limit: int) -> None:
    """Read and discard the rest of a request body, up to `limit` bytes."""
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestLog:
    """Log one line per request with method, path, status, item count and latency.

    Rejected requests (4xx) are logged at WARNING and failed ones (5xx) at ERROR, with the error message.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            latency_ms = (time.perf_counter() - start) * 1000
            state = scope.get("state", {})
            count = state.get("count", "-")
            line = "%s %s %d count=%s latency_ms=%.1f"
            arguments = [scope["method"], scope["path"], status, count, latency_ms]
            if status >= 500:
                logger.error(line + " error=%s", *arguments, state.get("error", "-"))
            elif status >= 400:
                logger.warning(line + " error=%s", *arguments, state.get("error", "-"))
            else:
                logger.info(line, *arguments)


# The application ---------------------------------------------------------------------------


def create_app(matcher, bank=None, limits: ServeLimits | None = None) -> FastAPI:
    """Build the FastAPI application for a loaded model and an optional query bank.

    Args:
        matcher: a `Matcher` or `OnnxMatcher`.
        bank: a `QueryBank` built with the same model, for /v1/search.
        limits: request limits and batching settings.
    """
    limits = limits or ServeLimits()
    if bank is not None:
        require_vectors(matcher, "a query bank")
        bank.check_model(matcher)
    models = _request_models(matcher.input_format, limits)
    MatchRequest, EncodeRequest, SearchRequest = models["match"], models["encode"], models["search"]
    batcher = MicroBatcher(matcher, bank, limits)
    status = {"ready": False}
    warmup_query = "你好" if matcher.input_format == "text" else "1"

    async def lifespan(app: FastAPI):
        await batcher.start()
        if has_vectors(matcher):
            await batcher.run_in_model_thread(matcher.encode, [warmup_query])
        else:
            await batcher.run_in_model_thread(matcher.predict_proba, [(warmup_query, warmup_query)])
        status["ready"] = True
        logger.info("ready: %s %s model (%s backend), %s", matcher.input_format, matcher.config.architecture,
                    type(matcher).__name__,
                    f"query bank of {len(bank)} queries" if bank is not None else "no query bank")
        yield
        status["ready"] = False
        await batcher.stop()
        logger.info("stopped after %d requests in %d model calls", batcher.jobs_done, batcher.model_calls)

    app = FastAPI(title="semmatch", version=__version__, lifespan=lifespan,
                  description="Short-text semantic matching with a two-tower model: score query pairs, "
                              "encode queries, and search a bank of known queries.")
    app.state.batcher = batcher
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(RequestLog)  # added last, so it runs first and also times 413 replies

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
                   for item in error.errors()]
        json_error = next((item for item in error.errors() if item.get("type") == "json_invalid"), None)
        content_type = request.headers.get("content-type", "")
        if json_error is not None:
            message = f"request body is not valid JSON: {json_error.get('ctx', {}).get('error', 'decode error')} " \
                      f"at character {json_error['loc'][-1]}"
        elif "json" not in content_type:
            message = f"request body must be JSON sent with Content-Type: application/json (got {content_type or 'none'!r})"
        else:
            first = details[0]
            location = ".".join(str(part) for part in first["loc"])
            message = f"invalid request: {location}: {first['msg']}"
            if len(details) > 1:
                message += f" (and {len(details) - 1} more errors in details)"
        request.state.error = message
        return JSONResponse(_error_body("invalid_request", message, details), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            # FastAPI turns a body that is not UTF-8 into a bare 400; report it like other invalid JSON.
            message = f"request body is not valid JSON: {error.__cause__}"
            request.state.error = message
            return JSONResponse(_error_body("invalid_request", message), status_code=422)
        messages = {404: f"no endpoint at {request.url.path}; see /docs for the endpoints",
                    405: f"method {request.method} is not allowed on {request.url.path}; see /docs"}
        message = messages.get(error.status_code, str(error.detail))
        request.state.error = message
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        return JSONResponse(_error_body(codes.get(error.status_code, "http_error"), message),
                            status_code=error.status_code, headers=getattr(error, "headers", None))

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, error: ServiceUnavailable) -> JSONResponse:
        request.state.error = str(error)
        return JSONResponse(_error_body("unavailable", str(error)), status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(SemmatchError)
    async def input_error(request: Request, error: SemmatchError) -> JSONResponse:
        request.state.error = str(error)
        return JSONResponse(_error_body("invalid_request", str(error)), status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        logger.error("unhandled error in %s %s", request.method, request.url.path, exc_info=error)
        request.state.error = f"{type(error).__name__}: {error}"
        return JSONResponse(_error_body("internal_error", "internal server error; see the server log"), status_code=500)

    @app.post("/v1/match", response_model=MatchResponse, summary="Score query pairs")
    async def match(body: MatchRequest, request: Request) -> dict:
        """Return the match probability of each pair, in request order."""
        request.state.count = len(body.pairs)
        queries = [pair[0] for pair in body.pairs] + [pair[1] for pair in body.pairs]
        probabilities = await batcher.submit("match", queries)
        return {"probabilities": probabilities.tolist()}

    @app.post("/v1/encode", response_model=EncodeResponse, summary="Encode queries into vectors")
    async def encode(body: EncodeRequest, request: Request) -> dict:
        """Return one query vector per query; the cosine of two vectors is their similarity."""
        request.state.count = len(body.queries)
        require_vectors(matcher, "/v1/encode")
        vectors = await batcher.submit("encode", list(body.queries), normalize=body.normalize)
        return {"dim": int(vectors.shape[1]), "normalized": body.normalize, "vectors": vectors.tolist()}

    if bank is not None:
        @app.post("/v1/search", response_model=SearchResponse, summary="Find matching bank queries")
        async def search(body: SearchRequest, request: Request) -> dict:
            """Return the k bank queries with the highest match probability among the candidates
            most similar by vector, best first."""
            request.state.count = 1
            hits = await batcher.submit("search", [body.query], k=body.k, rerank=body.rerank)
            return {"results": [hit.to_dict() for hit in hits]}
    else:
        @app.post("/v1/search", include_in_schema=False)
        async def search_unavailable(request: Request) -> JSONResponse:
            message = "this server has no query bank: build one with semmatch index and start the server with --index DIR"
            if not has_vectors(matcher):
                message = ("this server runs an interaction model, which has no query vectors to search a bank with; "
                           "serve a two-tower model (--preset best_two_tower) with --index DIR")
            request.state.error = message
            return JSONResponse(_error_body("no_query_bank", message), status_code=404)

    @app.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and warmed up")
    async def readyz() -> JSONResponse:
        if not status["ready"]:
            return JSONResponse({"status": "not ready"}, status_code=503)
        body = {"status": "ready", "input_format": matcher.input_format, "backend": type(matcher).__name__,
                "architecture": matcher.config.architecture,
                "dim": matcher.config.projection_dim if has_vectors(matcher) else None,
                "query_bank": bank.describe() if bank is not None else None}
        return JSONResponse(body)

    return app


def serve(matcher, bank=None, host: str = "127.0.0.1", port: int = 8000, limits: ServeLimits | None = None,
          graceful_timeout: float = 10.0) -> None:
    """Run the service with uvicorn until SIGINT or SIGTERM, then return.

    On a signal uvicorn stops accepting connections and waits up to `graceful_timeout` seconds for
    the requests in progress. Then the application finishes queued model work, and this function
    returns.
    """
    import uvicorn

    if host not in LOOPBACK_HOSTS:
        logger.warning("listening on %s: the API has no authentication, so anyone who can reach this "
                       "address can use it", host)
    app = create_app(matcher, bank, limits)
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_config=None,
                            timeout_graceful_shutdown=graceful_timeout, lifespan="on")
    server = uvicorn.Server(config)
    if threading.current_thread() is not threading.main_thread():
        server.run()
        return

    # After its graceful shutdown uvicorn raises the captured signal again under the handlers that
    # were in place before it started. Ignoring the signal there lets a clean stop return normally
    # (exit status 0) instead of dying by SIGTERM or raising KeyboardInterrupt.
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in stop_signals}
    try:
        server.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    logger.info("server stopped")
