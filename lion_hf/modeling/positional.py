# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""LightNet's two multi-dimensional relative positional encodings, for LightNet and LION models alike.

LightNet (Qin et al., "You Only Scan Once", arXiv 2405.21022) gives its order-free global state a sense of
position in two ways; both work on any grid ``(n_1, ..., n_m)`` (vision: the ``(rows, cols)`` patch grid,
tokens in raster order after ``num_special`` leading tokens such as the class token; text: ``(length,)``):

* **MD-LRPE** (:class:`MultiDimRotaryEncoding`): the head features of q and k (after the feature map) are
  split into ``m`` groups, one per axis; group ``a`` is rotated, pair by pair, by the angles
  ``n_a * theta_{a,j}`` of the token's coordinate ``n_a`` on that axis. Rotations compose, so
  ``R(p)^T R(p') = R(p' - p)`` and ``q~_t . k~_s`` depends on the grid offset only (a linearised relative
  encoding: it costs one elementwise pass over q and k and leaves every kernel unchanged). Special tokens are
  left unrotated (angle 0).
* **MD-TPE** (:class:`MultiDimToeplitzMixer`): a depthwise Toeplitz mixing along each axis, summed over the
  axes: ``y[p] = sum_a sum_{p'_a} t_a(p_a - p'_a) * x[p with p_a replaced by p'_a]``. The coefficients
  ``t_a(r) = lambda_a^{|r|} * MLP_a(r)`` (per channel) come from a small MLP of the offset (the relative
  position encoder of the Toeplitz neural network, Qin et al. 2023, arXiv 2305.04749) with a learned
  exponential decay, so any grid size is served by evaluating the MLP at its offsets.

Other resolutions: both modules compute their angles / coefficients for the grid they are called with. By
default the positions are the integer grid coordinates (a 384 px image simply has larger offsets than the
224 px one the model was trained on, as a text model sees longer texts). With ``reference_grid`` set (the
training grid, e.g. ``(14, 14)``), coordinates on an axis of ``n`` tokens are scaled by ``reference / n``
(position interpolation): the whole image spans the offsets seen in training, a token step being a fraction.

This module imports only torch and transformers (no other module of the package), so the remote-code bundler
(:mod:`lion_hf.hub.bundle`) copies it as one flat file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import logging

logger = logging.get_logger(__name__)

#: Values of the config option naming the positional encodings of the mixer (proposed field
#: ``LionConfig.position_encoding``): ``"md_lrpe_tpe"`` is LightNet's own choice (both).
POSITION_ENCODINGS = ("none", "md_lrpe", "md_tpe", "md_lrpe_tpe")
#: How the encodings follow a grid other than the training one (proposed field ``position_scaling``):
#: ``"none"`` keeps integer coordinates (extrapolation), ``"interpolate"`` scales them by training / current size.
POSITION_SCALINGS = ("none", "interpolate")

#: Default rotary base: the group of an axis with ``P`` pairs rotates pair ``j`` by ``base ** (-j / P)`` per step.
LRPE_DEFAULT_BASE = 10000.0
#: Default width of the MD-TPE relative position encoder (MLP features) and its number of residual blocks.
TPE_DEFAULT_FEATURE_DIM = 32
TPE_DEFAULT_LAYERS = 2
#: Default initial per-step decay of the MD-TPE coefficients (TNN's 0.99: long-range at 14-32 tokens per axis).
TPE_DEFAULT_DECAY = 0.99
#: MD-TPE mixes an axis of at most this many tokens by an explicit ``n x n`` Toeplitz product, longer ones by FFT.
TPE_MATMUL_MAX_LENGTH = 64
TPE_METHODS = ("auto", "matmul", "fft")


def position_encoding_parts(position_encoding: str) -> tuple[bool, bool]:
    """``(use_md_lrpe, use_md_tpe)`` of a :data:`POSITION_ENCODINGS` value; a clear error for any other."""
    if position_encoding not in POSITION_ENCODINGS:
        raise ValueError(f"position_encoding must be one of {POSITION_ENCODINGS}, got {position_encoding!r}")
    return position_encoding in ("md_lrpe", "md_lrpe_tpe"), position_encoding in ("md_tpe", "md_lrpe_tpe")


def split_rotary_pairs(head_dim: int, num_axes: int) -> tuple[int, ...]:
    """Rotary pairs per axis: ``head_dim // 2`` pairs shared out as evenly as possible, earlier axes first.

    An odd ``head_dim`` leaves its last feature unrotated; pairs that do not split evenly go to the first
    axes (``head_dim=14, num_axes=3`` -> ``(3, 2, 2)``). Every axis needs at least one pair.
    """
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim < 1:
        raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
    if isinstance(num_axes, bool) or not isinstance(num_axes, int) or num_axes < 1:
        raise ValueError(f"num_axes must be a positive int (1 for text, 2 for a patch grid), got {num_axes!r}")
    pairs = head_dim // 2
    if pairs < num_axes:
        raise ValueError(f"MD-LRPE needs at least one feature pair per axis: head_dim={head_dim} gives {pairs} "
                         f"pair(s) for {num_axes} axes; use head_dim >= {2 * num_axes} (fewer heads) or "
                         f"position_encoding='md_tpe'")
    return tuple(pairs // num_axes + (axis < pairs % num_axes) for axis in range(num_axes))


def _check_grid(grid_shape: Sequence[int], num_axes: int, name: str = "grid_shape") -> tuple[int, ...]:
    grid = tuple(grid_shape)
    if len(grid) != num_axes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in grid):
        raise ValueError(f"{name} must be {num_axes} positive int(s) (one per axis), got {grid_shape!r}")
    return grid


def _check_num_special(num_special: int, length: int) -> None:
    if isinstance(num_special, bool) or not isinstance(num_special, int) or not 0 <= num_special <= length:
        raise ValueError(f"num_special must be an int in [0, {length}] (leading tokens without a grid position), "
                         f"got {num_special!r}")


def _resolve_grid(grid_shape: Sequence[int] | None, num_axes: int, length: int, num_special: int) -> tuple[int, ...]:
    """The grid of the ``length - num_special`` non-special tokens (a 1-D default for one axis), checked."""
    _check_num_special(num_special, length)
    if grid_shape is None:
        if num_axes != 1:
            raise ValueError(f"grid_shape is needed for {num_axes} axes: pass the patch grid, e.g. (rows, cols)")
        return (length - num_special,)
    grid = _check_grid(grid_shape, num_axes)
    if math.prod(grid) + num_special != length:
        raise ValueError(f"the sequence has {length} tokens but num_special={num_special} + grid {grid} "
                         f"({math.prod(grid)} positions) = {math.prod(grid) + num_special}; pass the grid of "
                         f"these inputs (e.g. the patch grid of this image size)")
    return grid


def grid_coordinates(grid_shape: Sequence[int], device: torch.device | str | None = None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[prod(grid), m]`` coordinates of the grid's cells in raster order (the last axis fastest)."""
    axes = [torch.arange(n, device=device, dtype=dtype) for n in grid_shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(axes))


def positions_from_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` int64 positions ``0, 1, 2, ...`` counted over the real tokens only (padding gets 0).

    With these ``position_ids`` a left- or right-padded batch rotates every real token as the unpadded
    sequence does.
    """
    mask = attention_mask.to(torch.long)
    return ((mask.cumsum(-1) - 1) * mask).clamp_min(0)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # fp16/bf16 inputs are encoded in fp32 (angles, products); float64 stays float64 for the references.
    return torch.float64 if dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------------------------------------
# MD-LRPE
# --------------------------------------------------------------------------------------------------
def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs ``(x[2j], x[2j+1])`` of ``x [B, L, H, D]`` by ``angles [B or 1, L, P]``.

    ``y[2j] = x[2j] cos a_j - x[2j+1] sin a_j``, ``y[2j+1] = x[2j] sin a_j + x[2j+1] cos a_j`` for
    ``j < P``; features from ``2P`` on are returned unchanged. Computed in fp32 (fp64 for fp64 inputs) and
    returned in ``x``'s dtype; any strides are accepted.
    """
    pairs = angles.shape[-1]
    if 2 * pairs > x.shape[-1]:
        raise ValueError(f"{pairs} rotary pairs do not fit head_dim={x.shape[-1]}")
    dtype = _compute_dtype(x.dtype)
    head = x[..., : 2 * pairs].to(dtype).reshape(*x.shape[:-1], pairs, 2)
    cos = angles.to(dtype).cos()[:, :, None, :]
    sin = angles.to(dtype).sin()[:, :, None, :]
    even, odd = head[..., 0], head[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2).to(x.dtype)
    if 2 * pairs == x.shape[-1]:
        return rotated
    return torch.cat((rotated, x[..., 2 * pairs:]), dim=-1)


class MultiDimRotaryEncoding(nn.Module):
    """MD-LRPE: one rotary group of head features per grid axis.

    The ``head_dim // 2`` feature pairs are split among the ``num_axes`` axes by :func:`split_rotary_pairs`
    (axis 0 owns the first pairs, contiguous); axis ``a`` with ``P_a`` pairs has its own frequency set
    ``theta_{a,j} = base ** (-j / P_a)``, ``j < P_a`` (RoPE's schedule over the group), and its pair ``j`` of a
    token at coordinate ``n_a`` is rotated by ``n_a * s_a * theta_{a,j}`` (``s_a = reference_grid[a] / n``
    with interpolation, else 1). Heads share the frequencies. ``num_special`` leading tokens are not rotated.

    Args:
        head_dim: features per head ``D`` of the q/k this is applied to.
        num_axes: ``m``: 1 for text, 2 for an image's patch grid (3 for video, ...).
        base: rotary base (default :data:`LRPE_DEFAULT_BASE`).
        learnable_theta: learn the frequencies (parameter ``theta [P]``, initialised to the schedule above)
            instead of keeping them fixed (recomputed from ``base``; nothing is stored in the state dict).
        reference_grid: the training grid; if set, coordinates are scaled by ``reference / current`` size.

    Shapes: ``x [B, L, H, D]`` (q or k after the feature map) -> ``[B, L, H, D]``.
    """

    def __init__(self, head_dim: int, num_axes: int = 1, base: float = LRPE_DEFAULT_BASE,
                 learnable_theta: bool = False, reference_grid: Sequence[int] | None = None):
        super().__init__()
        self.head_dim = head_dim
        self.num_axes = num_axes
        self.pairs_per_axis = split_rotary_pairs(head_dim, num_axes)
        if not (isinstance(base, int | float) and not isinstance(base, bool) and base > 1):
            raise ValueError(f"the rotary base must be a number > 1, got {base!r}")
        self.base = float(base)
        self.reference_grid = None if reference_grid is None else _check_grid(reference_grid, num_axes,
                                                                             "reference_grid")
        if head_dim % 2:
            logger.info("MD-LRPE: head_dim=%d is odd; its last feature is left unrotated", head_dim)
        self.theta = nn.Parameter(self.initial_theta()) if learnable_theta else None

    @property
    def num_pairs(self) -> int:
        return sum(self.pairs_per_axis)

    def initial_theta(self, device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[P]`` frequencies, axis by axis: ``base ** (-j / P_a)`` for ``j < P_a`` (the initial values if learned).

        The model's ``_init_weights`` should copy this into ``theta`` when it is a parameter (loading on the
        meta device leaves new parameters uninitialised).
        """
        parts = [self.base ** (-torch.arange(p, device=device, dtype=torch.float64) / p) for p in self.pairs_per_axis]
        return torch.cat(parts).to(dtype)

    def frequencies(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The ``[P]`` frequencies in use (the parameter if learned)."""
        if self.theta is not None:
            return self.theta.to(dtype)
        return self.initial_theta(device, dtype)

    def _axis_of_pair(self, device) -> torch.Tensor:
        return torch.repeat_interleave(torch.arange(self.num_axes, device=device),
                                       torch.tensor(self.pairs_per_axis, device=device))

    def positions(self, batch: int, length: int, grid_shape: Sequence[int] | None = None, num_special: int = 0,
                  position_ids: torch.Tensor | None = None, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[B or 1, L, m]`` scaled coordinates of every token (0 for the special tokens)."""
        if position_ids is not None:
            _check_num_special(num_special, length)
            coords = self._coords_from_ids(position_ids, batch, length).to(device=device, dtype=dtype)
            grid = None if grid_shape is None else _resolve_grid(grid_shape, self.num_axes, length, num_special)
        else:
            grid = _resolve_grid(grid_shape, self.num_axes, length, num_special)
            cells = grid_coordinates(grid, device=device, dtype=dtype)
            coords = torch.cat((cells.new_zeros(num_special, self.num_axes), cells))[None]
        if self.reference_grid is not None and grid is not None:
            coords = coords * torch.tensor([r / n for r, n in zip(self.reference_grid, grid)], device=device,
                                           dtype=dtype)
        if num_special:
            keep = (torch.arange(length, device=device) >= num_special).to(dtype)
            coords = coords * keep[None, :, None]
        return coords

    def _coords_from_ids(self, position_ids: torch.Tensor, batch: int, length: int) -> torch.Tensor:
        ids = position_ids
        if ids.dim() == 2 and self.num_axes == 1:
            ids = ids[..., None]
        if ids.dim() != 3 or ids.shape[1] != length or ids.shape[2] != self.num_axes or ids.shape[0] not in (1, batch):
            raise ValueError(f"position_ids must be [{batch} or 1, {length}]" + (
                f" or [{batch} or 1, {length}, {self.num_axes}]" if self.num_axes == 1 else
                f", {self.num_axes}] (one coordinate per axis)") + f", got {tuple(position_ids.shape)}")
        return ids

    def angles(self, coords: torch.Tensor) -> torch.Tensor:
        """``[..., L, P]`` rotation angles of tokens at ``coords [..., L, m]``."""
        axis = self._axis_of_pair(coords.device)
        return coords[..., axis] * self.frequencies(coords.device, coords.dtype)

    def forward(self, x: torch.Tensor, grid_shape: Sequence[int] | None = None, num_special: int = 0,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Rotate ``x [B, L, H, D]``; ``grid_shape`` (default ``(L - num_special,)`` for one axis) or
        ``position_ids [B or 1, L]`` (one axis; ``[B or 1, L, m]`` for more) give the coordinates."""
        if x.dim() != 4 or x.shape[-1] != self.head_dim:
            raise ValueError(f"MD-LRPE expects [batch, length, heads, head_dim={self.head_dim}], got {tuple(x.shape)}")
        batch, length = x.shape[:2]
        coords = self.positions(batch, length, grid_shape, num_special, position_ids, x.device,
                                _compute_dtype(x.dtype))
        return apply_rotary(x, self.angles(coords))

    def extra_repr(self) -> str:
        return (f"head_dim={self.head_dim}, num_axes={self.num_axes}, pairs_per_axis={self.pairs_per_axis}, "
                f"base={self.base:g}, learnable_theta={self.theta is not None}, reference_grid={self.reference_grid}")


# --------------------------------------------------------------------------------------------------
# MD-LRPE with a normalised (num / den) linear attention
# --------------------------------------------------------------------------------------------------
Mix = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def lrpe_normalized_parts(mix: Mix, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_rotated: torch.Tensor,
                          k_rotated: torch.Tensor, denominator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                          | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(num [..., Dv], den [...])`` of a normalised linear attention with MD-LRPE.

    Rule: the rotation acts on the numerator only, ``num_i = sum_j M_ij (q~_i . k~_j) v_j``; the
    denominator keeps the unrotated, positive features, ``den_i = sum_j M_ij (q_i . k_j)``. Rotated scores
    can be negative, so a rotated denominator could vanish or change sign (LION's ``normalize=True`` divides
    by it); the unrotated one stays as positive as the feature map makes it, and with a zero angle (no
    positional signal, or the class token against itself) the output is exactly the unencoded one.

    ``mix(q, k, v)`` is the layer's un-normalised operator ``sum_j M_ij (q_i . k_j) v_j`` with its mask
    (decay, key padding, scan orders) in whatever layout it takes (feature dim last), e.g.
    ``lambda q, k, v: lion_attention_parts(q, k, v, log_decay, with_denominator=False, ...)[0]``; it is called
    twice, once with ``v`` and once with a ones column. Parts of several scan orders add up before dividing.
    ``denominator(q, k)``, if given, computes ``den [...]`` from the unrotated features instead of the ones
    column (for kernels without a 1-wide value path, e.g. the operator's own denominator output).
    """
    num = mix(q_rotated, k_rotated, v)
    den = mix(q, k, v.new_ones(v.shape[:-1] + (1,)))[..., 0] if denominator is None else denominator(q, k)
    return num, den


def lrpe_normalized_attention(mix: Mix, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_rotated: torch.Tensor,
                              k_rotated: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """``num / (den + eps)`` of :func:`lrpe_normalized_parts` (``[..., Dv]``)."""
    num, den = lrpe_normalized_parts(mix, q, k, v, q_rotated, k_rotated)
    return num / (den + eps)[..., None]


# --------------------------------------------------------------------------------------------------
# MD-TPE
# --------------------------------------------------------------------------------------------------
class RelativePositionEncoder(nn.Module):
    """Small MLP ``offset -> [channels]`` (TNN's relative position encoder).

    The offset ``u`` enters as sinusoidal features ``[cos(u w_j), sin(u w_j)]``, ``w_j = base ** (-j / h)``,
    ``j < h = feature_dim // 2`` (smooth in ``u``, defined for any offset, non-degenerate whatever the
    initialisation of the first layer), then ``in_proj``, ``num_layers`` residual blocks
    ``u + Linear(SiLU(LayerNorm(u)))`` and ``out = Linear(SiLU(LayerNorm(.)))`` to ``channels``.

    Shapes: ``offsets [N]`` -> ``[N, channels]``.
    """

    def __init__(self, channels: int, feature_dim: int = TPE_DEFAULT_FEATURE_DIM, num_layers: int = TPE_DEFAULT_LAYERS,
                 base: float = LRPE_DEFAULT_BASE):
        super().__init__()
        if isinstance(feature_dim, bool) or not isinstance(feature_dim, int) or feature_dim < 2 or feature_dim % 2:
            raise ValueError(f"the MD-TPE feature_dim must be an even int >= 2, got {feature_dim!r}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"the MD-TPE num_layers must be an int >= 0, got {num_layers!r}")
        self.feature_dim = feature_dim
        self.base = float(base)
        self.in_proj = nn.Linear(feature_dim, feature_dim)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(feature_dim), nn.SiLU(), nn.Linear(feature_dim, feature_dim))
            for _ in range(num_layers))
        self.out = nn.Sequential(nn.LayerNorm(feature_dim), nn.SiLU(), nn.Linear(feature_dim, channels))

    def features(self, offsets: torch.Tensor) -> torch.Tensor:
        """``[N, feature_dim]`` sinusoidal features of ``offsets [N]``."""
        half = self.feature_dim // 2
        omega = self.base ** (-torch.arange(half, device=offsets.device, dtype=torch.float64) / half)
        phase = offsets[:, None] * omega.to(offsets.dtype)
        return torch.cat((phase.cos(), phase.sin()), dim=-1)

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        hidden = self.in_proj(self.features(offsets).to(self.in_proj.weight.dtype))
        for layer in self.layers:
            hidden = hidden + layer(hidden)
        return self.out(hidden)


class MultiDimToeplitzMixer(nn.Module):
    """MD-TPE: depthwise Toeplitz mixing along each grid axis, summed over the axes.

    For patch tokens at grid coordinates ``p = (p_1, ..., p_m)``::

        y[p, c] = sum_a sum_{q_a < n_a} t_a(p_a - q_a)[c] * x[p_1, .., q_a, .., p_m, c]
        t_a(r) = exp(|u| * logsigmoid(decay_logits[a])) * encoders[a](u),   u = s_a * r

    (``s_a = reference_grid[a] / n_a`` with interpolation, else 1): an ``n_a x n_a`` Toeplitz matrix per axis
    and channel whose entries depend on the offset only. Special tokens (the first ``num_special``) have no
    grid position: they neither send nor receive (their output is 0). Keys masked out by
    ``key_padding_mask`` are zeroed before mixing and their outputs are 0, so a padded text equals the
    unpadded one on its real tokens (left or right padding: the offsets between real tokens do not change).

    The output is the mixing alone: a layer adds it to its token stream (``x + tpe(x)``).

    Method: ``matmul`` forms each axis' ``n x n`` Toeplitz matrix per channel and applies it directly
    (``n`` multiply-adds per output: exact to rounding, one batched product, no FFT padding; the right
    choice for patch grids, ``n <= 64`` up to 1024 px at patch 16); ``fft`` embeds it in a ``2n`` circulant
    and multiplies in the frequency domain (``O(n log n)``, for long 1-D texts). ``auto`` takes matmul up
    to :data:`TPE_MATMUL_MAX_LENGTH` tokens per axis.

    Args:
        channels: ``C``, the hidden size mixed.
        num_axes: ``m``.
        feature_dim, num_layers, base: of each axis' :class:`RelativePositionEncoder`.
        decay_init: initial per-step decay ``lambda`` (``decay_logits = logit(decay_init)``).
        use_decay: multiply the coefficients by ``lambda^{|u|}`` (TNN's decay bias).
        reference_grid: the training grid for interpolation (``None``: integer offsets).
        method: default method (``auto``/``matmul``/``fft``).

    Shapes: ``x [B, L, C]``, ``key_padding_mask [B, L]`` (True/1 = real token) -> ``[B, L, C]``.
    """

    def __init__(self, channels: int, num_axes: int = 2, feature_dim: int = TPE_DEFAULT_FEATURE_DIM,
                 num_layers: int = TPE_DEFAULT_LAYERS, base: float = LRPE_DEFAULT_BASE,
                 decay_init: float = TPE_DEFAULT_DECAY, use_decay: bool = True,
                 reference_grid: Sequence[int] | None = None, method: str = "auto"):
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if isinstance(num_axes, bool) or not isinstance(num_axes, int) or num_axes < 1:
            raise ValueError(f"num_axes must be a positive int (1 for text, 2 for a patch grid), got {num_axes!r}")
        if not 0.0 < decay_init < 1.0:
            raise ValueError(f"decay_init must lie in (0, 1) (the per-step decay of the coefficients), "
                             f"got {decay_init!r}")
        self._check_method(method)
        self.channels = channels
        self.num_axes = num_axes
        self.decay_init = float(decay_init)
        self.method = method
        self.reference_grid = None if reference_grid is None else _check_grid(reference_grid, num_axes,
                                                                             "reference_grid")
        self.encoders = nn.ModuleList(RelativePositionEncoder(channels, feature_dim, num_layers, base)
                                      for _ in range(num_axes))
        self.decay_logits = nn.Parameter(self.initial_decay_logits()) if use_decay else None

    @staticmethod
    def _check_method(method: str) -> None:
        if method not in TPE_METHODS:
            raise ValueError(f"the MD-TPE method must be one of {TPE_METHODS}, got {method!r}")

    def initial_decay_logits(self, device: torch.device | str | None = None) -> torch.Tensor:
        """``[m, C]`` filled with ``logit(decay_init)``; ``_init_weights`` should copy it into ``decay_logits``."""
        logit = math.log(self.decay_init / (1.0 - self.decay_init))
        return torch.full((self.num_axes, self.channels), logit, device=device)

    def axis_scale(self, axis: int, length: int) -> float:
        return 1.0 if self.reference_grid is None else self.reference_grid[axis] / length

    def coefficients(self, axis: int, length: int, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """``[2n - 1, C]`` coefficients ``t_axis(r)`` for offsets ``r = -(n-1), ..., n-1`` (row ``r + n - 1``)."""
        device = self.encoders[axis].in_proj.weight.device if device is None else device
        offsets = torch.arange(-(length - 1), length, device=device, dtype=dtype) * self.axis_scale(axis, length)
        coeff = self.encoders[axis](offsets).to(dtype)
        if self.decay_logits is not None:
            log_decay = F.logsigmoid(self.decay_logits[axis].to(dtype))
            coeff = coeff * torch.exp(offsets.abs()[:, None] * log_decay[None, :])
        return coeff

    def toeplitz(self, axis: int, length: int, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """``[n, n, C]`` matrix ``T[i, j] = t_axis(i - j)``."""
        coeff = self.coefficients(axis, length, dtype, device)
        index = torch.arange(length, device=coeff.device)
        return coeff[index[:, None] - index[None, :] + length - 1]

    def _mix_axis(self, cells: torch.Tensor, axis: int, method: str) -> torch.Tensor:
        """Toeplitz mixing of ``cells [B, n_1, ..., n_m, C]`` along grid axis ``axis``."""
        length = cells.shape[1 + axis]
        moved = cells.movedim(1 + axis, -2)  # [..., n, C]
        if method == "auto":
            method = "matmul" if length <= TPE_MATMUL_MAX_LENGTH else "fft"
        if method == "matmul":
            mixed = torch.einsum("ijc,...jc->...ic", self.toeplitz(axis, length, cells.dtype, cells.device), moved)
        else:
            coeff = self.coefficients(axis, length, cells.dtype, cells.device)
            # first column of the 2n circulant: offsets 0..n-1, one zero, then -(n-1)..-1
            column = torch.cat((coeff[length - 1:], coeff.new_zeros(1, coeff.shape[1]), coeff[: length - 1]))
            spectrum = torch.fft.rfft(column, n=2 * length, dim=0)
            mixed = torch.fft.irfft(torch.fft.rfft(moved, n=2 * length, dim=-2) * spectrum, n=2 * length,
                                    dim=-2)[..., :length, :]
        return mixed.movedim(-2, 1 + axis)

    def forward(self, x: torch.Tensor, grid_shape: Sequence[int] | None = None, num_special: int = 0,
                key_padding_mask: torch.Tensor | None = None, method: str | None = None) -> torch.Tensor:
        """Mix ``x [B, L, C]`` over the grid (default ``(L - num_special,)`` for one axis) -> ``[B, L, C]``."""
        if x.dim() != 3 or x.shape[-1] != self.channels:
            raise ValueError(f"MD-TPE expects [batch, length, channels={self.channels}], got {tuple(x.shape)}")
        method = self.method if method is None else method
        self._check_method(method)
        batch, length, channels = x.shape
        grid = _resolve_grid(grid_shape, self.num_axes, length, num_special)
        dtype = _compute_dtype(x.dtype)
        values = x.to(dtype)
        keep = None
        if key_padding_mask is not None:
            if key_padding_mask.shape != (batch, length):
                raise ValueError(f"key_padding_mask must be [{batch}, {length}] (True = real token), got "
                                 f"{tuple(key_padding_mask.shape)}")
            keep = key_padding_mask.to(device=x.device, dtype=dtype)[..., None]
            values = values * keep
        cells = values[:, num_special:].reshape(batch, *grid, channels)
        mixed = sum(self._mix_axis(cells, axis, method) for axis in range(self.num_axes))
        out = torch.cat((values.new_zeros(batch, num_special, channels), mixed.reshape(batch, -1, channels)), dim=1)
        if keep is not None:
            out = out * keep
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, num_axes={self.num_axes}, use_decay={self.decay_logits is not None}, "
                f"reference_grid={self.reference_grid}, method={self.method!r}")
