"""The encoder and head: padding invariance, OOV rows, batching, config."""

from __future__ import annotations

import pytest
import torch

from conftest import small_model_config
from semmatch.config import ModelConfig
from semmatch.encoder import reverse_within_length
from semmatch.errors import ConfigError
from semmatch.model import TwoTowerModel, fusion_width


def padded(queries: list[list[int]], seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    token_ids = torch.zeros(len(queries), seq_len, dtype=torch.long)
    for row, query in enumerate(queries):
        token_ids[row, :len(query)] = torch.tensor(query)
    return token_ids, torch.tensor([len(query) for query in queries])


def test_reverse_within_length_keeps_padding_in_place():
    x = torch.arange(8.0).view(2, 4, 1)
    reversed_x = reverse_within_length(x, torch.tensor([3, 4]))
    assert reversed_x[:, :, 0].tolist() == [[2, 1, 0, 3], [7, 6, 5, 4]]
    assert torch.equal(reverse_within_length(reversed_x, torch.tensor([3, 4])), x)


@pytest.mark.parametrize("config", [small_model_config(vocab_size=50), ModelConfig(vocab_size=50)],
                         ids=["small", "reference"])
def test_pair_score_independent_of_padding(config):
    torch.manual_seed(0)
    model = TwoTowerModel(config).eval()
    query_a, query_b = [5, 9, 13], [7, 2, 2, 40, 8]
    long_query = list(range(1, 50)) + list(range(1, 31))  # 79 tokens, the test A/B maximum
    with torch.no_grad():
        alone = model(*padded([query_a, query_b], 5))
        batch = model(*padded([query_a, long_query, query_b, long_query], 79))
        fully_padded = model(*padded([query_a, query_b], 128))
    assert torch.allclose(alone[0], batch[0], atol=1e-5)
    assert torch.allclose(alone[0], fully_padded[0], atol=1e-5)


def test_padding_positions_get_no_gradient_influence():
    torch.manual_seed(0)
    model = TwoTowerModel(small_model_config(vocab_size=50)).eval()
    token_ids, lengths = padded([[3, 4], [5, 6, 7]], 6)
    with torch.no_grad():
        base = model(token_ids, lengths)
        token_ids[0, 2:] = 49  # garbage in padded positions must be ignored
        changed = model(token_ids, lengths)
    assert torch.allclose(base, changed, atol=1e-6)


def test_fusion_width_counts_features():
    assert fusion_width(ModelConfig()) == 1536
    assert fusion_width(ModelConfig(fusion=("u", "v", "abs_diff", "product", "cosine"))) == 2049


def test_fusion_with_cosine_and_product_runs():
    model = TwoTowerModel(small_model_config(vocab_size=20, fusion=("u", "v", "abs_diff", "product", "cosine")))
    assert model(*padded([[1, 2], [3]], 2)).shape == (1,)


def test_invalid_fusion_rejected():
    with pytest.raises(ConfigError, match="invalid fusion"):
        ModelConfig(fusion=("u", "dot"))


def test_default_config_is_reference_size():
    config = ModelConfig()
    assert (config.embedding_dim, config.lstm_hidden, config.attention_heads, config.attention_head_dim) == (256, 128, 4, 64)
    assert (config.conv_channels, config.conv_kernel_sizes, config.projection_dim, config.head_hidden) == (256, (3, 5), 512, (256, 128))
    assert config.dropout == 0.3
    assert config.max_len == 128
