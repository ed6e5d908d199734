"""The one table of launch settings of the Triton kernels.

Every entry is what the measurements in ``BENCHMARKS.md`` chose (H100/H200, B=8, H=12, D=64 bf16 unless
said otherwise). Benchmark sweeps (``benchmarks/profile_kernels.py``) change entries of :data:`LAUNCH`
in their own process; library code only reads them. The interpreter (CPU, CI) takes its own small tiles.
"""

from __future__ import annotations

#: name -> settings tuple; see the comment of each entry for its fields.
LAUNCH: dict[str, tuple[int, ...]] = {
    # attention form, (BM, BN, num_warps, num_stages): "small" for bf16/fp16 heads <= 64, "big" otherwise.
    # H200, 2026-12-01 (benchmarks/sweep_attention.py, ViT-B 224 px b128 and BERT-large L 512 b64): with a
    # decay, 32-wide key tiles in the forward (D 0.099 vs 0.110 ms, S 0.172 vs 0.181 at 224 px; D 0.202 vs
    # 0.229 at L 512; S 0.356 vs 0.331 there); LIT keeps 64 (0.087 vs 0.089); the backward's 64 x 64 x 4 x 3
    # was best or within 4 % everywhere
    "attn_fwd_small": (128, 64, 4, 3),
    "attn_fwd_small_decay": (128, 32, 4, 3),
    # LIT with attention dropout: 64-row tiles (the Philox numbers of a 128 x 64 tile spill; BERT-large b64, H200,
    # BENCHMARKS.md ninth pass: L 512 0.407 vs 0.461 ms, L 128 0.043 vs 0.050); with a decay the entry above stays best
    "attn_fwd_small_dropout": (64, 64, 4, 3),
    "attn_fwd_big": (64, 64, 4, 2),
    "attn_bwd_small": (64, 64, 4, 3),
    "attn_bwd_big": (64, 64, 8, 2),
    # backward at lengths up to attn_bwd_short_length (BERT's 128), per mask: 32-row tiles at 8 warps were
    # faster there (clearly for LIT; D and S within the run-to-run spread of such short kernels; BENCHMARKS.md)
    "attn_bwd_short_length": (128,),
    "attn_bwd_short_lit": (32, 128, 8, 2),
    "attn_bwd_short_decay": (32, 64, 8, 3),
    "attn_bwd_short_selective": (32, 64, 8, 3),
    # attention dropout without a scan order: keys per Philox draw of four 32-bit numbers, 4 (a float uniform
    # each) or 8 (16 bits each, half the random-number work; attention.py _keep_scale_tile). BERT-large MLM b64
    # with the presets' dropout, same process (H200, BENCHMARKS.md ninth pass): LION-D at L 128 80.8 / 79.8 ->
    # 63.4 / 62.6 ms, at L 512 240.1 / 238.8 -> 235.1 / 235.3; LIT and LION-S faster too
    "attn_dropout_keys_per_draw": (8,),
    # backward: dq inside the key-tile kernel through fp32 atomics (1) or in its own launch (0), for lengths
    # up to the second field; torch.use_deterministic_algorithms always takes the separate launch. Off: its
    # extra accumulator spills and it measured slower at ViT and BERT-512 sizes (BENCHMARKS.md, second pass)
    "attn_bwd_fused": (0, 0),
    # ... and with attention dropout, up to this length: the dq launch would draw the dropout mask a third time.
    # BERT-large MLM with the presets' dropout 0.1 (H200, BENCHMARKS.md fourth pass, two runs on one machine):
    # LION-S at L 128 77.0 -> 67.7 ms, LIT and LION-D there unchanged, L 512 about 2 % faster for every mask
    "attn_bwd_fused_dropout": (512,),
    # backward, (LION-D, LION-S): the d log_decay statistics formed in the key-tile kernel (1; the dq kernel
    # then skips q k^T) or in the dq kernel (0): faster for D, slower for S, whose per-tile partials cost more
    "attn_bwd_row_stats": (1, 0),
    # the natural variants' two scan orders in one attention launch each way (1: tiles of tokens, each entry's two
    # mask values from the tokens' positions, one q k^T and one A V for both) or one launch per order (0, the
    # second adding the first's parts): see BENCHMARKS.md, tenth pass
    "attn_orders_in_one_launch": (1,),
    # ... its tiles (bf16/fp16, heads <= 64), per mask: each token's positions and LION-S's prefix sums in both
    # orders are per-row/column vectors held in registers. ViT-B 224 px b128 (H200, BENCHMARKS.md tenth pass): the
    # LION-S backward at 32 x 64 x 4 warps 60.1 ms a step, 64 x 64 69.1 (it spills ~1 kB for sm_90), 8 warps 72.7;
    # LION-D's (no rank-one tiles, fewer registers) at 64 x 64 (48.8 ms there, against 55.9 for two launches)
    "attn_fwd_small_orders_decay": (128, 32, 4, 3),
    "attn_fwd_small_orders_selective": (128, 32, 4, 3),
    "attn_bwd_small_orders_decay": (64, 64, 4, 3),
    "attn_bwd_small_orders_selective": (32, 64, 4, 3),
    # the fused backward's tiles (bf16/fp16, heads <= 64): its best where it was measured
    "attn_bwd_small_fused": (32, 64, 4, 3),
    # the backward's row-gradient preparation of the normalised output, (rows per program, num_warps)
    "norm_grad": (64, 4),
    # feature-map prologue/epilogue of the fused layer, (rows per program, num_warps)
    "feature_map": (64, 4),
    # chunk form: state pass (BV (0 = whole value width), num_warps, num_stages, decay weights by a launch of
    # their own from so many chunks on (0: never)). That launch saved 0.10 ms of a 0.68 ms pass at 256 chunks
    # (H100); it costs the host ~40 us on the H200 machines, whose steps at 1025 tokens (17 chunks) are
    # host-bound: from 32 chunks on (set without a device A/B at 1025 tokens: BENCHMARKS.md, seventh pass)
    "chunk_state": (0, 4, 3, 32),
    # ... its vector states ([v | 1]'s ones column, the backward's c) by a [BT, 16] matrix product per step (1) or as
    # fp32 row sums (0), and so LIT's global-state reduction. H200, BENCHMARKS.md twelfth pass: the (k, [v | 1]) pass at
    # L 16384 LION-D 0.585 -> 0.339 ms (without vector states 0.337), LIT 0.401 -> 0.311; the chunk form's forward +
    # backward LION-D 3.66 -> 3.04 ms; LIT's global-state forward 0.257 -> 0.242
    "chunk_state_vector_mma": (1,),
    # chunk form: output kernel (num_warps for chunk <= 64 or LIT, for 128 with a decay, num_stages)
    "chunk_out": (4, 8, 2),
    # chunk form: gradient kernel (num_warps for chunk <= 64, for 128, num_stages)
    "chunk_grad": (4, 8, 1),
    # chunk form: keep the forward's chunk states for the backward (1) or recompute them (0)
    "chunk_keep_states": (1,),
    # a model layer's form="auto" on these kernels without attention dropout: the attention form up to so many
    # tokens, (LIT, with a decay), the chunk form (LIT: its global state) beyond. ViT-B training steps, both
    # forms in one process (H200, BENCHMARKS.md fourth pass): with a decay the chunk form wins at 1025 tokens
    # (LION-S 1.01 vs 1.22 of ViT-B, the natural LION-D 1.07 vs 1.27, S 1.28 vs 1.64), the attention form at 197
    # and 577 (D 0.95 vs 1.02 at 197); LIT's two forms tied at 197 and 1025, so it keeps the operator's crossover
    "layer_attention_max_length": (1152, 768),
    # LION-S's gate logits from the q/k/v projection's matrix product (1) or from their own Linear call (0),
    # read by LionAttention._projections. H200, BENCHMARKS.md fifth pass, same-process A/B: BERT-large MLM at
    # L 512 250.3 vs 255.5 ms and 1.5 GB less; ViT-B at 224 px, a host-bound step, ~1 % slower
    "layer_packed_gate": (1,),
    # LION-S's log-decays and their gradient formed by the feature map's launches (1: both scan orders in one)
    # or by their own launches, one per order each way (0): a launch costs the host ~30-45 us on the H200
    # machines, whose ViT-B steps at 224 and 512 px are host-bound (BENCHMARKS.md, sixth pass)
    "layer_gate_in_feature_map": (1,),
    # the attention form's backward applies the feature map's backward in its dq and dkv kernels' epilogues (1)
    # or leaves it to the feature map's own launch (0): one launch and two [B, L, H, D] buffers fewer per layer,
    # but the epilogues cost the GPU more than the launch costs the host (LION-S and LION-D natural 2-6 % slower
    # at ViT-B 224 px, nothing faster: H200, same process, BENCHMARKS.md eighth pass)
    "layer_feature_grad_in_attention": (0,),
    # the backward's kernels form the normalised output's row gradients g' and c (common.py) themselves (1: the
    # attention form's dq launch, which then runs before the dkv launch; the chunk form's query-side state pass),
    # or a launch of their own does (0, "norm_grad"): one launch fewer per layer
    "layer_grad_prep_in_backward": (1,),
    # LIT global-state form: the state reduction (fp32 partial states summed in torch) as (at least so many
    # positions per program, about so many programs per SM, num_warps), and the passes that apply a state
    # as (positions per program, num_warps): fewer, longer pieces and 128-row applies were the fastest at
    # L 16384 (profile_kernels.py global)
    "global_reduce": (1024, 3, 4),
    "global_apply": (128, 4),
    # LayerNorm into a Linear under autocast (layer_norm.py): forward (rows per program, num_warps); backward
    # (rows per block, num_warps, programs per SM, each summing its rows' weight/bias gradient partials)
    "layer_norm_forward": (4, 4),
    "layer_norm_backward": (4, 4, 4),
    # the models' LayerNorms under autocast (lion_hf/kernels/layer_norm.py) run those kernels (1) or nn.LayerNorm
    # (0), for inputs of at least so many elements: below, PyTorch's launches cost the host less, and those steps
    # wait on the host (ViT-B 512 px b16, 12.6 M elements, and BERT-large L 128 b64, 8.4 M: slower with the kernels
    # in both calls; 224 px b128 (19.4 M), 1024 px b8, 2048 px inference and L 512 faster: H200, BENCHMARKS.md
    # eleventh pass)
    "layer_norm_kernels": (1, 1 << 24),
    # the vision models' patch embedding on CUDA as a gather and one matrix product (1) or nn.Conv2d (0)
    "patch_embedding_as_matmul": (1,),
}

#: the interpreter runs every program in NumPy: the smallest tiles that keep tl.dot legal
INTERPRETER_ATTENTION_TILES = (16, 16, 1, 1)


def launch(name: str) -> tuple[int, ...]:
    """The settings of ``name`` (a key of :data:`LAUNCH`)."""
    return LAUNCH[name]


__all__ = ["INTERPRETER_ATTENTION_TILES", "LAUNCH", "launch"]
