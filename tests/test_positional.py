"""MD-LRPE and MD-TPE (lion_hf.modeling.positional) against float64 references written from the formulas.

The references share no code path with the module: coordinates by explicit divmod, rotations as explicit
per-token D x D block matrices, Toeplitz coefficients from the MLP written out with the module's weights and
``sigmoid(logit) ** |u|`` for the decay, and the mixing as one explicit ``[L, L, C]`` operator (sum over axes
of "same cell on the other axes" times the axis coefficient of the offset). Tolerances: float64 module vs
reference 1e-10; fp32 module vs float64 reference 1e-5 relative (norm-wise).
"""

import ast
import copy
import importlib.util
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from lion_hf.kernels import lion_attention_parts
from lion_hf.modeling import positional as P
from lion_hf.modeling.positional import (
    MultiDimRotaryEncoding,
    MultiDimToeplitzMixer,
    lrpe_normalized_attention,
    positions_from_attention_mask,
)

F64 = torch.float64


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().to(F64), b.detach().to(F64)
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


# --------------------------------------------------------------------------------------------------
# Float64 references
# --------------------------------------------------------------------------------------------------
def ref_coords(grid, num_special):
    """[L, m] float64 raster coordinates (last axis fastest) by explicit divmod; special tokens at 0."""
    rows = [[0.0] * len(grid) for _ in range(num_special)]
    for index in range(math.prod(grid)):
        coord, rest = [], index
        for n in reversed(grid):
            rest, c = divmod(rest, n)
            coord.append(float(c))
        rows.append(coord[::-1])
    return torch.tensor(rows, dtype=F64)


def ref_pair_layout(head_dim, num_axes, base, theta=None):
    """Per global pair g: (axis, frequency) from the formula theta_{a,j} = base ** (-j / P_a)."""
    pairs = head_dim // 2
    counts = [pairs // num_axes + (1 if a < pairs % num_axes else 0) for a in range(num_axes)]
    axes, freqs = [], []
    for a, count in enumerate(counts):
        for j in range(count):
            axes.append(a)
            freqs.append(base ** (-j / count))
    freqs = torch.tensor(freqs, dtype=F64) if theta is None else theta.to(F64)
    return axes, freqs


def ref_rotate(x, coords, num_axes, base=10000.0, theta=None, num_special=0):
    """x [B, L, H, D] float64, coords [B or 1, L, m]: explicit block-diagonal rotations, special tokens identity."""
    batch, length, _, dim = x.shape
    axes, freqs = ref_pair_layout(dim, num_axes, base, theta)
    coords = coords.to(F64).expand(batch, length, num_axes)
    rot = torch.eye(dim, dtype=F64).repeat(batch, length, 1, 1)
    for g, (axis, freq) in enumerate(zip(axes, freqs)):
        angle = coords[..., axis] * freq
        if num_special:
            angle = torch.where(torch.arange(length)[None] < num_special, torch.zeros_like(angle), angle)
        c, s = torch.cos(angle), torch.sin(angle)
        rot[..., 2 * g, 2 * g], rot[..., 2 * g, 2 * g + 1] = c, -s
        rot[..., 2 * g + 1, 2 * g], rot[..., 2 * g + 1, 2 * g + 1] = s, c
    return torch.einsum("blde,blhe->blhd", rot, x.to(F64))


def ref_encoder(encoder, offsets):
    """The relative position encoder written out: sinusoidal features, in_proj, residual blocks, out."""
    half = encoder.feature_dim // 2
    omega = torch.tensor([encoder.base ** (-j / half) for j in range(half)], dtype=F64)
    phase = offsets.to(F64)[:, None] * omega[None]
    h = torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)

    def lin(layer, z):
        return z @ layer.weight.to(F64).T + layer.bias.to(F64)

    def norm(layer, z):
        mu = z.mean(-1, keepdim=True)
        var = ((z - mu) ** 2).mean(-1, keepdim=True)
        return (z - mu) / torch.sqrt(var + layer.eps) * layer.weight.to(F64) + layer.bias.to(F64)

    h = lin(encoder.in_proj, h)
    for block in encoder.layers:
        ln, _, linear = block
        z = norm(ln, h)
        h = h + lin(linear, z * torch.sigmoid(z))
    ln, _, linear = encoder.out
    z = norm(ln, h)
    return lin(linear, z * torch.sigmoid(z))


def ref_coefficient(module, axis, offsets_scaled):
    """t_axis(u) = sigmoid(logit) ** |u| * MLP(u), [N, C] float64."""
    coeff = ref_encoder(module.encoders[axis], offsets_scaled)
    if module.decay_logits is not None:
        lam = torch.sigmoid(module.decay_logits[axis].to(F64))
        coeff = coeff * lam[None, :] ** offsets_scaled.to(F64).abs()[:, None]
    return coeff


def ref_tpe_operator(module, grid, num_special, scales=None):
    """[L, L, C] float64: W[t, s] = sum_a [t, s share the other coordinates] * t_a(s_a * (t_a - s_a))."""
    coords = ref_coords(grid, 0)
    n_cells, m = coords.shape
    scales = scales or [1.0] * m
    length = n_cells + num_special
    op = torch.zeros(length, length, module.channels, dtype=F64)
    for a in range(m):
        others = [b for b in range(m) if b != a]
        same = torch.ones(n_cells, n_cells, dtype=torch.bool)
        for b in others:
            same &= coords[:, b][:, None] == coords[:, b][None, :]
        offset = coords[:, a][:, None] - coords[:, a][None, :]
        coeff = ref_coefficient(module, a, (offset * scales[a]).reshape(-1)).reshape(n_cells, n_cells, -1)
        op[num_special:, num_special:] += same[..., None].to(F64) * coeff
    return op


def ref_tpe(module, x, grid, num_special, mask=None, scales=None):
    op = ref_tpe_operator(module, grid, num_special, scales)
    x = x.to(F64)
    keep = torch.ones(x.shape[:2], dtype=F64) if mask is None else mask.to(F64)
    y = torch.einsum("tsc,bsc->btc", op, x * keep[..., None])
    return y * keep[..., None]


def randomize(module):
    """Random (non-default) weights everywhere, so that no test passes on a degenerate initialisation."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 and p.shape[0] > 0 else 0.0) * 0.2)
    return module


# --------------------------------------------------------------------------------------------------
# MD-LRPE
# --------------------------------------------------------------------------------------------------
LRPE_CASES = [
    # (head_dim, grid, num_special, batch, heads)
    (8, (3, 5), 1, 2, 3),
    (7, (6,), 0, 2, 2),          # odd head_dim: last feature unrotated
    (14, (2, 3, 4), 2, 1, 2),    # 7 pairs over 3 axes: (3, 2, 2)
    (10, (5, 1), 1, 3, 1),       # a degenerate axis of one token
    (6, (4, 3), 0, 2, 2),
]


@pytest.mark.parametrize("head_dim,grid,num_special,batch,heads", LRPE_CASES)
def test_lrpe_matches_float64_reference(seed, head_dim, grid, num_special, batch, heads):
    m = len(grid)
    base = float(torch.empty(()).uniform_(5.0, 200.0))  # a base that makes every group turn visibly
    enc = MultiDimRotaryEncoding(head_dim, m, base=base)
    length = num_special + math.prod(grid)
    x = torch.randn(batch, length, heads, head_dim, dtype=F64)
    ref = ref_rotate(x, ref_coords(grid, num_special)[None], m, base, num_special=num_special)
    assert rel_err(enc(x, grid, num_special), ref) < 1e-12
    y32 = enc(x.float(), grid, num_special)
    assert y32.dtype == torch.float32 and rel_err(y32, ref) < 1e-5
    assert rel_err(ref, x) > 1e-3  # the rotation does act


def test_lrpe_split_and_frequencies():
    assert P.split_rotary_pairs(64, 2) == (16, 16)
    assert P.split_rotary_pairs(14, 3) == (3, 2, 2)
    assert P.split_rotary_pairs(7, 1) == (3,)
    enc = MultiDimRotaryEncoding(14, 3, base=100.0)
    theta = enc.initial_theta(dtype=F64)
    expected = torch.tensor([100 ** (-j / 3) for j in range(3)] + [100 ** (-j / 2) for j in range(2)] * 2, dtype=F64)
    assert torch.allclose(theta, expected, rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="at least one feature pair per axis"):
        MultiDimRotaryEncoding(3, 2)
    assert len(MultiDimRotaryEncoding(8, 2).state_dict()) == 0  # fixed frequencies: nothing to save
    assert set(MultiDimRotaryEncoding(8, 2, learnable_theta=True).state_dict()) == {"theta"}


def test_lrpe_gradients_gradcheck(seed):
    grid, num_special, head_dim = (2, 3), 1, 6
    enc = MultiDimRotaryEncoding(head_dim, 2, base=30.0, learnable_theta=True).double()
    with torch.no_grad():
        enc.theta.mul_(torch.empty_like(enc.theta).uniform_(0.5, 1.5))
    x = torch.randn(2, 7, 2, head_dim, dtype=F64, requires_grad=True)
    theta = enc.theta.detach().clone().requires_grad_(True)

    def f(x, theta):
        return functional_call(enc, {"theta": theta}, (x, grid, num_special))

    assert torch.autograd.gradcheck(f, (x, theta), eps=1e-6, atol=1e-8)
    # and the gradients equal those of the reference formula
    weights = torch.randn(2, 7, 2, head_dim, dtype=F64)
    g_mod = torch.autograd.grad((f(x, theta) * weights).sum(), (x, theta))
    ref = ref_rotate(x, ref_coords(grid, num_special)[None], 2, theta=theta, num_special=num_special)
    g_ref = torch.autograd.grad((ref * weights).sum(), (x, theta))
    for a, b in zip(g_mod, g_ref):
        assert rel_err(a, b) < 1e-12
    assert g_mod[1].abs().max() > 0


def test_lrpe_relative_1d(seed):
    """q_t . k_s after rotation depends only on t - s (one vector q at every position, one k)."""
    length, heads, dim = 12, 2, 10
    enc = MultiDimRotaryEncoding(dim, 1, base=50.0)
    q0, k0 = torch.randn(heads, dim, dtype=F64), torch.randn(heads, dim, dtype=F64)
    q = enc(q0.expand(1, length, heads, dim).contiguous())
    k = enc(k0.expand(1, length, heads, dim).contiguous())
    scores = torch.einsum("thd,shd->hts", q[0], k[0])
    assert torch.allclose(scores[:, 1:, 1:], scores[:, :-1, :-1], rtol=0, atol=1e-12)
    # the score varies with the offset (a trivial encoding would pass the check above)
    diagonals = torch.stack([scores[:, 0, s] for s in range(length)], dim=-1)
    assert (diagonals.max(-1).values - diagonals.min(-1).values).min() > 1e-3
    # and for the unrotated features the scores would be constant
    assert torch.allclose(scores[:, 0, 0], torch.einsum("hd,hd->h", q0, k0))


def test_lrpe_relative_2d(seed):
    """On a grid the score depends only on the (row, column) offset: invariant under both unit shifts."""
    grid, dim = (4, 5), 8
    enc = MultiDimRotaryEncoding(dim, 2, base=20.0)
    q0, k0 = torch.randn(1, dim, dtype=F64), torch.randn(1, dim, dtype=F64)
    n = math.prod(grid)
    q = enc(q0.expand(1, n, 1, dim).contiguous(), grid)[0, :, 0].reshape(*grid, dim)
    k = enc(k0.expand(1, n, 1, dim).contiguous(), grid)[0, :, 0].reshape(*grid, dim)
    s = torch.einsum("abd,ced->abce", q, k)  # s[r, c, r', c']
    assert torch.allclose(s[1:, :, 1:, :], s[:-1, :, :-1, :], atol=1e-12, rtol=0)
    assert torch.allclose(s[:, 1:, :, 1:], s[:, :-1, :, :-1], atol=1e-12, rtol=0)
    # both axes carry position: a row step and a column step change the score
    assert (s[0, 0, 1, 0] - s[0, 0, 0, 0]).abs() > 1e-4 and (s[0, 0, 0, 1] - s[0, 0, 0, 0]).abs() > 1e-4


def test_lrpe_special_tokens_unrotated(seed):
    enc = MultiDimRotaryEncoding(8, 2, base=10.0)
    x = torch.randn(2, 3 + 12, 2, 8)
    y = enc(x, (3, 4), num_special=3)
    assert torch.equal(y[:, :3], x[:, :3])
    assert (y[:, 4:] - x[:, 4:]).abs().max() > 1e-3  # patches (but the first, at (0, 0)) are rotated
    assert torch.equal(y[:, 3], x[:, 3])  # the patch at (0, 0) has angle 0


@pytest.mark.parametrize("side", ["left", "right"])
def test_lrpe_padding_equals_unpadded(seed, side):
    real, padded, heads, dim = 7, 11, 2, 8
    enc = MultiDimRotaryEncoding(dim, 1, base=50.0)
    x_real = torch.randn(1, real, heads, dim)
    x = torch.randn(2, padded, heads, dim) * 100  # padding holds garbage
    mask = torch.zeros(2, padded, dtype=torch.long)
    span = slice(padded - real, padded) if side == "left" else slice(0, real)
    x[:, span], mask[:, span] = x_real, 1
    expected = enc(x_real)
    got = enc(x, position_ids=positions_from_attention_mask(mask))
    assert torch.allclose(got[:, span], expected.expand(2, -1, -1, -1), rtol=1e-6, atol=1e-6)
    if side == "right":  # default positions 0, 1, ... are already right for right padding
        assert torch.allclose(enc(x)[:, span], expected.expand(2, -1, -1, -1), rtol=1e-6, atol=1e-6)


def test_lrpe_position_ids_multi_axis(seed):
    """position_ids [B, L, m] give per-sample coordinates; they equal the grid's when they are the grid's."""
    grid = (3, 4)
    enc = MultiDimRotaryEncoding(8, 2, base=10.0)
    x = torch.randn(2, 13, 2, 8, dtype=F64)
    ids = ref_coords(grid, 1)[None].expand(2, -1, -1)
    assert torch.allclose(enc(x, num_special=1, position_ids=ids), enc(x, grid, 1), atol=1e-12, rtol=0)
    shifted = ids + torch.tensor([[[0.0, 0.0]], [[2.0, 5.0]]], dtype=F64)
    ref = ref_rotate(x, shifted, 2, base=10.0, num_special=1)
    assert rel_err(enc(x, num_special=1, position_ids=shifted), ref) < 1e-12
    with pytest.raises(ValueError, match="position_ids must be"):
        enc(x, num_special=1, position_ids=ids[..., 0])


@pytest.mark.parametrize("grid", [(14, 14), (24, 24), (32, 32)])
def test_lrpe_resolutions(seed, grid):
    """The same module (224 px = 14 x 14 patches, 384 px = 24 x 24, 512 px = 32 x 32) against the reference."""
    enc = MultiDimRotaryEncoding(16, 2, base=100.0)
    x = torch.randn(1, 1 + math.prod(grid), 2, 16, dtype=F64)
    ref = ref_rotate(x, ref_coords(grid, 1)[None], 2, base=100.0, num_special=1)
    assert rel_err(enc(x, grid, 1), ref) < 1e-12
    assert rel_err(enc(x.float(), grid, 1), ref) < 1e-5


def test_lrpe_interpolation(seed):
    """With reference_grid=(14, 14), the 28 x 28 token at (2r, 2c) is rotated as the 14 x 14 token at (r, c)."""
    enc = MultiDimRotaryEncoding(8, 2, base=10.0, reference_grid=(14, 14))
    v = torch.randn(1, 1, 2, 8, dtype=F64)
    small = enc(v.expand(1, 1 + 196, 2, 8).contiguous(), (14, 14), 1)[0, 1:].reshape(14, 14, 2, 8)
    large = enc(v.expand(1, 1 + 784, 2, 8).contiguous(), (28, 28), 1)[0, 1:].reshape(28, 28, 2, 8)
    assert torch.allclose(large[::2, ::2], small, atol=1e-12, rtol=0)
    plain = MultiDimRotaryEncoding(8, 2, base=10.0)  # without it the coordinates are the integers (extrapolation)
    plain_large = plain(v.expand(1, 1 + 784, 2, 8).contiguous(), (28, 28), 1)[0, 1:].reshape(28, 28, 2, 8)
    assert (plain_large[::2, ::2] - small).abs().max() > 1e-3
    assert torch.allclose(plain(v.expand(1, 1 + 196, 2, 8).contiguous(), (14, 14), 1)[0, 1:].reshape(14, 14, 2, 8),
                          small, atol=1e-12, rtol=0)  # at the reference grid itself the scale is 1
    assert (large[1, 1] - small[0, 0]).abs().max() > 1e-4  # half steps are new angles


def test_lrpe_non_contiguous(seed):
    enc = MultiDimRotaryEncoding(9, 2, base=10.0)
    base_tensor = torch.randn(2, 3, 13, 9)  # [B, H, L, D]
    x = base_tensor.transpose(1, 2)  # [B, L, H, D], not contiguous
    assert not x.is_contiguous()
    assert torch.allclose(enc(x, (3, 4), 1), enc(x.contiguous(), (3, 4), 1), rtol=0, atol=1e-7)
    sliced = torch.randn(2, 13, 3, 18)[..., ::2]  # strided feature dim
    assert torch.allclose(enc(sliced, (3, 4), 1), enc(sliced.contiguous(), (3, 4), 1), rtol=0, atol=1e-7)


def test_lrpe_errors():
    enc = MultiDimRotaryEncoding(8, 2)
    with pytest.raises(ValueError, match="grid_shape is needed"):
        enc(torch.randn(1, 5, 1, 8))
    with pytest.raises(ValueError, match="the sequence has 13 tokens"):
        enc(torch.randn(1, 13, 1, 8), (3, 3), 1)
    with pytest.raises(ValueError, match="head_dim=8"):
        enc(torch.randn(1, 13, 1, 6), (3, 4), 1)


# --------------------------------------------------------------------------------------------------
# Normalised attention: rotation on the numerator, unrotated denominator
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask_kind", ["lit", "decay"])
def test_lrpe_normalized_attention_reference(seed, mask_kind):
    batch, heads, grid, dim, dv, special = 2, 2, (3, 4), 8, 5, 1
    length = special + math.prod(grid)
    q = F.elu(torch.randn(batch, length, heads, dim, dtype=F64)) + 1
    k = F.elu(torch.randn(batch, length, heads, dim, dtype=F64)) + 1
    v = torch.randn(batch, length, heads, dv, dtype=F64)
    enc = MultiDimRotaryEncoding(dim, 2, base=10.0)
    log_decay = None if mask_kind == "lit" else F.logsigmoid(torch.randn(heads, dtype=F64))
    t = lambda z: z.transpose(1, 2)  # noqa: E731  [B, L, H, D] <-> [B, H, L, D]

    def mix(qq, kk, vv):
        return lion_attention_parts(qq, kk, vv, log_decay, form="attention", backend="torch",
                                    with_denominator=False)[0]

    eps = 1e-6
    out = lrpe_normalized_attention(mix, t(q), t(k), t(v), t(enc(q, grid, special)), t(enc(k, grid, special)), eps)
    # reference: explicit rotations and mask M_ij = lambda^|i-j| (per head), (Q~K~^T * M) V / ((Q K^T * M) 1 + eps)
    coords = ref_coords(grid, special)[None]
    qr, kr = ref_rotate(q, coords, 2, 10.0, num_special=special), ref_rotate(k, coords, 2, 10.0, num_special=special)
    i = torch.arange(length, dtype=F64)
    dist = (i[:, None] - i[None, :]).abs()
    mask = torch.ones(heads, length, length, dtype=F64) if log_decay is None else \
        torch.exp(log_decay)[:, None, None] ** dist[None]
    num = torch.einsum("bihd,bjhd,hij,bjhe->bhie", qr, kr, mask, v)
    den = torch.einsum("bihd,bjhd,hij->bhi", q, k, mask)
    ref = num / (den + eps)[..., None]
    assert rel_err(out, ref) < 1e-10
    # the rotated denominator would differ (and need not stay positive): the rule matters
    den_rot = torch.einsum("bihd,bjhd,hij->bhi", qr, kr, mask)
    assert rel_err(den_rot, den) > 1e-3


# --------------------------------------------------------------------------------------------------
# MD-TPE
# --------------------------------------------------------------------------------------------------
TPE_CASES = [
    # (channels, grid, num_special, batch)
    (4, (3, 5), 1, 2),
    (3, (7,), 0, 2),
    (2, (2, 3, 4), 2, 1),
    (5, (4, 1), 1, 2),
]


@pytest.mark.parametrize("method", ["matmul", "fft"])
@pytest.mark.parametrize("channels,grid,num_special,batch", TPE_CASES)
def test_tpe_matches_float64_reference(seed, method, channels, grid, num_special, batch):
    mixer = randomize(MultiDimToeplitzMixer(channels, len(grid), feature_dim=8, num_layers=2,
                                            decay_init=0.8, method=method))
    length = num_special + math.prod(grid)
    x = torch.randn(batch, length, channels, dtype=F64)
    ref = ref_tpe(mixer, x, grid, num_special)
    assert rel_err(copy.deepcopy(mixer).double()(x, grid, num_special), ref) < 1e-10
    y32 = mixer(x.float(), grid, num_special)
    assert y32.dtype == torch.float32 and rel_err(y32, ref) < 1e-5
    assert ref.abs().max() > 1e-3


def test_tpe_gradients(seed):
    grid, special, channels = (2, 3), 1, 3
    mixer = randomize(MultiDimToeplitzMixer(channels, 2, feature_dim=4, num_layers=1, decay_init=0.7)).double()
    x = torch.randn(2, 7, channels, dtype=F64, requires_grad=True)
    for method in ("matmul", "fft"):
        assert torch.autograd.gradcheck(lambda z: mixer(z, grid, special, method=method), (x,), eps=1e-6, atol=1e-8)
    # parameter gradients equal those of the reference formula
    weights = torch.randn(2, 7, channels, dtype=F64)
    params = [p for p in mixer.parameters()]
    for method in ("matmul", "fft"):
        g_mod = torch.autograd.grad((mixer(x, grid, special, method=method) * weights).sum(), [x] + params)
        g_ref = torch.autograd.grad((ref_tpe(mixer, x, grid, special) * weights).sum(), [x] + params)
        for a, b in zip(g_mod, g_ref):
            assert rel_err(a, b) < 1e-9
    assert all(g.abs().max() > 0 for g in g_ref[1:])  # every parameter receives a gradient


def probe_operator(mixer, grid, channels, **kw):
    """[L, L, C] operator of the mixer by applying it to unit impulses (one batch row per source token)."""
    n = math.prod(grid)
    x = torch.eye(n, dtype=F64)[:, :, None].expand(n, n, channels).contiguous()
    y = mixer(x, grid, **kw)  # y[s, t, c] = W[t, s, c]
    return y.transpose(0, 1)


def test_tpe_toeplitz_structure(seed):
    channels = 3
    mixer = randomize(MultiDimToeplitzMixer(channels, 1, feature_dim=8, decay_init=0.9)).double()
    w = probe_operator(mixer, (9,), channels)
    assert torch.allclose(w[1:, 1:], w[:-1, :-1], atol=1e-12, rtol=0)  # Toeplitz
    assert (w[0, 1:] - w[0, :-1]).abs().max() > 1e-3  # not constant along a row
    assert (w - w.transpose(0, 1)).abs().max() > 1e-6  # t(r) != t(-r) in general
    # shift equivariance: with the last token zero, shifting the input by one shifts the output by one
    x = torch.randn(2, 9, channels, dtype=F64)
    x[:, -1] = 0
    shifted = torch.cat([torch.zeros(2, 1, channels, dtype=F64), x[:, :-1]], dim=1)
    assert torch.allclose(mixer(shifted)[:, 1:], mixer(x)[:, :-1], atol=1e-12, rtol=0)
    # 2-D: translation invariant, zero between tokens that share neither a row nor a column
    mixer2 = randomize(MultiDimToeplitzMixer(channels, 2, feature_dim=8)).double()
    w2 = probe_operator(mixer2, (4, 5), channels).reshape(4, 5, 4, 5, channels)
    assert torch.allclose(w2[1:, :, 1:], w2[:-1, :, :-1], atol=1e-12, rtol=0)
    assert torch.allclose(w2[:, 1:, :, 1:], w2[:, :-1, :, :-1], atol=1e-12, rtol=0)
    r = torch.arange(4)[:, None, None, None]
    c = torch.arange(5)[None, :, None, None]
    r2, c2 = torch.arange(4)[None, None, :, None], torch.arange(5)[None, None, None, :]
    neither = (r != r2) & (c != c2)
    assert w2[neither].abs().max() == 0 and w2[~neither].abs().max() > 1e-3


def test_tpe_special_tokens(seed):
    mixer = randomize(MultiDimToeplitzMixer(4, 2, feature_dim=8))
    x = torch.randn(2, 2 + 12, 4)
    y = mixer(x, (3, 4), num_special=2)
    assert torch.equal(y[:, :2], torch.zeros_like(y[:, :2]))
    x2 = x.clone()
    x2[:, :2] = torch.randn(2, 2, 4) * 100
    assert torch.equal(mixer(x2, (3, 4), num_special=2), y)  # special tokens send nothing either


@pytest.mark.parametrize("method", ["matmul", "fft"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_tpe_padding_equals_unpadded(seed, method, side):
    real, padded, channels = 6, 10, 3
    mixer = randomize(MultiDimToeplitzMixer(channels, 1, feature_dim=8, method=method))
    x_real = torch.randn(1, real, channels)
    x = torch.randn(2, padded, channels) * 100  # garbage in the padding
    mask = torch.zeros(2, padded, dtype=torch.bool)
    span = slice(padded - real, padded) if side == "left" else slice(0, real)
    x[:, span], mask[:, span] = x_real, True
    y = mixer(x, key_padding_mask=mask)
    assert torch.allclose(y[:, span], mixer(x_real).expand(2, -1, -1), rtol=1e-5, atol=1e-5)
    assert torch.equal(y[~mask], torch.zeros_like(y[~mask]))


@pytest.mark.parametrize("grid", [(14, 14), (24, 24), (32, 32)])
def test_tpe_resolutions(seed, grid):
    """One module serves 224, 384 and 512 px patch grids (coefficients recomputed for each)."""
    channels = 3
    mixer = randomize(MultiDimToeplitzMixer(channels, 2, feature_dim=8, decay_init=0.9))
    x = torch.randn(1, 1 + math.prod(grid), channels, dtype=F64)
    ref = ref_tpe(mixer, x, grid, 1)
    assert rel_err(copy.deepcopy(mixer).double()(x, grid, 1), ref) < 1e-10
    assert rel_err(mixer(x.float(), grid, 1), ref) < 1e-5
    assert rel_err(mixer(x.float(), grid, 1, method="fft"), ref) < 1e-5


def test_tpe_interpolation(seed):
    """With reference_grid=(14, 14) a 28-token axis uses t(r / 2): offset 2r there is offset r at 14."""
    mixer = randomize(MultiDimToeplitzMixer(3, 2, feature_dim=8, reference_grid=(14, 14))).double()
    c14, c28 = mixer.coefficients(0, 14, F64), mixer.coefficients(0, 28, F64)
    assert torch.allclose(c28[27 + 2 * torch.arange(-13, 14)], c14[13 + torch.arange(-13, 14)], atol=1e-12, rtol=0)
    x = torch.randn(1, 1 + 28 * 28, 3, dtype=F64)
    assert rel_err(mixer(x, (28, 28), 1), ref_tpe(mixer, x, (28, 28), 1, scales=[0.5, 0.5])) < 1e-10


def test_tpe_long_axis_auto_uses_fft(seed):
    """A 1-D text longer than TPE_MATMUL_MAX_LENGTH goes through the FFT and still matches the reference."""
    channels, length = 2, P.TPE_MATMUL_MAX_LENGTH + 37
    mixer = randomize(MultiDimToeplitzMixer(channels, 1, feature_dim=8, decay_init=0.95))
    x = torch.randn(2, length, channels, dtype=F64)
    ref = ref_tpe(mixer, x, (length,), 0)
    assert rel_err(mixer(x.float()), ref) < 1e-5
    assert rel_err(mixer(x.float(), method="matmul"), ref) < 1e-5


def test_tpe_non_contiguous(seed):
    mixer = randomize(MultiDimToeplitzMixer(4, 2, feature_dim=8))
    x = torch.randn(2, 4, 13).transpose(1, 2)
    assert not x.is_contiguous()
    for method in ("matmul", "fft"):
        assert torch.allclose(mixer(x, (3, 4), 1, method=method), mixer(x.contiguous(), (3, 4), 1, method=method),
                              rtol=0, atol=1e-6)


def test_tpe_init_and_errors():
    mixer = MultiDimToeplitzMixer(4, 2, decay_init=0.99)
    assert torch.allclose(torch.sigmoid(mixer.decay_logits), torch.full((2, 4), 0.99))
    assert torch.equal(mixer.initial_decay_logits(), mixer.decay_logits.detach())
    assert MultiDimToeplitzMixer(4, 2, use_decay=False).decay_logits is None
    with pytest.raises(ValueError, match="method must be one of"):
        mixer(torch.randn(1, 13, 4), (3, 4), 1, method="direct")
    with pytest.raises(ValueError, match="key_padding_mask must be"):
        mixer(torch.randn(1, 13, 4), (3, 4), 1, key_padding_mask=torch.ones(1, 12, dtype=torch.bool))
    with pytest.raises(ValueError, match="channels=4"):
        mixer(torch.randn(1, 13, 5), (3, 4), 1)
    with pytest.raises(ValueError, match="decay_init"):
        MultiDimToeplitzMixer(4, 2, decay_init=1.0)


# --------------------------------------------------------------------------------------------------
# Config surface and bundling
# --------------------------------------------------------------------------------------------------
def test_position_encoding_parts():
    assert P.position_encoding_parts("none") == (False, False)
    assert P.position_encoding_parts("md_lrpe") == (True, False)
    assert P.position_encoding_parts("md_tpe") == (False, True)
    assert P.position_encoding_parts("md_lrpe_tpe") == (True, True)
    with pytest.raises(ValueError, match="position_encoding must be one of"):
        P.position_encoding_parts("rope")


def test_module_imports_only_torch_transformers_and_bundles(tmp_path, seed):
    """No package import (nothing from modeling_lion), and the bundler's flat copy imports and runs alone."""
    from lion_hf.hub.bundle import build_bundle

    tree = ast.parse(open(P.__file__, encoding="utf-8").read())
    tops = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "positional.py should not need package-relative imports"
            tops.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
    assert tops <= {"__future__", "math", "collections", "torch", "transformers"}, tops
    files = build_bundle(["lion_hf.modeling.positional"])
    assert list(files) == ["positional.py"]
    path = tmp_path / "positional.py"
    path.write_text(files["positional.py"], encoding="utf-8")
    spec = importlib.util.spec_from_file_location("flat_positional", path)
    flat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flat)
    x = torch.randn(1, 13, 2, 8)
    assert torch.equal(flat.MultiDimRotaryEncoding(8, 2)(x, (3, 4), 1), MultiDimRotaryEncoding(8, 2)(x, (3, 4), 1))


def test_half_precision_inputs(seed):
    """bf16 inputs (and a bf16 mixer) are encoded in fp32 internally and come back in bf16, near the reference."""
    grid = (4, 5)
    enc = MultiDimRotaryEncoding(8, 2, base=10.0)
    x = torch.randn(2, 21, 2, 8, dtype=F64)
    y = enc(x.bfloat16(), grid, 1)
    assert y.dtype == torch.bfloat16
    assert rel_err(y, ref_rotate(x, ref_coords(grid, 1)[None], 2, 10.0, num_special=1)) < 1e-2
    mixer = randomize(MultiDimToeplitzMixer(3, 2, feature_dim=8))
    z = torch.randn(2, 21, 3, dtype=F64)
    ref = ref_tpe(mixer, z, grid, 1)
    out = mixer.bfloat16()(z.bfloat16(), grid, 1)
    assert out.dtype == torch.bfloat16 and rel_err(out, ref) < 5e-2
