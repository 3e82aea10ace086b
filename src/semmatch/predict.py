"""File-level prediction and evaluation used by the CLI (and usable from Python).

Both take one matcher or a list of them; a list is an ensemble whose probabilities are averaged,
such as the fold models of `semmatch cv`.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semmatch.data import iter_pair_chunks, read_pairs, sniff_format
from semmatch.errors import InputError
from semmatch.fileio import atomic_open, atomic_write_text
from semmatch.inference import VectorCache
from semmatch.matcher import Matcher
from semmatch.metrics import binary_metrics
from semmatch.plots import plot_roc

logger = logging.getLogger(__name__)

# Invalid lines logged one by one before the rest are only counted.
MAX_INVALID_LINE_WARNINGS = 20


def _input_format_for_model(matcher: Matcher, input_path: str | Path, input_format: str, encoding: str) -> str:
    """Return the format to read `input_path` in: the model's, after checking that the file looks like it.

    With "auto" the file's format is detected, so a raw-text file given to an ID model (or the
    reverse) fails with one clear message instead of an error on every line.
    """
    if input_format != "auto":
        return input_format
    if not Path(input_path).is_file():
        return matcher.input_format  # the reader reports the missing file
    detected = sniff_format(Path(input_path), encoding)
    if detected is not None and detected != matcher.input_format:
        kinds = {"ids": "token IDs", "text": "raw text"}
        raise InputError(
            f"this model reads {kinds[matcher.input_format]} but the file looks like {kinds[detected]}: "
            f"use a model trained on {detected} data, or pass --format {matcher.input_format} "
            f"if the file really contains {kinds[matcher.input_format]}",
            str(input_path),
        )
    return matcher.input_format


def _members(matcher: Matcher | Sequence[Matcher]) -> list[Matcher]:
    """Return an ensemble's members (one matcher alone is a one-member ensemble), checking they read one format."""
    members = list(matcher) if isinstance(matcher, (list, tuple)) else [matcher]
    if not members:
        raise InputError("no model given: pass at least one model directory")
    formats = {member.input_format for member in members}
    if len(formats) > 1:
        raise InputError(f"the ensemble mixes input formats {sorted(formats)}: average models trained on one format")
    if len(members) > 1:
        logger.info("averaging the probabilities of %d models", len(members))
    return members


def predict_file(
    matcher: Matcher | Sequence[Matcher],
    input_path: str | Path,
    output_path: str | Path,
    input_format: str = "auto",
    on_invalid: str = "error",
    encoding: str = "utf-8",
    pad_to: int | None = None,
    chunk_lines: int = 20_000,
    zip_path: str | Path | None = None,
    cache_entries: int = 100_000,
) -> dict:
    """Write one probability per input pair (6 decimals), streaming the input in chunks.

    Memory stays bounded whatever the file size: `chunk_lines` lines are read at a time, and
    vectors of queries that repeat across chunks are kept in an LRU cache of `cache_entries`.
    Output line i belongs to input pair i. With on_invalid="nan", invalid lines get `nan` in
    their place instead of stopping the run, so no line is dropped or shifted. A list of matchers
    writes the mean of their probabilities.

    Returns:
        counts: pairs written, invalid lines, OOV tokens.
    """
    if on_invalid not in ("error", "nan"):
        raise InputError(f"invalid on_invalid {on_invalid!r}: use error or nan")
    members = _members(matcher)
    input_format = _input_format_for_model(members[0], input_path, input_format, encoding)
    keep = "keep" if on_invalid == "nan" else "error"
    written = invalid = oov_total = 0
    caches = [VectorCache(cache_entries) for _ in members]
    with atomic_open(output_path) as handle:
        for chunk in iter_pair_chunks(input_path, input_format, chunk_lines, keep, encoding):
            probabilities = np.zeros(len(chunk.a))
            for position, (member, cache) in enumerate(zip(members, caches)):
                queries, oov = member.encode_pairset(chunk)
                if position == 0:
                    oov_total += oov  # members trained on other data may differ, so the first one's count is reported
                probabilities += member.score_encoded(queries, chunk.a, chunk.b, pad_to, chunk.queries, cache)
            probabilities /= len(members)
            lines = {int(line): f"{p:.6f}" for line, p in zip(chunk.line_numbers, probabilities)}
            for item in chunk.invalid_lines:
                lines[item.line] = "nan"
                if invalid < MAX_INVALID_LINE_WARNINGS:
                    logger.warning("%s:%d: %s: wrote nan", item.path, item.line, item.reason)
                invalid += 1
            for line in sorted(lines):
                handle.write(lines[line] + "\n")
            written += len(lines)
    if invalid > MAX_INVALID_LINE_WARNINGS:
        logger.warning("%d more invalid lines written as nan (only the first %d are listed)",
                       invalid - MAX_INVALID_LINE_WARNINGS, MAX_INVALID_LINE_WARNINGS)
    logger.info("wrote %d probabilities to %s (%d invalid lines as nan, %d OOV tokens)",
                written, output_path, invalid, oov_total)
    logger.info("query vectors: %d encoded, %d taken from the cache of repeated queries",
                sum(cache.misses for cache in caches), sum(cache.hits for cache in caches))
    if zip_path is not None:
        write_submission_zip(output_path, zip_path)
    return {"pairs": written, "invalid_lines": invalid, "oov_tokens": oov_total}


def write_submission_zip(result_path: str | Path, zip_path: str | Path) -> None:
    """Zip the result file alone, at the archive's top level, as Tianchi expects."""
    result_path = Path(result_path)
    with atomic_open(zip_path, "wb") as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(result_path, arcname=result_path.name)
    logger.info("wrote submission archive %s", zip_path)


def evaluate_file(
    matcher: Matcher | Sequence[Matcher],
    input_path: str | Path,
    input_format: str = "auto",
    encoding: str = "utf-8",
    output_dir: str | Path | None = None,
    pad_to: int | None = None,
) -> dict:
    """Score a labeled file and return AUC, log loss, accuracy and F1 (at 0.5 and best-F1 threshold).

    A list of matchers is scored by the mean of their probabilities.
    """
    members = _members(matcher)
    input_format = _input_format_for_model(members[0], input_path, input_format, encoding)
    # evaluate has no option to skip lines, since skipping would change the metrics silently.
    pairs = read_pairs(input_path, input_format, "required", "error", encoding, invalid_hint=None)
    probabilities = np.mean([member.predict_pairset(pairs, pad_to) for member in members], axis=0)
    labels = pairs.labels.astype(np.int64)
    metrics = binary_metrics(labels, probabilities)
    if output_dir is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        if len(np.unique(labels)) == 2:
            plot_roc(labels, probabilities, metrics["auc"], output_dir / "roc_curve.png")
        else:
            logger.warning("only one class in %s: no ROC curve written", input_path)
        with atomic_open(output_dir / "predictions.tsv") as handle:
            for p in probabilities:
                handle.write(f"{p:.6f}\n")
        logger.info("wrote metrics.json, roc_curve.png and predictions.tsv to %s", output_dir)
    return metrics
