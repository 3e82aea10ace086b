"""Bad inputs: every file of the tests/data/invalid corpus through train, evaluate and predict.

The expected outcome of each file is in tests/data/invalid/cases.toml. The full matrix runs
in-process through the functions the CLI calls (`prepare_data`, `evaluate_file`,
`predict_file`). A representative subset runs through the `semmatch` command in a subprocess,
which checks the exit status and the single error message on stderr.

The models are untrained: input handling does not depend on the weights, and building them
takes well under a second, where training would take minutes on a busy CPU.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from conftest import small_model_config
from semmatch.cli import main
from semmatch.config import TrainConfig
from semmatch.data import iter_pair_chunks, read_pairs
from semmatch.errors import InputError
from semmatch.matcher import load_model, save_model
from semmatch.model import TwoTowerModel
from semmatch.predict import evaluate_file, predict_file
from semmatch.tokenize import IdVocabulary, Vocabulary
from semmatch.train import prepare_data

CORPUS = Path(__file__).parent / "data" / "invalid"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))["case"]
COMMANDS = ("train", "evaluate", "predict")
SKIP_OPTION = {"train": "--skip-invalid", "predict": "--on-invalid nan"}

GOOD_TEXT = "打开蓝牙\t帮我开一下蓝牙\t1\n今天天气怎么样\t明天天气怎么样\t0\n来首歌\t放首歌\t1\n播放音乐\t关闭音乐\t0\n"
GOOD_IDS = "12 5 8\t9 10\t1\n7 3\t7 4\t0\n12 5\t9 10 11\t1\n3 4\t5 6\t0\n"


def expectation(case: dict, command: str) -> dict:
    """The case's keys with the command's own [case.COMMAND] table applied over them."""
    merged = {key: value for key, value in case.items() if key not in COMMANDS}
    merged.update(case.get(command, {}))
    return merged


def matrix(*commands: str, errors_only: bool = False) -> list:
    return [pytest.param(case, command, id=f"{case['name']}-{command}") for case in CASES for command in commands
            if not errors_only or expectation(case, command)["expect"] == "error"]


def load_generator():
    spec = importlib.util.spec_from_file_location("invalid_corpus_generate", CORPUS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The committed corpus files and the generated ones, side by side in one directory."""
    directory = tmp_path_factory.mktemp("invalid_corpus")
    for path in CORPUS.glob("*.tsv"):
        shutil.copyfile(path, directory / path.name)
    load_generator().write_generated(directory)
    (directory / "good.tsv").write_text(GOOD_TEXT, encoding="utf-8")
    (directory / "good.ids.tsv").write_text(GOOD_IDS, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, corpus) -> dict[str, Path]:
    """Untrained small text and ID models saved as model directories, keyed by format."""
    root = tmp_path_factory.mktemp("invalid_models")
    text_queries = [query for line in GOOD_TEXT.splitlines() for query in line.split("\t")[:2]]
    vocabularies = {"text": Vocabulary.build(text_queries), "ids": IdVocabulary(20)}
    directories = {}
    for input_format, vocabulary in vocabularies.items():
        config = small_model_config()
        config.vocab_size = len(vocabulary)
        config.oov_id = 1 if input_format == "text" else vocabulary.oov_id
        torch.manual_seed(0)
        directories[input_format] = root / input_format
        save_model(TwoTowerModel(config), vocabulary, directories[input_format])
    return directories


@pytest.fixture(scope="module")
def matchers(model_dirs):
    # One thread: on a loaded 2-core machine, the LSTM's per-step thread synchronisation made the
    # 128-step truncated long queries take seconds instead of milliseconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {input_format: load_model(path, device="cpu") for input_format, path in model_dirs.items()}
    torch.set_num_threads(threads)


def valid_file(corpus: Path, case: dict) -> Path:
    """A validation file for training in the case file's format and encoding."""
    if "encoding" in case:
        return corpus / case["file"]
    return corpus / ("good.ids.tsv" if case["file"].endswith(".ids.tsv") else "good.tsv")


def run_command(command: str, case: dict, corpus: Path, matchers: dict, tmp_path: Path, skip: bool = False):
    """Run one command on the case's file the way the CLI does; return (pairs read, predict output lines)."""
    path = corpus / case["file"]
    encoding = case.get("encoding", "utf-8")
    if command == "train":
        data = prepare_data([str(path)], str(valid_file(corpus, case)), TrainConfig(seed=1), max_len=128,
                            input_format="auto", on_invalid="skip" if skip else "error", encoding=encoding,
                            rejects_path=tmp_path / "rejects.tsv")
        return data.counts["train_file_pairs"], None
    matcher = matchers[case["format"]]
    if command == "evaluate":
        metrics = evaluate_file(matcher, path, "auto", encoding)
        assert set(metrics) >= {"auc", "accuracy"}
        return None, None
    output = tmp_path / "result.txt"
    counts = predict_file(matcher, path, output, "auto", "nan" if skip else "error", encoding, chunk_lines=2)
    lines = output.read_text(encoding="utf-8").splitlines()
    assert counts["pairs"] == len(lines)
    return counts["pairs"] - counts["invalid_lines"], lines


def check_error(error: InputError, case: dict, expected: dict, corpus: Path, command: str) -> None:
    message = str(error)
    path = corpus / case["file"]
    location = f"{path}:{expected['line']}: " if "line" in expected else f"{path}: "
    assert message.startswith(location), message
    for fragment in expected["message"]:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    option = SKIP_OPTION.get(command)
    if expected.get("skippable") and option:
        assert option in message, message
    for other in SKIP_OPTION.values():
        if other != option or not expected.get("skippable"):
            assert other not in message, message


def check_probabilities(lines: list[str], nan_line: int | None = None) -> None:
    for number, line in enumerate(lines, start=1):
        if number == nan_line:
            assert line == "nan"
        else:
            assert 0.0 <= float(line) <= 1.0, (number, line)
            assert len(line.split(".")[1]) == 6, (number, line)


# The full matrix, in-process ---------------------------------------------------------------


@pytest.mark.parametrize(("case", "command"), matrix(*COMMANDS))
def test_corpus_case_outcome(case, command, corpus, matchers, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    expected = expectation(case, command)
    if expected["expect"] == "error":
        with pytest.raises(InputError) as caught:
            run_command(command, case, corpus, matchers, tmp_path)
        check_error(caught.value, case, expected, corpus, command)
        return

    pairs, lines = run_command(command, case, corpus, matchers, tmp_path)
    if command == "train":
        assert pairs == expected["pairs"]
    if command == "predict":
        assert len(lines) == expected["pairs"]
        check_probabilities(lines)
    for note in expected.get("notes", []):
        assert note in caplog.text, f"{note!r} not logged"


@pytest.mark.parametrize(("case", "command"), matrix("train", "predict", errors_only=True))
def test_corpus_case_with_skip_option(case, command, corpus, matchers, tmp_path, caplog):
    """train --skip-invalid skips exactly the invalid line; predict --on-invalid nan writes nan in its place."""
    caplog.set_level(logging.INFO)
    expected = expectation(case, command)
    if "skip_message" in expected or not expected.get("skippable"):
        with pytest.raises(InputError) as caught:
            run_command(command, case, corpus, matchers, tmp_path, skip=True)
        if "skip_message" in expected:
            expected = {"message": expected["skip_message"]}
        check_error(caught.value, case, expected, corpus, command)
        return

    pairs, lines = run_command(command, case, corpus, matchers, tmp_path, skip=True)
    assert pairs == expected["pairs"]
    if command == "train":
        rejects = (tmp_path / "rejects.tsv").read_text(encoding="utf-8").splitlines()
        assert len(rejects) == 2
        assert rejects[1].split("\t")[1] == str(expected["line"])
        return
    assert len(lines) == expected["pairs"] + 1
    check_probabilities(lines, nan_line=expected["line"])
    assert f"{case['file']}:{expected['line']}: " in caplog.text


NAN_CASES = [case for case in CASES
             if expectation(case, "predict")["expect"] == "error" and expectation(case, "predict").get("skippable")]


@pytest.mark.parametrize("case", NAN_CASES, ids=lambda case: case["name"])
def test_nan_lines_keep_other_predictions_in_place(case, corpus, matchers, tmp_path):
    """Each valid line's probability equals the one predicted from the file with the invalid line deleted."""
    source = (corpus / case["file"]).read_bytes().split(b"\n")
    cleaned = tmp_path / ("cleaned" + "".join(Path(case["file"]).suffixes))
    cleaned.write_bytes(b"\n".join(source[:case["line"] - 1] + source[case["line"]:]))
    matcher = matchers[case["format"]]
    predict_file(matcher, corpus / case["file"], tmp_path / "with_nan.txt", on_invalid="nan", chunk_lines=2)
    predict_file(matcher, cleaned, tmp_path / "cleaned.txt")

    with_nan = (tmp_path / "with_nan.txt").read_text(encoding="utf-8").splitlines()
    reference = (tmp_path / "cleaned.txt").read_text(encoding="utf-8").splitlines()
    assert with_nan.pop(case["line"] - 1) == "nan"
    assert len(with_nan) == len(reference)
    for kept, expected in zip(with_nan, reference):
        assert math.isclose(float(kept), float(expected), abs_tol=2e-6)


# Cases outside the one-file-per-fault matrix ---------------------------------------------


def test_manifest_names_every_corpus_file(corpus):
    listed = {case["file"] for case in CASES}
    committed = {path.name for path in CORPUS.glob("*.tsv")}
    generated = set(load_generator().generated_files())
    assert listed == committed | generated
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    for case in CASES:
        assert f"`{case['file']}`" in readme, case["file"]


def test_drop_duplicates_counts_dropped_pairs(corpus, caplog):
    caplog.set_level(logging.INFO)
    pairs = read_pairs(corpus / "duplicate_pairs.tsv", labels="required", drop_duplicates=True)
    assert len(pairs) == 3
    assert pairs.line_numbers.tolist() == [1, 2, 5]
    assert "repeated pairs dropped: 2" in caplog.text


def test_blank_lines_in_middle_of_predict_file(corpus, matchers, tmp_path):
    path = tmp_path / "gaps.tsv"
    path.write_text("打开蓝牙\t帮我开一下蓝牙\n\n   \n来首歌\t放首歌\n\n今天天气怎么样\t明天天气怎么样\n\n\n",
                    encoding="utf-8")
    output = tmp_path / "out.txt"
    counts = predict_file(matchers["text"], path, output, on_invalid="nan", chunk_lines=2)
    lines = output.read_text(encoding="utf-8").splitlines()
    assert [line == "nan" for line in lines] == [False, True, True, False, True, False]
    assert counts["pairs"] == 6
    assert counts["invalid_lines"] == 3


def test_invalid_line_in_later_chunk_keeps_order(matchers, tmp_path):
    pairs = [f"{i % 9 + 1} {i % 7 + 1}\t{i % 5 + 1}" for i in range(50)]
    pairs[37] = "4 -1\t3"
    path = tmp_path / "chunks.ids.tsv"
    path.write_text("\n".join(pairs) + "\n", encoding="utf-8")
    output = tmp_path / "out.txt"
    predict_file(matchers["ids"], path, output, on_invalid="nan", chunk_lines=8)
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50
    assert [number for number, line in enumerate(lines, start=1) if line == "nan"] == [38]


def test_nan_warnings_limited_to_twenty(matchers, tmp_path, caplog):
    path = tmp_path / "many_invalid.ids.tsv"
    path.write_text("1 2\t3\n" + "1 x\t3\n" * 25 + "4\t5\n", encoding="utf-8")
    counts = predict_file(matchers["ids"], path, tmp_path / "out.txt", on_invalid="nan")
    assert counts["invalid_lines"] == 25
    line_warnings = [record for record in caplog.records if record.getMessage().endswith("wrote nan")]
    assert len(line_warnings) == 20
    assert "5 more invalid lines written as nan (only the first 20 are listed)" in caplog.text


def test_failed_predict_leaves_no_output(corpus, matchers, tmp_path):
    output = tmp_path / "result.txt"
    with pytest.raises(InputError):
        predict_file(matchers["text"], corpus / "label_2.tsv", output, chunk_lines=1)
    assert list(tmp_path.iterdir()) == []


def test_ids_file_for_text_model_rejected(corpus, matchers, tmp_path):
    with pytest.raises(InputError, match="this model reads raw text but the file looks like token IDs") as caught:
        predict_file(matchers["text"], corpus / "good.ids.tsv", tmp_path / "out.txt")
    assert "--format text" in str(caught.value)


def test_explicit_format_skips_detection(corpus, matchers, tmp_path):
    output = tmp_path / "out.txt"
    predict_file(matchers["text"], corpus / "good.ids.tsv", output, input_format="text")
    assert len(output.read_text(encoding="utf-8").splitlines()) == 4


def test_negative_id_keeps_ids_format_detected(corpus):
    with pytest.raises(InputError, match="invalid token '-5'"):
        read_pairs(corpus / "negative_id.ids.tsv")


def test_unknown_encoding_rejected(corpus):
    with pytest.raises(InputError, match="unknown encoding 'latin-9x'"):
        read_pairs(corpus / "good.tsv", encoding="latin-9x")


def test_utf16_encoding_option_rejected(corpus):
    with pytest.raises(InputError, match="encoding 'utf-16' is not supported") as caught:
        list(iter_pair_chunks(corpus / "utf16.tsv", encoding="utf-16"))
    assert "iconv -f utf-16 -t UTF-8" in str(caught.value)


def test_gb18030_reads_gbk_file(corpus):
    assert len(read_pairs(corpus / "gbk.tsv", encoding="gb18030")) == 3


def test_mixed_label_columns_across_files_rejected(corpus, tmp_path):
    unlabeled = tmp_path / "unlabeled.tsv"
    unlabeled.write_text("打开\t关闭\n", encoding="utf-8")
    with pytest.raises(InputError, match="some input files have a label column"):
        read_pairs([corpus / "good.tsv", unlabeled])


def test_empty_file_among_several_named(corpus):
    with pytest.raises(InputError) as caught:
        read_pairs([corpus / "good.tsv", corpus / "empty.tsv"], labels="required")
    assert str(caught.value).startswith(f"{corpus / 'empty.tsv'}: no valid query pairs: the file is empty")


def test_all_lines_skipped_rejected(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("a\tb\t7\nc\td\t8\n", encoding="utf-8")
    rejects = tmp_path / "rejects.tsv"
    with pytest.raises(InputError, match="all 2 lines are invalid") as caught:
        read_pairs(path, labels="required", on_invalid="skip", rejects_path=rejects)
    assert str(rejects) in str(caught.value)
    assert len(rejects.read_text(encoding="utf-8").splitlines()) == 3


def test_rejects_file_escapes_control_characters(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes("打开\t关闭\t1\n打\x00开\t关闭\t1\n".encode() + b"\xff\xfe\tx\t1\n")
    rejects = tmp_path / "rejects.tsv"
    read_pairs(path, on_invalid="skip", rejects_path=rejects)
    rows = [row.split("\t") for row in rejects.read_text(encoding="utf-8").splitlines()]
    assert [len(row) for row in rows] == [4, 4, 4]
    assert rows[1][3] == "打\\x00开\\t关闭\\t1"
    assert rows[2][3] == "\\\\xff\\\\xfe\\tx\\t1"


# Through the command line, in subprocesses -------------------------------------------------


def semmatch(*args) -> subprocess.CompletedProcess:
    # One OpenMP thread for the same reason as in the `matchers` fixture.
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "semmatch", *map(str, args)], capture_output=True, text=True,
                          env=environment)


def check_exit_2(result: subprocess.CompletedProcess, location: str, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    assert location in errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_cli_train_float_label_exits_2(corpus, tmp_path):
    path = corpus / "float_label.tsv"
    result = semmatch("train", "--train", path, "--output-dir", tmp_path / "run", "--epochs", 1)
    check_exit_2(result, f"{path}:2: ", "invalid label '1.0'", "write 1 instead of 1.0", "--skip-invalid")


def test_cli_train_accepts_bom_and_crlf(corpus, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text("[model]\nembedding_dim = 16\nlstm_hidden = 8\nattention_heads = 2\nattention_head_dim = 8\n"
                      "conv_channels = 16\nprojection_dim = 16\nhead_hidden = [16, 8]\n", encoding="utf-8")
    result = semmatch("train", "--train", corpus / "crlf.tsv", "--valid", corpus / "bom.tsv", "--config", config,
                      "--epochs", 1, "--batch-size", 64, "--output-dir", tmp_path / "run", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "lines ending in CRLF (Windows line ends, accepted): 3" in result.stderr
    assert "files starting with a UTF-8 byte order mark (BOM, removed): 1" in result.stderr
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()


def test_cli_evaluate_negative_id_exits_2(corpus, model_dirs):
    path = corpus / "negative_id.ids.tsv"
    result = semmatch("evaluate", "--model", model_dirs["ids"], "--input", path, "--device", "cpu")
    check_exit_2(result, f"{path}:2: ", "invalid token '-5'")
    assert "--skip-invalid" not in result.stderr


def test_cli_predict_gbk_needs_encoding_option(corpus, model_dirs, tmp_path):
    path = corpus / "gbk.tsv"
    output = tmp_path / "result.txt"
    failed = semmatch("predict", "--model", model_dirs["text"], "--input", path, "--output", output, "--device", "cpu")
    check_exit_2(failed, f"{path}:1: ", "looks GBK-encoded", "--encoding gbk")
    assert not output.exists()

    passed = semmatch("predict", "--model", model_dirs["text"], "--input", path, "--output", output,
                      "--device", "cpu", "--encoding", "gbk")
    assert passed.returncode == 0, passed.stderr
    assert len(output.read_text(encoding="utf-8").splitlines()) == 3


def test_cli_predict_nan_keeps_line_positions(corpus, model_dirs, tmp_path):
    output = tmp_path / "result.txt"
    result = semmatch("predict", "--model", model_dirs["text"], "--input", corpus / "blank_line_in_middle.tsv",
                      "--output", output, "--on-invalid", "nan", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    lines = output.read_text(encoding="utf-8").splitlines()
    assert [line == "nan" for line in lines] == [False, True, False, False]
    assert f"{corpus / 'blank_line_in_middle.tsv'}:2: blank line: wrote nan" in result.stderr


def test_cli_main_header_only_returns_2(corpus, model_dirs, tmp_path, caplog):
    """The same error path in-process: main() returns 2 and logs one error."""
    path = corpus / "header_only.tsv"
    status = main(["predict", "--model", str(model_dirs["text"]), "--input", str(path),
                   "--output", str(tmp_path / "out.txt"), "--device", "cpu"])
    assert status == 2
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage().startswith(f"{path}: no valid query pairs: the file contains only a header row")


def test_cli_main_unknown_encoding_returns_2(corpus, model_dirs, tmp_path, caplog):
    status = main(["evaluate", "--model", str(model_dirs["text"]), "--input", str(corpus / "good.tsv"),
                   "--device", "cpu", "--encoding", "nope"])
    assert status == 2
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == ["unknown encoding 'nope': pass a Python codec name such as utf-8, gbk or gb18030"]
