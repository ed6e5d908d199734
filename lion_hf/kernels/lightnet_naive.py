# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Plain float64 references of bidirectional LightNet, written from the formulas (for tests, not for speed).

* :func:`naive_lightnet_attention` runs LightNet's additive recurrence token by token,
  ``s_t = s_{t-1} + exp(k_t) ⊙_rows v_t^T`` and ``Δ_t = Δ_{t-1} + exp(k_t)`` (one entry per key feature),
  and reads the final (global) state: ``o_t = SiLU(q_t) · (s_L / Δ_L)``, the bidirectional form in which every
  token sees the whole sequence. Padded tokens are skipped by the recurrence.
* :func:`naive_lightnet_mixer` is the whole mixer: projection, attention, RMSNorm over the width, output gate
  ``act(x W_down W_up)`` and output projection.

Nothing here shares code with :mod:`lion_hf.kernels.lightnet` (which uses the LION operator).
"""

from __future__ import annotations

import torch


def naive_lightnet_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, L, H, D]`` raw (pre-activation) q, k and values -> ``[B, L, H, D]`` float64 outputs.

    A sequence without any real token has an empty state: its outputs are zeros.
    """
    q, k, v = q.double(), k.double(), v.double()
    batch, length, heads, dim = q.shape
    out = torch.zeros(batch, length, heads, v.shape[-1], dtype=torch.float64)
    for b in range(batch):
        for h in range(heads):
            real = [j for j in range(length) if key_padding_mask is None or bool(key_padding_mask[b, j])]
            if not real:
                continue
            # a common shift of each feature keeps exp() finite; it cancels in s / Δ
            shift = torch.stack([k[b, j, h] for j in real]).max(dim=0).values
            state = torch.zeros(dim, v.shape[-1], dtype=torch.float64)
            total = torch.zeros(dim, dtype=torch.float64)
            for j in real:  # the additive recurrence (order does not matter for the final state)
                weight = torch.exp(k[b, j, h] - shift)
                state = state + weight[:, None] * v[b, j, h][None, :]
                total = total + weight
            global_state = state / total[:, None]
            for t in range(length):
                query = q[b, t, h] / (1.0 + torch.exp(-q[b, t, h]))  # SiLU
                out[b, t, h] = query @ global_state
    return out


def naive_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last dimension, float64."""
    x = x.double()
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * weight.double()


def naive_lightnet_mixer(hidden: torch.Tensor, *, qkv_weight, qkv_bias, norm_weight, norm_eps: float, gate_down,
                         gate_up, gate_activation: str, out_weight, out_bias, num_heads: int,
                         attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The LightNet mixer on ``hidden [B, L, W]`` in float64 (weights in ``nn.Linear`` layout ``[out, in]``)."""
    x = hidden.double()
    batch, length, width = x.shape
    dim = width // num_heads
    projected = x @ qkv_weight.double().T + (0.0 if qkv_bias is None else qkv_bias.double())
    q, k, v = (projected[..., i * width:(i + 1) * width].reshape(batch, length, num_heads, dim) for i in range(3))
    mask = None if attention_mask is None else attention_mask.bool()
    o = naive_lightnet_attention(q, k, v, mask).reshape(batch, length, width)
    o = naive_rms_norm(o, norm_weight, norm_eps)
    z = (x @ gate_down.double().T) @ gate_up.double().T
    if gate_activation == "sigmoid":
        gate = 1.0 / (1.0 + torch.exp(-z))
    elif gate_activation == "silu":
        gate = z / (1.0 + torch.exp(-z))
    else:
        raise ValueError(f"unknown gate activation {gate_activation!r}")
    return (o * gate) @ out_weight.double().T + out_bias.double()


def naive_lightnet_mixer_of(module, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`naive_lightnet_mixer` with the weights of a :class:`lion_hf.modeling.lightnet.LightNetAttention`
    (not detached: gradients reach the module's parameters)."""
    return naive_lightnet_mixer(
        hidden, qkv_weight=module.qkv.weight, qkv_bias=module.qkv.bias, norm_weight=module.norm.weight,
        norm_eps=module.norm.eps, gate_down=module.gate_down.weight, gate_up=module.gate_up.weight,
        gate_activation=module.config.lightnet_gate_activation, out_weight=module.out_proj.weight,
        out_bias=module.out_proj.bias, num_heads=module.num_heads, attention_mask=attention_mask)


__all__ = ["naive_lightnet_attention", "naive_lightnet_mixer", "naive_lightnet_mixer_of", "naive_rms_norm"]
