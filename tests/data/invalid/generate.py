"""Write the corpus files whose bytes matter: encodings, line ends, NUL bytes and a 10,000-token query.

These are kept as code rather than committed files so that git line-end conversion and editors
cannot change them, and so the bytes are readable here. The tests call `write_generated(dir)`;
run `python tests/data/invalid/generate.py OUT_DIR` to inspect them.
"""

from __future__ import annotations

import sys
from pathlib import Path

PAIRS = [("打开蓝牙", "帮我开一下蓝牙", "1"), ("今天天气怎么样", "明天天气怎么样", "0"), ("来首歌", "放首歌", "1")]
LONG_QUERY_TOKENS = 10_000


def _tsv(pairs=PAIRS, line_end: str = "\n") -> str:
    return "".join("\t".join(pair) + line_end for pair in pairs)


def generated_files() -> dict[str, bytes]:
    """Return file name -> content for every generated corpus file."""
    text = _tsv()
    lines = text.encode("utf-8").split(b"\n")
    return {
        "bom.tsv": b"\xef\xbb\xbf" + text.encode("utf-8"),
        "crlf.tsv": _tsv(line_end="\r\n").encode("utf-8"),
        "cr_only_line_ends.tsv": _tsv(line_end="\r").encode("utf-8"),
        # Line 2 has a NUL byte inside its first query.
        "nul_byte.tsv": b"\n".join([lines[0], lines[1].replace("天气".encode(), b"\x00", 1), *lines[2:]]),
        # Line 1 ends its first query with a truncated 3-byte sequence (\xe9\xa3 without its last byte)
        # and a byte that is never valid UTF-8 (\xff), so it is neither UTF-8 nor GBK.
        "invalid_utf8.tsv": b"\xe6\x89\x93\xe5\xbc\x80\xe9\xa3\xff\t" + "帮我开一下蓝牙\t1\n".encode("utf-8")
        + b"\n".join(lines[1:]),
        "gbk.tsv": text.encode("gbk"),
        "utf16.tsv": text.encode("utf-16"),
        "long_query.tsv": _tsv([("打" * LONG_QUERY_TOKENS, "打开蓝牙", "1"), *PAIRS[1:]]).encode("utf-8"),
        "long_query.ids.tsv": _tsv([(" ".join(["12"] * LONG_QUERY_TOKENS), "9 10", "1"),
                                    ("12 5 8", "9 10", "0"), ("7 3", "7 4", "1")]).encode("utf-8"),
    }


def write_generated(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in generated_files().items():
        path = directory / name
        path.write_bytes(content)
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py OUT_DIR")
    for path in write_generated(sys.argv[1]):
        print(path)
