"""Which attention backend a layer runs: a pure function of the config and where it runs.

`choose_backend(cfg, where)` names the backend; `Attention.forward` runs it. Every backend computes what the
dense path computes (tests/test_model.py pins the choice as a table; benchmarks/gpu_checks.py pins
the GPU backends to the dense path). The decoder builds its block masks from the same predicates
(`needs_block_mask`, `needs_far_block_mask`), so the chosen backend and the masks it needs agree.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import ModelConfig
from .masks import is_plain_causal
from .position import relative_band

FLEX_TILE = 128   # FlexAttention's kernels tile by 128: block masks from a block choice must align to it
MAX_KERNEL_HEAD_DIM = 256  # flash / flex take head dims up to 256

BACKENDS = (
    "nsa",                     # compressed + selected + window branches, gated (NSA)
    "moba_flex",               # MoBA's block choice as a FlexAttention block mask
    "moba_flex_prefix_keys",   # the same over the real tokens, a sink token's key joined by log-sum-exp
    "fused",                   # measuring: the fused kernels give the output and the column sums
    "sdpa_causal",             # SDPA, is_causal
    "band_and_far",            # learned distance bias: dense band + flex beyond it, joined by LSE
    "flex",                    # FlexAttention with the pattern's block mask (and a fixed bias)
    "sdpa_bias_query",         # K/KV bias, plain causal: the bias key with a query of its own, SDPA's causal flag
    "sdpa_extra_key",          # SDPA with the K/KV bias key prepended, under a boolean mask
    "sdpa_bool_mask",          # SDPA with a data-dependent boolean mask (MoBA per token, DSA)
    "dense",                   # the reference: weights row block by row block
)


@dataclass(frozen=True)
class Where:
    """What the choice reads besides the config."""
    device: str                 # "cuda" or "cpu"
    T: int                      # positions the layer sees (a sink token included)
    recording: bool             # a measurement observes this forward
    pos_bias: str = "none"      # none | fixed (ALiBi, or T5 without gradient) | learned (T5 with gradient)
    plain_causal: bool = True   # the mask is plain causal attention
    n_prefix: int = 0           # sink tokens before the real ones
    block_mask: bool = False    # the decoder built a flex block mask of the pattern
    far_block_mask: bool = False  # ... and the causal one beyond a learned bias's band
    fused: bool = True          # the fused measurement kernels take this dtype and shape

    @classmethod
    def derive(cls, cfg: ModelConfig, device: str, T: int, recording: bool = False, grad: bool = True) -> "Where":
        """Where a `SinkLM` forward of T real tokens runs, as its decoder sets it up."""
        n_prefix = int(cfg.sink_token)
        T_total = T + n_prefix
        has_bias = cfg.position in ("alibi", "relative")
        pos_bias = "learned" if cfg.position == "relative" and grad else "fixed" if has_bias else "none"
        plain = plain_causal(cfg, T_total)
        gpu = device == "cuda"
        return cls(device, T_total, recording, pos_bias, plain, n_prefix,
                   gpu and needs_block_mask(cfg, plain, has_bias), gpu and needs_far_block_mask(cfg, T_total, plain))


def plain_causal(cfg: ModelConfig, T_total: int) -> bool:
    prefix = cfg.prefix_len + int(cfg.sink_token) if cfg.prefix_len else None
    return is_plain_causal(cfg.window, prefix, T_total, cfg.sparse)


def needs_block_mask(cfg: ModelConfig, plain: bool, has_pos_bias: bool) -> bool:
    """A GPU forward builds the pattern's flex block mask (SDPA's causal flag cannot express it)."""
    return not plain or has_pos_bias or cfg.sink_column


def needs_far_block_mask(cfg: ModelConfig, T_total: int, plain: bool) -> bool:
    """T5's relative bias is constant from its last bucket on: beyond that band, plain flex."""
    band = relative_band(cfg.relative_max_distance, FLEX_TILE)
    return cfg.position == "relative" and plain and T_total % FLEX_TILE == 0 and T_total > band


def flex_computes(cfg: ModelConfig, where: Where) -> bool:
    """FlexAttention computes this variant exactly: softmax family, no added key, on a GPU, with a
    head dimension its kernels take."""
    return (where.device == "cuda" and cfg.head_dim <= MAX_KERNEL_HEAD_DIM and not cfg.has_bias_key
            and cfg.softmax_family)


def block_sparse_flex(cfg: ModelConfig, where: Where) -> bool:
    """A per-query-block choice (MoBA) maps onto FlexAttention tiles: blocks chosen once per query
    block, aligned to the kernels' tile, covering the real tokens exactly."""
    block = cfg.sparse_block
    return (flex_computes(cfg, where) and cfg.sparse_select == "block" and (where.T - where.n_prefix) % block == 0
            and block % FLEX_TILE == 0)


def fused_fits(cfg: ModelConfig, where: Where) -> bool:
    """The fused measurement kernels compute this layer exactly: causal or sliding-window softmax over
    the real tokens, optionally with a sink logit (gpt-oss, or off-by-one's zero)."""
    return (cfg.score in ("softmax", "off_by_one") and not cfg.has_bias_key and where.pos_bias == "none"
            and not where.n_prefix and cfg.sparse == "none"
            and (where.plain_causal or bool(cfg.window and cfg.prefix_len is None)))


def choose_backend(cfg: ModelConfig, where: Where) -> str:
    """The backend (one of BACKENDS) that computes this layer's attention."""
    if cfg.sparse == "nsa":
        return "nsa"
    if cfg.sparse == "moba" and not where.recording and block_sparse_flex(cfg, where) \
            and (where.pos_bias == "none" or not where.n_prefix):
        return "moba_flex_prefix_keys" if where.n_prefix else "moba_flex"
    if cfg.sparse in ("moba", "dsa"):  # SDPA with the token mask, not a flex BlockMask (see _dsa_mask)
        no_extra = cfg.sdpa_softmax and cfg.n_extra_keys == 0 and where.pos_bias == "none"
        return "sdpa_bool_mask" if no_extra else "dense"
    if where.recording and where.fused and fused_fits(cfg, where):
        return "fused"
    fits_kernels = where.device != "cuda" or cfg.head_dim <= MAX_KERNEL_HEAD_DIM
    if cfg.sdpa_softmax and not cfg.has_bias_key and not cfg.sink_logit and where.pos_bias == "none" \
            and where.plain_causal and fits_kernels:
        return "sdpa_causal"
    # a learned bias (T5 relative) must not enter a flex score_mod: flex scatters its gradient with
    # atomics, 60 ms per layer at the paper-60m shape (benchmarks/flex_probe.py)
    learned = where.pos_bias == "learned"
    if learned and where.far_block_mask and where.plain_causal and flex_computes(cfg, where):
        return "band_and_far"
    if where.block_mask and flex_computes(cfg, where) and not learned:
        return "flex"
    if cfg.sdpa_softmax and cfg.has_bias_key and not cfg.sink_logit and where.pos_bias == "none":
        # a boolean mask keeps SDPA off its flash kernels (a K/KV-bias step took 1.55x softmax's)
        return "sdpa_bias_query" if where.plain_causal and fits_kernels else "sdpa_extra_key"
    return "dense"
