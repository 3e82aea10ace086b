"""Readers: formats, validation messages, accepted variants and compact storage."""

from __future__ import annotations

import numpy as np
import pytest

from semmatch.data import iter_pair_chunks, read_pairs
from semmatch.errors import InputError


def write(tmp_path, name, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_ids_file_parsed_to_flat_arrays(tmp_path):
    path = write(tmp_path, "a.tsv", "1 2 3\t4 5\t1\n4 5\t6\t0\n")
    pairs = read_pairs(path)
    assert pairs.format == "ids"
    assert pairs.queries == ["1 2 3", "4 5", "6"]
    assert pairs.a.tolist() == [0, 1]
    assert pairs.b.tolist() == [1, 2]
    assert pairs.labels.tolist() == [1, 0]
    assert pairs.query_ids.dtype == np.int64
    assert pairs.query_ids.tolist() == [1, 2, 3, 4, 5, 6]
    assert pairs.query_offsets.tolist() == [0, 3, 5, 6]


def test_text_file_detected(tmp_path):
    path = write(tmp_path, "t.tsv", "打开蓝牙\t帮我开一下蓝牙\t1\n")
    pairs = read_pairs(path)
    assert pairs.format == "text"
    assert pairs.query_ids is None


def test_two_column_file_has_no_labels(tmp_path):
    pairs = read_pairs(write(tmp_path, "t.tsv", "1 2\t3\n4\t5 6\n"))
    assert pairs.labels is None
    assert len(pairs) == 2


def test_several_files_merged_in_order(tmp_path):
    first = write(tmp_path, "r1.tsv", "1\t2\t1\n")
    second = write(tmp_path, "r2.tsv", "3\t1\t0\n")
    pairs = read_pairs([first, second])
    assert pairs.labels.tolist() == [1, 0]
    assert pairs.sources == [str(first), str(second)]
    assert pairs.source_index.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("content", "fragment", "line"),
    [
        ("1\t2\t1\n1\t2\t1\t5\n", "expected 3 tab-separated columns, found 4", 2),
        ("1\n", "expected 2 or 3 tab-separated columns, found 1", 1),
        ("1 x\t2\t1\n", "invalid token 'x'", 1),
        ("1 -3\t2\t1\n", "invalid token '-3'", 1),
        ("1 0 2\t2\t1\n", "ID 0 is reserved for padding", 1),
        ("1\t99999999999999999999\t1\n", "larger than the largest 64-bit integer", 1),
        ("1\t2\t2\n", "invalid label '2'", 1),
        ("1\t2\t1.0\n", "invalid label '1.0'", 1),
        ("1\t2\t\n", "invalid label ''", 1),
        ("1\t \t1\n", "empty query in column 2", 1),
    ],
)
def test_invalid_id_lines_name_file_line_and_value(tmp_path, content, fragment, line):
    path = write(tmp_path, "bad.tsv", content)
    with pytest.raises(InputError) as caught:
        read_pairs(path, "ids")
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: ")
    assert fragment in message
    assert "--skip-invalid" in message


def test_missing_label_rejected_when_labels_required(tmp_path):
    path = write(tmp_path, "bad.tsv", "1\t2\n")
    with pytest.raises(InputError, match="missing label"):
        read_pairs(path, "ids", labels="required")


def test_skip_invalid_counts_and_writes_rejects(tmp_path):
    path = write(tmp_path, "mixed.tsv", "1\t2\t1\n1\tx\t0\n3\t4\t7\n5\t6\t0\n")
    rejects = tmp_path / "rejects.tsv"
    pairs = read_pairs(path, "ids", on_invalid="skip", rejects_path=rejects)
    assert len(pairs) == 2
    assert pairs.stats.invalid == 2
    assert pairs.line_numbers.tolist() == [1, 4]
    rows = rejects.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "file\tline\treason\tcontent"
    assert [row.split("\t")[1] for row in rows[1:]] == ["2", "3"]


def test_bom_crlf_and_trailing_spaces_accepted(tmp_path):
    path = write(tmp_path, "win.tsv", b"\xef\xbb\xbf1 2 \t3\t1  \r\n4\t5\t0\r\n\r\n")
    pairs = read_pairs(path)
    assert pairs.format == "ids"
    assert pairs.queries[:2] == ["1 2", "3"]
    assert pairs.labels.tolist() == [1, 0]
    assert pairs.stats.bom_files == 1
    assert pairs.stats.crlf_lines == 2


def test_header_row_skipped(tmp_path):
    pairs = read_pairs(write(tmp_path, "h.tsv", "text_a\ttext_b\tlabel\n打开\t关闭\t0\n"))
    assert len(pairs) == 1
    assert pairs.stats.headers_skipped == 1


def test_drop_duplicates_treats_swapped_pairs_as_one(tmp_path):
    path = write(tmp_path, "d.tsv", "1\t2\t1\n2\t1\t1\n1\t2\t1\n1\t2\t0\n3\t4\t0\n")
    pairs = read_pairs(path, drop_duplicates=True)
    assert len(pairs) == 3
    assert pairs.stats.duplicates_dropped == 2
    assert pairs.stats.conflicting_duplicates == 1


def test_empty_file_rejected(tmp_path):
    with pytest.raises(InputError, match="no valid query pairs"):
        read_pairs(write(tmp_path, "empty.tsv", ""))


def test_missing_file_rejected(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_pairs(tmp_path / "nope.tsv")


def test_chunks_cover_every_line_in_order(tmp_path):
    lines = [f"{i + 1}\t{i + 2}\n" for i in range(25)]
    path = write(tmp_path, "big.tsv", "".join(lines))
    chunks = list(iter_pair_chunks(path, "ids", chunk_lines=10))
    assert [len(chunk) for chunk in chunks] == [10, 10, 5]
    numbers = np.concatenate([chunk.line_numbers for chunk in chunks])
    assert numbers.tolist() == list(range(1, 26))


def test_real_ids_file_loads_whole(real_data):
    pairs = read_pairs(real_data / "xiaobu" / "pairs.ids.tsv")
    assert len(pairs) == 129_785
    assert int(pairs.labels.sum()) == 46_317
    assert pairs.query_ids.min() >= 1
