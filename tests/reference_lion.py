"""Test-side restatement of what the authors' reference models compute, on their own state-dict layout.

Written from the spec (LION.md section 3) in the reference's structure: quadratic masks built by
explicit products, the natural variants' masks averaged in token order, the 1e-6 on the scaled
denominator, the MLM layer's ``log(1 - sigmoid(W x) + 1e-7)`` gate. It shares no code with
``lion_hf`` so that the conversion tests compare two independent implementations.
"""

import math

import torch
import torch.nn.functional as F


def product_mask(lam: torch.Tensor) -> torch.Tensor:
    """``[..., L] -> [..., L, L]``: ``M_ij = lam_j...lam_{i-1}`` (i > j), ``lam_{i+1}...lam_j`` (i < j)."""
    length = lam.shape[-1]
    rows = []
    for i in range(length):
        row = []
        for j in range(length):
            if i > j:
                row.append(lam[..., j:i].prod(-1))
            elif i < j:
                row.append(lam[..., i + 1:j + 1].prod(-1))
            else:
                row.append(torch.ones_like(lam[..., 0]))
        rows.append(torch.stack(row, -1))
    return torch.stack(rows, -2)


def curve_indices(side: int, orientation: str) -> list[int]:
    """Patch index at each scan step, from (x, y) coordinates as the reference's curves define them."""
    coords = []
    for y in range(side):
        xs = range(side) if y % 2 == 0 else reversed(range(side))
        coords.extend((x, y) for x in xs)
    if orientation == "sr":
        coords = [(y, x) for x, y in coords]
    return [y * side + x for x, y in coords]


def _layer_norm(x, sd, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], eps)


def _linear(x, sd, prefix):
    return F.linear(x, sd[prefix + ".weight"], sd.get(prefix + ".bias"))


def reference_vision_logits(sd, pixels, *, num_heads, mask_type, order="Normal", pos_emb=True, cls_tok=False,
                            patch_size=16):
    x = F.conv2d(pixels, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=patch_size)
    x = x.flatten(2).transpose(1, 2)
    batch, patches, dim = x.shape
    x = torch.cat([sd["cls_token"].expand(batch, -1, -1), x], 1)
    if pos_emb:
        x = x + sd["pos_embed"]
    tokens = x.shape[1]
    head_dim = dim // num_heads
    side = int(math.isqrt(patches))
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(depth):
        p = f"blocks.{i}."
        h = _layer_norm(x, sd, p + "norm1", 1e-6)
        qkv = _linear(h, sd, p + "attn.qkv").reshape(batch, tokens, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if mask_type == "Lit":
            q, k = F.elu(q) + 1, F.elu(k) + 1
        else:
            q, k = ((F.silu(t) + 0.5) / torch.norm(F.silu(t) + 0.5, dim=-1, keepdim=True) for t in (q, k))
        attn = (q @ k.transpose(-2, -1)) * head_dim ** -0.5
        if mask_type != "Lit":
            names = ["a_i", "a2_i"] if order == "S" else ["a_i"]
            masks = []
            for name, orientation in zip(names, ["s", "sr"]):
                if mask_type == "Decay":
                    lam = torch.sigmoid(sd[p + f"attn.{name}"])[None, :, None].expand(batch, num_heads, tokens)
                else:
                    lam = 1 - torch.sigmoid(_linear(h, sd, p + f"attn.{name}")).transpose(1, 2)
                    lam = torch.cat([torch.ones_like(lam[..., :1]), lam[..., 1:]], -1)  # class token: lambda = 1
                if order == "S":
                    scan = torch.tensor([0] + [1 + j for j in curve_indices(side, orientation)])
                    inverse = torch.argsort(scan)
                    m = product_mask(lam[..., scan])[:, :, inverse][:, :, :, inverse]
                else:
                    m = product_mask(lam)
                masks.append(m)
            attn = attn * (sum(masks) / len(masks))
        attn = attn / (attn.sum(dim=-1, keepdim=True) + 1e-6)
        out = (attn @ v).transpose(1, 2).reshape(batch, tokens, dim)
        x = x + _linear(out, sd, p + "attn.proj")
        h = _layer_norm(x, sd, p + "norm2", 1e-6)
        x = x + _linear(F.gelu(_linear(h, sd, p + "mlp.fc1")), sd, p + "mlp.fc2")
    x = _layer_norm(x, sd, "norm", 1e-6)
    pooled = x[:, 0] if cls_tok else x.mean(1)
    return _linear(pooled, sd, "head")


def reference_mlm_logits(sd, input_ids, attention_mask, *, num_heads, arch_type):
    emb = sd["bert.embeddings.word_embeddings.weight"][input_ids]
    emb = emb + sd["bert.embeddings.token_type_embeddings.weight"][torch.zeros_like(input_ids)]
    batch, length, dim = emb.shape
    if "bert.embeddings.position_embeddings.weight" in sd:
        emb = emb + sd["bert.embeddings.position_embeddings.weight"][:length]
    x = _layer_norm(emb, sd, "bert.embeddings.LayerNorm", 1e-12)
    head_dim = dim // num_heads
    depth = len({k.split(".")[3] for k in sd if k.startswith("bert.encoder.layer.")})
    split = lambda t: t.view(batch, length, num_heads, head_dim).transpose(1, 2)  # noqa: E731
    for i in range(depth):
        p = f"bert.encoder.layer.{i}."
        q, k, v = (split(_linear(x, sd, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
        if arch_type == "lion-d":
            scores = scores * product_mask(torch.sigmoid(sd[p + "attention.self.ai"])[None, :, None]
                                           .expand(batch, num_heads, length))
        elif arch_type == "lion-s":
            log_lam = torch.log(1 - torch.sigmoid(_linear(x, sd, p + "attention.self.Wa_i")) + 1e-7).transpose(1, 2)
            scores = scores * product_mask(log_lam.exp())
        scores = scores * attention_mask[:, None, None, :].to(scores.dtype)  # padded keys contribute nothing
        ctx = (scores @ v).transpose(1, 2).reshape(batch, length, dim)
        if p + "attention.self.layer_norm.weight" in sd:
            ctx = _layer_norm(ctx, sd, p + "attention.self.layer_norm", 1e-5)
        x = _layer_norm(_linear(ctx, sd, p + "attention.output.dense") + x, sd, p + "attention.output.LayerNorm", 1e-12)
        ffn = _linear(F.gelu(_linear(x, sd, p + "intermediate.dense")), sd, p + "output.dense")
        x = _layer_norm(ffn + x, sd, p + "output.LayerNorm", 1e-12)
    h = _layer_norm(F.gelu(_linear(x, sd, "cls.predictions.transform.dense")), sd,
                    "cls.predictions.transform.LayerNorm", 1e-12)
    return F.linear(h, sd["bert.embeddings.word_embeddings.weight"], sd["cls.predictions.bias"])
