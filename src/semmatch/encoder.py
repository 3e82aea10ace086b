"""The shared query encoder: embeddings, BiLSTM, self-attention, convolutions, pooling.

Every step ignores padded positions, so a query's vector does not depend on how far its batch
was padded (the reference Keras model's convolutions dropped the mask, and its poolings ran over
padding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from semmatch.config import ModelConfig


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `lengths[i]` steps and leave its padding in place.

    The permutation is its own inverse, so applying it twice restores the input.
    """
    batch, seq_len = x.shape[:2]
    positions = torch.arange(seq_len, device=x.device).unsqueeze(0)  # (1, seq_len)
    last = (lengths - 1).unsqueeze(1)  # (batch, 1)
    index = torch.where(positions <= last, last - positions, positions)  # (batch, seq_len)
    return x.gather(1, index.unsqueeze(-1).expand(batch, seq_len, x.shape[-1]))


class MaskedBiLSTM(nn.Module):
    """A bidirectional LSTM over right-padded sequences whose outputs ignore padding.

    The backward direction runs over each sequence reversed within its own length, which gives
    the same result as a packed sequence while letting PyTorch use its fused (oneDNN or cuDNN)
    kernels for padded batches.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # x: (batch, seq_len, input_size) -> (batch, seq_len, 2 * hidden_size)
        forward_out, _ = self.forward_lstm(x)
        backward_out, _ = self.backward_lstm(reverse_within_length(x, lengths))
        backward_out = reverse_within_length(backward_out, lengths)
        return torch.cat([forward_out, backward_out], dim=-1)


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention whose keys exclude padded positions."""

    def __init__(self, width: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.qkv = nn.Linear(width, 3 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, seq_len, _ = x.shape
        qkv = self.qkv(x).view(batch, seq_len, 3, self.heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, seq_len, head_dim)
        key_mask = mask[:, None, None, :]  # (batch, 1, 1, seq_len): True where a key is real
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask)
        attended = attended.transpose(1, 2).reshape(batch, seq_len, self.heads * self.head_dim)
        return self.out(attended)


class QueryEncoder(nn.Module):
    """Encode token IDs into one vector per query.

    Steps (reference sizes): token + learned position embedding (256), BiLSTM (2 x 128),
    4-head self-attention with a residual connection and LayerNorm, Conv1D 256 k3 and k5 with
    ReLU, masked average and max pooling (512), Dense 512 ReLU with dropout 0.3.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        width = 2 * config.lstm_hidden
        self.token_embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, config.embedding_dim)
        self.bilstm = MaskedBiLSTM(config.embedding_dim, config.lstm_hidden)
        self.attention = MaskedSelfAttention(width, config.attention_heads, config.attention_head_dim)
        # Keras LayerNormalization's default epsilon, which the reference used.
        self.norm = nn.LayerNorm(width, eps=1e-3)
        convs = []
        in_channels = width
        for kernel in config.conv_kernel_sizes:
            convs.append(nn.Conv1d(in_channels, config.conv_channels, kernel, padding=kernel // 2))
            in_channels = config.conv_channels
        self.convs = nn.ModuleList(convs)
        self.projection = nn.Linear(2 * config.conv_channels, config.projection_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)

    def forward(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encode a right-padded batch.

        Args:
            token_ids: (batch, seq_len) int64, 0 at padded positions; seq_len <= max_len.
            lengths: (batch,) number of real tokens per query, at least 1.

        Returns:
            (batch, projection_dim) query vectors.
        """
        states, mask = self.contextualize(token_ids, lengths)
        return self.pool(states, mask, lengths)

    def contextualize(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed, run the BiLSTM and self-attention: one state per token.

        Returns:
            (batch, seq_len, 2 * lstm_hidden) token states and the (batch, seq_len) mask, True at real tokens.
        """
        seq_len = token_ids.shape[1]
        positions = torch.arange(seq_len, device=token_ids.device)
        mask = positions.unsqueeze(0) < lengths.unsqueeze(1)  # (batch, seq_len)
        x = self.token_embedding(token_ids) + self.position_embedding(positions)  # (batch, seq_len, emb)
        x = self.embedding_dropout(x)
        x = self.bilstm(x, lengths)  # (batch, seq_len, width)
        return self.norm(x + self.attention(x, mask)), mask

    def pool(self, states: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Convolve token states, pool over real tokens and project: (batch, seq_len, width) -> (batch, projection_dim)."""
        # Convolutions see zeros beyond each query's end, exactly as an unpadded query would.
        hidden = states.transpose(1, 2)  # (batch, width, seq_len)
        channel_mask = mask.unsqueeze(1)  # (batch, 1, seq_len)
        for conv in self.convs:
            hidden = F.relu(conv(hidden.masked_fill(~channel_mask, 0.0)))
        hidden = hidden.transpose(1, 2)  # (batch, seq_len, channels)

        mask_3d = mask.unsqueeze(-1)  # (batch, seq_len, 1)
        counts = lengths.unsqueeze(1).to(hidden.dtype)  # (batch, 1)
        mean_pool = hidden.masked_fill(~mask_3d, 0.0).sum(dim=1) / counts
        max_pool = hidden.masked_fill(~mask_3d, float("-inf")).amax(dim=1)
        pooled = torch.cat([mean_pool, max_pool], dim=-1)  # (batch, 2 * channels)
        return self.dropout(F.relu(self.projection(pooled)))  # (batch, projection_dim)

    def l2_parameters(self) -> list[nn.Parameter]:
        """Weights the reference regularized with L2 1e-5: embeddings and LSTM kernels."""
        lstm_weights = [p for name, p in self.bilstm.named_parameters() if name.split(".")[-1].startswith("weight")]
        return [self.token_embedding.weight, *lstm_weights]
