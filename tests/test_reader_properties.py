"""Property tests of the readers: any bytes give a valid PairSet or an InputError, nothing else.

With `on_invalid="keep"` every line of the file is accounted for exactly once: as a pair, an
invalid line, the skipped header row or a blank line at the end. Prediction relies on this to
write one output line per input line.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semmatch.data import PairSet, iter_pair_chunks, read_pairs
from semmatch.errors import InputError

# SEMMATCH_PROPERTY_EXAMPLES raises the example count for a longer search than the default run.
SETTINGS = settings(max_examples=int(os.environ.get("SEMMATCH_PROPERTY_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Pieces that reach the parser's branches far more often than uniform bytes do.
FRAGMENTS = [
    b"1", b"12", b"0", b"-5", b"9223372036854775808", b"1.0", b"2", b"", b" ", b"  ", b"\t", b"\t\t",
    b"x", "打开蓝牙".encode(), "打开蓝牙".encode("gbk"), b"text_a", b"text_b", b"label", b"\xef\xbb\xbf",
    b"\r", b"\x00", b"\xff", b"\xe9\xa3", b"\xc0", b"3 4 5", b" 7 ", "\u3000".encode(), b"\\",
]
ENCODINGS = ["utf-8", "gbk", "latin-1", "utf-8-sig"]

line_bytes = st.lists(st.sampled_from(FRAGMENTS), max_size=8).map(b"".join)
line_end = st.sampled_from([b"\n", b"\r\n", b""])
structured_files = st.lists(st.tuples(line_bytes, line_end), max_size=12).map(
    lambda lines: b"".join(line + (end or b"\n") for line, end in lines[:-1])
    + (lines[-1][0] + lines[-1][1] if lines else b"")
)
any_file = st.one_of(st.binary(max_size=300), structured_files)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("reader_properties")


def line_count(data: bytes) -> int:
    """Lines as a binary file iterator yields them: split after each LF, a last line without LF counts."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def trailing_blank_count(data: bytes, encoding: str) -> int:
    """Blank lines after the last non-blank line, judged on decoded text as the reader does."""
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    count = 0
    for raw in reversed(lines):
        try:
            text = raw.rstrip(b"\r\n").decode(encoding)
        except UnicodeDecodeError:
            break
        if text.strip() and text != "\ufeff":
            break
        count += 1
    return count


def check_pairset(pairs: PairSet) -> None:
    count = len(pairs)
    assert pairs.stats.pairs == count
    for array in (pairs.b, pairs.line_numbers, pairs.source_index):
        assert len(array) == count
    if count:
        assert int(max(pairs.a.max(), pairs.b.max())) < len(pairs.queries)
        assert int(min(pairs.a.min(), pairs.b.min())) >= 0
    if pairs.labels is not None:
        assert len(pairs.labels) == count
        assert set(np.unique(pairs.labels).tolist()) <= {0, 1}
    for query in pairs.queries:
        assert query and query == query.strip()
        assert "\t" not in query
        assert "\x00" not in query
        assert "\r" not in query
    if pairs.format == "ids":
        assert len(pairs.query_offsets) == len(pairs.queries) + 1
        assert np.all(np.diff(pairs.query_offsets) >= 1)
        assert pairs.query_offsets[-1] == len(pairs.query_ids)
        assert pairs.query_ids.dtype == np.int64
        if len(pairs.query_ids):
            assert int(pairs.query_ids.min()) >= 1
    else:
        assert pairs.query_ids is None


def check_input_error(error: InputError, path) -> None:
    assert str(error).strip()
    if error.path is not None:
        assert str(path) in error.path
    if error.line is not None:
        assert error.line >= 1


@SETTINGS
@given(
    data=any_file,
    input_format=st.sampled_from(["auto", "ids", "text"]),
    labels=st.sampled_from(["optional", "required", "none"]),
    on_invalid=st.sampled_from(["error", "skip", "keep"]),
    encoding=st.sampled_from(ENCODINGS),
    drop_duplicates=st.booleans(),
)
def test_read_pairs_returns_pairs_or_input_error(workdir, data, input_format, labels, on_invalid, encoding,
                                                 drop_duplicates):
    path = workdir / "pairs.tsv"
    path.write_bytes(data)
    try:
        pairs = read_pairs(path, input_format, labels, on_invalid, encoding, drop_duplicates,
                           rejects_path=workdir / "rejects.tsv")
    except InputError as error:
        check_input_error(error, path)
        return
    check_pairset(pairs)
    assert len(pairs) >= 1 or (on_invalid == "keep" and pairs.invalid_lines)
    assert np.all(np.diff(pairs.line_numbers) > 0)
    if labels == "required":
        assert pairs.labels is not None
    if labels == "none":
        assert pairs.labels is None
    if on_invalid == "error":
        assert pairs.stats.invalid == 0


@SETTINGS
@given(data=any_file, input_format=st.sampled_from(["auto", "ids", "text"]), encoding=st.sampled_from(ENCODINGS))
def test_kept_lines_cover_the_file(workdir, data, input_format, encoding):
    path = workdir / "cover.tsv"
    path.write_bytes(data)
    try:
        pairs = read_pairs(path, input_format, on_invalid="keep", encoding=encoding)
    except InputError as error:
        check_input_error(error, path)
        return
    invalid_numbers = [item.line for item in pairs.invalid_lines]
    numbers = sorted(pairs.line_numbers.tolist() + invalid_numbers)
    assert len(set(numbers)) == len(numbers)
    stats = pairs.stats
    assert len(numbers) + stats.headers_skipped + stats.trailing_blank_lines == line_count(data)
    assert stats.trailing_blank_lines == trailing_blank_count(data, "utf-8" if encoding == "utf-8-sig" else encoding)
    if numbers:
        assert numbers[-1] == line_count(data) - stats.trailing_blank_lines


@SETTINGS
@given(
    data=any_file,
    input_format=st.sampled_from(["auto", "ids", "text"]),
    on_invalid=st.sampled_from(["error", "keep"]),
    encoding=st.sampled_from(ENCODINGS),
    chunk_lines=st.integers(1, 5),
)
def test_pair_chunks_cover_lines_in_order(workdir, data, input_format, on_invalid, encoding, chunk_lines):
    path = workdir / "chunks.tsv"
    path.write_bytes(data)
    chunks = []
    try:
        for chunk in iter_pair_chunks(path, input_format, chunk_lines, on_invalid, encoding):
            chunks.append(chunk)
    except InputError as error:
        check_input_error(error, path)
        return
    numbers_per_chunk = []
    for chunk in chunks:
        check_pairset(chunk)
        numbers = sorted(chunk.line_numbers.tolist() + [item.line for item in chunk.invalid_lines])
        assert numbers
        numbers_per_chunk.append(numbers)
    flat = list(itertools.chain.from_iterable(numbers_per_chunk))
    assert flat == sorted(set(flat))
    headers = sum(chunk.stats.headers_skipped for chunk in chunks)
    assert headers <= 1
    assert len(flat) + headers <= line_count(data)
    if on_invalid == "error":
        assert not any(chunk.invalid_lines for chunk in chunks)


@SETTINGS
@given(data=any_file, encoding=st.sampled_from(ENCODINGS))
def test_chunks_and_whole_file_agree(workdir, data, encoding):
    """Reading in chunks of 2 lines keeps the same pairs and invalid lines as reading the whole file."""
    path = workdir / "agree.tsv"
    path.write_bytes(data)
    try:
        whole = read_pairs(path, "auto", on_invalid="keep", encoding=encoding)
    except InputError as whole_error:
        with pytest.raises(InputError) as chunk_error:
            list(iter_pair_chunks(path, "auto", 2, "keep", encoding))
        assert str(chunk_error.value).split(":")[0] == str(whole_error).split(":")[0]
        return
    chunks = list(iter_pair_chunks(path, "auto", 2, "keep", encoding))
    assert np.concatenate([chunk.line_numbers for chunk in chunks]).tolist() == whole.line_numbers.tolist()
    chunk_invalid = [item.line for chunk in chunks for item in chunk.invalid_lines]
    assert chunk_invalid == [item.line for item in whole.invalid_lines]
    chunk_queries = [(chunk.queries[a], chunk.queries[b]) for chunk in chunks for a, b in zip(chunk.a, chunk.b)]
    assert chunk_queries == [(whole.queries[a], whole.queries[b]) for a, b in zip(whole.a, whole.b)]
