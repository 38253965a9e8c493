"""SinkLM: the one decoder. Every architectural difference is a `ModelConfig` field."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from . import dispatch, masks
from .attention import Attention
from .dispatch import FLEX_TILE
from .ffn import FeedForward
from .observe import Recorder
from .position import RelativeBias, alibi_by_distance, relative_band, rope_cache, sinusoidal


@dataclass
class ForwardContext:
    """What every layer of one forward shares: positions, the mask and its flex block masks, the recorder."""
    rope: tuple | None                 # (cos, sin) of the positions, RoPE only
    pos_bias: torch.Tensor | None      # (H, T) additive bias by distance q - k (ALiBi, T5 relative)
    mask_fn: masks.MaskFn
    plain_causal: bool
    recorder: Recorder | None
    n_prefix: int                      # sink tokens before the real ones
    block_mask: object = None          # flex BlockMask of the pattern (GPU)
    window_block_mask: object = None   # NSA's window branch (GPU)
    far_block_mask: object = None      # causal beyond a learned bias's band (GPU)

    def attention_args(self) -> dict:
        """Keyword arguments of `Attention.forward` (shallow: tensors are not copied)."""
        return dict(rope=self.rope, pos_bias=self.pos_bias, mask_fn=self.mask_fn, plain_causal=self.plain_causal,
                    recorder=self.recorder, n_prefix=self.n_prefix, block_mask=self.block_mask,
                    window_block_mask=self.window_block_mask, far_block_mask=self.far_block_mask)


class RMSNorm(nn.Module):
    """Computed in float32, as LLaMA does, so bf16 training and HF parity agree."""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def make_norm(cfg: ModelConfig) -> nn.Module:
    return RMSNorm(cfg.d_model, cfg.norm_eps) if cfg.norm == "rmsnorm" else nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.pre = cfg.norm_position == "pre"
        self.attn_norm, self.ffn_norm = make_norm(cfg), make_norm(cfg)
        self.attn = Attention(cfg, layer_idx)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ffn, cfg.ffn, cfg.linear_bias)
        self.hook_resid = nn.Identity()  # named hook point: the residual stream after this block

    def forward(self, x, ctx: ForwardContext):
        if self.pre:
            x = x + self.attn(self.attn_norm(x), **ctx.attention_args())
            x = x + self.ffn(self.ffn_norm(x))
        else:  # post-norm: x = norm(x + f(x))
            x = self.attn_norm(x + self.attn(x, **ctx.attention_args()))
            x = self.ffn_norm(x + self.ffn(x))
        return self.hook_resid(x)


class SinkLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.n_prefix = int(cfg.sink_token)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.sink_token:
            self.sink_embedding = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        if cfg.position == "learned":
            self.pos_embed = nn.Embedding(cfg.max_seq_len + self.n_prefix, cfg.d_model)
        if cfg.position == "relative":
            self.relative_bias = RelativeBias(cfg.n_heads, cfg.relative_buckets, cfg.relative_max_distance)
        if cfg.position == "rope":  # cos/sin depend only on position: computed once, moved with the model
            cos, sin = rope_cache(cfg.max_seq_len + self.n_prefix, cfg.head_dim, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.final_norm = make_norm(cfg) if cfg.norm_position == "pre" else nn.Identity()
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init)
        if cfg.sink_token:
            nn.init.normal_(self.sink_embedding, std=cfg.init_std)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self._block_masks: dict = {}

    def _init(self, m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=self.cfg.init_std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    # -- sizes ------------------------------------------------------------------------------------
    @staticmethod
    def count_params(cfg: ModelConfig, embeddings: bool = False) -> int:
        with torch.device("meta"):
            model = SinkLM(cfg)
        n = sum(p.numel() for p in model.parameters())
        if not embeddings:
            n -= model.embed.weight.numel()
            if not cfg.tie_embeddings:
                n -= model.lm_head.weight.numel()
            if cfg.position == "learned":
                n -= model.pos_embed.weight.numel()
        return n

    def flops_per_token(self, T: int) -> float:
        """6N + 12 L d T (the PaLM / nanoGPT count), N = all weights that multiply activations.

        d is the attention width, heads x head dim: d_model for every variant but the sum of heads,
        whose heads are each d_model wide and so do n_heads times the q.k and p.v work."""
        cfg = self.cfg
        n = sum(p.numel() for n_, p in self.named_parameters() if not n_.startswith(("embed.", "pos_embed.")))
        return 6 * n + 12 * cfg.n_layers * cfg.n_heads * cfg.head_dim * T

    # -- forward ----------------------------------------------------------------------------------
    def forward_context(self, T_total: int, device, recorder=None) -> ForwardContext:
        """What every layer reads in one forward over T_total positions: RoPE, position bias, masks, block masks."""
        cfg = self.cfg
        rope = self._rope(T_total, device) if cfg.position == "rope" else None
        if cfg.position == "alibi":  # position biases are (H, T) by distance q - k
            pos_bias = alibi_by_distance(cfg.n_heads, T_total, device)
        elif cfg.position == "relative":
            pos_bias = self.relative_bias.by_distance(T_total)
        else:
            pos_bias = None
        prefix = cfg.prefix_len + self.n_prefix if cfg.prefix_len else None
        mask_fn = masks.build_mask(cfg.window, prefix, n_global=self.n_prefix, sparse=cfg.sparse,
                                   sparse_window=cfg.sparse_window, sparse_globals=cfg.sparse_globals,
                                   sparse_stride=cfg.sparse_stride)
        plain = dispatch.plain_causal(cfg, T_total)
        block_mask = window_block_mask = far_block_mask = None
        gpu = device.type == "cuda"
        if gpu and dispatch.needs_block_mask(cfg, plain, pos_bias is not None):
            block_mask = self._block_mask(mask_fn, T_total, device)
        if gpu and dispatch.needs_far_block_mask(cfg, T_total, plain):  # attention splits at the bias's last bucket
            band = relative_band(cfg.relative_max_distance, FLEX_TILE)
            far_block_mask = self._block_mask(masks.causal(), T_total - band, device, "far")
        if gpu and cfg.sparse == "nsa":
            window_block_mask = self._block_mask(masks.sliding_window(cfg.sparse_window), T_total, device, "nsa")
        return ForwardContext(rope, pos_bias, mask_fn, plain, recorder, self.n_prefix, block_mask, window_block_mask,
                              far_block_mask)

    def _rope(self, T, device):
        return self.rope_cos[:T], self.rope_sin[:T]

    def _block_mask(self, mask_fn, T, device, name="main"):
        key = (name, T, str(device))
        if key not in self._block_masks:
            from torch.nn.attention.flex_attention import create_block_mask

            self._block_masks[key] = create_block_mask(lambda b, h, q, k: mask_fn(q, k), None, None, T, T,
                                                       device=device)
        return self._block_masks[key]

    def hidden_states(self, input_ids: torch.Tensor, recorder=None) -> torch.Tensor:
        """Final hidden states (B, T, d) of the real tokens (the sink token, if any, is dropped)."""
        cfg = self.cfg
        B, T = input_ids.shape
        cfg.check_length(T)
        x = self.embed(input_ids)
        if cfg.sink_token:
            x = torch.cat([self.sink_embedding.expand(B, -1, -1).to(x.dtype), x], dim=1)
        T_total = x.shape[1]
        if cfg.position == "learned":
            x = x + self.pos_embed.weight[:T_total]
        elif cfg.position == "sinusoidal":
            x = x + sinusoidal(T_total, cfg.d_model, x.device).to(x.dtype)
        ctx = self.forward_context(T_total, x.device, recorder)
        for i, block in enumerate(self.layers):
            x = block(x, ctx)
            if recorder is not None:
                recorder.observe_hidden(i, x[:, self.n_prefix:])
        return self.final_norm(x)[:, self.n_prefix:]

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None, loss_mask=None,
                recorder=None):
        """Logits, or the mean cross-entropy when `targets` is given (positions with mask 0 are skipped)."""
        h = self.hidden_states(input_ids, recorder)
        logits = self.lm_head(h)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        if loss_mask is None:
            loss = loss.mean()
        else:
            m = loss_mask.reshape(-1).float()
            loss = (loss * m).sum() / m.sum().clamp_min(1.0)
        if self.cfg.sparse == "dsa" and self.training:  # the indexers' KL objective (on detached inputs)
            loss = loss + sum(b.attn.aux_loss for b in self.layers if b.attn.aux_loss is not None)
        return loss
