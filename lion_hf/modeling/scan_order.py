# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Scan orders of a patch grid for the natural (♮) LION variants, for any grid shape.

A scan order is a permutation ``perm`` of the token sequence (class token first, then patches in
raster order): scan position ``p`` holds token ``perm[p]``. The class token stays at position 0 in
every order. The reference code builds these for square grids only; here rows and columns may differ
(e.g. after ``interpolate_pos_encoding`` to a non-square image), and the orders coincide with the
reference's on square grids.
"""

from __future__ import annotations

from functools import lru_cache

import torch


def snake_rows(rows: int, cols: int) -> list[int]:
    """Row-major snake (``s``): even rows left to right, odd rows right to left; raster patch indices."""
    order = []
    for r in range(rows):
        columns = range(cols) if r % 2 == 0 else range(cols - 1, -1, -1)
        order.extend(r * cols + c for c in columns)
    return order


def snake_columns(rows: int, cols: int) -> list[int]:
    """Column-major snake (``sr``): even columns top to bottom, odd columns bottom to top."""
    order = []
    for c in range(cols):
        rows_in_order = range(rows) if c % 2 == 0 else range(rows - 1, -1, -1)
        order.extend(r * cols + c for r in rows_in_order)
    return order


def _build(rows: int, cols: int, device: str) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    result = []
    for patch_order in (snake_rows(rows, cols), snake_columns(rows, cols)):
        perm = torch.tensor([0] + [1 + p for p in patch_order], dtype=torch.long, device=device)
        result.append((perm, torch.argsort(perm)))
    return tuple(result)


_permutations = lru_cache(maxsize=64)(_build)


def natural_scan_orders(rows: int, cols: int, device: torch.device | str = "cpu"):
    """``((perm_s, inverse_s), (perm_sr, inverse_sr))`` over ``1 + rows * cols`` tokens (cached)."""
    if torch.compiler.is_compiling():  # traced into the graph as constants; the cache is for eager calls
        return _build(rows, cols, str(device))
    return _permutations(rows, cols, str(device))
