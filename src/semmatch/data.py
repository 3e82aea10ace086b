"""Reading query-pair files: GAIIC ID files and raw text files.

Both formats are TSV with one pair per line: `query_a<TAB>query_b[<TAB>label]`, in UTF-8 unless
`encoding` names another ASCII-compatible codec such as gbk. In ID files each query is a
space-separated list of positive integer token IDs (0 is reserved for padding); in text files
each query is raw text. Labels are 0 (different meaning) or 1 (same meaning).

Every line ends up in exactly one place: a pair, a skipped header row, a blank line at the end
of the file (dropped and counted), or an invalid line, which `on_invalid` raises, skips or keeps.
A UTF-8 byte order mark and CRLF line ends are accepted and counted.

Pairs are stored compactly: distinct queries are interned once, and pairs are two integer arrays
of query indices. ID queries are parsed into one flat int64 array with offsets.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

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
LABEL_HEADER_NAMES = {"label", "labels", "y", "target"}
_ID_QUERY = re.compile(r"[0-9]+(?: +[0-9]+)*")
# Format detection also counts queries of signed numbers as ID-like, so one bad ID line does not
# turn an ID file into a text file. That line is then rejected with its own message.
_NUMERIC_QUERY = re.compile(r"[+-]?[0-9]+(?:\s+[+-]?[0-9]+)*")
_HEADER_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]*")
_FORMAT_SAMPLE_LINES = 1000
_EXCERPT_CHARS = 60

# The last sentence of a line error: the command's option for getting past invalid lines.
SKIP_HINT = "To skip invalid lines instead, pass --skip-invalid (they are listed in a rejects file)"
NAN_HINT = "To write nan for invalid lines instead, pass --on-invalid nan"


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
    blank_lines: int = 0  # blank lines before the last non-blank line: invalid lines
    trailing_blank_lines: int = 0  # blank lines after the last non-blank line: dropped
    bom_files: int = 0
    crlf_lines: int = 0
    duplicate_pairs: int = 0  # pairs repeating an earlier pair (either order) with the same label
    duplicates_dropped: int = 0
    conflicting_duplicates: int = 0  # distinct pairs seen with both labels

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
        # Queries with repeated spaces split into fewer fields than their space count suggests.
        parts = [np.array(query.split(), dtype=np.int64) for query in queries]
        lengths = np.array([len(part) for part in parts], dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return ids, offsets


def _check_id_query(query: str) -> str | None:
    """Return why an ID query is invalid, or None when it is valid."""
    if _ID_QUERY.fullmatch(query) is None:
        bad = next((token for token in query.split() if not (token.isascii() and token.isdigit())), query)
        return f"invalid token {_excerpt(bad)}: token IDs must be positive integers separated by spaces"
    for token in query.split():
        # Python refuses int() on strings of more than 4300 digits, so compare lengths first.
        digits = token.lstrip("0") or "0"
        if len(digits) > 19 or (len(digits) == 19 and int(digits) > INT64_MAX):
            return f"ID {_excerpt(token)} is larger than the largest 64-bit integer {INT64_MAX}"
        if digits == "0":
            return "ID 0 is reserved for padding and cannot appear in a query"
    return None


def _excerpt(text: str) -> str:
    """Return `text` as a Python literal, cut to about 60 characters, for messages."""
    if len(text) <= _EXCERPT_CHARS:
        return repr(text)
    return repr(text[:_EXCERPT_CHARS]) + f"... ({len(text)} characters)"


# Encodings and lines -------------------------------------------------------------------------


def check_encoding(encoding: str) -> str:
    """Return the codec's canonical name, rejecting unknown codecs and ones that are not line-based.

    Lines are split on the byte 0x0A before decoding, so the codec must decode ASCII bytes as
    ASCII characters. utf-8, gbk, gb18030, big5 and latin-1 do, but utf-16 and utf-32 do not.
    """
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, ValueError):  # ValueError: a name containing a NUL character
        raise InputError(
            f"unknown encoding {encoding!r}: pass a Python codec name such as utf-8, gbk or gb18030"
        ) from None
    probe = b"\t\n 09az"
    try:
        ascii_compatible = probe.decode(name) == probe.decode("ascii")
    except (LookupError, UnicodeError):  # LookupError: not a text encoding (hex, rot13)
        ascii_compatible = False
    if not ascii_compatible:
        raise InputError(
            f"encoding {encoding!r} is not supported: semmatch reads encodings that store ASCII characters as "
            "single bytes (utf-8, gbk, gb18030, big5, ...). Convert the file to UTF-8, for example with "
            f"`iconv -f {encoding} -t UTF-8 FILE > FILE.utf8`"
        )
    return name


def _is_utf8(encoding: str) -> bool:
    return encoding in ("utf-8", "utf-8-sig")


def _looks_like_gbk(raw: bytes) -> bool:
    """Return whether bytes that are invalid UTF-8 decode as GBK into mostly Chinese characters."""
    try:
        text = raw.decode("gbk")
    except UnicodeDecodeError:
        return False
    wide = [char for char in text if ord(char) > 127]
    chinese = sum(1 for char in wide if "\u4e00" <= char <= "\u9fff" or "\u3000" <= char <= "\u303f"
                  or "\uff00" <= char <= "\uffef")
    return bool(wide) and chinese >= 0.9 * len(wide)


class _Line(NamedTuple):
    number: int  # 1-based
    text: str  # without the line end; undecodable bytes appear as backslash escapes such as \xff
    crlf: bool
    decode_problem: tuple[str, str] | None  # (what is wrong, how to fix it) when the bytes did not decode


def _describe_decode_error(raw: bytes, number: int, encoding: str, error: UnicodeError) -> tuple[str, str, bool]:
    """Return (what is wrong, how to fix it, whether the whole file is in another encoding)."""
    start = getattr(error, "start", 0)
    end = getattr(error, "end", start + 1)
    snippet = raw[max(0, start - 8): end + 8]
    reason = f"invalid {encoding} byte sequence {snippet!r} at byte {start} of the line"
    if number == 1 and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return (reason, "the file starts with a UTF-16 byte order mark: convert it to UTF-8, "
                "for example with `iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8`", True)
    if _is_utf8(encoding) and _looks_like_gbk(raw):
        return (reason, "the file looks GBK-encoded (the usual encoding of Chinese Windows): "
                "pass --encoding gbk, or convert it with `iconv -f GBK -t UTF-8 FILE > FILE.utf8`", True)
    if _is_utf8(encoding):
        return (reason, "the line is not valid UTF-8: pass --encoding with the file's real encoding "
                "(for example gb18030), convert the file to UTF-8, or delete the damaged line", False)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return (reason, f"check that the file really is {encoding}, and pass --encoding with its real encoding", False)
    return (reason, f"the line is valid UTF-8: leave out --encoding {encoding}, or convert the file to {encoding}", True)


class _LineReader:
    """Iterate over a file's lines as `_Line`s.

    A UTF-8 byte order mark is removed and noted in `has_bom`. Blank lines after the last
    non-blank line are not yielded but counted in `trailing_blank_lines`. A line that does not
    decode is yielded with its `decode_problem` for the parser to reject. When the bytes show
    that the whole file is in another encoding (UTF-16, GBK), InputError is raised at once
    instead, because every line would fail the same way. A carriage return inside a line always
    raises.
    """

    def __init__(self, path: Path, encoding: str):
        self.path = path
        self.encoding = encoding
        self.has_bom = False
        self.trailing_blank_lines = 0

    def __iter__(self) -> Iterator[_Line]:
        pending_blank: list[_Line] = []
        try:
            handle = self.path.open("rb")
        except OSError as error:
            raise InputError(f"cannot open the file: {error.strerror}", str(self.path)) from None
        with handle:
            for number, raw in enumerate(handle, start=1):
                crlf = raw.endswith(b"\r\n")
                raw = raw.rstrip(b"\r\n")
                if number == 1 and _is_utf8(self.encoding) and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                    self.has_bom = True
                problem = None
                try:
                    text = raw.decode(self.encoding)
                except UnicodeError as error:
                    reason, fix, whole_file = _describe_decode_error(raw, number, self.encoding, error)
                    if whole_file:
                        raise InputError(f"{reason}. Fix: {fix}.", str(self.path), number) from None
                    problem = (reason, fix)
                    text = raw.decode(self.encoding, errors="backslashreplace")
                if "\r" in text:
                    # Editors and spreadsheets may show a lone CR as a line break, so this line may hold
                    # several pairs: skipping it or writing one nan for it could shift later outputs.
                    raise InputError(
                        f"carriage return (\\r) inside the line {_excerpt(text)}. Fix: the file may use old Mac "
                        "(CR-only) line ends or contain a stray CR: convert the line ends to LF, for example "
                        "with `tr '\\r' '\\n' < FILE > FILE.lf`, or delete the CR.",
                        str(self.path), number,
                    )
                line = _Line(number, text, crlf, problem)
                if not text.strip():
                    pending_blank.append(line)
                    continue
                yield from pending_blank
                pending_blank.clear()
                yield line
        self.trailing_blank_lines = len(pending_blank)


# Format detection --------------------------------------------------------------------------


def _is_header(columns: list[str]) -> bool:
    """Return whether a file's first line names its columns (text_a, text_b, label, ...) instead of a pair."""
    names = [column.strip().lower() for column in columns]
    if len(names) >= 2 and all(name in HEADER_NAMES for name in names):
        return True
    return (len(names) == 3 and names[2] in LABEL_HEADER_NAMES
            and all(_HEADER_WORD.fullmatch(name) for name in names[:2]))


def _looks_like_header(columns: list[str]) -> bool:
    """Return whether an invalid line is probably a header row: every column an ASCII word, one of them 'label'."""
    names = [column.strip().lower() for column in columns]
    return (any(name in LABEL_HEADER_NAMES for name in names)
            and all(_HEADER_WORD.fullmatch(name) for name in names if name))


def detect_format(fields: list[list[str]]) -> str:
    """Guess 'ids' or 'text' from sample lines' query fields: 'ids' when most queries are numbers."""
    queries = [query.strip() for columns in fields for query in columns[:2] if query.strip()]
    numeric = sum(1 for query in queries if _NUMERIC_QUERY.fullmatch(query))
    return "ids" if queries and 2 * numeric > len(queries) else "text"


def _sample_fields(path: Path, encoding: str) -> list[list[str]]:
    fields = []
    for line in _LineReader(path, encoding):
        text = line.text
        if not text.strip() or line.decode_problem is not None:
            continue
        columns = text.split("\t")
        if not fields and _is_header(columns):
            continue
        fields.append(columns)
        if len(fields) >= _FORMAT_SAMPLE_LINES:
            break
    return fields


def sniff_format(path: Path, encoding: str) -> str | None:
    """Return 'ids' or 'text' as detected from the file's first lines, or None when it has no pairs to look at."""
    fields = _sample_fields(path, check_encoding(encoding))
    return detect_format(fields) if fields else None


def resolve_format(paths: list[Path], input_format: str, encoding: str) -> str:
    """Return 'ids' or 'text' for the files, detecting it from the first file when 'auto'."""
    if input_format not in FORMATS:
        raise InputError(f"invalid format {input_format!r}: use one of {', '.join(FORMATS)}")
    if input_format != "auto":
        return input_format
    return detect_format(_sample_fields(paths[0], check_encoding(encoding)))


def _check_paths(paths: Iterable[str | Path]) -> list[Path]:
    checked = []
    for path in map(Path, paths):
        if not path.exists():
            raise InputError("file not found: check the path", str(path))
        if path.is_dir():
            raise InputError("is a directory: expected a TSV file", str(path))
        checked.append(path)
    return checked


# Line validation ---------------------------------------------------------------------------


class _LineParser:
    """Validate one file's lines into PairBuilders, keeping the column count across chunks.

    Args:
        path: the file, for messages.
        labels: "required" (3 columns), "none" (2 columns) or "optional" (the first valid line decides).
        on_invalid: "error" raises InputError; "skip" and "keep" record the line in `invalid_lines`.
        invalid_hint: a sentence appended to line errors saying how to skip invalid lines, or None.
    """

    def __init__(self, path: Path, labels: str, on_invalid: str, invalid_hint: str | None):
        self.path = path
        self.labels = labels
        self.on_invalid = on_invalid
        self.invalid_hint = invalid_hint
        self.expected_columns: int | None = {"required": 3, "none": 2}.get(labels)
        self.seen_content = False

    def parse(self, builder: _PairBuilder, lines: Iterable[_Line]) -> None:
        source = len(builder.sources)
        builder.sources.append(str(self.path))
        stats = builder.stats
        is_ids = builder.format == "ids"
        id_problems: dict[str, str | None] = {}

        for number, text, crlf, decode_problem in lines:
            stats.lines += 1
            stats.crlf_lines += crlf
            if not text.strip():
                stats.blank_lines += 1
                self._reject(builder, number, "blank line", "delete the blank line", text)
                continue
            first_content = not self.seen_content
            self.seen_content = True
            if decode_problem is not None:
                self._reject(builder, number, *decode_problem, text)
                continue
            columns = text.split("\t")
            if first_content and _is_header(columns):
                stats.headers_skipped += 1
                logger.info("%s:%d: header row %s skipped", self.path, number, _excerpt(text))
                continue
            problem = self._check_line(text, columns, is_ids, id_problems)
            if problem is not None:
                reason, fix = problem
                if _looks_like_header(columns):
                    fix = (f"line {number} looks like a header row: delete it "
                           "(a header is skipped only on the first line, with names such as text_a, text_b, label)")
                self._reject(builder, number, reason, fix, text)
                continue

            builder.a.append(builder.intern(columns[0].strip()))
            builder.b.append(builder.intern(columns[1].strip()))
            builder.labels.append(1 if len(columns) == 3 and columns[2].strip() == "1" else 0)
            builder.line_numbers.append(number)
            builder.source_index.append(source)

    def _reject(self, builder: _PairBuilder, number: int, reason: str, fix: str, text: str) -> None:
        if self.on_invalid == "error":
            message = f"{reason}. Fix: {fix}."
            if self.invalid_hint:
                message += f" {self.invalid_hint}."
            raise InputError(message, str(self.path), number)
        builder.stats.invalid += 1
        builder.invalid_lines.append(InvalidLine(str(self.path), number, reason, text))

    def _check_line(
        self, text: str, columns: list[str], is_ids: bool, id_problems: dict[str, str | None]
    ) -> tuple[str, str] | None:
        """Return (what is wrong, how to fix it) for an invalid line, or None for a valid one."""
        if "\x00" in text:
            return (f"NUL byte (\\x00) at character {text.index(chr(0)) + 1} of the line",
                    "the file may be binary or UTF-16-encoded: remove the NUL bytes or convert the file to UTF-8")
        column_problem = self._check_columns(text, columns)
        if column_problem is not None:
            return column_problem

        for position in (1, 2):
            query = columns[position - 1].strip()
            if not query:
                return (f"empty query in column {position} of {_excerpt(text)}",
                        "every pair needs two non-empty queries: fill in the query or delete the line")
            if is_ids:
                if query not in id_problems:
                    id_problems[query] = _check_id_query(query)
                if id_problems[query] is not None:
                    return (f"{id_problems[query]} (column {position})",
                            "correct the ID, or pass --format text if the file contains raw text")
        if len(columns) == 3:
            return _check_label(columns[2].strip())
        return None

    def _check_columns(self, text: str, columns: list[str]) -> tuple[str, str] | None:
        count = len(columns)
        if self.expected_columns is None:
            if count in (2, 3):
                self.expected_columns = count
                return None
            expected = "2 or 3"
        elif count == self.expected_columns:
            return None
        else:
            expected = str(self.expected_columns)

        if self.labels == "required" and count == 2:
            return (f"missing label: expected 3 tab-separated columns (query, query, label), found 2 in {_excerpt(text)}",
                    "add a third column with the label 0 or 1")
        reason = f"expected {expected} tab-separated columns, found {count} in {_excerpt(text)}"
        if count == 1:
            return reason, "the line has no tab: separate the columns with tabs, not spaces or commas"
        if count > 3 or (self.expected_columns is not None and count > self.expected_columns):
            return reason, "remove the extra tab (a trailing tab, or a tab inside a query)"
        return reason, f"give every line the same {expected} columns: query_a<TAB>query_b[<TAB>label]"


def _check_label(label: str) -> tuple[str, str] | None:
    if label in ("0", "1"):
        return None
    if not label:
        return "invalid label '' (the label column is empty)", "write 0 or 1 in the third column"
    try:
        value = float(label)
    except ValueError:
        value = None
    if value in (0.0, 1.0):
        return (f"invalid label {_excerpt(label)}",
                f"labels must be the integers 0 or 1: write {int(value)} instead of {label}")
    return f"invalid label {_excerpt(label)}", "labels must be 0 (different meaning) or 1 (same meaning)"


# Reading whole files -----------------------------------------------------------------------


def _check_on_invalid(on_invalid: str, allowed: tuple[str, ...]) -> None:
    if on_invalid not in allowed:
        raise ValueError(f"invalid on_invalid {on_invalid!r}: use one of {', '.join(allowed)}")


def read_pairs(
    paths: list[str | Path] | str | Path,
    input_format: str = "auto",
    labels: str = "optional",
    on_invalid: str = "error",
    encoding: str = "utf-8",
    drop_duplicates: bool = False,
    rejects_path: str | Path | None = None,
    invalid_hint: str | None = SKIP_HINT,
) -> PairSet:
    """Read and validate one or more pair files into one PairSet.

    Args:
        paths: one path or several; several files are merged in order.
        input_format: "ids", "text" or "auto" (detected from the first file's lines).
        labels: "required" (training, evaluation), "none" (2 columns only) or "optional".
        on_invalid: "error" raises InputError at the first invalid line; "skip" drops invalid
            lines, counts them and writes them to `rejects_path`; "keep" records them in
            `invalid_lines` for the caller (prediction marks them NaN). Only "keep" returns a
            PairSet without pairs when every line is invalid.
        encoding: the files' text encoding, any ASCII-compatible Python codec (utf-8, gbk, ...).
        drop_duplicates: drop repeated pairs (same two queries in either order, same label).
            Repeats are counted and logged either way.
        rejects_path: where "skip" writes the rejected lines as TSV.
        invalid_hint: the sentence that line errors end with, saying how to skip invalid lines.

    Raises:
        InputError: naming the file, line and value, for missing files, undecodable bytes,
            invalid lines and files without pairs.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    _check_on_invalid(on_invalid, ("error", "skip", "keep"))
    encoding = check_encoding(encoding)
    files = _check_paths(paths)
    if not files:
        raise InputError("no input files given")
    resolved = resolve_format(files, input_format, encoding)
    builder = _PairBuilder(resolved)
    column_counts: dict[Path, int | None] = {}
    for path in files:
        pairs_before = len(builder.a)
        invalid_before = builder.stats.invalid
        headers_before = builder.stats.headers_skipped
        reader = _LineReader(path, encoding)
        parser = _LineParser(path, labels, on_invalid, invalid_hint)
        parser.parse(builder, reader)
        builder.stats.bom_files += reader.has_bom
        builder.stats.trailing_blank_lines += reader.trailing_blank_lines
        if len(builder.a) == pairs_before and builder.stats.invalid == invalid_before:
            raise _no_pairs_error(path, builder.stats.headers_skipped > headers_before, labels)
        if len(builder.a) > pairs_before:
            column_counts[path] = parser.expected_columns
    if len(set(column_counts.values())) > 1:
        with_labels = [str(path) for path, count in column_counts.items() if count == 3]
        without = [str(path) for path, count in column_counts.items() if count != 3]
        raise InputError(
            f"some input files have a label column ({', '.join(with_labels)}) and others do not "
            f"({', '.join(without)}): give files of one kind"
        )
    has_labels = labels == "required" or (labels == "optional" and set(column_counts.values()) == {3})
    pairs = builder.build(has_labels)

    if on_invalid == "skip" and pairs.invalid_lines and rejects_path is not None:
        write_rejects(pairs.invalid_lines, rejects_path)
    if not len(pairs) and on_invalid != "keep":
        where = f" and are listed in {rejects_path}" if on_invalid == "skip" and rejects_path is not None else ""
        raise InputError(f"no valid query pairs: all {pairs.stats.invalid} lines are invalid{where}. "
                         "Fix them, and check --format and --encoding, since one problem usually affects "
                         "every line", ", ".join(map(str, files)))
    pairs = _count_duplicates(pairs, drop_duplicates)
    log_read_stats(pairs, files)
    return pairs


def _no_pairs_error(path: Path, header_skipped: bool, labels: str) -> InputError:
    """Build the error for a file with no pairs and no invalid lines."""
    if path.stat().st_size == 0:
        reason = "the file is empty"
    elif header_skipped:
        reason = "the file contains only a header row"
    else:
        reason = "the file contains only blank lines"
    layout = "query_a<TAB>query_b<TAB>label" if labels == "required" else "query_a<TAB>query_b[<TAB>label]"
    return InputError(f"no valid query pairs: {reason}. Give a TSV file with one pair per line: {layout}", str(path))


def _pair_keys(pairs: PairSet) -> np.ndarray:
    """(n, 3) rows of (smaller query index, larger query index, label): a pair in either order."""
    labels = pairs.labels if pairs.labels is not None else np.zeros(len(pairs), np.int8)
    return np.stack([np.minimum(pairs.a, pairs.b), np.maximum(pairs.a, pairs.b), labels.astype(np.int64)], axis=1)


def _count_duplicates(pairs: PairSet, drop: bool) -> PairSet:
    """Count repeated pairs and pairs seen with both labels; drop the repeats when `drop`.

    Repeats are pairs with the same two queries (in either order) and the same label; the first
    of each is kept. A pair seen with both labels keeps both lines.
    """
    keys = _pair_keys(pairs)
    _, first = np.unique(keys, axis=0, return_index=True)
    keep = np.sort(first)
    unique_keys = keys[keep]
    _, pair_first, pair_counts = np.unique(unique_keys[:, :2], axis=0, return_index=True, return_counts=True)
    stats = pairs.stats
    stats.duplicate_pairs = len(pairs) - len(keep)
    stats.conflicting_duplicates = int(np.count_nonzero(pair_counts > 1))
    if stats.conflicting_duplicates:
        example = unique_keys[pair_first[np.argmax(pair_counts > 1)], :2]
        rows = np.flatnonzero((keys[:, 0] == example[0]) & (keys[:, 1] == example[1]))
        lines = [f"{pairs.sources[pairs.source_index[row]]}:{pairs.line_numbers[row]} (label {keys[row, 2]})"
                 for row in rows[:4]]
        logger.warning("pairs seen with both labels 0 and 1: %d (for example %s); all their lines are kept",
                       stats.conflicting_duplicates, ", ".join(lines))
    if not drop or stats.duplicate_pairs == 0:
        return pairs
    kept = pairs.subset(keep)
    kept.stats, kept.invalid_lines = stats, pairs.invalid_lines
    stats.duplicates_dropped = stats.duplicate_pairs
    stats.pairs = len(kept)
    return kept


_REJECTS_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\x00": "\\x00"})


def write_rejects(invalid_lines: list[InvalidLine], path: str | Path) -> None:
    """Write rejected lines as TSV: file, line, reason, original content.

    In the content, backslash, tab, CR, LF and NUL are escaped as \\\\, \\t, \\r, \\n and \\x00, so every
    rejected line stays one row of four columns.
    """
    with atomic_open(path) as handle:
        handle.write("file\tline\treason\tcontent\n")
        for item in invalid_lines:
            content = item.content.translate(_REJECTS_ESCAPES)
            reason = item.reason.replace("\t", " ").replace("\r", " ").replace("\n", " ")
            handle.write(f"{item.path}\t{item.line}\t{reason}\t{content}\n")
    logger.info("wrote %d rejected lines to %s", len(invalid_lines), path)


def _log_notes(stats: ReadStats, names: str) -> None:
    """Log every count of skipped, dropped or accepted-but-unusual lines."""
    notes = {
        "invalid lines": stats.invalid,
        "header rows skipped": stats.headers_skipped,
        "blank lines at the end dropped": stats.trailing_blank_lines,
        "files starting with a UTF-8 byte order mark (BOM, removed)": stats.bom_files,
        "lines ending in CRLF (Windows line ends, accepted)": stats.crlf_lines,
        "repeated pairs (same two queries in either order, same label)": stats.duplicate_pairs,
        "repeated pairs dropped": stats.duplicates_dropped,
    }
    for name, count in notes.items():
        if count:
            logger.info("%s: %s: %d", names, name, count)


def log_read_stats(pairs: PairSet, files: list[Path]) -> None:
    stats = pairs.stats
    names = ", ".join(map(str, files))
    message = f"read {stats.pairs} pairs ({len(pairs.queries)} distinct queries, format {pairs.format}) from {stats.lines} lines of {names}"
    if pairs.labels is not None:
        message += f"; {int(pairs.labels.sum())} positive"
    logger.info(message)
    _log_notes(stats, names)


def iter_pair_chunks(
    path: str | Path,
    input_format: str = "auto",
    chunk_lines: int = 200_000,
    on_invalid: str = "error",
    encoding: str = "utf-8",
    invalid_hint: str | None = NAN_HINT,
) -> Iterator[PairSet]:
    """Read a large file in chunks of about `chunk_lines` lines, for prediction with bounded memory.

    Every chunk is a PairSet with its own query table; invalid lines follow `on_invalid` as in
    `read_pairs` ("error" or "keep"). The chunks' pairs and kept invalid lines together cover
    every line of the file except a header row and blank lines at the end. Duplicate pairs are
    neither counted nor dropped.

    Raises:
        InputError: as `read_pairs`; a file without pairs or invalid lines raises after the
            last chunk.
    """
    _check_on_invalid(on_invalid, ("error", "keep"))
    if chunk_lines < 1:
        raise ValueError(f"chunk_lines must be at least 1, got {chunk_lines}")
    encoding = check_encoding(encoding)
    files = _check_paths([path])
    resolved = resolve_format(files, input_format, encoding)
    file_path = files[0]
    reader = _LineReader(file_path, encoding)
    lines = iter(reader)
    parser = _LineParser(file_path, "optional", on_invalid, invalid_hint)
    total = ReadStats()
    while True:
        chunk = [item for _, item in zip(range(chunk_lines), lines)]
        if not chunk:
            break
        builder = _PairBuilder(resolved)
        parser.parse(builder, chunk)
        pairs = builder.build(parser.expected_columns == 3)
        total.merge(pairs.stats)
        if len(pairs) or pairs.invalid_lines:
            yield pairs
    total.bom_files = int(reader.has_bom)
    total.trailing_blank_lines = reader.trailing_blank_lines
    if total.pairs == 0 and total.invalid == 0:
        raise _no_pairs_error(file_path, total.headers_skipped > 0, "optional")
    logger.info("read %d pairs and %d invalid lines (format %s) from %d lines of %s",
                total.pairs, total.invalid, resolved, total.lines, file_path)
    _log_notes(total, str(file_path))
