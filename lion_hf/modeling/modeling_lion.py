# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""LION models for transformers: one backbone for vision and text, and the task heads.

Data path: pixels or tokens -> embeddings -> N x LionLayer (norm, LionAttention, MLP) -> head.
``LionAttention`` does the projections, feature map and decay, then calls the one operator
``lion_hf.kernels.lion_attention`` (or its ``parts`` form for the two scan orders of the natural
variants); it never knows which form or kernel runs. ``config.attention_type="lightnet"`` puts
:class:`~lion_hf.modeling.lightnet.LightNetAttention` (bidirectional LightNet on the same operator) in its place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    ImageClassifierOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from ..kernels import combine_parts, dropout_form, lion_attention, lion_attention_parts, resolve_backend
from ..kernels.fused import (  # noqa: F401 - the feature maps stay importable from here
    FEATURE_MAP_FUNCTIONS,
    elu_plus_one,
    lion_fused_attention,
    selective_log_decays,
    silu_l2,
)
from ..kernels.layer_norm import layer_norm_into_linear, layer_norm_of_sum
from ..kernels.modules import plain_module
from ..kernels.triton.tuning import launch
from .configuration_lion import ATTENTION_BACKENDS, ATTENTION_FORMS, LionConfig
from .lightnet import LightNetAttention, LightNetRMSNorm
from .positional import (
    MultiDimRotaryEncoding,
    MultiDimToeplitzMixer,
    lrpe_normalized_parts,
    position_encoding_parts,
    positions_from_attention_mask,
)
from .scan_order import natural_scan_orders

logger = logging.get_logger(__name__)


# --------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------
class LionPatchEmbeddings(nn.Module):
    """``pixel_values [B, C, H, W]`` -> patch tokens ``[B, (H/p)(W/p), hidden]`` by a strided convolution."""

    def __init__(self, config: LionConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.num_channels = config.num_channels
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size,
                                    kernel_size=config.patch_size, stride=config.patch_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.dim() != 4:
            raise ValueError(f"pixel_values must be [batch, channels, height, width], got shape {tuple(pixel_values.shape)}")
        _, channels, height, width = pixel_values.shape
        if channels != self.num_channels:
            raise ValueError(f"pixel_values has {channels} channels but the model expects {self.num_channels} "
                             f"(config.num_channels); convert the images (e.g. to RGB) with the model's image processor")
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"image size {height}x{width} is not divisible by the patch size {self.patch_size}; "
                             f"resize or crop the images to a multiple of {self.patch_size}")
        if pixel_values.is_cuda and (torch.is_autocast_enabled("cuda") or pixel_values.dtype in (torch.float16,
                                                                                                 torch.bfloat16)) \
                and not torch.compiler.is_compiling() and launch("patch_embedding_as_matmul")[0] \
                and self._patch_product():
            return self._as_matmul(pixel_values)
        return self.projection(pixel_values).flatten(2).transpose(1, 2)

    def _patch_product(self) -> bool:
        """``projection`` is a plain ``nn.Conv2d`` with kernel = stride = patch and no padding, dilation or groups."""
        conv, patch = self.projection, (self.patch_size, self.patch_size)
        return (plain_module(conv, nn.Conv2d) and conv.kernel_size == conv.stride == patch and conv.padding == (0, 0)
                and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros")

    def _as_matmul(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The convolution as the matrix product it is (kernel = stride = patch, no padding): the patches
        gathered into rows, times the kernel flattened over (channel, row, column). On the H200 cuDNN ran
        this convolution as an implicit sgemm, 17 ms of a 170 ms ViT-B-size forward at 2048 px
        (BENCHMARKS.md, eleventh pass); the same products through cuBLAS take well under a millisecond. Eager
        and half precision only (autocast or fp16/bf16 pixels): ``torch.compile`` graphs and fp32, where cuDNN
        may take TF32 and cuBLAS does not by default, keep the convolution."""
        batch, channels, height, width = pixel_values.shape
        patch = self.patch_size
        if torch.is_autocast_enabled("cuda"):  # cast before the gather, as the convolution would have cast
            pixel_values = pixel_values.to(torch.get_autocast_dtype("cuda"))
        rows, cols = height // patch, width // patch
        patches = pixel_values.reshape(batch, channels, rows, patch, cols, patch).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(batch, rows * cols, channels * patch * patch)
        weight = self.projection.weight.reshape(self.projection.out_channels, -1)
        return F.linear(patches, weight, self.projection.bias)


class LionVisionEmbeddings(nn.Module):
    """Class token + patch tokens (+ learned position embeddings, interpolable to other resolutions)."""

    def __init__(self, config: LionConfig):
        super().__init__()
        self.config = config
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.patch_embeddings = LionPatchEmbeddings(config)
        grid = config.image_size // config.patch_size
        self.position_embeddings = (nn.Parameter(torch.zeros(1, grid * grid + 1, config.hidden_size))
                                    if config.use_position_embeddings else None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """Position table resized (bicubic) to a ``height x width`` image; the class row is kept."""
        table = self.position_embeddings
        patch = self.config.patch_size
        rows, cols = height // patch, width // patch
        grid = self.config.image_size // patch
        if rows == grid and cols == grid:
            return table
        cls_row, patch_rows = table[:, :1], table[:, 1:]
        patch_rows = patch_rows.reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        patch_rows = F.interpolate(patch_rows.float(), size=(rows, cols), mode="bicubic", align_corners=False)
        patch_rows = patch_rows.to(table.dtype).permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([cls_row, patch_rows], dim=1)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        tokens = self.patch_embeddings(pixel_values)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens], dim=1)
        if self.position_embeddings is not None:
            height, width = pixel_values.shape[-2:]
            if interpolate_pos_encoding:
                tokens = tokens + self.interpolate_pos_encoding(height, width)
            elif height != self.config.image_size or width != self.config.image_size:
                raise ValueError(f"image size {height}x{width} differs from the model's {self.config.image_size}x"
                                 f"{self.config.image_size} and its position embeddings; pass "
                                 f"interpolate_pos_encoding=True to resize them")
            else:
                tokens = tokens + self.position_embeddings
            tokens = self.dropout(tokens)
        return tokens


class LionTextEmbeddings(nn.Module):
    """BERT-style token (+ position) + segment embeddings, LayerNorm and dropout."""

    def __init__(self, config: LionConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = (nn.Embedding(config.max_position_embeddings, config.hidden_size)
                                    if config.use_position_embeddings else None)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    @staticmethod
    def _check_shape(ids: torch.Tensor, shape: tuple[int, int], name: str, allow_shared_batch: bool = False) -> None:
        # A wrong shape would otherwise broadcast silently (a [1, L] segment row) or fail inside an addition.
        batch, length = shape
        if ids.dim() == 2 and ids.shape[1] == length and (
                ids.shape[0] == batch or (allow_shared_batch and ids.shape[0] == 1)):
            return
        expected = f"[{batch}, {length}]" + (f" or [1, {length}]" if allow_shared_batch else "")
        raise ValueError(f"{name} must have shape {expected} (batch, length of the inputs), got {tuple(ids.shape)}")

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None) -> torch.Tensor:
        if inputs_embeds is None:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}; "
                                 f"for one sequence use input_ids[None] (or the tokenizer's return_tensors='pt')")
            _check_token_ids(input_ids, self.config.vocab_size, "input_ids", "config.vocab_size", module=self)
            inputs_embeds = self.word_embeddings(input_ids)
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.hidden_size:
            raise ValueError(f"inputs_embeds must be [batch, length, hidden_size={self.config.hidden_size}], got shape "
                             f"{tuple(inputs_embeds.shape)}")
        batch, length = inputs_embeds.shape[:2]
        if token_type_ids is None:
            # segment 0 everywhere: its row broadcast, the same values and gradient as looking up a zeros tensor
            # without the zeros and the embedding's scatter backward
            embeddings = inputs_embeds + self.token_type_embeddings.weight[0]
        else:
            self._check_shape(token_type_ids, (batch, length), "token_type_ids")
            _check_token_ids(token_type_ids, self.config.type_vocab_size, "token_type_ids", "config.type_vocab_size",
                             module=self)
            embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        if position_ids is not None and self.position_embeddings is None:
            logger.warning_once("position_ids are ignored: this LION model has no position table (with a decay mask "
                                "position comes from the mask; config.use_position_embeddings=False)")
        if position_ids is not None and self.position_embeddings is not None:
            self._check_shape(position_ids, (batch, length), "position_ids", allow_shared_batch=True)
        if self.position_embeddings is not None:
            if length > self.config.max_position_embeddings:
                raise ValueError(f"sequence length {length} exceeds the position table "
                                 f"(config.max_position_embeddings={self.config.max_position_embeddings}); "
                                 f"truncate the inputs to at most that many tokens")
            if position_ids is None:
                position_ids = torch.arange(length, device=inputs_embeds.device)[None, :]
            else:
                _check_token_ids(position_ids, self.config.max_position_embeddings, "position_ids",
                                 "config.max_position_embeddings",
                                 "Pass positions below that limit, or leave position_ids out (0, 1, 2, ...)", module=self)
            embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


#: forward calls whose ids are checked on an accelerator, where reading min/max waits for the GPU (CPU: every call)
_DEVICE_ID_CHECKS = 8


def _check_token_ids(ids: torch.Tensor, limit: int, name: str, field: str,
                     fix: str = "Use the tokenizer the model was trained with", module: nn.Module | None = None) -> None:
    # An out-of-range id crashes deep inside the embedding (a device assert on GPU): name it here.
    # Tensors without data (meta device, e.g. shape tracing or init_empty_weights) cannot be read: skipped.
    # On an accelerator, reading the range synchronises: a training loop would lose its overlap of host and GPU
    # on every step, so only the first calls of a module (where a wrong tokenizer shows) are checked there.
    if torch.compiler.is_compiling() or ids.numel() == 0 or ids.is_meta:
        return
    if ids.device.type != "cpu" and module is not None:
        seen = module.__dict__.setdefault("_device_id_checks", {})
        if seen.get(name, 0) >= _DEVICE_ID_CHECKS:
            return
        seen[name] = seen.get(name, 0) + 1
    low, high = torch.stack([ids.min(), ids.max()]).tolist()
    if low < 0 or high >= limit:
        raise ValueError(f"{name} must lie in [0, {limit}) ({field}); got values in [{low}, {high}]. {fix}")


_ZEROS: dict[tuple, torch.Tensor] = {}


def _zeros(like: torch.Tensor, *shape: int) -> torch.Tensor:
    """A zero tensor of ``shape`` with ``like``'s dtype and device, made once (a constant operand: never written)."""
    if torch.compiler.is_compiling() or like.device.type == "meta":
        return like.new_zeros(shape)
    key = (like.device, like.dtype, shape)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) >= 64:
            _ZEROS.clear()
        zeros = _ZEROS[key] = like.new_zeros(shape)
    return zeros


#: dropout-like module classes -> the attribute holding their rate (LionDropPath adds itself below)
_DROP_RATES: dict[type, str] = {nn.Dropout: "p"}


def _dropout(dropout: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``dropout(x)``, without the call where a plain dropout-like module (:data:`_DROP_RATES`, no hooks, no
    subclass) returns ``x`` (rate 0, as in the ViT presets, or eval mode): a module call costs host time, and
    ViT-B-size training steps wait on the host (BENCHMARKS.md, thirteenth pass)."""
    rate = _DROP_RATES.get(type(dropout))
    if rate is not None and (getattr(dropout, rate) == 0 or not dropout.training) \
            and plain_module(dropout, type(dropout)):
        return x
    return dropout(x)


def _plain_linear(module: nn.Module) -> bool:
    """``module`` is an ``nn.Linear`` whose weights can be read and multiplied directly (:func:`plain_module`)."""
    return plain_module(module, nn.Linear)


# --------------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------------
class LionAttention(nn.Module):
    """LION mixer: fused q/k/v projection, feature map, decay (none / per head / per token), the
    LION operator (one or two scan orders), optional output LayerNorm, output projection.

    Parameters: ``qkv`` (q, k, v stacked on the output dim), ``decay_logits`` ``[orders, heads]``
    (LION-D, ``lambda = sigmoid(theta)``), ``gate`` ``Linear(hidden, orders * heads)`` (LION-S,
    ``log lambda_i = logsigmoid(-gate(x_i))``, the sign convention of the reference code),
    ``output_norm`` and ``out_proj``.
    """

    def __init__(self, config: LionConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.num_orders = config.num_scan_orders
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.decay_logits = (nn.Parameter(torch.zeros(self.num_orders, self.num_heads))
                             if config.mask_type == "decay" else None)
        self.gate = (nn.Linear(config.hidden_size, self.num_orders * self.num_heads)
                     if config.mask_type == "selective" else None)
        self.output_norm = nn.LayerNorm(config.hidden_size) if config.attention_output_norm else None
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.rotary = build_rotary(config)

    def _log_decays(self, hidden_states: torch.Tensor) -> list[torch.Tensor | None]:
        """One log-decay per scan order: ``None``, ``[heads]`` or ``[batch, heads, length]`` (token order)."""
        if self.gate is not None:
            return selective_log_decays(self.gate(hidden_states), self.num_orders, self._cls_zero)
        if self.decay_logits is not None:
            logits = self.decay_logits
            return list(F.logsigmoid(logits if logits.dtype == torch.float32 else logits.float()).unbind(0))
        return [None] * self.num_orders

    def _projections(self, hidden_states: torch.Tensor):
        """``(qkv [B, L, 3, H, D], gate logits [B, L, orders*H] or None, the tensor both slice or None)``.

        LION-S's gate shares the q/k/v product when both are plain ``nn.Linear`` without hooks (adapters,
        quantised or sharded layers keep their own calls; ``LAUNCH["layer_packed_gate"]``): its own narrow
        product and, under autocast, the second cast of its input took ~2 ms of GPU time per ViT-B step at
        224 px; packed, a BERT-large MLM step at L 512 is 2 % faster and 1.5 GB smaller (BENCHMARKS.md, fifth
        pass). The output is padded to a multiple of 16 columns so that its rows stay aligned for the kernels.
        """
        batch, length, _ = hidden_states.shape
        heads_view = (batch, length, 3, self.num_heads, self.head_dim)
        if self.gate is None or not (_plain_linear(self.qkv) and _plain_linear(self.gate)) \
                or not launch("layer_packed_gate")[0]:
            qkv = self.qkv(hidden_states).view(heads_view)
            return qkv, (self.gate(hidden_states) if self.gate is not None else None), None
        qkv_width, gate_width = self.qkv.out_features, self.gate.out_features
        pad = -(qkv_width + gate_width) % 16
        weight_like = self.qkv.weight
        # one concatenation per tensor, its zero padding a cached constant: ViT-B-size steps are host-bound, and
        # two F.pad calls cost six more operators and two backward nodes per layer (BENCHMARKS.md, sixth pass)
        weights = [weight_like, self.gate.weight, _zeros(weight_like, pad, weight_like.shape[1])]
        biases = [self.qkv.bias if self.qkv.bias is not None else _zeros(weight_like, qkv_width),
                  self.gate.bias if self.gate.bias is not None else _zeros(weight_like, gate_width),
                  _zeros(weight_like, pad)]
        projection = F.linear(hidden_states, torch.cat(weights), torch.cat(biases))
        qkv = projection[..., :qkv_width].view(heads_view)
        return qkv, projection[..., qkv_width:qkv_width + gate_width], projection

    def reads_input_through_linears_only(self) -> bool:
        """Whether ``forward`` reads ``hidden_states`` only through plain ``nn.Linear`` calls (the q/k/v
        projection and LION-S's gate), so that a LayerNorm before it may hand over its result in the autocast
        dtype (:func:`~lion_hf.kernels.layer_norm.layer_norm_into_linear`)."""
        return _plain_linear(self.qkv) and (self.gate is None or _plain_linear(self.gate))

    @property
    def _cls_zero(self) -> bool:
        # The class token never decays (lambda_0 = 1), as in the reference vision models.
        return self.config.modality == "vision"

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                grid_size: tuple[int, int] | None = None, **kwargs) -> tuple[torch.Tensor, None]:
        """``hidden_states [B, L, hidden]`` -> ``([B, L, hidden], None)``; ``attention_mask [B, L]`` (text)."""
        batch, length, hidden = hidden_states.shape
        # [B, L, 3, H, D] view of the one projection: the kernels read q, k, v from it through strides;
        # LION-S hands the gate's raw logits to the layer, which forms the log-decays (fused on the kernels)
        qkv, gate_logits, projection = self._projections(hidden_states)
        log_decays = None if gate_logits is not None else self._log_decays(hidden_states)
        form = self.config.attention_form
        backend = self.config.attention_backend
        dropout_p = self.config.attention_probs_dropout_prob if self.training else 0.0
        if dropout_p:
            form, dropout_p = dropout_form(form, backend, dropout_p, qkv[:, :, 0].transpose(1, 2))
        key_padding_mask = None if attention_mask is None else attention_mask.bool()
        scale = self.head_dim ** -0.5
        orders = None
        eps = self.config.attention_eps / scale
        if self.num_orders > 1:
            # the ♮ variants: (num_s + num_sr) / (den_s + den_sr); the reference averages the two masks
            # before normalising, so its 1e-6 on the averaged denominator becomes 2e-6 / scale here
            if grid_size is None:
                raise ValueError("patch_order='s' needs the patch grid size; call the model with pixel_values")
            orders = natural_scan_orders(*grid_size, qkv.device)
            eps = self.config.attention_eps * self.num_orders / scale
        if self.rotary is not None:
            if gate_logits is not None:
                log_decays = selective_log_decays(gate_logits, self.num_orders, self._cls_zero)
            context = self._rotary_attention(qkv, log_decays, attention_mask, grid_size, scale=scale, eps=eps,
                                             form=form, key_padding_mask=key_padding_mask, dropout_p=dropout_p,
                                             orders=orders)
        else:
            context = lion_fused_attention(
                qkv, log_decays, feature_map=self.config.feature_map, normalize=self.config.normalize_attention,
                scale=scale, eps=eps, form=form, chunk_size=self.config.chunk_size, key_padding_mask=key_padding_mask,
                dropout_p=dropout_p, backend=backend, orders=orders, gate_logits=gate_logits, cls_zero=self._cls_zero,
                projection=projection)
        if self.output_norm is not None:
            context = (layer_norm_into_linear(self.output_norm, context, backend) if _plain_linear(self.out_proj)
                       else self.output_norm(context))
        return _dropout(self.dropout, self.out_proj(context)), None

    def _rotary_attention(self, qkv: torch.Tensor, log_decays: list[torch.Tensor | None],
                          attention_mask: torch.Tensor | None, grid_size: tuple[int, int] | None, *, scale: float,
                          eps: float, form: str, key_padding_mask: torch.Tensor | None, dropout_p: float,
                          orders) -> torch.Tensor:
        """LION with MD-LRPE: ``qkv [B, L, 3, H, D]`` -> context ``[B, L, H*D]``.

        The feature map runs here (the fused kernels would apply it in-kernel, before any rotation could), then
        q and k are rotated (:func:`rotate_queries_keys`). ``normalize=True``: the numerator takes the rotated
        features, the denominator the unrotated ones (:func:`~lion_hf.modeling.positional.lrpe_normalized_parts`),
        the parts of the ♮ variants' scan orders add up before the one division with the layer's ``eps``.
        ``normalize=False``: the operator on the rotated q, k (``scale * num``).
        """
        phi = FEATURE_MAP_FUNCTIONS[self.config.feature_map]
        q, k, v = phi(qkv[:, :, 0]), phi(qkv[:, :, 1]), qkv[:, :, 2]  # [B, L, H, D]
        q_rot, k_rot = rotate_queries_keys(self.rotary, q, k, attention_mask, grid_size, self._cls_zero)
        heads_first = (lambda x: x.transpose(1, 2))  # noqa: E731  [B, L, H, D] -> [B, H, L, D]
        q, k, v, q_rot, k_rot = map(heads_first, (q, k, v, q_rot, k_rot))
        options = {"form": form, "chunk_size": self.config.chunk_size, "key_padding_mask": key_padding_mask,
                   "dropout_p": dropout_p, "backend": self.config.attention_backend}
        if not self.config.normalize_attention:
            context = lion_attention(q_rot, k_rot, v, log_decays[0], normalize=False, scale=scale, **options)
            return context.transpose(1, 2).flatten(2)
        concrete_backend = resolve_backend(self.config.attention_backend, q, v, dropout_p)
        parts = []
        for index, log_decay in enumerate(log_decays):
            perm, inverse = (None, None) if orders is None else orders[index]
            if perm is not None and log_decay is not None and log_decay.dim() == 3:
                log_decay = log_decay[..., perm]
            mix = _scan_order_mix(log_decay, perm, inverse, options)

            # as in the operator, attention dropout acts on the numerator's scores only (the denominator sums the
            # undropped scores); the Triton kernels have no 1-wide value path (lrpe_normalized_parts' ones column),
            # so there the denominator comes from the operator's own, with an unused numerator of the values
            undropped = {**options, "dropout_p": 0.0}
            if concrete_backend == "triton":
                def denominator(qq, kk, log_decay=log_decay, perm=perm, inverse=inverse):
                    return _scan_order_parts(qq, kk, v, log_decay, perm, inverse, undropped, with_denominator=True)[1]
            else:
                def denominator(qq, kk, log_decay=log_decay, perm=perm, inverse=inverse):
                    ones = v.new_ones(v.shape[:-1] + (1,))
                    return _scan_order_parts(qq, kk, ones, log_decay, perm, inverse, undropped,
                                             with_denominator=False)[0][..., 0]
            parts.append(lrpe_normalized_parts(mix, q, k, v, q_rot, k_rot, denominator=denominator))
        return combine_parts(parts, eps=eps, out_dtype=q.dtype).transpose(1, 2).flatten(2)


def _scan_order_parts(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor | None,
                      perm: torch.Tensor | None, inverse: torch.Tensor | None, options: dict,
                      with_denominator: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``lion_attention_parts`` of ``[B, H, L, *]`` inputs in one scan order (``perm``; ``None``: token order),
    returned in token order. ``log_decay`` is already permuted."""
    if perm is not None:
        q, k, v = q[:, :, perm], k[:, :, perm], v[:, :, perm]
        options = {**options, "key_padding_mask": None if options["key_padding_mask"] is None
                   else options["key_padding_mask"][:, perm]}
    num, den = lion_attention_parts(q, k, v, log_decay, with_denominator=with_denominator, **options)
    if perm is not None:
        num, den = num[:, :, inverse], (None if den is None else den[:, :, inverse])
    return num, den


def _scan_order_mix(log_decay, perm, inverse, options):
    """The un-normalised operator ``mix(q, k, v)`` of one scan order, as ``lrpe_normalized_parts`` takes it."""
    def mix(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return _scan_order_parts(q, k, v, log_decay, perm, inverse, options, with_denominator=False)[0]
    return mix


def rotate_queries_keys(rotary: MultiDimRotaryEncoding, q: torch.Tensor, k: torch.Tensor,
                        attention_mask: torch.Tensor | None, grid_size: tuple[int, int] | None,
                        vision: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MD-LRPE on ``q, k [B, L, H, D]`` (after the feature map): vision rotates the patch tokens by their
    ``grid_size`` coordinates and leaves the class token unrotated; text rotates token ``t`` by its position
    among the real tokens (:func:`~lion_hf.modeling.positional.positions_from_attention_mask`), so padding
    changes nothing."""
    if vision:
        if grid_size is None:
            raise ValueError("MD-LRPE needs the patch grid size; call the vision model with pixel_values")
        return rotary(q, grid_size, num_special=1), rotary(k, grid_size, num_special=1)
    position_ids = None if attention_mask is None else positions_from_attention_mask(attention_mask)
    return rotary(q, position_ids=position_ids), rotary(k, position_ids=position_ids)


def _reference_grid(config: LionConfig) -> tuple[int, int] | None:
    if config.position_scaling != "interpolate":
        return None
    grid = config.image_size // config.patch_size
    return (grid, grid)


def build_rotary(config: LionConfig) -> MultiDimRotaryEncoding | None:
    """The layer's MD-LRPE module (``None`` unless ``config.position_encoding`` includes it)."""
    use_lrpe, _ = position_encoding_parts(config.position_encoding)
    if not use_lrpe:
        return None
    return MultiDimRotaryEncoding(config.head_dim, 2 if config.modality == "vision" else 1, base=config.lrpe_base,
                                  learnable_theta=config.lrpe_learnable_theta, reference_grid=_reference_grid(config))


def build_tpe(config: LionConfig) -> MultiDimToeplitzMixer | None:
    """The layer's MD-TPE module (``None`` unless ``config.position_encoding`` includes it)."""
    _, use_tpe = position_encoding_parts(config.position_encoding)
    if not use_tpe:
        return None
    return MultiDimToeplitzMixer(config.hidden_size, 2 if config.modality == "vision" else 1,
                                 feature_dim=config.tpe_feature_dim, num_layers=config.tpe_num_layers,
                                 base=config.lrpe_base, decay_init=config.tpe_decay_init,
                                 use_decay=config.tpe_use_decay, reference_grid=_reference_grid(config),
                                 method=config.tpe_method)


class LionMLP(nn.Module):
    """Position-wise feed-forward network ``fc2(act(fc1(x)))``."""

    def __init__(self, config: LionConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return _dropout(self.dropout, self.fc2(_dropout(self.dropout, self.act(self.fc1(hidden_states)))))


class LionDropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample during training."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


_DROP_RATES[LionDropPath] = "rate"


class LionLayer(GradientCheckpointingLayer):
    """One block: LION (or LightNet) attention and MLP, each in a residual branch, pre-norm (vision) or post-norm
    (text). ``config.attention_type`` chooses the mixer; everything else is shared.

    With MD-TPE (``config.position_encoding`` ``"md_tpe"``/``"md_lrpe_tpe"``) the mixer reads ``h + tpe(h)``, ``h``
    its usual input (pre-norm: ``norm1(x)``; post-norm: ``x``), while the residual stream keeps ``x``:
    ``tpe`` (:class:`~lion_hf.modeling.positional.MultiDimToeplitzMixer`) mixes ``h`` along each axis of the patch
    grid (the class token neither sends nor receives) or of the text (padding excluded).
    """

    def __init__(self, config: LionConfig, drop_path_rate: float = 0.0):
        super().__init__()
        self.pre_norm = config.layer_norm_position == "pre"
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = LightNetAttention(config) if config.attention_type == "lightnet" else LionAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = LionMLP(config)
        self.drop_path = LionDropPath(drop_path_rate)
        self.tpe = build_tpe(config)
        self.num_special = 1 if config.modality == "vision" else 0

    def _pre_norm(self, norm: nn.LayerNorm, hidden: torch.Tensor, into_linears_only: bool) -> torch.Tensor:
        """``norm(hidden)`` of a pre-norm branch; where only Linear layers read it, through
        :func:`~lion_hf.kernels.layer_norm.layer_norm_into_linear` (the same values, fewer launches)."""
        if not into_linears_only:
            return norm(hidden)
        return layer_norm_into_linear(norm, hidden, self.attention.config.attention_backend)

    def _mixer_input(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None,
                     grid_size: tuple[int, int] | None) -> torch.Tensor:
        """``hidden [B, L, W]`` plus its MD-TPE mixing (unchanged without MD-TPE)."""
        if self.tpe is None:
            return hidden
        mask = None if attention_mask is None else attention_mask.bool()
        return hidden + self.tpe(hidden, grid_size, self.num_special, key_padding_mask=mask)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                grid_size: tuple[int, int] | None = None, **kwargs) -> torch.Tensor:
        if self.pre_norm:
            into_attention = self.tpe is None and self.attention.reads_input_through_linears_only()
            normed = self._pre_norm(self.norm1, hidden_states, into_attention)
            attended, _ = self.attention(self._mixer_input(normed, attention_mask, grid_size), attention_mask,
                                         grid_size)
            hidden_states = hidden_states + _dropout(self.drop_path, attended)
            normed = self._pre_norm(self.norm2, hidden_states, _plain_linear(self.mlp.fc1))
            return hidden_states + _dropout(self.drop_path, self.mlp(normed))
        attended, _ = self.attention(self._mixer_input(hidden_states, attention_mask, grid_size), attention_mask,
                                     grid_size)
        backend = self.attention.config.attention_backend
        hidden_states = layer_norm_of_sum(self.norm1, hidden_states, _dropout(self.drop_path, attended), backend)
        return layer_norm_of_sum(self.norm2, hidden_states, _dropout(self.drop_path, self.mlp(hidden_states)), backend)


class LionTextPooler(nn.Module):
    """BERT pooler: ``tanh(dense(h[:, 0]))``, the sentence representation for text classification."""

    def __init__(self, config: LionConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))


# --------------------------------------------------------------------------------------------------
# Pretrained model base
# --------------------------------------------------------------------------------------------------
class LionPreTrainedModel(PreTrainedModel):
    """Weight initialisation, Auto-class plumbing and the form switch shared by every LION model."""

    config: LionConfig
    config_class = LionConfig
    base_model_prefix = "lion"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["LionLayer", "LionVisionEmbeddings", "LionTextEmbeddings"]
    _supports_sdpa = False
    _supports_flash_attn = False
    _supports_flex_attn = False
    _can_record_outputs = {"hidden_states": LionLayer}

    def __init__(self, config: LionConfig, *inputs, **kwargs):
        # Fields changed after the config was built (config.mask_type = ...) get the constructor's checks here,
        # before a layer is built from them.
        if isinstance(config, LionConfig):
            config.validate_lion_fields()
        super().__init__(config, *inputs, **kwargs)

    @classmethod
    def register_for_auto_class(cls, auto_class="AutoModel") -> None:
        """transformers' hook for custom code. The package's classes need none: every ``save_pretrained`` folder
        gets the flat code and an ``auto_map`` for every head (``LionConfig.save_pretrained``), whereas
        transformers would copy this file alone, whose package imports cannot resolve there. A copy of this file
        loaded as remote code keeps transformers' behaviour, which copies the flat files it came with."""
        if __name__.startswith("lion_hf."):
            logger.info("%s: LION folders always carry their modeling code and a full auto_map; nothing to register",
                        cls.__name__)
            return
        super().register_for_auto_class(auto_class)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        vision = self.config.modality == "vision"
        # Vision follows DeiT (truncated normal), text follows BERT (normal).
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if vision:
                init.trunc_normal_(module.weight, mean=0.0, std=std)
            else:
                init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, LightNetRMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, LionVisionEmbeddings):
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
            if module.position_embeddings is not None:
                init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
        elif isinstance(module, LionAttention) and module.decay_logits is not None:
            # theta ~ N(0, 1): per-head decays lambda = sigmoid(theta) spread around 0.5, as in the paper.
            init.normal_(module.decay_logits, mean=0.0, std=1.0)
        elif isinstance(module, MultiDimRotaryEncoding) and module.theta is not None:
            # learned MD-LRPE frequencies start at the rotary schedule (also after loading on the meta device)
            init.copy_(module.theta, module.initial_theta(module.theta.device, module.theta.dtype))
        elif isinstance(module, MultiDimToeplitzMixer) and module.decay_logits is not None:
            init.copy_(module.decay_logits, module.initial_decay_logits(module.decay_logits.device).to(
                module.decay_logits.dtype))

    def set_attention_form(self, form: str, chunk_size: int | None = None, backend: str | None = None) -> None:
        """Switch every layer to another form of the same function (no reloading): ``"auto"``,
        ``"attention"``, ``"chunk"`` or ``"recurrent"``; optionally change the chunk size and the
        backend (``"auto"``, ``"torch"``, ``"triton"``)."""
        if form not in ATTENTION_FORMS:
            raise ValueError(f"attention form must be one of {ATTENTION_FORMS}, got {form!r}")
        if backend is not None and backend not in ATTENTION_BACKENDS:
            raise ValueError(f"attention backend must be one of {ATTENTION_BACKENDS}, got {backend!r}")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        self.config.attention_form = form
        if chunk_size is not None:
            self.config.chunk_size = chunk_size
        if backend is not None:
            self.config.attention_backend = backend

    def _require_modality(self, modality: str, alternative: str) -> None:
        if self.config.modality != modality:
            raise ValueError(f"{type(self).__name__} needs a config with modality={modality!r}, got "
                             f"{self.config.modality!r}; use {alternative} instead")


def _classification_loss(logits: torch.Tensor, labels: torch.Tensor, config: LionConfig) -> torch.Tensor:
    """Loss by ``config.problem_type`` (inferred from ``num_labels`` and the label dtype when unset)."""
    if config.problem_type is None:
        if config.num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        return F.mse_loss(logits.squeeze(-1).float(), labels.squeeze(-1).float()) if config.num_labels == 1 \
            else F.mse_loss(logits.float(), labels.float())
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, config.num_labels).float(), labels.view(-1))
    return F.binary_cross_entropy_with_logits(logits.float(), labels.to(logits.dtype).float())


# --------------------------------------------------------------------------------------------------
# Backbone
# --------------------------------------------------------------------------------------------------
class LionModel(LionPreTrainedModel):
    """The bare LION backbone for either modality (chosen by ``config.modality``).

    Vision checkpoints take ``pixel_values [B, C, H, W]``; text checkpoints take ``input_ids [B, L]``
    (or ``inputs_embeds``) with ``attention_mask`` and ``token_type_ids``. ``pooler_output`` is the
    mean (or class) token after the final LayerNorm for vision, and BERT's tanh pooler for text.
    """

    def __init__(self, config: LionConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.config = config
        vision = config.modality == "vision"
        # One backbone class serves both modalities (AutoModel maps one config class to one model
        # class), so the instance names its own main input.
        self.main_input_name = "pixel_values" if vision else "input_ids"
        self.embeddings = LionVisionEmbeddings(config) if vision else LionTextEmbeddings(config)
        # Stochastic depth grows linearly with depth (plain Python: models may be built on the meta device).
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.layers = nn.ModuleList([LionLayer(config, rate) for rate in rates])
        self.final_norm = (nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
                           if config.layer_norm_position == "pre" else None)
        self.pooler = LionTextPooler(config) if (add_pooling_layer and not vision) else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        if self.config.modality == "vision":
            return self.embeddings.patch_embeddings
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        if self.config.modality == "vision":
            self.embeddings.patch_embeddings = value
        else:
            self.embeddings.word_embeddings = value

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch, length)`): token ids (text).
            attention_mask (`torch.Tensor` of shape `(batch, length)`): 1 for real tokens, 0 for padding (text).
            token_type_ids (`torch.LongTensor` of shape `(batch, length)`): segment ids (text).
            position_ids (`torch.LongTensor` of shape `(batch, length)`): positions, when the model has a position table.
            inputs_embeds (`torch.Tensor` of shape `(batch, length, hidden)`): instead of `input_ids`.
            pixel_values (`torch.Tensor` of shape `(batch, channels, height, width)`): images (vision).
            interpolate_pos_encoding (`bool`): resize the position table to another image size (vision).
        """
        grid_size = None
        if self.config.modality == "vision":
            if input_ids is not None or inputs_embeds is not None:
                raise ValueError("this is a vision LION model: pass pixel_values, not input_ids/inputs_embeds")
            if pixel_values is None:
                raise ValueError("You have to specify pixel_values (a [batch, channels, height, width] tensor)")
            if not pixel_values.is_floating_point():
                raise ValueError(f"pixel_values must be floating point (got {pixel_values.dtype}): run the images "
                                 f"through the model's image processor, which rescales and normalises them")
            pixel_values = pixel_values.to(self.embeddings.patch_embeddings.projection.weight.dtype)
            hidden_states = self.embeddings(pixel_values, interpolate_pos_encoding=bool(interpolate_pos_encoding))
            patch = self.config.patch_size
            grid_size = (pixel_values.shape[-2] // patch, pixel_values.shape[-1] // patch)
            attention_mask = None
        else:
            if pixel_values is not None:
                raise ValueError("this is a text LION model: pass input_ids (or inputs_embeds), not pixel_values")
            if (input_ids is None) == (inputs_embeds is None):
                raise ValueError("You have to specify exactly one of input_ids or inputs_embeds")
            hidden_states = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
            if (attention_mask is not None and attention_mask.is_floating_point() and not torch.compiler.is_compiling()
                    and attention_mask.numel() and bool((attention_mask < 0).any())):
                raise ValueError("attention_mask must hold 1 for real tokens and 0 for padding, not an additive "
                                 "mask (0 / -inf); pass the tokenizer's attention_mask")
            if attention_mask is not None and tuple(attention_mask.shape) != tuple(hidden_states.shape[:2]):
                raise ValueError(f"attention_mask must be [batch, length]={tuple(hidden_states.shape[:2])}, "
                                 f"got {tuple(attention_mask.shape)}")
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, grid_size, **kwargs)
        if self.final_norm is not None:
            hidden_states = self.final_norm(hidden_states)
        if self.config.modality == "vision":
            pooled = hidden_states[:, 0] if self.config.pooling == "cls" else hidden_states.mean(dim=1)
        else:
            pooled = self.pooler(hidden_states) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=pooled)


# --------------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------------
class LionForImageClassification(LionPreTrainedModel):
    """LION vision backbone + linear classifier on the pooled (mean or class) token."""

    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def __init__(self, config: LionConfig):
        super().__init__(config)
        self._require_modality("vision", "LionForSequenceClassification")
        self.num_labels = config.num_labels
        self.lion = LionModel(config, add_pooling_layer=False)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init()

    @can_return_tuple
    def forward(self, pixel_values: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                interpolate_pos_encoding: bool | None = None, **kwargs) -> ImageClassifierOutput:
        """``pixel_values [B, C, H, W]``; ``labels [B]`` (class ids) give ``loss``."""
        outputs = self.lion(pixel_values=pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        logits = self.classifier(outputs.pooler_output)
        loss = _classification_loss(logits, labels, self.config) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                     attentions=outputs.attentions)


class LionMLMHead(nn.Module):
    """BERT's MLM head: dense + activation + LayerNorm, then a decoder tied to the word embeddings."""

    def __init__(self, config: LionConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(self.act(self.dense(hidden_states))))


class LionForMaskedLM(LionPreTrainedModel):
    """LION text backbone + MLM head (decoder tied to the input embeddings)."""

    _tied_weights_keys = {"lm_head.decoder.weight": "lion.embeddings.word_embeddings.weight"}

    def __init__(self, config: LionConfig):
        super().__init__(config)
        self._require_modality("text", "LionForImageClassification")
        self.lion = LionModel(config, add_pooling_layer=False)
        self.lm_head = LionMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head.decoder = new_embeddings

    @can_return_tuple
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels: torch.Tensor | None = None, **kwargs) -> MaskedLMOutput:
        """Text inputs as for :class:`LionModel`; ``labels [B, L]`` with -100 on unmasked positions give ``loss``."""
        outputs = self.lion(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids, inputs_embeds=inputs_embeds, **kwargs)
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), labels.view(-1), ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                              attentions=outputs.attentions)


class LionForSequenceClassification(LionPreTrainedModel):
    """LION text backbone + pooler + classifier (or regressor: ``problem_type="regression"``, STS-B)."""

    def __init__(self, config: LionConfig):
        super().__init__(config)
        self._require_modality("text", "LionForImageClassification")
        self.num_labels = config.num_labels
        self.lion = LionModel(config, add_pooling_layer=True)
        rate = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(rate)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels: torch.Tensor | None = None, **kwargs) -> SequenceClassifierOutput:
        """Text inputs as for :class:`LionModel`; ``labels [B]`` (ids, or floats for regression) give ``loss``."""
        outputs = self.lion(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids, inputs_embeds=inputs_embeds, **kwargs)
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = _classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)


class LionForTokenClassification(LionPreTrainedModel):
    """LION text backbone + per-token classifier (NER-style tagging)."""

    def __init__(self, config: LionConfig):
        super().__init__(config)
        self._require_modality("text", "LionForImageClassification")
        self.num_labels = config.num_labels
        self.lion = LionModel(config, add_pooling_layer=False)
        rate = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(rate)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels: torch.Tensor | None = None, **kwargs) -> TokenClassifierOutput:
        """Text inputs as for :class:`LionModel`; ``labels [B, L]`` (-100 ignored) give ``loss``."""
        outputs = self.lion(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids, inputs_embeds=inputs_embeds, **kwargs)
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1), ignore_index=-100)
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                     attentions=outputs.attentions)


__all__ = [
    "LightNetAttention",
    "LionAttention",
    "LionForImageClassification",
    "LionForMaskedLM",
    "LionForSequenceClassification",
    "LionForTokenClassification",
    "LionLayer",
    "LionModel",
    "LionPreTrainedModel",
]
