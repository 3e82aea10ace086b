"""Tokenizer and vocabularies."""

from __future__ import annotations

import numpy as np

from semmatch.tokenize import OOV_ID, IdVocabulary, Vocabulary, tokenize


def test_chinese_split_per_character():
    assert tokenize("打开蓝牙") == ["打", "开", "蓝", "牙"]


def test_latin_and_digit_runs_kept_whole():
    assert tokenize("我的reno5多少钱") == ["我", "的", "reno5", "多", "少", "钱"]
    assert tokenize("OPPO Find X3") == ["oppo", "find", "x3"]


def test_full_width_forms_normalized():
    assert tokenize("ＲＥＮＯ５？") == ["reno5", "?"]


def test_vocabulary_orders_by_frequency_and_maps_unknown():
    vocabulary = Vocabulary.build(["打开蓝牙", "打开wifi", "关闭蓝牙"])
    assert vocabulary.tokens[:2] == ["[PAD]", "[UNK]"]
    assert vocabulary.tokens[2:6] == ["开", "打", "牙", "蓝"]
    tokens, offsets, oov = vocabulary.encode(["打开5g", "wifi"])
    assert offsets.tolist() == [0, 3, 4]
    assert tokens[2] == OOV_ID
    assert oov == 1


def test_vocabulary_save_load_round_trip(tmp_path):
    vocabulary = Vocabulary.build(["打开蓝牙", "reno5 pro"])
    vocabulary.save(tmp_path / "vocab.txt")
    assert Vocabulary.load(tmp_path / "vocab.txt").tokens == vocabulary.tokens


def test_id_vocabulary_maps_larger_ids_to_oov_row():
    vocabulary = IdVocabulary(max_id=100)
    rows, unseen = vocabulary.map_ids(np.array([1, 100, 101, 33957]))
    assert rows.tolist() == [1, 100, 101, 101]
    assert unseen == 2
    assert len(vocabulary) == 102
