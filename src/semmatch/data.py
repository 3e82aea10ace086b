"""Reading query-pair files: GAIIC ID files and raw text files.

Both formats are UTF-8 TSV with one pair per line: `query_a<TAB>query_b[<TAB>label]`. In ID files
each query is a space-separated list of positive integer token IDs (0 is reserved for padding);
in text files each query is raw text. Labels are 0 (different meaning) or 1 (same meaning).

Pairs are stored compactly: distinct queries are interned once, and pairs are two integer arrays
of query indices. ID queries are parsed into one flat int64 array with offsets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semmatch.errors import InputError
from semmatch.fileio import atomic_open

logger = logging.getLogger(__name__)

FORMATS = ("auto", "ids", "text")
INT64_MAX = 2**63 - 1
HEADER_NAMES = {
    "text_a", "text_b", "text1", "text2", "query1", "query2", "query_a", "query_b",
    "sentence1", "sentence2", "q1", "q2", "label", "labels",
}
_ID_QUERY = re.compile(r"[0-9]+(?: +[0-9]+)*")
_FORMAT_SAMPLE_LINES = 1000
SKIP_HINT = "fix the line, or pass --skip-invalid to skip invalid lines and list them in a rejects file"


@dataclass
class InvalidLine:
    """One rejected input line."""

    path: str
    line: int
    reason: str
    content: str


@dataclass
class ReadStats:
    """Counts logged after reading; every skipped or altered line is counted here."""

    lines: int = 0
    pairs: int = 0
    invalid: int = 0
    headers_skipped: int = 0
    blank_lines: int = 0
    bom_files: int = 0
    crlf_lines: int = 0
    duplicates_dropped: int = 0
    conflicting_duplicates: int = 0

    def merge(self, other: "ReadStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class PairSet:
    """Query pairs with interned queries.

    Attributes:
        queries: distinct query strings (stripped), in first-seen order.
        a, b: int64 indices into `queries`, one per pair.
        labels: int8 labels, or None when the input had no label column.
        line_numbers: 1-based source line of each pair.
        source_index: index into `sources` of each pair's file.
        query_ids, query_offsets: ID format only: the parsed token IDs of query i are
            `query_ids[query_offsets[i]:query_offsets[i + 1]]`.
    """

    format: str
    queries: list[str]
    a: np.ndarray
    b: np.ndarray
    labels: np.ndarray | None
    line_numbers: np.ndarray
    sources: list[str]
    source_index: np.ndarray
    query_ids: np.ndarray | None = None
    query_offsets: np.ndarray | None = None
    stats: ReadStats = field(default_factory=ReadStats)
    invalid_lines: list[InvalidLine] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, indices: np.ndarray) -> "PairSet":
        """Return the pairs at `indices`, sharing the query table."""
        return PairSet(
            format=self.format,
            queries=self.queries,
            a=self.a[indices],
            b=self.b[indices],
            labels=None if self.labels is None else self.labels[indices],
            line_numbers=self.line_numbers[indices],
            sources=self.sources,
            source_index=self.source_index[indices],
            query_ids=self.query_ids,
            query_offsets=self.query_offsets,
        )

    def query_text(self, index: np.ndarray) -> list[str]:
        return [self.queries[i] for i in index]


class _PairBuilder:
    """Accumulate parsed lines of one or more files into a PairSet."""

    def __init__(self, input_format: str):
        self.format = input_format
        self.query_index: dict[str, int] = {}
        self.queries: list[str] = []
        self.a: list[int] = []
        self.b: list[int] = []
        self.labels: list[int] = []
        self.line_numbers: list[int] = []
        self.source_index: list[int] = []
        self.sources: list[str] = []
        self.stats = ReadStats()
        self.invalid_lines: list[InvalidLine] = []

    def intern(self, query: str) -> int:
        index = self.query_index.get(query)
        if index is None:
            index = len(self.queries)
            self.query_index[query] = index
            self.queries.append(query)
        return index

    def build(self, has_labels: bool) -> PairSet:
        query_ids = query_offsets = None
        if self.format == "ids":
            query_ids, query_offsets = parse_id_queries(self.queries)
        pairs = PairSet(
            format=self.format,
            queries=self.queries,
            a=np.asarray(self.a, dtype=np.int64),
            b=np.asarray(self.b, dtype=np.int64),
            labels=np.asarray(self.labels, dtype=np.int8) if has_labels else None,
            line_numbers=np.asarray(self.line_numbers, dtype=np.int64),
            sources=self.sources,
            source_index=np.asarray(self.source_index, dtype=np.int32),
            query_ids=query_ids,
            query_offsets=query_offsets,
            stats=self.stats,
            invalid_lines=self.invalid_lines,
        )
        pairs.stats.pairs = len(pairs)
        return pairs


def parse_id_queries(queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse validated ID query strings into a flat int64 array and offsets."""
    lengths = np.fromiter((query.count(" ") + 1 for query in queries), dtype=np.int64, count=len(queries))
    offsets = np.zeros(len(queries) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.array(" ".join(queries).split(), dtype=np.int64) if queries else np.zeros(0, np.int64)
    if len(ids) != offsets[-1]:
        # Queries with repeated spaces split into fewer fields than the space count says.
        parts = [np.array(query.split(), dtype=np.int64) for query in queries]
        lengths = np.array([len(part) for part in parts], dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return ids, offsets


def _check_id_query(query: str) -> str | None:
    """Return why an ID query is invalid, or None when it is valid."""
    if _ID_QUERY.fullmatch(query) is None:
        bad = next((token for token in query.split() if not (token.isascii() and token.isdigit())), query)
        return f"invalid token {bad!r}: IDs must be non-negative integers separated by spaces"
    for token in query.split():
        if len(token) > 18 and int(token) > INT64_MAX:
            return f"ID {token} is larger than the largest 64-bit integer ({INT64_MAX})"
        if int(token) == 0:
            return "ID 0 is reserved for padding and cannot appear in a query"
    return None


def detect_format(fields: list[list[str]]) -> str:
    """Guess 'ids' or 'text' from sample lines' query fields."""
    queries = [query.strip() for columns in fields for query in columns[:2] if query.strip()]
    if queries and all(_ID_QUERY.fullmatch(query) for query in queries):
        return "ids"
    return "text"


def _is_header(columns: list[str]) -> bool:
    return len(columns) >= 2 and all(column.strip().lower() in HEADER_NAMES for column in columns)


def _iter_lines(path: Path, encoding: str) -> Iterator[tuple[int, str, bool]]:
    """Yield (line number, decoded line without line end, had CRLF); blank lines at the end are dropped."""
    pending_blank: list[tuple[int, str, bool]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            crlf = raw.endswith(b"\r\n")
            raw = raw.rstrip(b"\r\n")
            if number == 1 and raw.startswith(b"\xef\xbb\xbf") and encoding.replace("-", "").lower() in ("utf8", "utf8sig"):
                raw = raw[3:]
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as error:
                hint = ""
                if encoding.replace("-", "").lower() in ("utf8", "utf8sig"):
                    try:
                        raw.decode("gbk")
                        hint = " The file looks GBK-encoded: convert it to UTF-8 or pass --encoding gbk."
                    except UnicodeDecodeError:
                        pass
                snippet = raw[max(0, error.start - 8): error.end + 8]
                raise InputError(
                    f"invalid {encoding} byte sequence {snippet!r} at byte {error.start} of the line.{hint}",
                    str(path), number,
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if not text.strip():
                pending_blank.append((number, text, crlf))
                continue
            yield from pending_blank
            pending_blank.clear()
            yield number, text, crlf


def _file_has_bom(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(3) == b"\xef\xbb\xbf"


def _sample_fields(path: Path, encoding: str) -> list[list[str]]:
    fields = []
    for number, text, _ in _iter_lines(path, encoding):
        columns = text.split("\t")
        if number == 1 and _is_header(columns):
            continue
        fields.append(columns)
        if len(fields) >= _FORMAT_SAMPLE_LINES:
            break
    return fields


def resolve_format(paths: list[Path], input_format: str, encoding: str) -> str:
    """Return 'ids' or 'text' for the files, detecting it from the first file when 'auto'."""
    if input_format not in FORMATS:
        raise InputError(f"invalid format {input_format!r}: use one of {', '.join(FORMATS)}")
    if input_format != "auto":
        return input_format
    return detect_format(_sample_fields(paths[0], encoding))


def _check_paths(paths: list[str | Path]) -> list[Path]:
    checked = []
    for path in map(Path, paths):
        if not path.exists():
            raise InputError("file not found", str(path))
        if path.is_dir():
            raise InputError("is a directory, expected a TSV file", str(path))
        checked.append(path)
    return checked


def _parse_lines(
    builder: _PairBuilder,
    path: Path,
    lines: Iterator[tuple[int, str, bool]],
    on_invalid: str,
    expected_columns: int | None,
    labels: str = "optional",
) -> int | None:
    """Parse lines of one file into `builder`.

    Returns:
        The file's column count (3 when it has labels), or None when no line was valid.
    """
    source = len(builder.sources)
    builder.sources.append(str(path))
    stats = builder.stats
    is_ids = builder.format == "ids"
    if expected_columns is None:
        expected_columns = {"required": 3, "none": 2}.get(labels)
    invalid_cache: dict[str, str | None] = {}

    def reject(number: int, reason: str, content: str) -> None:
        if on_invalid == "error":
            raise InputError(f"{reason}; {SKIP_HINT}", str(path), number)
        stats.invalid += 1
        builder.invalid_lines.append(InvalidLine(str(path), number, reason, content))

    for number, text, crlf in lines:
        stats.lines += 1
        stats.crlf_lines += crlf
        if not text.strip():
            stats.blank_lines += 1
            reject(number, "blank line", text)
            continue
        if "\x00" in text:
            reject(number, "NUL byte in line", text.replace("\x00", "\\x00"))
            continue
        columns = text.split("\t")
        if number == 1 and _is_header(columns):
            stats.headers_skipped += 1
            logger.info("%s: line 1 is a header row %r; skipped", path, text)
            continue
        if expected_columns is None:
            if len(columns) in (2, 3):
                expected_columns = len(columns)
            else:
                reject(number, f"expected 2 or 3 tab-separated columns, found {len(columns)}", text)
                continue
        if len(columns) != expected_columns:
            if labels == "required" and len(columns) == 2:
                reason = "missing label: expected 3 tab-separated columns (query, query, label), found 2"
            else:
                reason = f"expected {expected_columns} tab-separated columns, found {len(columns)}"
            reject(number, reason, text)
            continue

        query_a = columns[0].strip()
        query_b = columns[1].strip()
        reason = None
        for position, query in ((1, query_a), (2, query_b)):
            if not query:
                reason = f"empty query in column {position}"
            elif is_ids:
                if query not in invalid_cache:
                    invalid_cache[query] = _check_id_query(query)
                if invalid_cache[query] is not None:
                    reason = f"{invalid_cache[query]} (column {position})"
            if reason:
                break
        label = 0
        if reason is None and expected_columns == 3:
            label_text = columns[2].strip()
            if label_text == "0" or label_text == "1":
                label = 1 if label_text == "1" else 0
            else:
                reason = f"invalid label {label_text!r}: labels must be 0 or 1"
        if reason:
            reject(number, reason, text)
            continue

        builder.a.append(builder.intern(query_a))
        builder.b.append(builder.intern(query_b))
        builder.labels.append(label)
        builder.line_numbers.append(number)
        builder.source_index.append(source)

    return expected_columns


def read_pairs(
    paths: list[str | Path] | str | Path,
    input_format: str = "auto",
    labels: str = "optional",
    on_invalid: str = "error",
    encoding: str = "utf-8",
    drop_duplicates: bool = False,
    rejects_path: str | Path | None = None,
) -> PairSet:
    """Read and validate one or more pair files into one PairSet.

    Args:
        paths: one path or several; several files are merged in order.
        input_format: "ids", "text" or "auto" (detected from the first file's lines).
        labels: "required" (training, evaluation), "none" (2 columns only) or "optional".
        on_invalid: "error" raises InputError at the first invalid line; "skip" drops invalid
            lines, counts them and writes them to `rejects_path`; "keep" records them in
            `invalid_lines` for the caller (prediction marks them NaN).
        encoding: the files' text encoding.
        drop_duplicates: drop repeated pairs (same two queries in either order, same label).
        rejects_path: where "skip" writes the rejected lines as TSV.

    Raises:
        InputError: naming the file, line and value, for missing files and invalid lines.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if on_invalid not in ("error", "skip", "keep"):
        raise ValueError(f"invalid on_invalid {on_invalid!r}")
    files = _check_paths(list(paths))
    resolved = resolve_format(files, input_format, encoding)
    builder = _PairBuilder(resolved)
    label_columns = set()
    for path in files:
        if _file_has_bom(path):
            builder.stats.bom_files += 1
        columns = _parse_lines(builder, path, _iter_lines(path, encoding), on_invalid, None, labels)
        label_columns.add(columns == 3)
    if len(label_columns) > 1:
        raise InputError(
            "some input files have a label column and others do not: "
            f"{', '.join(map(str, files))}; give files of one kind"
        )
    has_labels = label_columns == {True}
    pairs = builder.build(has_labels)

    if not len(pairs):
        reason = "no valid query pairs"
        if pairs.stats.invalid:
            reason += f" ({pairs.stats.invalid} invalid lines were skipped)"
        raise InputError(f"{reason}; expected lines of query<TAB>query[<TAB>label]", ", ".join(map(str, files)))
    if drop_duplicates:
        pairs = _drop_duplicate_pairs(pairs)
    if on_invalid == "skip" and pairs.invalid_lines and rejects_path is not None:
        write_rejects(pairs.invalid_lines, rejects_path)
    log_read_stats(pairs, files)
    return pairs


def _drop_duplicate_pairs(pairs: PairSet) -> PairSet:
    """Keep the first of each repeated (unordered pair, label); count pairs seen with both labels."""
    low = np.minimum(pairs.a, pairs.b)
    high = np.maximum(pairs.a, pairs.b)
    labels = pairs.labels if pairs.labels is not None else np.zeros(len(pairs), np.int8)
    keys = np.stack([low, high, labels.astype(np.int64)], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    keep = np.sort(first)
    _, pair_first = np.unique(keys[:, :2], axis=0, return_index=True)
    stats = pairs.stats
    stats.duplicates_dropped = len(pairs) - len(keep)
    stats.conflicting_duplicates = len(keep) - len(pair_first)
    kept = pairs.subset(keep)
    kept.stats, kept.invalid_lines = stats, pairs.invalid_lines
    kept.stats.pairs = len(kept)
    return kept


def write_rejects(invalid_lines: list[InvalidLine], path: str | Path) -> None:
    """Write rejected lines as TSV: file, line, reason, original content (tabs shown as \\t)."""
    with atomic_open(path) as handle:
        handle.write("file\tline\treason\tcontent\n")
        for item in invalid_lines:
            content = item.content.replace("\t", "\\t")
            handle.write(f"{item.path}\t{item.line}\t{item.reason}\t{content}\n")
    logger.info("wrote %d rejected lines to %s", len(invalid_lines), path)


def log_read_stats(pairs: PairSet, files: list[Path]) -> None:
    stats = pairs.stats
    names = ", ".join(map(str, files))
    message = f"read {stats.pairs} pairs ({len(pairs.queries)} distinct queries, format {pairs.format}) from {stats.lines} lines of {names}"
    if pairs.labels is not None:
        message += f"; {int(pairs.labels.sum())} positive"
    logger.info(message)
    notes = {
        "invalid lines skipped": stats.invalid,
        "header rows skipped": stats.headers_skipped,
        "files with a UTF-8 BOM (accepted)": stats.bom_files,
        "CRLF lines (accepted)": stats.crlf_lines,
        "duplicate pairs dropped": stats.duplicates_dropped,
        "pairs repeated with both labels": stats.conflicting_duplicates,
    }
    for name, count in notes.items():
        if count:
            logger.info("%s: %d", name, count)


def iter_pair_chunks(
    path: str | Path,
    input_format: str = "auto",
    chunk_lines: int = 200_000,
    on_invalid: str = "error",
    encoding: str = "utf-8",
) -> Iterator[PairSet]:
    """Read a large file in chunks of about `chunk_lines` lines, for prediction with bounded memory.

    Every chunk is a PairSet with its own query table; invalid lines follow `on_invalid` as in
    `read_pairs` ("error" or "keep").
    """
    files = _check_paths([path])
    resolved = resolve_format(files, input_format, encoding)
    file_path = files[0]
    lines: list[tuple[int, str, bool]] = []
    iterator = _iter_lines(file_path, encoding)
    expected_columns: int | None = None
    produced = False
    while True:
        lines.clear()
        for item in iterator:
            lines.append(item)
            if len(lines) >= chunk_lines:
                break
        if not lines:
            break
        builder = _PairBuilder(resolved)
        expected_columns = _parse_lines(builder, file_path, iter(lines), on_invalid, expected_columns)
        produced = True
        yield builder.build(expected_columns == 3)
        if len(lines) < chunk_lines:
            break
    if not produced:
        raise InputError("no valid query pairs; the file is empty", str(file_path))
