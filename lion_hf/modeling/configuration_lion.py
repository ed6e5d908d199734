# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Configuration of LION models (vision and masked language modeling) and named presets."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import os
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers.activations import ACT2FN
from transformers.configuration_utils import PreTrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

MODALITIES = ("vision", "text")
ATTENTION_TYPES = ("lion", "lightnet")
LIGHTNET_GATE_ACTIVATIONS = ("sigmoid", "silu")
MASK_TYPES = ("lit", "decay", "selective")
ATTENTION_FORMS = ("auto", "attention", "chunk", "recurrent")
ATTENTION_BACKENDS = ("auto", "torch", "triton")
PATCH_ORDERS = ("normal", "s")
FEATURE_MAPS = ("elu_plus_one", "silu_l2", "identity")
POOLINGS = ("mean", "cls")
LAYER_NORM_POSITIONS = ("pre", "post")
#: LightNet's multi-dimensional positional encodings for either mixer (``lion_hf.modeling.positional``): none,
#: MD-LRPE (rotary, on q and k), MD-TPE (Toeplitz mixing of the mixer's input), or both (LightNet's own choice).
POSITION_ENCODINGS = ("none", "md_lrpe", "md_tpe", "md_lrpe_tpe")
#: How the encodings follow another image size: integer grid coordinates, or scaled to the training grid.
POSITION_SCALINGS = ("none", "interpolate")
TPE_METHODS = ("auto", "matmul", "fft")

#: The string fields and the values each accepts.
CHOICE_FIELDS: dict[str, tuple[str, ...]] = {
    "modality": MODALITIES,
    "attention_type": ATTENTION_TYPES,
    "lightnet_gate_activation": LIGHTNET_GATE_ACTIVATIONS,
    "mask_type": MASK_TYPES,
    "attention_form": ATTENTION_FORMS,
    "attention_backend": ATTENTION_BACKENDS,
    "patch_order": PATCH_ORDERS,
    "feature_map": FEATURE_MAPS,
    "pooling": POOLINGS,
    "layer_norm_position": LAYER_NORM_POSITIONS,
    "position_encoding": POSITION_ENCODINGS,
    "position_scaling": POSITION_SCALINGS,
    "tpe_method": TPE_METHODS,
}
#: transformers' loss selectors; any other value would silently fall through to a multi-label loss.
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
POSITIVE_INT_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "image_size",
                       "patch_size", "num_channels", "vocab_size", "max_position_embeddings", "type_vocab_size")
BOOL_FIELDS = ("qkv_bias", "normalize_attention", "attention_output_norm", "use_position_embeddings",
               "tie_word_embeddings", "lrpe_learnable_theta", "tpe_use_decay")
#: Rates in [0, 1); ``classifier_dropout`` may also be None (then the hidden dropout applies).
RATE_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate", "classifier_dropout")
#: Non-negative real fields: whether 0 is allowed (a LayerNorm epsilon of 0 divides by zero on constant rows)
#: and a typical value for the error message.
NON_NEGATIVE_FIELDS = {"attention_eps": (True, "1e-6"), "layer_norm_eps": (False, "1e-12"),
                       "initializer_range": (True, "0.02")}
#: Names other code bases (timm, the reference implementation, BERT variants) use for LION fields.
FIELD_ALIASES = {
    "num_layers": "num_hidden_layers", "depth": "num_hidden_layers", "n_layer": "num_hidden_layers",
    "num_heads": "num_attention_heads", "n_head": "num_attention_heads", "embed_dim": "hidden_size",
    "mlp_ratio": "intermediate_size", "img_size": "image_size", "in_chans": "num_channels",
    "dropout": "hidden_dropout_prob", "attention_dropout": "attention_probs_dropout_prob",
    "drop_path": "drop_path_rate", "eps": "layer_norm_eps", "order": "patch_order", "pos_emb": "use_position_embeddings",
}
#: The module that writes the remote-code bundle next to a saved config (imported only when saving, by name,
#: so that the flat bundle of this file does not pull in the Hub tooling).
_SELF_CONTAINED_MODULE = "lion_hf.modeling.self_contained"


class LionConfigError(ValueError, TypeError):
    """One or more ``LionConfig`` fields have a wrong type or value; the message names each field and the fix.

    A ``ValueError`` (and a ``TypeError`` for wrong types), so either ``except`` clause catches it.
    """


def _type_name(value: Any) -> str:
    return type(value).__name__


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _choice_problem(name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if isinstance(value, str) and value in allowed:
        return None
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, allowed, n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
    return f"LionConfig.{name} must be one of {allowed}, got {value!r}{hint}"


def _without_own_auto_map(cls: type, config_dict: dict[str, Any]) -> dict[str, Any]:
    """``config_dict`` less the ``auto_map`` entries that ``save_pretrained`` writes for remote-code loading,
    when the package's own class reads it (it needs no remote code): a save/load round trip then gives the
    same config, as transformers expects. The flat remote-code copy keeps them."""
    auto_map = config_dict.get("auto_map")
    if not auto_map or not cls.__module__.startswith("lion_hf."):
        return config_dict
    from importlib import import_module

    ours = import_module("lion_hf.hub.bundle").AUTO_MAP
    rest = {name: value for name, value in auto_map.items() if ours.get(name) != value}
    trimmed = {key: value for key, value in config_dict.items() if key != "auto_map"}
    if rest:
        trimmed["auto_map"] = rest
    return trimmed


@strict(accept_kwargs=True)
class LionConfig(PreTrainedConfig):
    r"""Configuration of a LION model; one class serves both modalities.

    ``modality`` chooses the embeddings (``"vision"``: patches + class token, ``"text"``: BERT-style
    tokens). Fields left to ``None`` take the value of the paper's published models for that modality
    (spec section 3), so ``LionConfig(modality="vision")`` is the paper's LION-D ViT-B/16 and
    ``LionConfig(modality="text")`` its BERT-base-sized LION-D MLM.

    Args:
        modality: ``"vision"`` or ``"text"``.
        attention_type: ``"lion"`` (LION's masked linear attention, the default) or ``"lightnet"`` (bidirectional
            LightNet, Qin et al., arXiv 2405.21022: SiLU queries, keys softmax-normalised over the positions, one
            global state per head, RMSNorm, a low-rank output gate; see :mod:`lion_hf.modeling.lightnet`).
            LightNet has no decay and no denominator: ``mask_type`` defaults to (and must be) ``"lit"``,
            ``patch_order`` must be ``"normal"`` (its state does not depend on the scan order), and
            ``feature_map``/``normalize_attention``/``attention_output_norm``/``attention_eps`` keep their LightNet
            values (``"identity"``, ``False``, ``False``, ``0``); anything else raises a :class:`LionConfigError`.
        lightnet_gate_rank: rank of LightNet's output gate ``act(x W_down W_up)`` (``None``: the number of heads).
        lightnet_gate_activation: ``"sigmoid"`` (default) or ``"silu"``, the output gate's activation.
        mask_type: ``"lit"`` (no decay), ``"decay"`` (LION-D, one learned decay per head) or
            ``"selective"`` (LION-S, input-dependent decay per token and head).
        attention_form: ``"auto"``, ``"attention"``, ``"chunk"`` or ``"recurrent"``; all compute the
            same function. Switch on a built model with ``model.set_attention_form``.
        attention_backend: ``"auto"`` (Triton kernels for CUDA tensors, PyTorch otherwise), ``"torch"``
            or ``"triton"``; see ``lion_hf.kernels.lion_attention``.
        chunk_size: chunk length of the chunk form (``None``: the operator's default, 64 in PyTorch; the
            Triton kernels choose 128 for LION-LIT and 64 with a decay). Every value computes the same function.
        patch_order: ``"normal"`` (raster order) or ``"s"`` (vision only: the natural variants
            LION-D♮/LION-S♮, two snake scan orders with their own decays, averaged before normalising).
        feature_map: applied to queries and keys: ``"elu_plus_one"`` (vision LIT), ``"silu_l2"``
            (shifted SiLU divided by its L2 norm; vision D and S) or ``"identity"`` (text).
        normalize_attention: divide by the mask-weighted score sum (vision) or not (text; the output is
            then scaled by ``head_dim ** -0.5``).
        attention_eps: added to the mean denominator of the scaled scores, as in the reference (vision 1e-6).
        attention_output_norm: LayerNorm on the attention output before its projection (text LIT).
        use_position_embeddings: learned absolute position embeddings (vision: off in the published
            runs; text: on for LIT only, D and S take position from the mask).
        layer_norm_position: ``"pre"`` (vision, pre-norm blocks) or ``"post"`` (text, BERT post-norm).
        pooling: vision pooling of the final tokens, ``"mean"`` (over all tokens, class token included)
            or ``"cls"``.
        drop_path_rate: stochastic depth, increasing linearly over the layers up to this rate.
        position_encoding: LightNet's multi-dimensional relative encodings (arXiv 2405.21022), for either
            ``attention_type``: ``"none"`` (default), ``"md_lrpe"`` (rotary on q and k after the feature map, one
            group of feature pairs per grid axis: the patch grid's rows and columns, text's one axis; the class
            token unrotated), ``"md_tpe"`` (a Toeplitz relative-position mixer per axis, summed, added to the
            mixer's input) or ``"md_lrpe_tpe"`` (both, LightNet's own). With an encoding,
            ``use_position_embeddings`` defaults to ``False``. See :mod:`lion_hf.modeling.positional`.
        position_scaling: ``"none"`` (integer grid coordinates at every image size) or ``"interpolate"`` (vision:
            coordinates scaled to the training grid ``image_size // patch_size``).
        lrpe_base, lrpe_learnable_theta: MD-LRPE's rotary base (> 1) and whether its frequencies are learned.
        tpe_feature_dim, tpe_num_layers, tpe_decay_init, tpe_use_decay, tpe_method: MD-TPE's relative position
            encoder (even width >= 2, residual blocks >= 0), its initial per-step decay in (0, 1) and whether it
            is used, and the mixing method (``"auto"``, ``"matmul"``, ``"fft"``).
        image_size, patch_size, num_channels: vision input geometry.
        vocab_size, max_position_embeddings, type_vocab_size, pad_token_id, tie_word_embeddings: text fields.

    Every field is type- and range-checked when the config is built (``from_pretrained`` keyword overrides
    included), when a model is built from it and when it is saved; the :class:`LionConfigError` names each
    wrong field and what it accepts. ``save_pretrained`` also writes the flat modeling code and an ``auto_map``
    for every head, so the folder loads with ``trust_remote_code=True`` where ``lion_hf`` is not installed.
    """

    model_type = "lion"

    modality: str = "vision"
    attention_type: str = "lion"
    lightnet_gate_rank: int | None = None
    lightnet_gate_activation: str = "sigmoid"
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int | None = None
    attention_probs_dropout_prob: float | int | None = None
    drop_path_rate: float | int = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float | None = None
    qkv_bias: bool = True
    mask_type: str | None = None
    attention_form: str = "auto"
    attention_backend: str = "auto"
    chunk_size: int | None = None
    patch_order: str = "normal"
    feature_map: str | None = None
    normalize_attention: bool | None = None
    attention_eps: float | int | None = None
    attention_output_norm: bool | None = None
    use_position_embeddings: bool | None = None
    layer_norm_position: str | None = None
    # positional encodings (LightNet's MD-LRPE / MD-TPE, for either mixer)
    position_encoding: str = "none"
    position_scaling: str = "none"
    lrpe_base: float | int = 10000.0
    lrpe_learnable_theta: bool = False
    tpe_feature_dim: int = 32
    tpe_num_layers: int = 2
    tpe_decay_init: float = 0.99
    tpe_use_decay: bool = True
    tpe_method: str = "auto"
    # vision
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    pooling: str = "mean"
    # text
    vocab_size: int = 30522
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    pad_token_id: int | None = 0
    tie_word_embeddings: bool = True
    classifier_dropout: float | int | None = None

    def __post_init__(self, **kwargs):
        problem = _choice_problem("modality", self.modality, MODALITIES)
        if problem:
            raise LionConfigError(problem)
        vision = self.modality == "vision"
        lightnet = self.attention_type == "lightnet"
        if self.mask_type is None:
            # LION's default is LION-D; LightNet has no decay (one global state per head: LIT-like)
            self.mask_type = "lit" if lightnet else "decay"
        defaults = {
            "hidden_dropout_prob": 0.0 if vision else 0.1,
            "attention_probs_dropout_prob": 0.0 if vision else 0.1,
            "layer_norm_eps": 1e-6 if vision else 1e-12,
            "feature_map": ("elu_plus_one" if self.mask_type == "lit" else "silu_l2") if vision and not lightnet
            else "identity",
            "normalize_attention": vision and not lightnet,
            "attention_eps": 1e-6 if vision and not lightnet else 0.0,
            "attention_output_norm": (not vision) and self.mask_type == "lit" and not lightnet,
            # LightNet without its MD-TPE/MD-LRPE encodings would see no token order at all: learned positions;
            # with an encoding, position comes from it
            "use_position_embeddings": self.position_encoding == "none" and (
                lightnet or ((not vision) and self.mask_type == "lit")),
            "layer_norm_position": "pre" if vision else "post",
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self._validate_values()
        self._warn_near_misses(kwargs)
        super().__post_init__(**kwargs)

    @classmethod
    def _warn_near_misses(cls, extra: dict[str, Any]) -> None:
        """Unknown keywords are kept as plain attributes (transformers' convention), so a misspelt LION field
        (``mask_typ="lit"``) or another library's name for one (timm's ``depth``) would silently leave the real
        field at its default: say so."""
        own = [field.name for field in dataclasses.fields(cls)] + ["num_labels"]
        for name in extra:
            if name in own or name.startswith("_") or name.endswith("_token_id"):
                continue
            close = FIELD_ALIASES.get(name) or next(iter(difflib.get_close_matches(name, own, n=1, cutoff=0.8)), None)
            if close:
                logger.warning("LionConfig got %r, which is not one of its fields, and keeps it as an extra "
                               "attribute; did you mean %r? That field keeps its default.", name, close)

    def validate_lion_fields(self) -> None:
        """Class validator (run by ``validate()``, e.g. on ``save_pretrained``): fields changed after construction
        are checked again."""
        self._validate_values()

    def field_problems(self) -> list[str]:
        """One message per wrong field (type or value), each naming the field and what it accepts; empty when
        every field is valid. Fields that only make sense together are checked once each field is valid."""
        problems = [p for name, allowed in CHOICE_FIELDS.items()
                    if (p := _choice_problem(name, getattr(self, name), allowed))]
        for name in POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"LionConfig.{name} must be a positive int, got {value!r} ({_type_name(value)})")
        rank = self.lightnet_gate_rank
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            problems.append(f"LionConfig.lightnet_gate_rank must be a positive int or None (the number of heads), "
                            f"got {rank!r} ({_type_name(rank)})")
        if self.chunk_size is not None and (isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int)
                                            or self.chunk_size < 1):
            problems.append(f"LionConfig.chunk_size must be a positive int or None, got {self.chunk_size!r} "
                            f"({_type_name(self.chunk_size)})")
        for name, low in (("tpe_feature_dim", 2), ("tpe_num_layers", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (
                    name == "tpe_feature_dim" and value % 2):
                kind = "an even int >= 2 (sine/cosine pairs)" if name == "tpe_feature_dim" else "an int >= 0"
                problems.append(f"LionConfig.{name} must be {kind}, got {value!r} ({_type_name(value)})")
        base = self.lrpe_base
        if not _is_real(base) or not math.isfinite(base) or base <= 1:
            problems.append(f"LionConfig.lrpe_base must be a finite number > 1 (the rotary base), got {base!r} "
                            f"({_type_name(base)}); pass a number such as 10000.0")
        decay = self.tpe_decay_init
        if not _is_real(decay) or not 0.0 < decay < 1.0:
            problems.append(f"LionConfig.tpe_decay_init must lie in (0, 1) (MD-TPE's initial per-step decay), got "
                            f"{decay!r} ({_type_name(decay)}); pass a number such as 0.99")
        for name in BOOL_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                problems.append(f"LionConfig.{name} must be True or False, got {value!r} ({_type_name(value)}); "
                                f"pass a Python bool (true/false in JSON), not a string or a number")
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if not _is_real(value) or not 0.0 <= value < 1.0:
                problems.append(f"LionConfig.{name} must be in [0, 1), got {value!r} ({_type_name(value)}); "
                                f"pass a number such as 0.1")
        for name, (zero_ok, example) in NON_NEGATIVE_FIELDS.items():
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
                bound = ">= 0" if zero_ok else "> 0"
                problems.append(f"LionConfig.{name} must be a finite number {bound}, got {value!r} "
                                f"({_type_name(value)}); pass a number such as {example}")
        if not isinstance(self.hidden_act, str) or self.hidden_act not in ACT2FN:
            close = difflib.get_close_matches(str(self.hidden_act), list(ACT2FN), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"LionConfig.hidden_act must name an activation of transformers.activations.ACT2FN "
                            f"(e.g. 'gelu'), got {self.hidden_act!r}{hint}")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            problems.append(_choice_problem("problem_type", self.problem_type, PROBLEM_TYPES)
                            + " (or None: inferred from num_labels and the label dtype)")
        pad = self.pad_token_id
        if pad is not None and (isinstance(pad, bool) or not isinstance(pad, int)):
            problems.append(f"LionConfig.pad_token_id must be an int or None, got {pad!r} ({_type_name(pad)})")
        elif (pad is not None and self.modality == "text" and isinstance(self.vocab_size, int)
              and not 0 <= pad < self.vocab_size):
            problems.append(f"LionConfig.pad_token_id must lie in [0, vocab_size={self.vocab_size}) or be None, got "
                            f"{pad}; use the tokenizer's pad_token_id")
        if problems:
            return problems
        return self._combination_problems()

    def _combination_problems(self) -> list[str]:
        problems = []
        if self.hidden_size % self.num_attention_heads:
            problems.append(f"LionConfig.hidden_size ({self.hidden_size}) must be a multiple of "
                            f"num_attention_heads ({self.num_attention_heads})")
        if self.modality == "vision" and self.image_size % self.patch_size:
            problems.append(f"LionConfig.image_size ({self.image_size}) must be divisible by "
                            f"patch_size ({self.patch_size})")
        problems += self._position_encoding_problems()
        if self.attention_type == "lightnet":
            return problems + self._lightnet_problems()
        if self.patch_order == "s" and self.modality != "vision":
            problems.append("LionConfig.patch_order='s' (two snake scan orders of a patch grid) needs "
                            "modality='vision'; use patch_order='normal' for text")
        if self.patch_order == "s" and self.mask_type == "lit":
            problems.append("LionConfig.patch_order='s' has no effect without a decay mask: use "
                            "mask_type='decay' or 'selective', or patch_order='normal'")
        if self.patch_order == "s" and not self.normalize_attention:
            problems.append("LionConfig.patch_order='s' combines normalised outputs of two scan orders; "
                            "set normalize_attention=True")
        return problems

    def _position_encoding_problems(self) -> list[str]:
        """``position_scaling`` and MD-LRPE's head split against the modality and the head size."""
        problems = []
        vision = self.modality == "vision"
        if self.position_scaling == "interpolate":
            if not vision:
                problems.append("LionConfig.position_scaling='interpolate' scales positions to the training patch "
                                "grid, which text models do not have (a longer text has larger offsets, as "
                                "usual): use position_scaling='none' for modality='text'")
            elif self.position_encoding == "none":
                problems.append("LionConfig.position_scaling='interpolate' has no effect without a positional "
                                "encoding: set position_encoding='md_lrpe', 'md_tpe' or 'md_lrpe_tpe', or "
                                "position_scaling='none'")
        if self.position_encoding in ("md_lrpe", "md_lrpe_tpe") and self.hidden_size % self.num_attention_heads == 0:
            from .positional import split_rotary_pairs

            try:
                split_rotary_pairs(self.head_dim, 2 if vision else 1)
            except ValueError as error:
                problems.append(f"LionConfig.position_encoding={self.position_encoding!r}: {error} "
                                f"(head_dim = hidden_size / num_attention_heads = {self.head_dim})")
        return problems

    def _lightnet_problems(self) -> list[str]:
        """LION fields that have no meaning for ``attention_type='lightnet'`` and must keep their LightNet values."""
        problems = []
        fix = "leave it unset (its LightNet default) or use attention_type='lion'"
        if self.mask_type != "lit":
            problems.append(f"LionConfig.mask_type={self.mask_type!r} is a LION decay mask, but attention_type="
                            f"'lightnet' has no decay (its additive recurrence keeps one global state per head): "
                            f"{fix}")
        if self.patch_order != "normal":
            problems.append("LionConfig.patch_order='s' averages two scan orders, but LightNet's global state does "
                            "not depend on the scan order (one pass serves every token): use patch_order='normal'")
        expected = {"feature_map": "identity", "normalize_attention": False, "attention_output_norm": False}
        for name, value in expected.items():
            if getattr(self, name) != value:
                problems.append(f"LionConfig.{name}={getattr(self, name)!r} is a LION option; attention_type="
                                f"'lightnet' fixes its own (SiLU queries, keys softmax-normalised over the "
                                f"positions, no denominator, RMSNorm and an output gate; {name}={value!r}): {fix}")
        if self.attention_eps != 0:
            problems.append(f"LionConfig.attention_eps={self.attention_eps!r} is the epsilon of LION's denominator; "
                            f"attention_type='lightnet' has no denominator (attention_eps=0): {fix}")
        return problems

    def _validate_values(self) -> None:
        problems = self.field_problems()
        if len(problems) == 1:
            raise LionConfigError(problems[0])
        if problems:
            raise LionConfigError(f"{len(problems)} LionConfig fields are invalid:\n- " + "\n- ".join(problems))

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> "LionConfig":
        """As ``PreTrainedConfig.from_dict``, but keyword overrides of LION fields (``from_pretrained(folder,
        mask_type=...)``) are merged before the config is built, so they pass the constructor's validation
        (transformers would ``setattr`` them afterwards, unchecked)."""
        model_type = config_dict.get("model_type")
        if model_type is not None and model_type != cls.model_type:
            # transformers only warns here; a LION model built from another architecture's fields is silently wrong
            raise LionConfigError(
                f"this config has model_type {model_type!r}, not {cls.model_type!r}: its fields do not describe a LION "
                f"model. Build one with LionConfig(...) or LionConfig.from_preset(...), or convert the authors' LION "
                f"checkpoints with lion-convert")
        own = {field.name for field in dataclasses.fields(cls)} - {
            field.name for field in dataclasses.fields(PreTrainedConfig)}
        overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in own}
        return super().from_dict({**_without_own_auto_map(cls, config_dict), **overrides}, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs) -> "LionConfig":
        """As ``PreTrainedConfig.from_pretrained``; a wrong field names the checkpoint it came from."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except LionConfigError as error:
            raise LionConfigError(f"the config of {str(pretrained_model_name_or_path)!r} (its config.json or a keyword "
                                  f"of from_pretrained) is invalid: {error}") from None

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs) -> None:
        """As ``PreTrainedConfig.save_pretrained``, and the folder becomes self-contained the Hugging Face way:
        ``config.json`` gets an ``auto_map`` for every LION head and the flat modeling code is written next to it
        (:mod:`lion_hf.modeling.self_contained`), so ``AutoModel*.from_pretrained(folder, trust_remote_code=True)``
        works without ``lion_hf``. ``model.save_pretrained`` goes through here.

        In a copy of this file loaded as remote code, transformers' own ``custom_object_save`` copies the code.
        """
        if not __name__.startswith("lion_hf."):
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        if os.path.isfile(save_directory):
            raise ValueError(f"{save_directory} is a file; save_pretrained writes a folder, pass a folder path")
        self._validate_values()
        glue = importlib.import_module(_SELF_CONTAINED_MODULE)
        repo_id = timestamps = None
        if push_to_hub:
            repo_id, timestamps = glue.prepare_push(self, save_directory, kwargs)
        # The code first, config.json last: a folder whose auto_map names files never has them missing.
        glue.write_modeling_code(save_directory)
        had_auto_map = "auto_map" in self.__dict__
        previous = self.__dict__.get("auto_map")
        self.auto_map = glue.full_auto_map(previous)
        try:
            super().save_pretrained(save_directory, push_to_hub=False)
        finally:
            if had_auto_map:
                self.auto_map = previous
            else:
                del self.auto_map
        if push_to_hub:
            glue.finish_push(self, save_directory, repo_id, timestamps, kwargs)

    @classmethod
    def register_for_auto_class(cls, auto_class: str | type = "AutoConfig") -> None:
        """Not needed for the package's config: :meth:`save_pretrained` always writes the code and a full
        ``auto_map``. A copy of this file loaded as remote code keeps transformers' behaviour."""
        if __name__.startswith("lion_hf."):
            logger.info("LionConfig: LION folders always carry their modeling code and a full auto_map")
            return
        super().register_for_auto_class(auto_class)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def num_scan_orders(self) -> int:
        """Scan orders whose outputs are averaged: 2 for the natural (``patch_order='s'``) variants."""
        return 2 if self.patch_order == "s" else 1

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "LionConfig":
        """Config of a named preset (see :func:`list_presets`), with keyword overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown LION preset {name!r}; available: {', '.join(list_presets())}")
        return cls(**{**PRESETS[name], **overrides})


_VISION_SIZES = {
    "tiny": {"hidden_size": 192, "num_attention_heads": 3, "intermediate_size": 768},
    "small": {"hidden_size": 384, "num_attention_heads": 6, "intermediate_size": 1536},
    "base": {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
}
_VISION_MASKS = {
    "lit": {"mask_type": "lit"},
    "d": {"mask_type": "decay"},
    "d-natural": {"mask_type": "decay", "patch_order": "s"},
    "s": {"mask_type": "selective"},
    "s-natural": {"mask_type": "selective", "patch_order": "s"},
}
_TEXT_SIZES = {
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
}
_TEXT_MASKS = {"lit": "lit", "d": "decay", "s": "selective"}

PRESETS: dict[str, dict] = {}
for _mask, _mask_fields in _VISION_MASKS.items():
    for _size, _size_fields in _VISION_SIZES.items():
        PRESETS[f"lion-{_mask}-{_size}-patch16-224"] = {
            "modality": "vision", "num_hidden_layers": 12, "drop_path_rate": 0.1, "num_labels": 1000,
            **_mask_fields, **_size_fields}
for _mask, _mask_type in _TEXT_MASKS.items():
    for _size, _size_fields in _TEXT_SIZES.items():
        PRESETS[f"lion-{_mask}-{_size}-mlm"] = {"modality": "text", "mask_type": _mask_type, **_size_fields}
# LightNet (arXiv 2405.21022) at the same sizes, for comparison with LION: vision tiny/small/base, MLM base
for _size, _size_fields in _VISION_SIZES.items():
    PRESETS[f"lightnet-{_size}-patch16-224"] = {
        "modality": "vision", "attention_type": "lightnet", "num_hidden_layers": 12, "drop_path_rate": 0.1,
        "num_labels": 1000, **_size_fields}
PRESETS["lightnet-base-mlm"] = {"modality": "text", "attention_type": "lightnet", **_TEXT_SIZES["base"]}


def list_presets() -> list[str]:
    """Names accepted by :meth:`LionConfig.from_preset`: the paper's vision (tiny/small/base, ImageNet-1k)
    and MLM (base/large, BERT uncased vocabulary) models, and LightNet at the same sizes
    (``lightnet-{tiny,small,base}-patch16-224``, ``lightnet-base-mlm``)."""
    return sorted(PRESETS)


__all__ = ["LionConfig", "LionConfigError", "list_presets", "PRESETS"]
