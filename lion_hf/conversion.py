# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Convert the LION authors' original checkpoints into ``lion_hf`` models.

Vision (DeiT code base, ``models_lion.py``) key mapping, ``i`` = block index:

==========================================  ==============================================================
original                                    lion_hf (``LionForImageClassification``)
==========================================  ==============================================================
``cls_token``                               ``lion.embeddings.cls_token``
``pos_embed`` (``pos_emb=True`` only)       ``lion.embeddings.position_embeddings``
``patch_embed.proj.{weight,bias}``          ``lion.embeddings.patch_embeddings.projection.*``
``blocks.i.norm1.*`` / ``norm2.*``          ``lion.layers.i.norm1.*`` / ``norm2.*``
``blocks.i.attn.qkv.*``                     ``lion.layers.i.attention.qkv.*``
``blocks.i.attn.proj.*``                    ``lion.layers.i.attention.out_proj.*``
``blocks.i.attn.a_i`` (+ ``a2_i``), Decay   ``lion.layers.i.attention.decay_logits`` (rows: order s, sr)
``blocks.i.attn.a_i.*`` (+ ``a2_i.*``), Sel.  ``lion.layers.i.attention.gate.*`` (concatenated on outputs)
``blocks.i.mlp.fc1.*`` / ``fc2.*``          ``lion.layers.i.mlp.fc1.*`` / ``fc2.*``
``norm.*``                                  ``lion.final_norm.*``
``head.*``                                  ``classifier.*``
==========================================  ==============================================================

The reference's class-token pooling (``cls_tok``), position embedding (``pos_emb``) and patch
order (``order``: ``"Normal"`` or ``"S"``) become ``pooling``, ``use_position_embeddings`` and
``patch_order``. Its LION-S gate is ``lambda = 1 - sigmoid(W x + b)``; ours is
``log lambda = logsigmoid(-(W x + b))``, the same function, so the weights copy unchanged. The
reference wraps that gate in ``torch.tensor(...)``, which detaches it (its gate never trains): the
converted model computes the same forward pass, and its gate receives gradients.

MLM (M2-BERT code base, ``bert_layers.py``) maps BERT names onto ours: the separate
``query``/``key``/``value`` become the stacked ``qkv``; ``attention.self.ai`` -> ``decay_logits``;
``attention.self.Wa_i`` -> ``gate``; ``attention.self.layer_norm`` -> ``output_norm``;
``attention.output.dense``/``LayerNorm`` -> ``out_proj``/``norm1``; ``intermediate.dense``/
``output.dense``/``output.LayerNorm`` -> ``mlp.fc1``/``mlp.fc2``/``norm2``;
``cls.predictions.transform.*`` -> ``lm_head.dense``/``lm_head.layer_norm``; the decoder and its bias ->
``lm_head.decoder``. The reference's LION-S text gate is ``log(1 - sigmoid(W x) + 1e-7)``; ours
drops the 1e-7 (it can push the log-decay above 0), a change below 1e-7 in every decay.

Checkpoint files are read without running code from them (:func:`load_original_checkpoint`):
``torch.load(weights_only=True)`` builds only tensors, plain containers and the allow-listed
``argparse.Namespace`` that DeiT stores its arguments in; a file that needs more is refused with the
names of the classes it asks for (``lion-convert --allow-global MODULE.NAME`` admits one you trust).

The authors' checkpoints carry a non-commercial licence: convert them for your own use, do not
republish them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from transformers.utils import logging

from .modeling import LionConfig, LionForImageClassification, LionForMaskedLM

logger = logging.get_logger(__name__)

VISION_MASK_TYPES = {"Lit": "lit", "Decay": "decay", "Selective": "selective"}
VISION_ORDERS = {"Normal": "normal", "S": "s"}
# The released YAML files name the variants differently from the attention code; accept both.
MLM_ARCH_TYPES = {"lion-lit": "lit", "lion-d": "decay", "lion-s": "selective",
                  "linear_attention": "lit", "nova": "decay", "nova-inputdep": "selective"}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
#: What the reference training checkpoints hold besides tensors and plain containers: DeiT's
#: ``main.py`` stores its command line as an ``argparse.Namespace`` under ``"args"``. These are the only
#: classes :func:`load_original_checkpoint` lets the unpickler build (torch's ``weights_only`` loader
#: already accepts tensors, dicts, lists, numbers and strings); anything else is refused before it runs.
SAFE_CHECKPOINT_GLOBALS: tuple[type, ...] = (argparse.Namespace,)


class CheckpointLoadError(ValueError):
    """A checkpoint file cannot be read safely (the message says why and how to proceed)."""


def _resolve_global(name: str) -> object:
    """The object ``module.qualname`` names (``--allow-global``), imported on the user's explicit request."""
    module_name, _, attribute = name.rpartition(".")
    if not module_name or not attribute:
        raise CheckpointLoadError(f"--allow-global needs a dotted name such as 'collections.OrderedDict', got {name!r}")
    for split in range(len(name.split(".")) - 1, 0, -1):  # the longest importable module prefix
        parts = name.split(".")
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:]:
                target = getattr(target, part)
        except AttributeError:
            break
        return target
    raise CheckpointLoadError(f"--allow-global {name}: no importable object of that name")


def _unsafe_globals(path: Path, error: Exception) -> list[str]:
    """The classes/functions a refused checkpoint asks the unpickler for (named in the error message)."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # legacy (non-zip) files: read the names from torch's message instead
        names = []
    names += re.findall(r"GLOBAL ([\w.]+)", str(error))
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in SAFE_CHECKPOINT_GLOBALS}
    return sorted(set(names) - allowed)


def load_original_checkpoint(path: str | os.PathLike, allow_globals: Iterable[str] = ()) -> Mapping:
    """Read an original checkpoint without running code from it.

    ``.safetensors`` files are read with ``safetensors``; pickle files (``.pth``, ``.pt``, ``.ckpt``) with
    ``torch.load(weights_only=True)``, which builds only tensors, plain containers and the classes of
    :data:`SAFE_CHECKPOINT_GLOBALS` (plus ``allow_globals``, dotted names the user vouches for).

    Raises:
        CheckpointLoadError: the file is missing, unreadable, or needs classes outside the allow-list (the
            message names them and says how to proceed).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointLoadError(f"checkpoint {path} does not exist; pass the path of the original .pth/.pt file")
    if not path.is_file():
        raise CheckpointLoadError(f"checkpoint {path} is not a file; pass the path of the original .pth/.pt file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:  # safetensors has its own error types
            raise CheckpointLoadError(f"{path} is not a readable safetensors file ({error})") from error
    extra = [_resolve_global(name) for name in allow_globals]
    try:
        with torch.serialization.safe_globals([*SAFE_CHECKPOINT_GLOBALS, *extra]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        needed = _unsafe_globals(path, error)
        if not needed:
            detail = re.search(r"WeightsUnpickler error:\s*(\S.*)", str(error))
            raise CheckpointLoadError(f"{path} is not a checkpoint written by torch.save (the unpickler refused it"
                                      f"{': ' + detail.group(1) if detail else ''})") from error
        raise CheckpointLoadError(
            f"{path} holds objects other than tensors ({', '.join(needed)}), which lion-convert does not unpickle "
            "because unpickling them can run code from the file. If you trust the file, either pass "
            f"{' '.join('--allow-global ' + n for n in needed)}, or extract its tensors once in Python where those "
            "classes import (obj = torch.load(path, weights_only=False); torch.save(obj['model'] if isinstance(obj, "
            "dict) else obj.state_dict(), 'weights.pt')) and convert weights.pt") from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointLoadError(f"{path} is not a readable PyTorch checkpoint ({_first_line(error)})") from error
    if not isinstance(checkpoint, Mapping):
        raise CheckpointLoadError(f"{path} holds a {type(checkpoint).__name__}, not a state dict; save the "
                                  "model's state_dict() (or a dict holding it under 'model')")
    return checkpoint


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:300]


def unwrap_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: unwraps ``{"model": ...}`` / ``{"state_dict": ...}`` / Composer's
    ``{"state": {"model": ...}}`` and strips ``module.`` / ``model.`` prefixes."""
    state = checkpoint
    for key in ("state", "model", "state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]
    tensors = {}
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[re.sub(r"^(module\.|model\.)+", "", name)] = value
    if not tensors:
        raise ValueError("no tensors found in the checkpoint; pass the model's state dict")
    broken = [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if broken:
        raise ValueError(f"the checkpoint has NaN or infinite values in {len(broken)} tensors ({', '.join(broken[:4])}"
                         f"{', ...' if len(broken) > 4 else ''}): it is damaged or was saved after training diverged")
    return tensors


def _choice(value: str, table: dict[str, str], argument: str) -> str:
    if value not in table:
        raise ValueError(f"{argument} must be one of {sorted(table)}, got {value!r}")
    return table[value]


def _load_exactly(model: torch.nn.Module, state: dict[str, torch.Tensor], leftovers: set[str]) -> None:
    if leftovers:
        raise ValueError(f"checkpoint keys not understood by the converter: {sorted(leftovers)[:8]}")
    expected = model.state_dict()
    wrong = [f"{name} {tuple(t.shape)} (the model needs {tuple(expected[name].shape)})"
             for name, t in state.items() if name in expected and t.shape != expected[name].shape]
    if wrong:
        raise ValueError(f"tensor shapes do not fit the model read from the checkpoint: {'; '.join(wrong[:4])}; the "
                         "checkpoint is inconsistent, or num_heads / the variant arguments do not match it")
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in _tied_targets(model)]
    if missing or result.unexpected_keys:
        raise ValueError(f"converted state dict does not fit the model: missing {missing[:8]}, "
                         f"unexpected {result.unexpected_keys[:8]}; check num_heads and the variant arguments")


def _require(sd: Mapping, key: str, hint: str) -> torch.Tensor:
    if key not in sd:
        raise ValueError(f"the checkpoint has no {key!r}: {hint}")
    return sd[key]


def _depth(sd: Mapping, pattern: str, what: str) -> int:
    """Number of layers (``1 + the largest index``) of the keys matching ``pattern``; every index must exist."""
    indices = {int(m.group(1)) for k in sd if (m := re.match(pattern, k))}
    if not indices:
        raise ValueError(f"the checkpoint has no {what} layers")
    missing = sorted(set(range(max(indices) + 1)) - indices)
    if missing:
        raise ValueError(f"the checkpoint's {what} layers are not numbered 0..{max(indices)}: layer(s) {missing[:4]} "
                         "are missing")
    return max(indices) + 1


class _Tensors(dict):
    """The checkpoint's tensors; a missing one is a ValueError naming it (not a bare KeyError)."""

    def __missing__(self, key: str):
        raise ValueError(f"the checkpoint has no tensor {key!r}, which this kind of checkpoint always has: is it "
                         "complete, and is it a checkpoint of the kind given (vision / mlm)?")


def _tied_targets(model: torch.nn.Module) -> set[str]:
    return set(getattr(model, "_tied_weights_keys", None) or {})


def convert_original_vision(state_dict: Mapping, *, num_heads: int, mask_type: str, order: str = "Normal",
                            pos_emb: bool = True, cls_tok: bool = False, img_size: int = 224,
                            patch_size: int = 16) -> LionForImageClassification:
    """Build a :class:`LionForImageClassification` from a ``models_lion.py`` state dict.

    Arguments carry the reference's own names and values (``mask_type`` in ``"Lit"``/``"Decay"``/
    ``"Selective"``, ``order`` in ``"Normal"``/``"S"``); hidden size, depth, MLP width, channels,
    classes and qkv bias are read from the tensors. The returned model is in eval mode.
    """
    sd = _Tensors(unwrap_state_dict(state_dict))
    mask = _choice(mask_type, VISION_MASK_TYPES, "mask_type")
    patch_order = _choice(order, VISION_ORDERS, "order")
    if "cls_token" not in sd or "patch_embed.proj.weight" not in sd:
        raise ValueError("this is not a models_lion.py vision state dict (no cls_token / patch_embed.proj.weight)")
    hidden = sd["cls_token"].shape[-1]
    depth = _depth(sd, r"blocks\.(\d+)\.", "blocks.N")
    conv = sd["patch_embed.proj.weight"]
    if conv.shape[-1] != patch_size:
        raise ValueError(f"patch_size={patch_size} but the checkpoint's patch projection has kernel {conv.shape[-1]}")
    if pos_emb != ("pos_embed" in sd):
        raise ValueError(f"pos_emb={pos_emb} but the checkpoint {'has' if 'pos_embed' in sd else 'has no'} pos_embed")
    config = LionConfig(
        modality="vision", mask_type=mask, patch_order=patch_order, hidden_size=hidden, num_hidden_layers=depth,
        num_attention_heads=num_heads, intermediate_size=sd["blocks.0.mlp.fc1.weight"].shape[0],
        num_channels=conv.shape[1], image_size=img_size, patch_size=patch_size, use_position_embeddings=pos_emb,
        pooling="cls" if cls_tok else "mean", qkv_bias="blocks.0.attn.qkv.bias" in sd,
        num_labels=sd["head.weight"].shape[0] if "head.weight" in sd else 0, layer_norm_eps=1e-6,
    )
    if pos_emb and sd["pos_embed"].shape[1] != (img_size // patch_size) ** 2 + 1:
        raise ValueError(f"pos_embed has {sd['pos_embed'].shape[1]} rows, which does not fit img_size={img_size} "
                         f"and patch_size={patch_size}")
    model = LionForImageClassification(config)
    out, used = {}, set()
    variant_hint = (f"mask_type={mask_type!r} and order={order!r} do not match this checkpoint "
                    "(order='S' needs a_i and a2_i; Decay stores a_i as a parameter, Selective as a Linear)")

    def take(src: str, dst: str) -> None:
        out[dst] = sd[src]
        used.add(src)

    take("cls_token", "lion.embeddings.cls_token")
    if pos_emb:
        take("pos_embed", "lion.embeddings.position_embeddings")
    for p in ("weight", "bias"):
        take(f"patch_embed.proj.{p}", f"lion.embeddings.patch_embeddings.projection.{p}")
        take(f"norm.{p}", f"lion.final_norm.{p}")
        if "head.weight" in sd:
            take(f"head.{p}", f"classifier.{p}")
    for i in range(depth):
        src, dst = f"blocks.{i}.", f"lion.layers.{i}."
        for name in list(sd):
            if not name.startswith(src) or ".attn.a" in name:
                continue
            rest = name[len(src):].replace("attn.proj.", "attention.out_proj.").replace("attn.qkv.", "attention.qkv.")
            take(name, dst + rest)
        suffixes = ["a_i", "a2_i"] if patch_order == "s" else ["a_i"]
        if mask == "decay":
            out[dst + "attention.decay_logits"] = torch.stack(
                [_require(sd, f"{src}attn.{s}", variant_hint) for s in suffixes])
            used.update(f"{src}attn.{s}" for s in suffixes)
        elif mask == "selective":
            for p in ("weight", "bias"):
                out[f"{dst}attention.gate.{p}"] = torch.cat(
                    [_require(sd, f"{src}attn.{s}.{p}", variant_hint) for s in suffixes])
                used.update(f"{src}attn.{s}.{p}" for s in suffixes)
    _load_exactly(model, out, set(sd) - used)
    return model.eval()


def convert_original_mlm(state_dict: Mapping, *, num_heads: int, arch_type: str, layer_norm_eps: float = 1e-12,
                         hidden_act: str = "gelu") -> LionForMaskedLM:
    """Build a :class:`LionForMaskedLM` from an M2-BERT-style ``bert_layers.py`` state dict.

    ``arch_type`` takes the reference's names (``"lion-lit"``, ``"lion-d"``, ``"lion-s"``, or the YAML
    names ``"linear_attention"``, ``"nova"``, ``"nova-inputdep"``). Sizes, vocabulary, position table
    and the attention-output LayerNorm are read from the tensors. The returned model is in eval mode.
    """
    sd = _Tensors(unwrap_state_dict(state_dict))
    mask = _choice(arch_type, MLM_ARCH_TYPES, "arch_type")
    if "bert.embeddings.word_embeddings.weight" not in sd:
        raise ValueError("this is not a bert_layers.py MLM state dict (no bert.embeddings.word_embeddings.weight)")
    words = sd["bert.embeddings.word_embeddings.weight"]
    layer = "bert.encoder.layer.{}."
    depth = _depth(sd, r"bert\.encoder\.layer\.(\d+)\.", "bert.encoder.layer.N")
    positions = sd.get("bert.embeddings.position_embeddings.weight")
    config = LionConfig(
        modality="text", mask_type=mask, vocab_size=words.shape[0], hidden_size=words.shape[1],
        num_hidden_layers=depth, num_attention_heads=num_heads,
        intermediate_size=sd[layer.format(0) + "intermediate.dense.weight"].shape[0],
        type_vocab_size=sd["bert.embeddings.token_type_embeddings.weight"].shape[0],
        use_position_embeddings=positions is not None,
        max_position_embeddings=positions.shape[0] if positions is not None else 512,
        attention_output_norm=layer.format(0) + "attention.self.layer_norm.weight" in sd,
        layer_norm_eps=layer_norm_eps, hidden_act=hidden_act,
    )
    model = LionForMaskedLM(config)
    out, used = {}, set()

    def take(src: str, dst: str) -> None:
        out[dst] = sd[src]
        used.add(src)

    for name in ("word_embeddings", "token_type_embeddings", "position_embeddings"):
        if f"bert.embeddings.{name}.weight" in sd:
            take(f"bert.embeddings.{name}.weight", f"lion.embeddings.{name}.weight")
    for p in ("weight", "bias"):
        take(f"bert.embeddings.LayerNorm.{p}", f"lion.embeddings.LayerNorm.{p}")
        take(f"cls.predictions.transform.dense.{p}", f"lm_head.dense.{p}")
        take(f"cls.predictions.transform.LayerNorm.{p}", f"lm_head.layer_norm.{p}")
    take("cls.predictions.decoder.weight" if "cls.predictions.decoder.weight" in sd
         else "bert.embeddings.word_embeddings.weight", "lm_head.decoder.weight")
    for bias in ("cls.predictions.bias", "cls.predictions.decoder.bias"):
        if bias in sd:
            take(bias, "lm_head.decoder.bias")
    renames = {"attention.output.dense.": "attention.out_proj.", "attention.output.LayerNorm.": "norm1.",
               "intermediate.dense.": "mlp.fc1.", "output.dense.": "mlp.fc2.", "output.LayerNorm.": "norm2.",
               "attention.self.layer_norm.": "attention.output_norm.", "attention.self.Wa_i.": "attention.gate."}
    for i in range(depth):
        src, dst = layer.format(i), f"lion.layers.{i}."
        for p in ("weight", "bias"):
            parts = [f"{src}attention.self.{n}.{p}" for n in ("query", "key", "value")]
            out[f"{dst}attention.qkv.{p}"] = torch.cat([sd[n] for n in parts])
            used.update(parts)
            for old, new in renames.items():
                if src + old + p in sd:
                    take(src + old + p, dst + new + p)
        if mask == "decay":
            out[dst + "attention.decay_logits"] = sd[src + "attention.self.ai"][None]
            used.add(src + "attention.self.ai")
    # The NSP head and pooler of BERT pretraining checkpoints have no place in an MLM model.
    ignored = {k for k in sd if k.startswith(("cls.seq_relationship.", "bert.pooler."))}
    _load_exactly(model, out, set(sd) - used - ignored)
    model.tie_weights()
    return model.eval()


def default_image_processor(img_size: int = 224):
    """DeiT's evaluation preprocessing: bicubic resize to ``img_size / 0.875``, centre crop, ImageNet
    mean/std (``DeiTImageProcessorPil`` needs no torchvision)."""
    from transformers import DeiTImageProcessorPil

    resize = int(round(img_size / 0.875))
    return DeiTImageProcessorPil(size={"height": resize, "width": resize},
                                 crop_size={"height": img_size, "width": img_size},
                                 image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output folder {output_dir} is a file; pass a new or empty folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise ValueError(f"output folder {output_dir} is not empty; pass a new folder, or --overwrite to replace "
                         "the model files in it")
    links = sorted(p.name for p in output_dir.iterdir() if p.is_symlink()) if output_dir.is_dir() else []
    if links:
        raise ValueError(f"output folder {output_dir} holds symbolic links ({', '.join(links[:4])}); the converted "
                         "files would be written through them: pass a new folder")


def _load_tokenizer(source: str):
    """The tokenizer saved next to a converted MLM: a BERT uncased ``vocab.txt`` or a tokenizer folder/id."""
    from transformers import AutoTokenizer, BertTokenizer

    if source.endswith(".txt"):
        if not Path(source).is_file():
            raise ValueError(f"--tokenizer {source}: no such vocabulary file")
        return BertTokenizer(vocab=source, do_lower_case=True)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ValueError(f"--tokenizer {source}: cannot load a tokenizer from it ({_first_line(error)}); pass a "
                         "vocab.txt or a folder written by tokenizer.save_pretrained") from error


def convert_checkpoint(args) -> torch.nn.Module:
    """Convert ``args.checkpoint`` and write ``args.output_dir`` (model + image processor or tokenizer);
    ``args`` carries the ``lion-convert`` options (see ``lion_hf.cli``). Returns the converted model.

    Everything is checked (checkpoint, tokenizer, output folder) before anything is written.
    """
    output_dir = Path(args.output_dir)
    _check_output_dir(output_dir, getattr(args, "overwrite", False))
    checkpoint = load_original_checkpoint(args.checkpoint, getattr(args, "allow_globals", None) or ())
    if args.kind == "vision":
        model = convert_original_vision(checkpoint, num_heads=args.num_heads, mask_type=args.mask_type,
                                        order=args.order, pos_emb=args.pos_emb, cls_tok=args.cls_tok,
                                        img_size=args.img_size, patch_size=args.patch_size)
        processor = default_image_processor(args.img_size)
    else:
        model = convert_original_mlm(checkpoint, num_heads=args.num_heads, arch_type=args.arch_type)
        processor = _load_tokenizer(args.tokenizer) if args.tokenizer else None
        if processor is not None and len(processor) > model.config.vocab_size:
            raise ValueError(f"--tokenizer {args.tokenizer} has {len(processor)} tokens but the checkpoint's "
                             f"vocabulary has {model.config.vocab_size}: pass the tokenizer the model was trained with")
    model.save_pretrained(output_dir)
    if processor is not None:
        processor.save_pretrained(output_dir)
    logger.info("wrote %s to %s", type(model).__name__, output_dir)
    return model
