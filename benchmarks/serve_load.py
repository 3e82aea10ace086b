"""HTTP service load benchmark: throughput and client-side latency of `semmatch serve`.

    python benchmarks/serve_load.py --model runs/bench-retrieval/model/best --data ../shared/data/xiaobu/pairs.tsv
    python benchmarks/serve_load.py --model runs/bench-retrieval/model/best --data ../shared/data/xiaobu/pairs.tsv \
        --onnx-model runs/bench-onnx-text/onnx-dynamo --index runs/bench-serve/bank --batch-wait-ms 0,2

For each backend and --batch-wait-ms value, the script starts `semmatch serve` on 127.0.0.1 on a
free port. It sends --requests requests from --clients concurrent clients, each with its own
connection, and measures every request's latency at the client. Then it stops the server with SIGTERM.
Scenarios: `match-1` (one pair per request, as an assistant scores one query at a time),
`match-32` (32 pairs per request) and, with --index, `search` (k=10). Queries come from --data.
Prints one JSON line per run. Client and server share the machine's CPU cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from semmatch.data import read_pairs


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str, backend: str, index: str | None, batch_wait_ms: float, threads: int | None,
                 log_path: Path):
    port = free_port()
    command = [sys.executable, "-m", "semmatch", "serve", "--model", model, "--backend", backend,
               "--host", "127.0.0.1", "--port", str(port), "--batch-wait-ms", str(batch_wait_ms)]
    if index:
        command += ["--index", index]
    if threads:
        command += ["--threads", str(threads)]
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2, trust_env=False).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server not ready after 300 s; see {log_path}")


def stop_server(process) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def build_requests(scenario: str, pairs, count: int, seed: int = 0) -> list[tuple[str, dict]]:
    rng = np.random.default_rng(seed)
    requests = []
    for _ in range(count):
        if scenario == "search":
            requests.append(("/v1/search", {"query": pairs.queries[pairs.a[rng.integers(len(pairs))]], "k": 10}))
            continue
        size = 1 if scenario == "match-1" else 32
        chosen = rng.integers(0, len(pairs), size)
        requests.append(("/v1/match", {"pairs": [[pairs.queries[pairs.a[i]], pairs.queries[pairs.b[i]]] for i in chosen]}))
    return requests


async def run_load(base_url: str, requests: list[tuple[str, dict]], clients: int) -> tuple[list[float], list[int], float]:
    latencies = [0.0] * len(requests)
    statuses = [0] * len(requests)
    next_index = iter(range(len(requests)))

    async def client_loop():
        async with httpx.AsyncClient(base_url=base_url, timeout=120, trust_env=False) as http:
            for index in next_index:
                path, body = requests[index]
                start = time.perf_counter()
                response = await http.post(path, json=body)
                latencies[index] = (time.perf_counter() - start) * 1000
                statuses[index] = response.status_code

    start = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory for the torch backend")
    parser.add_argument("--onnx-model", help="ONNX export directory: also run the onnx backend")
    parser.add_argument("--index", help="bank directory: also run the search scenario")
    parser.add_argument("--data", required=True, help="pair file whose queries are sent")
    parser.add_argument("--requests", type=int, default=2000, help="requests per run (default 2000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--batch-wait-ms", default="2", help="comma-separated --batch-wait-ms values (default 2)")
    parser.add_argument("--scenarios", default="match-1,match-32,search", help="comma-separated scenarios")
    parser.add_argument("--threads", default="", help="comma-separated serve --threads values (default: not set)")
    parser.add_argument("--log-dir", default="runs/bench-serve", help="where server logs are written")
    args = parser.parse_args()

    pairs = read_pairs(args.data, "auto")
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    backends = [("torch", args.model)] + ([("onnx", args.onnx_model)] if args.onnx_model else [])
    scenarios = [name for name in args.scenarios.split(",") if name != "search" or args.index]

    thread_counts = [int(value) for value in args.threads.split(",") if value] or [None]
    runs = [(backend, model, float(wait), threads) for backend, model in backends
            for wait in args.batch_wait_ms.split(",") for threads in thread_counts]
    for backend, model, wait, threads in runs:
        log_path = log_dir / f"server-{backend}-wait{wait:g}-threads{threads or 'default'}.log"
        process, base_url = start_server(model, backend, args.index, wait, threads, log_path)
        try:
            for scenario in scenarios:
                requests = build_requests(scenario, pairs, args.requests)
                asyncio.run(run_load(base_url, requests[:50], args.clients))  # warm-up
                latencies, statuses, seconds = asyncio.run(run_load(base_url, requests, args.clients))
                pair_count = sum(len(body.get("pairs", [])) for _, body in requests)
                print(json.dumps({
                    "benchmark": "serve_load", "backend": backend, "scenario": scenario, "batch_wait_ms": wait,
                    "threads": threads,
                    "requests": len(requests), "clients": args.clients,
                    "ok": statuses.count(200), "server_errors": sum(status >= 500 for status in statuses),
                    "requests_per_second": round(len(requests) / seconds, 1),
                    "pairs_per_second": round(pair_count / seconds, 1) if pair_count else None,
                    "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                    "p99_ms": round(float(np.percentile(latencies, 99)), 2),
                    "cpu_count": os.cpu_count(), "machine": platform.machine(),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                }), flush=True)
        finally:
            status = stop_server(process)
            if status != 0:
                print(json.dumps({"warning": f"server exited with {status}; see {log_path}"}), flush=True)


if __name__ == "__main__":
    main()
