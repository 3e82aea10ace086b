"""Helpers shared by the benchmark scripts: data location, JSON records, peak memory."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path

import torch


def data_dir() -> Path:
    """Return the real data directory: SEMMATCH_DATA, or ../shared/data beside the checkout."""
    value = os.environ.get("SEMMATCH_DATA")
    path = (Path(value) if value else Path(__file__).resolve().parents[2] / "shared" / "data").resolve()
    if not (path / "xiaobu" / "pairs.ids.tsv").is_file():
        sys.exit(f"real data not found in {path}; set SEMMATCH_DATA to the shared data directory")
    return path


def emit(record: dict) -> None:
    """Print one JSON line per benchmark case."""
    print(json.dumps(record, ensure_ascii=False), flush=True)


def machine() -> dict:
    return {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "processor": platform.processor() or platform.machine()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
