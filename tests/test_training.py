"""Training behaviour: recipe pieces, determinism, and learning on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import small_model_config
from semmatch.batching import bucketed_batches
from semmatch.config import TrainConfig
from semmatch.train import EarlyStopping, build_optimizer, fit, lr_factor, prepare_data
from semmatch.model import TwoTowerModel


def test_lr_schedule_decays_after_epoch_five():
    config = TrainConfig()
    factors = [lr_factor(epoch, config) for epoch in range(8)]
    assert factors[:5] == [1.0] * 5
    assert factors[5:] == pytest.approx([0.9, 0.81, 0.729])


def test_early_stopping_waits_patience_epochs():
    stopper = EarlyStopping(patience=2)
    assert stopper.update(0.8, 1)
    assert not stopper.update(0.79, 2)
    assert not stopper.should_stop
    assert not stopper.update(0.80, 3)
    assert stopper.should_stop
    assert stopper.best_epoch == 1


def test_l2_applies_to_embeddings_and_lstm_only():
    model = TwoTowerModel(small_model_config(vocab_size=30))
    optimizer = build_optimizer(model, TrainConfig(l2=1e-5))
    regularized, others = optimizer.param_groups
    assert regularized["weight_decay"] == pytest.approx(2e-5)
    assert others["weight_decay"] == 0.0
    assert any(p is model.encoder.token_embedding.weight for p in regularized["params"])
    assert not any(p is model.head.mlp[0].weight for p in regularized["params"])


def test_bucketed_batches_use_every_pair_once():
    lengths = np.random.default_rng(0).integers(1, 40, size=1000)
    batches = bucketed_batches(lengths, 64, np.random.default_rng(1), pool_batches=4)
    flat = np.concatenate(batches)
    assert np.array_equal(np.sort(flat), np.arange(1000))
    spreads = [lengths[batch].max() - lengths[batch].min() for batch in batches]
    random_batches = np.array_split(np.random.default_rng(2).permutation(1000), len(batches))
    random_spreads = [lengths[batch].max() - lengths[batch].min() for batch in random_batches]
    assert np.median(spreads) < 0.5 * np.median(random_spreads)


def test_same_seed_gives_identical_history(sample_dir, tmp_path):
    config = TrainConfig(epochs=1, batch_size=64, seed=3)
    data = prepare_data([str(sample_dir / "train.tsv")], str(sample_dir / "valid.tsv"), config)
    first = fit(data, small_model_config(), config, tmp_path / "one", progress=False)
    second = fit(data, small_model_config(), config, tmp_path / "two", progress=False)
    assert first.history[0]["val_auc"] == second.history[0]["val_auc"]
    for (name, left), right in zip(first.matcher.model.state_dict().items(), second.matcher.model.state_dict().values()):
        assert torch.equal(left, right), name


def test_training_on_real_ids_slice_beats_chance(real_data, tmp_path):
    """A reduced model trained on 24,000 real pairs must reach validation AUC of at least 0.65."""
    source = real_data / "xiaobu" / "pairs.ids.tsv"
    slice_path = tmp_path / "slice.tsv"
    with open(source, encoding="utf-8") as handle:
        slice_path.write_text("".join(next(handle) for _ in range(24_000)), encoding="utf-8")
    config = TrainConfig(epochs=2, batch_size=256, seed=42)
    data = prepare_data([str(slice_path)], None, config)
    result = fit(data, small_model_config(embedding_dim=64, lstm_hidden=32, attention_head_dim=32,
                                          conv_channels=64, projection_dim=64), config, tmp_path / "run", progress=False)
    assert result.metrics["best_val_auc"] >= 0.65


def test_too_few_pairs_to_split_explained(tmp_path):
    from semmatch.errors import InputError

    path = tmp_path / "one.tsv"
    path.write_text("1 2\t3\t1\n", encoding="utf-8")
    with pytest.raises(InputError, match="too few to split"):
        prepare_data([str(path)], None, TrainConfig())


def test_huge_training_id_rejected_before_allocating(tmp_path):
    from semmatch.errors import InputError

    path = tmp_path / "huge.tsv"
    path.write_text("".join(f"{i + 1}\t{i + 2}\t{i % 2}\n" for i in range(20)) + "9223372036854775807\t1\t0\n",
                    encoding="utf-8")
    valid = tmp_path / "valid.tsv"
    valid.write_text("1\t2\t1\n3\t4\t0\n", encoding="utf-8")
    with pytest.raises(InputError, match="renumber the IDs"):
        prepare_data([str(path)], str(valid), TrainConfig())


def test_output_files_get_umask_permissions(tmp_path):
    import os
    import stat

    from semmatch.fileio import atomic_directory, atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.txt", "x\n")
        with atomic_directory(tmp_path / "model") as directory:
            (directory / "f").write_text("y")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
