# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""LightNet's token mixer as an attention type of the LION models (``LionConfig(attention_type="lightnet")``).

Bidirectional LightNet (Qin et al., "You Only Scan Once: Efficient Multi-dimension Sequential Modeling with
LightNet", arXiv 2405.21022) replaces the multiplicative (decaying) recurrence of linear attention with an
additive one, whose global state ``S = Σ_j softmax_j(k) v_j^T`` does not depend on the scan order: one pass
serves every token of a sequence or an image. Per layer, for ``x [B, L, W]``:

    q = SiLU(x W_q),  k̃ = softmax over positions of x W_k,  v = x W_v        (per head, [B, L, H, D])
    o = q S   with   S = Σ_j k̃_j v_j^T                                         (no decay, no denominator)
    y = W_o (RMSNorm(o) ⊙ act(x W_down W_up))                                 (RMSNorm over the width W)

The attention runs on the LION operator (:func:`lion_hf.kernels.lightnet.lightnet_fused_attention`), so the
forms and backends of LION-LIT apply unchanged. Choices the spec leaves open and we fixed (README, "LightNet"):
scale 1 (the softmax already normalises the keys), RMSNorm over the whole width before the gate, a low-rank
gate without biases (rank ``config.lightnet_gate_rank``, default the number of heads; activation
``config.lightnet_gate_activation``, default sigmoid), the family's initialisation (``_init_weights``). The
paper's positional encodings are config options (``config.position_encoding``): MD-LRPE rotates SiLU(q) and the
normalised keys k̃ here (:mod:`lion_hf.modeling.positional`), MD-TPE mixes the layer's input
(:class:`~lion_hf.modeling.modeling_lion.LionLayer`); without them the models add learned absolute positions by
default (``use_position_embeddings``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import logging

from ..kernels import dropout_form
from ..kernels.lightnet import lightnet_fused_attention
from ..kernels.modules import plain_module
from .configuration_lion import LionConfig
from .positional import MultiDimRotaryEncoding, position_encoding_parts, positions_from_attention_mask

logger = logging.get_logger(__name__)

_GATE_ACTIVATIONS = {"sigmoid": torch.sigmoid, "silu": F.silu}


class LightNetRMSNorm(nn.Module):
    """RMSNorm over the last dimension, ``x / sqrt(mean(x^2) + eps) * weight``, in fp32 (fp64 for fp64 inputs),
    returned in ``x``'s dtype."""

    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.double() if x.dtype == torch.float64 else x.float()
        # F.rms_norm: one fused kernel on CUDA instead of five elementwise/reduction kernels
        return F.rms_norm(y, (y.shape[-1],), self.weight.to(y.dtype), self.eps).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class LightNetAttention(nn.Module):
    """LightNet mixer: fused q/k/v projection, SiLU queries, keys softmax-normalised over the positions, the
    global-state attention (LION-LIT operator, scale 1), RMSNorm, low-rank output gate, output projection.

    Parameters: ``qkv`` (q, k, v stacked on the output dim, as in ``LionAttention``), ``norm``
    (:class:`LightNetRMSNorm` over the width), ``gate_down`` ``Linear(hidden, rank)`` and ``gate_up``
    ``Linear(rank, hidden)`` (no biases), ``out_proj``.
    """

    def __init__(self, config: LionConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        rank = config.lightnet_gate_rank or config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.norm = LightNetRMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gate_down = nn.Linear(config.hidden_size, rank, bias=False)
        self.gate_up = nn.Linear(rank, config.hidden_size, bias=False)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.rotary = None
        if position_encoding_parts(config.position_encoding)[0]:
            grid = config.image_size // config.patch_size
            self.rotary = MultiDimRotaryEncoding(
                self.head_dim, 2 if config.modality == "vision" else 1, base=config.lrpe_base,
                learnable_theta=config.lrpe_learnable_theta,
                reference_grid=(grid, grid) if config.position_scaling == "interpolate" else None)

    def reads_input_through_linears_only(self) -> bool:
        """Whether ``forward`` reads ``hidden_states`` only through plain ``nn.Linear`` calls (``qkv``,
        ``gate_down``), as :meth:`~lion_hf.modeling.modeling_lion.LionAttention.reads_input_through_linears_only`."""
        return plain_module(self.qkv, nn.Linear) and plain_module(self.gate_down, nn.Linear)

    def _rotate(self, x: torch.Tensor, attention_mask: torch.Tensor | None,
                grid_size: tuple[int, int] | None) -> torch.Tensor:
        """MD-LRPE on ``x [B, L, H, D]``: patch tokens by their grid coordinates (the class token unrotated),
        text tokens by their position among the real tokens."""
        if self.config.modality == "vision":
            if grid_size is None:
                raise ValueError("MD-LRPE needs the patch grid size; call the vision model with pixel_values")
            return self.rotary(x, grid_size, num_special=1)
        position_ids = None if attention_mask is None else positions_from_attention_mask(attention_mask)
        return self.rotary(x, position_ids=position_ids)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                grid_size: tuple[int, int] | None = None, **kwargs) -> tuple[torch.Tensor, None]:
        """``hidden_states [B, L, hidden]`` -> ``([B, L, hidden], None)``; ``attention_mask [B, L]`` (1 = token).

        ``grid_size`` (the patch grid of a vision input) places the patch tokens for MD-LRPE; LightNet's state does
        not depend on the scan order, so nothing else needs it.
        """
        batch, length, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
        form = self.config.attention_form
        form, dropout_p = dropout_form(form, self.config.attention_backend,
                                       self.config.attention_probs_dropout_prob if self.training else 0.0,
                                       qkv[:, :, 0].transpose(1, 2))
        key_padding_mask = None if attention_mask is None else attention_mask.bool()
        context = lightnet_fused_attention(qkv, form=form, chunk_size=self.config.chunk_size,
                                           key_padding_mask=key_padding_mask, dropout_p=dropout_p,
                                           backend=self.config.attention_backend,
                                           rotate=None if self.rotary is None else
                                           (lambda x: self._rotate(x, attention_mask, grid_size)))
        gate = _GATE_ACTIVATIONS[self.config.lightnet_gate_activation](self.gate_up(self.gate_down(hidden_states)))
        context = self.norm(context) * gate.to(context.dtype)
        return self.dropout(self.out_proj(context)), None


__all__ = ["LightNetAttention", "LightNetRMSNorm"]
