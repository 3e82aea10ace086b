"""Loading speed and peak memory: 400,000 pairs, a training epoch, and a 5,000,000-pair prediction.

Run from the repository root (about 10 minutes on 2 CPU cores; writes large files under /tmp):

    SEMMATCH_DATA=../shared/data .venv/bin/python benchmarks/memory.py

Every case runs in a fresh subprocess so its peak resident set size (ru_maxrss) belongs to that
case alone; "above baseline" subtracts the RSS of the same interpreter after importing semmatch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import data_dir, emit

LOAD = """
import json, resource, time
import semmatch.data, semmatch.train, torch
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
pairs = semmatch.data.read_pairs({path!r})
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"pairs": len(pairs), "seconds": round(seconds, 2), "baseline_rss_mb": round(baseline, 1),
                  "peak_rss_mb": round(peak, 1), "above_baseline_mb": round(peak - baseline, 1)}}))
"""

TRAIN_EPOCH = """
import json, resource, time
import numpy as np, torch
from semmatch.config import ModelConfig, TrainConfig
from semmatch.distributed import DistributedContext
from semmatch.model import TwoTowerModel
from semmatch.train import build_optimizer, prepare_data, train_epoch
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
config = TrainConfig(pad_to={pad_to})
data = prepare_data([{path!r}], None, config)
torch.manual_seed(0)
model_config = ModelConfig(vocab_size=len(data.vocabulary), oov_id=data.vocabulary.oov_id)
model = TwoTowerModel(model_config)
result = train_epoch(model, build_optimizer(model, config), data, config, np.random.default_rng(0),
                     torch.device("cpu"), 1, False, DistributedContext(), model_config.max_len)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"pairs": result.pairs, "seconds": round(result.seconds, 1),
                  "pairs_per_second": round(result.pairs / result.seconds, 1), "baseline_rss_mb": round(baseline, 1),
                  "peak_rss_mb": round(peak, 1), "above_baseline_mb": round(peak - baseline, 1)}}))
"""

PREDICT = """
import json, resource, time, torch
from semmatch.config import ModelConfig
from semmatch.matcher import Matcher
from semmatch.model import TwoTowerModel
from semmatch.predict import predict_file
from semmatch.tokenize import IdVocabulary
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
torch.manual_seed(0)
matcher = Matcher(TwoTowerModel(ModelConfig(vocab_size=3702, oov_id=3701)), IdVocabulary(3700), "cpu")
start = time.perf_counter()
counts = predict_file(matcher, {path!r}, {output!r})
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"pairs": counts["pairs"], "seconds": round(seconds, 1), "pairs_per_second": round(counts["pairs"] / seconds, 1),
                  "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak, 1),
                  "above_baseline_mb": round(peak - baseline, 1)}}))
"""


def run_case(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def repeat_file(source: Path, target: Path, pairs: int) -> None:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    with open(target, "w", encoding="utf-8") as handle:
        written = 0
        while written < pairs:
            chunk = lines[: pairs - written]
            handle.writelines(chunk)
            written += len(chunk)


def main() -> None:
    root = data_dir()
    work = Path(tempfile.mkdtemp(prefix="semmatch_memory_"))

    big = work / "pairs_400k.ids.tsv"
    repeat_file(root / "xiaobu" / "pairs.ids.tsv", big, 400_000)
    emit({"case": "load_400k_pairs", **run_case(LOAD.format(path=str(big)))})

    full = root / "xiaobu" / "pairs.ids.tsv"
    emit({"case": "train_epoch_peak_rss", "variant": "default", **run_case(TRAIN_EPOCH.format(path=str(full), pad_to=None))})

    huge = work / "testB_5m.ids.tsv"
    repeat_file(root / "gaiic" / "gaiic_track3_round1_testB_20210317.tsv", huge, 5_000_000)
    emit({"case": "predict_5m_pairs_peak_rss", **run_case(PREDICT.format(path=str(huge), output=str(work / "out.txt")))})
    for path in work.iterdir():
        path.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
