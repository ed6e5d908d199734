# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Masked-language-modeling data helpers: BERT masking with an explicit generator, and packing."""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["mask_tokens", "pack_token_blocks"]


def mask_tokens(input_ids: torch.Tensor, *, mask_token_id: int, vocab_size: int, probability: float,
                generator: torch.Generator, special_tokens_mask: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: pick ``probability`` of the maskable tokens; of those 80% -> [MASK], 10% -> random, 10% kept.

    Randomness comes only from ``generator`` (the scripts seed it from ``(seed, step, process)``),
    so a resumed run masks exactly like an uninterrupted one and evaluation masks are fixed.

    Args:
        input_ids: ``[B, L]`` token ids.
        mask_token_id: id of the tokenizer's mask token.
        vocab_size: random replacements are drawn from ``[0, vocab_size)``.
        probability: masking rate (the paper: 0.30 in pretraining, 0.15 at evaluation).
        generator: CPU generator for all draws.
        special_tokens_mask: ``[B, L]``, 1 for [CLS]/[SEP]/... which are never masked.
        attention_mask: ``[B, L]``, 0 for padding, which is never masked.

    Returns:
        ``(masked input ids, labels)``; labels are -100 where no prediction is asked.
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"masking probability must be in (0, 1), got {probability}")
    device = input_ids.device
    ids = input_ids.detach().cpu().clone()
    maskable = torch.ones_like(ids, dtype=torch.bool)
    if special_tokens_mask is not None:
        maskable &= ~special_tokens_mask.detach().cpu().bool()
    if attention_mask is not None:
        maskable &= attention_mask.detach().cpu().bool()
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & maskable
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    draw = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(0, vocab_size, ids.shape, generator=generator, dtype=ids.dtype)
    ids = torch.where(chosen & (draw < 0.8), torch.full_like(ids, mask_token_id), ids)
    ids = torch.where(chosen & (draw >= 0.8) & (draw < 0.9), random_ids, ids)
    return ids.to(device), labels.to(device)


def pack_token_blocks(token_lists: Iterable[list[int]], block_size: int, *, cls_token_id: int | None,
                      sep_token_id: int | None) -> list[list[int]]:
    """Concatenate tokenised documents (each ended by [SEP]) and cut them into full blocks.

    Each block starts with [CLS] (when given) and is exactly ``block_size`` long; the tail that does
    not fill a block is dropped, as in BERT-style packed pretraining.
    """
    body = block_size - (1 if cls_token_id is not None else 0)
    if body <= 0:
        raise ValueError(f"block_size {block_size} is too small")
    stream: list[int] = []
    for tokens in token_lists:
        stream.extend(tokens)
        if sep_token_id is not None:
            stream.append(sep_token_id)
    blocks = []
    for start in range(0, len(stream) - body + 1, body):
        chunk = stream[start:start + body]
        blocks.append(([cls_token_id] if cls_token_id is not None else []) + chunk)
    return blocks
