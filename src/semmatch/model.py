"""The matchers: one shared QueryEncoder for both queries and an MLP head over fused features.

TwoTowerModel encodes each query on its own, so query vectors can be cached, indexed and
exported. InteractionModel lets the two queries' token states attend to each other before
pooling (ESIM's local inference), which scores pairs jointly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from semmatch.config import ModelConfig
from semmatch.errors import ConfigError
from semmatch.encoder import QueryEncoder


def fusion_width(config: ModelConfig) -> int:
    vector_features = sum(name != "cosine" for name in config.fusion)
    return vector_features * config.projection_dim + ("cosine" in config.fusion)


def fuse(u: torch.Tensor, v: torch.Tensor, features: tuple[str, ...]) -> torch.Tensor:
    """Concatenate the configured features of two query vectors: (batch, dim) x2 -> (batch, width)."""
    parts = []
    for name in features:
        if name == "u":
            parts.append(u)
        elif name == "v":
            parts.append(v)
        elif name == "abs_diff":
            parts.append((u - v).abs())
        elif name == "product":
            parts.append(u * v)
        elif name == "cosine":
            parts.append(F.cosine_similarity(u, v, dim=-1, eps=1e-8).unsqueeze(-1))
    return torch.cat(parts, dim=-1)


class MatchHead(nn.Module):
    """MLP from fused pair features to one match logit (reference: 256 and 128 ReLU, dropout 0.3)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.features = config.fusion
        self.symmetric = config.symmetric
        layers: list[nn.Module] = []
        width = fusion_width(config)
        for hidden in config.head_hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # u, v: (batch, projection_dim) -> (batch,) logits
        if not self.symmetric:
            return self.mlp(fuse(u, v, self.features)).squeeze(-1)
        # The mean logit of both orders makes the score independent of query order, in training
        # as in prediction. Two MLP calls (not one on a concatenated batch) keep the batch
        # dimension dynamic in ONNX export.
        forward_logits = self.mlp(fuse(u, v, self.features)).squeeze(-1)
        swapped_logits = self.mlp(fuse(v, u, self.features)).squeeze(-1)
        return 0.5 * (forward_logits + swapped_logits)


class TwoTowerModel(nn.Module):
    """Encoder shared by both queries plus the matching head; outputs logits (sigmoid gives P(match))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        _check_architecture(config, "two_tower")
        self.config = config
        self.encoder = QueryEncoder(config)
        self.head = MatchHead(config)
        init_like_keras(self)

    def forward(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Score pairs encoded in one encoder call.

        Args:
            token_ids: (2 * batch, seq_len): the first half holds the batch's first queries, the
                second half their partners.
            lengths: (2 * batch,) real tokens per query.

        Returns:
            (batch,) match logits.
        """
        vectors = self.encoder(token_ids, lengths)  # (2 * batch, dim)
        u, v = vectors.chunk(2, dim=0)
        return self.head(u, v)


class CrossAttention(nn.Module):
    """ESIM-style local inference between two queries' token states.

    Each token is softly aligned with the other query's real tokens by scaled dot-product
    attention. The features [x, aligned, x - aligned, x * aligned] are then projected back to the
    state width.
    """

    def __init__(self, width: int):
        super().__init__()
        self.scale = width ** -0.5
        self.enhance = nn.Linear(4 * width, width)

    def align(self, x: torch.Tensor, other: torch.Tensor, other_mask: torch.Tensor) -> torch.Tensor:
        """Enhanced states of `x` (batch, len_x, width) aligned with `other` (batch, len_other, width)."""
        aligned = F.scaled_dot_product_attention(x, other, other, attn_mask=other_mask[:, None, :], scale=self.scale)
        features = torch.cat([x, aligned, x - aligned, x * aligned], dim=-1)
        return F.relu(self.enhance(features))

    def forward(self, a: torch.Tensor, a_mask: torch.Tensor, b: torch.Tensor, b_mask: torch.Tensor):
        # Swapping (a, b) swaps the outputs, so a symmetric head stays order independent.
        return self.align(a, b, b_mask), self.align(b, a, a_mask)


class InteractionModel(nn.Module):
    """Cross-attention matcher: shared encoder states, ESIM-style alignment, the encoder's pooling, the head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        _check_architecture(config, "interaction")
        self.config = config
        self.encoder = QueryEncoder(config)
        self.cross = CrossAttention(2 * config.lstm_hidden)
        self.head = MatchHead(config)
        init_like_keras(self)

    def forward(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Score pairs laid out as in TwoTowerModel.forward: (2 * batch, seq_len) -> (batch,) logits."""
        states, mask = self.encoder.contextualize(token_ids, lengths)  # (2 * batch, seq_len, width)
        a, b = states.chunk(2, dim=0)
        a_mask, b_mask = mask.chunk(2, dim=0)
        a, b = self.cross(a, a_mask, b, b_mask)
        vectors = self.encoder.pool(torch.cat([a, b], dim=0), mask, lengths)  # (2 * batch, dim)
        u, v = vectors.chunk(2, dim=0)
        return self.head(u, v)


PairModel = TwoTowerModel | InteractionModel


def _check_architecture(config: ModelConfig, expected: str) -> None:
    # The saved config decides which class loads the weights, so it must name this class.
    if config.architecture != expected:
        raise ConfigError(f"a {expected} model needs ModelConfig(architecture={expected!r}), "
                          f"got {config.architecture!r}; build_model(config) picks the class")


def build_model(config: ModelConfig) -> PairModel:
    """Build the network that `config.architecture` names."""
    return InteractionModel(config) if config.architecture == "interaction" else TwoTowerModel(config)


def init_like_keras(model: nn.Module) -> None:
    """Initialize weights as Keras layers do by default, the reference's starting point.

    Dense and Conv1D kernels: Glorot uniform, zero bias; LSTM: Glorot uniform input kernel,
    orthogonal recurrent kernel, forget-gate bias 1; embeddings: uniform(-0.05, 0.05).
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.uniform_(module.weight, -0.05, 0.05)
        elif isinstance(module, nn.LSTM):
            hidden = module.hidden_size
            for name, parameter in module.named_parameters():
                if name.startswith("weight_ih"):
                    # Keras initializes the (input, 4 * hidden) kernel as one matrix.
                    nn.init.xavier_uniform_(parameter)
                elif name.startswith("weight_hh"):
                    for gate in range(4):
                        nn.init.orthogonal_(parameter.data[gate * hidden:(gate + 1) * hidden])
                elif name.startswith("bias_ih"):
                    nn.init.zeros_(parameter)
                    parameter.data[hidden:2 * hidden] = 1.0  # PyTorch gate order: input, forget, cell, output
                elif name.startswith("bias_hh"):
                    nn.init.zeros_(parameter)
