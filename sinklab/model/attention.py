"""Attention with every variant of the paper as a config value.

One function, `Attention.weights`, defines what each variant computes for a block of query rows.
The dense forward path and the measurement both use it, so what is measured is what is trained.
Fast paths (SDPA, FlexAttention) are taken where they compute the same thing, and tests pin them
to the dense path.

Column layout of the weights: [sink logit][K-bias key][sink token][tokens...]; every leading
column is an added position that all queries see (the paper's Sink* is measured on it).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..kernels import attention_sums
from . import dispatch, masks, observe
from .dispatch import FLEX_TILE
from .position import apply_rope, expand_distance_bias, rope_cache

_flex = None
DSA_KL_ROWS = 256  # query rows on which DSA's indexer objective is estimated
DSA_TRITON_INDEXER = True  # on a GPU, the selection's full (B, T, T) scores come from one Triton kernel


def compiled_flex_attention():
    """FlexAttention, compiled once (it is slow and memory-hungry uncompiled). Every flex call of the layers
    goes through it, so tests put an eager or reference FlexAttention in its place."""
    global _flex
    if _flex is None:
        import torch._dynamo
        from torch.nn.attention.flex_attention import flex_attention

        # block masks, grad mode (training, evaluation) and shapes each compile a variant; past the
        # default limit of 8, dynamo would run flex eagerly (dense scores: slow, memory-hungry)
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        _flex = torch.compile(flex_attention, dynamic=False)
    return _flex


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.cfg, self.layer_idx = cfg, layer_idx
        H, Hkv, hd, d = cfg.n_heads, cfg.kv_heads, cfg.head_dim, cfg.d_model
        self.n_heads, self.n_kv, self.head_dim = H, Hkv, hd
        self.scale = 1.0 / math.sqrt(hd)
        b = cfg.linear_bias
        self.q_proj = nn.Linear(d, H * hd, bias=b)
        self.k_proj = nn.Linear(d, Hkv * hd, bias=b)
        self.v_proj = nn.Linear(d, Hkv * hd, bias=b)
        self.o_proj = nn.Linear(hd if cfg.head_combine == "sum" else H * hd, d, bias=b)
        n_bias = 1 if cfg.attn_bias_shared else H
        if cfg.has_bias_key:
            self.k_bias = nn.Parameter(torch.zeros(n_bias, cfg.attn_bias_dim or hd))
        if cfg.attn_bias == "kv":
            self.v_bias = nn.Parameter(torch.zeros(n_bias, hd))
        elif cfg.attn_bias == "k":
            g = torch.Generator().manual_seed(1234 + layer_idx)
            unit = torch.randn(n_bias, hd, generator=g)
            unit = unit / unit.norm(dim=-1, keepdim=True)
            self.register_buffer("v_bias", unit * (cfg.value_bias_scale or 0.0), persistent=True)
        elif cfg.attn_bias == "v":
            self.v_out_bias = nn.Parameter(torch.zeros(n_bias, hd))
        if cfg.sink_logit:
            self.sink_logit = nn.Parameter(torch.zeros(H))
        if cfg.score == "kernel" and cfg.kernel == "mlp":
            self.kernel_mlp = nn.Sequential(nn.Linear(hd, hd), nn.GELU(), nn.Linear(hd, hd))
        if cfg.gate != "none":
            self.gate_proj = nn.Linear(d, H * hd if cfg.gate == "elementwise" else H, bias=True)
        if cfg.sparse == "nsa":  # per-head mix of the compressed, selected and window branches
            self.branch_gate_proj = nn.Linear(d, H * 3, bias=True)
        if cfg.sparse == "dsa":  # a small indexer that scores past tokens (DeepSeek-V3.2 style)
            self.index_q = nn.Linear(d, cfg.dsa_heads * cfg.dsa_dim, bias=False)
            self.index_k = nn.Linear(d, cfg.dsa_dim, bias=False)
            self.index_w = nn.Linear(d, cfg.dsa_heads, bias=False)
        self.aux_loss = None  # set during training by patterns with an auxiliary objective (dsa)
        # named hook points (TransformerLens style): forward hooks here see q, k (after RoPE) and v
        self.hook_q, self.hook_k, self.hook_v = nn.Identity(), nn.Identity(), nn.Identity()

    # -- what each variant computes ------------------------------------------------------------
    def _kernel(self, x):
        kind = self.cfg.kernel
        if kind == "elu1":
            return F.elu(x) + 1
        if kind == "mlp":
            return self.kernel_mlp(x)
        return x

    def _extra_logits(self, q_rows: torch.Tensor) -> list[torch.Tensor]:
        """Logits of the added keys for these query rows, each (B, H, rows, 1)."""
        B, H, R, _ = q_rows.shape
        out = []
        if self.cfg.sink_logit:
            out.append(self.sink_logit.float().view(1, H, 1, 1).expand(B, H, R, 1))
        elif self.cfg.score == "off_by_one":
            out.append(q_rows.new_zeros(B, H, R, 1, dtype=torch.float32))
        if self.cfg.has_bias_key:
            kb = self.k_bias.float()
            kb = F.pad(kb, (0, self.head_dim - kb.shape[-1])).expand(H, -1)   # reduced dim d_a: zero-padded
            if self.cfg.score == "kernel":
                out.append((self._kernel(q_rows.float()) * self._kernel(kb)[None, :, None, :]).sum(-1, keepdim=True))
            else:
                out.append((q_rows.float() * kb[None, :, None, :]).sum(-1, keepdim=True) * self.scale)
        return out

    def weights(self, q, k, pos_bias, mask_fn, i0: int, i1: int, dyn_mask=None) -> torch.Tensor:
        """Attention weights of query rows i0..i1-1: (B, H, rows, n_extra_keys + T), float32.

        q, k: (B, H, T, d) with k expanded to the query heads. pos_bias: (H, T) additive bias by
        distance q - k, or None. dyn_mask: (B, H, T, T) data-dependent pattern (MoBA) that narrows
        `mask_fn`, or None.
        """
        cfg = self.cfg
        qr = q[:, :, i0:i1].float()
        T = k.shape[-2]
        if cfg.score == "kernel":
            s = self._kernel(qr) @ self._kernel(k.float()).transpose(-1, -2)
        else:
            s = (qr @ k.float().transpose(-1, -2)) * self.scale
        if pos_bias is not None:
            s = s + expand_distance_bias(pos_bias.float(), i0, i1, T)
        extra = self._extra_logits(qr)
        allowed = masks.dense_mask(mask_fn, i1 - i0, T, device=q.device, q_offset=i0)
        if dyn_mask is not None:
            allowed = allowed & dyn_mask[:, :, i0:i1]
        if extra:
            s = torch.cat(extra + [s], dim=-1)
            allowed = torch.cat([allowed.new_ones(*allowed.shape[:-1], len(extra)), allowed], dim=-1)
        return score_function(cfg, s, allowed, T)

    def measured_weights(self, q, k, pos_bias, mask_fn, i0, i1, dyn_mask=None):
        """What the sink metric reads: the weights, or the paper's proxy scores without normalisation."""
        w = self.weights(q, k, pos_bias, mask_fn, i0, i1, dyn_mask)
        return self._proxy(w) if self.cfg.proxy_scores else w

    def _proxy(self, w: torch.Tensor) -> torch.Tensor:
        """The paper's proxy scores of unnormalised weights (row-local): sim / sum sim, or |sim| / sum |sim|."""
        non_negative = self.cfg.score in ("sigmoid", "elu1") or self.cfg.kernel == "elu1"
        return observe.proxy_scores(w, non_negative)

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, x, rope, pos_bias, mask_fn, plain_causal: bool, recorder=None, n_prefix: int = 0,
                block_mask=None, window_block_mask=None, far_block_mask=None):
        cfg = self.cfg
        T = x.shape[1]
        q, k, v = self._qkv(x, rope)
        where = dispatch.Where(x.device.type, T, recorder is not None, _bias_kind(pos_bias), plain_causal, n_prefix,
                               block_mask is not None, far_block_mask is not None)
        backend, fused = self._plan(where, q, plain_causal)

        def full(t):  # grouped-query K/V repeated for every query head; the SDPA fast path skips this
            return t if self.n_kv == self.n_heads else t.repeat_interleave(self.n_heads // self.n_kv, dim=1)

        if backend == "nsa":
            return self._finish(x, self._nsa(x, q, full(k), full(v), recorder, window_block_mask))
        if backend == "fused":
            return self._finish(x, self._attend_and_observe_fused(recorder, fused, q, k, v, full, pos_bias, mask_fn))
        dyn = None
        if cfg.sparse == "dsa":
            dyn = self._dsa_mask(x, q, full(k))
        elif cfg.sparse == "moba":  # blocks over the real tokens; a sink token stays visible to all
            chosen = masks.moba_blocks(q[:, :, n_prefix:], full(k)[:, :, n_prefix:], cfg.sparse_block,
                                       cfg.sparse_topk, cfg.force_first_block, cfg.sparse_select == "block")
            if backend in ("moba_flex", "moba_flex_prefix_keys"):
                bm = masks.flex_block_mask(chosen, cfg.sparse_block, T - n_prefix)
                if backend == "moba_flex":
                    return self._finish(x, self._flex(q, full(k), full(v), pos_bias, bm))
                return self._finish(x, self.flex_with_prefix_keys(q, full(k), full(v), n_prefix, bm))
            dyn = masks.blocks_to_token_mask(chosen, cfg.sparse_block, T - n_prefix, cfg.sparse_select == "block")
            if n_prefix:
                dyn = F.pad(dyn, (n_prefix, 0, n_prefix, 0), value=True)
        if recorder is not None:
            self._observe(recorder, q, full(k), full(v), pos_bias, mask_fn, n_prefix, dyn, plain_causal)
        inputs = BackendInputs(full, pos_bias, mask_fn, dyn, block_mask, far_block_mask)
        return self._finish(x, SINGLE_PASS[backend](self, q, k, v, inputs))

    def _plan(self, where, q, plain_causal: bool):
        """(backend, fused kernels) for this call: the kernels are None unless the backend is "fused"."""
        backend = dispatch.choose_backend(self.cfg, where)
        fused = self._fused_kernels(q, plain_causal) if backend == "fused" else None
        if backend == "fused" and fused is None:  # the kernels do not take this dtype or shape
            backend = dispatch.choose_backend(self.cfg, dataclasses.replace(where, fused=False))
        return backend, fused

    def _qkv(self, x, rope):
        """q, k, v as (B, heads, T, d), RoPE applied, through the hook points."""
        B, T, _ = x.shape
        H, Hkv, hd = self.n_heads, self.n_kv, self.head_dim
        q = self.q_proj(x).view(B, T, H, hd)
        k = self.k_proj(x).view(B, T, Hkv, hd)
        v = self.v_proj(x).view(B, T, Hkv, hd)
        if rope is not None:  # rotate in (B, T, H, d): the transpose below stays a view for SDPA
            cos, sin = rope[0][:, None, :], rope[1][:, None, :]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return self.hook_q(q.transpose(1, 2)), self.hook_k(k.transpose(1, 2)), self.hook_v(v.transpose(1, 2))

    def _finish(self, x, out):
        """Value bias, output gate, head combination and the output projection."""
        cfg = self.cfg
        B, T, _ = x.shape
        H, hd = self.n_heads, self.head_dim
        if cfg.attn_bias == "v":
            out = out + self.v_out_bias.to(out.dtype)[None, :, None, :]
        out = out.transpose(1, 2)  # (B, T, H, hd)
        if cfg.gate == "elementwise":
            out = out * torch.sigmoid(self.gate_proj(x)).view(B, T, H, hd)
        elif cfg.gate == "headwise":
            out = out * torch.sigmoid(self.gate_proj(x)).view(B, T, H, 1)
        out = out.sum(2) if cfg.head_combine == "sum" else out.reshape(B, T, H * hd)
        return self.o_proj(out)

    def _bias_key_value(self, B: int, k, v):
        """The K/KV bias as one key and value per query head: (B, H, 1, hd) each (value: v_bias, zero for K)."""
        H, hd = self.n_heads, self.head_dim
        kb = F.pad(self.k_bias, (0, hd - self.k_bias.shape[-1])).expand(H, hd).to(k.dtype)
        vb = self.v_bias.expand(H, hd).to(v.dtype)
        return kb[None, :, None, :].expand(B, -1, -1, -1), vb[None, :, None, :].expand(B, -1, -1, -1)

    def _sdpa_extra_key(self, q, k, v, mask_fn):
        """K/KV bias: the bias key joins the keys (value: v_bias), seen by every query; one SDPA call."""
        B, H, T, hd = q.shape
        kb, vb = self._bias_key_value(B, k, v)
        allowed = masks.dense_mask(mask_fn, T, T, device=q.device)
        allowed = torch.cat([allowed.new_ones(T, 1), allowed], dim=1)
        out = F.scaled_dot_product_attention(q, torch.cat([kb, k], dim=2), torch.cat([vb, v], dim=2),
                                             attn_mask=allowed, scale=self.scale)
        return out * self.cfg.score_scale if self.cfg.score == "scaled_softmax" else out

    def _sdpa_bias_query(self, q, k, v):
        """K/KV bias under a plain causal mask, as _sdpa_extra_key computes it: the bias key at position 0 with a
        zero query of its own makes the mask SDPA's causal flag (its flash kernels), since real query t then sees
        positions 0..t+1, the bias and keys 0..t. The extra query's output is dropped, so it has no gradient."""
        kb, vb = self._bias_key_value(q.shape[0], k, v)
        out = F.scaled_dot_product_attention(F.pad(q, (0, 0, 1, 0)), torch.cat([kb, k], dim=2),
                                             torch.cat([vb, v], dim=2), is_causal=True, scale=self.scale)[:, :, 1:]
        return out * self.cfg.score_scale if self.cfg.score == "scaled_softmax" else out

    def _nsa(self, x, q, k, v, recorder=None, window_block_mask=None):
        """NSA-style attention: compressed blocks, selected blocks and a local window, mixed by a gate.

        Blocks are compressed by mean-pooling keys and values (NSA learns an MLP for this). The
        selection reuses the compressed attention as block importance, as NSA does.
        """
        cfg = self.cfg
        B, H, T, D = q.shape
        l, qf = cfg.sparse_block, q.float()
        nb = T // l  # complete blocks only
        pos = torch.arange(T, device=q.device)
        kc = k[:, :, : nb * l].float().reshape(B, H, nb, l, D).mean(3)
        vc = v[:, :, : nb * l].float().reshape(B, H, nb, l, D).mean(3)
        cmp_valid = ((torch.arange(nb, device=q.device) + 1) * l - 1)[None, :] <= pos[:, None]   # (T, nb)
        p_cmp = _masked_softmax((qf @ kc.transpose(-1, -2)) * self.scale, cmp_valid)
        per_block = cfg.sparse_select == "block"
        chosen = masks.nsa_blocks(p_cmp, l, T, cfg.sparse_topk, cfg.force_first_block, per_block)
        g = self.branch_gate_proj(x).float().view(B, T, H, 3).permute(0, 2, 1, 3)
        g = torch.softmax(g, -1) if cfg.branch_gate == "softmax" else torch.sigmoid(g)
        if recorder is None and window_block_mask is not None \
                and dispatch.block_sparse_flex(cfg, dispatch.Where(q.device.type, T, recording=False)):
            o_sel = self._flex(q, k, v, None, masks.flex_block_mask(chosen, l, T)).float()
            o_win = self._flex(q, k, v, None, window_block_mask).float()
            return (g[..., 0:1] * (p_cmp @ vc) + g[..., 1:2] * o_sel + g[..., 2:3] * o_win).to(q.dtype)
        sel_mask = masks.blocks_to_token_mask(chosen, l, T, per_block)
        win_mask = masks.dense_mask(masks.sliding_window(cfg.sparse_window), T, T, device=q.device)
        logits = (qf @ k.float().transpose(-1, -2)) * self.scale
        p_sel, p_win = _masked_softmax(logits, sel_mask), _masked_softmax(logits, win_mask)
        if recorder is not None:
            for branch, w, mask, keys in (("selected", p_sel, sel_mask, k), ("window", p_win, win_mask, k),
                                          ("compressed", p_cmp, cmp_valid, kc)):
                if keys.shape[-2] == 0:
                    continue  # T shorter than one block: no compressed branch to measure
                recorder.observe(self.layer_idx, q, keys, v, lambda i0, i1, w=w: w[:, :, i0:i1],
                                 visible=masks.visible_counts(mask), branch=None if branch == "selected" else branch)
        out = g[..., 0:1] * (p_cmp @ vc) + g[..., 1:2] * (p_sel @ v.float()) + g[..., 2:3] * (p_win @ v.float())
        return out.to(q.dtype)

    def index_scores(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """I[i, j] = sum_h w_h(i) relu(q_h(i) . k(j)) from the layer input: (B, T, T), or (B, R, T)
        for the query rows `rows`."""
        B, T, _ = x.shape
        xq = x if rows is None else x[:, rows]
        R, Hi, D = xq.shape[1], self.cfg.dsa_heads, self.cfg.dsa_dim
        # rotary positions, as DeepSeek's indexer has: without them it cannot express "recent
        # tokens", and its KL to the (local, RoPE) main attention grew instead of falling
        cos, sin = rope_cache(T, D, self.cfg.rope_theta, device=x.device)
        q_rows = slice(None) if rows is None else rows
        qi = apply_rope(self.index_q(xq).view(B, R, Hi, D), cos[q_rows][:, None], sin[q_rows][:, None])
        ki = apply_rope(self.index_k(x), cos, sin)
        if rows is None and x.is_cuda and DSA_TRITON_INDEXER and not torch.is_grad_enabled():
            from .kernels import dsa_index_scores  # -inf above the diagonal, bf16 like the autocast path

            return dsa_index_scores(qi, ki, self.index_w(xq))
        s = torch.relu(qi.view(B, R * Hi, D) @ ki.transpose(1, 2)).view(B, R, Hi, T)  # one GEMM, no permute
        # the head mix as a fused multiply-and-sum (as a batched matmul it ran as a slow gemv)
        return (s * self.index_w(xq).unsqueeze(-1)).sum(2)

    def _dsa_mask(self, x, q, k):
        """Top-k tokens by the indexer. In training, the indexer learns (on detached inputs) to match
        the main attention summed over heads, by KL divergence, as DeepSeek-V3.2 trains it.

        The KL is estimated on at most DSA_KL_ROWS evenly spaced query rows: its dense fp32 target
        over all T rows cost more than the attention itself (B, H, T, T)."""
        x = x.detach()
        with torch.no_grad():  # the choice itself has no gradient; the KL rows below carry it
            scores = self.index_scores(x)
        if self.training:
            T = q.shape[-2]
            stride = max(1, T // DSA_KL_ROWS)
            rows = torch.arange(stride - 1, T, stride, device=q.device)
            seen = rows[:, None] >= torch.arange(T, device=q.device)[None, :]       # causal, (rows, T)
            with torch.no_grad():
                logits = (q[:, :, rows].float() @ k.float().transpose(-1, -2)) * self.scale
                target = _masked_softmax(logits, seen).mean(1)
            log_p = torch.log_softmax(self.index_scores(x, rows).float().masked_fill(~seen, float("-inf")), -1)
            kl = target * (torch.log(target.clamp_min(1e-9)) - log_p.masked_fill(~seen, 0.0))
            self.aux_loss = kl.sum(-1).mean()
        return masks.topk_tokens(scores, self.cfg.dsa_tokens)

    def _flex(self, q, k, v, pos_bias, block_mask):
        """Softmax-family attention through FlexAttention."""
        out, lse = compiled_flex_attention()(q, k, v, score_mod=_distance_bias_mod(pos_bias),
                                             block_mask=block_mask, scale=self.scale, return_lse=True)
        return self._softmax_variant(out, lse)

    def flex_with_prefix_keys(self, q, k, v, n: int, block_mask):
        """Block-sparse flex over the real tokens, with n prefix keys (a sink token) that every query
        sees, joined by log-sum-exp. The prefix would shift the real tokens off the kernels'
        128-tiles; kept out of the kernel, the blocks stay aligned (45 % -> flex speed)."""
        qr = q[:, :, n:]
        o_real, lse_real = compiled_flex_attention()(qr, k[:, :, n:], v[:, :, n:], block_mask=block_mask,
                                                     scale=self.scale, return_lse=True)
        s_pre = (qr @ k[:, :, :n].transpose(-1, -2)).float() * self.scale          # (B, H, T - n, n)
        tail, lse = _merge_by_lse(o_real, lse_real, *_attend_scores(s_pre, v[:, :, :n]))
        # the prefix rows attend causally among the prefix
        s_head = (q[:, :, :n] @ k[:, :, :n].transpose(-1, -2)).float() * self.scale
        causal = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
        head, lse_head = _attend_scores(s_head.masked_fill(~causal, float("-inf")), v[:, :, :n])
        out = torch.cat([head, tail.to(q.dtype)], dim=2)
        return self._softmax_variant(out, torch.cat([lse_head, lse], dim=2))

    def _softmax_variant(self, out, lse):
        """Plain softmax output and its log-sum-exp -> the configured variant: a sink logit (or
        off-by-one's zero logit) rescales by the LSE, scaled softmax by its alpha."""
        cfg = self.cfg
        if cfg.sink_column:
            sink = self.sink_logit.float() if cfg.sink_logit else torch.zeros(out.shape[1], device=out.device)
            # softmax over [sink, s] = softmax(s) * sum(e^s) / (e^sink + sum(e^s))
            out = out * torch.sigmoid(lse.float() - sink.view(1, -1, 1)).unsqueeze(-1).to(out.dtype)
        return out * cfg.score_scale if cfg.score == "scaled_softmax" else out

    def _band_and_far(self, q, k, v, bias, far_block_mask):
        """Causal softmax with a learned (H, T) distance bias that is constant from distance W on
        (T5's last bucket), exactly, at flash speed.

        Distances below W: dense (tile, W + tile) blocks of scores along the diagonal, bias added.
        Distances W and beyond: queries W.. against keys ..T-W-1 is plain causal attention, through
        FlexAttention with no score_mod (the constant joins its LSE), so no bias gradient is
        scattered in the kernel. The two parts combine by their log-sum-exps.
        """
        B, H, T, D = q.shape
        t = FLEX_TILE
        W = T - far_block_mask.seq_lengths[0]
        nb = T // t
        # query block i sees keys i*t - W .. i*t + t - 1 (front-padded with W zero keys)
        k_win = F.pad(k, (0, 0, W, 0)).unfold(2, W + t, t)                     # (B, H, nb, D, W + t)
        v_win = F.pad(v, (0, 0, W, 0)).unfold(2, W + t, t).transpose(-1, -2)   # (B, H, nb, W + t, D)
        s = (q.reshape(B, H, nb, t, D) @ k_win).float() * self.scale
        r = torch.arange(t, device=q.device)[:, None]
        c = torch.arange(W + t, device=q.device)[None, :]
        dist = r + W - c                                                       # q - k, (t, W + t)
        first_key = torch.arange(nb, device=q.device)[:, None, None] * t - W  # padded keys are < 0
        in_band = (dist >= 0) & (dist < W) & (first_key + c >= 0)              # (nb, t, W + t)
        s = (s + bias.float()[:, dist.clamp(0, W - 1)][None, :, None]).masked_fill(~in_band, float("-inf"))
        o_near, lse_near = _attend_scores(s, v_win)                            # finite: d = 0 is in band
        o_near, lse_near = o_near.reshape(B, H, T, D), lse_near.reshape(B, H, T)
        o_far, lse_far = compiled_flex_attention()(q[:, :, W:], k[:, :, :T - W], v[:, :, :T - W],
                                                   block_mask=far_block_mask, scale=self.scale, return_lse=True)
        lse_far = lse_far.float() + bias[:, W].float().view(1, H, 1)
        tail, lse_tail = _merge_by_lse(o_near[:, :, W:], lse_near[:, :, W:], o_far, lse_far)
        out = torch.cat([o_near[:, :, :W], tail.to(q.dtype)], dim=2)
        return self._softmax_variant(out, torch.cat([lse_near[:, :, :W], lse_tail], dim=2))

    def _dense(self, q, k, v, pos_bias, mask_fn, dyn_mask=None):
        T = q.shape[-2]
        # whole rows on a GPU (the compiled graph fuses the score function); row blocks elsewhere
        rows = T if q.is_cuda else observe.row_block_size(T, T + 2, q.shape[0] * q.shape[1], budget_elems=1 << 27)
        outs = []
        n_extra = len(self._extra_logits(q[:, :, :1]))
        v_extra = self._extra_values(q)
        for i0 in range(0, T, rows):
            w = self.weights(q, k, pos_bias, mask_fn, i0, min(i0 + rows, T), dyn_mask)
            o = w[..., n_extra:] @ v.float()
            if v_extra is not None:
                o = o + w[..., n_extra - 1: n_extra] * v_extra
            outs.append(o)
        return torch.cat(outs, dim=-2).to(q.dtype)

    def _extra_values(self, q):
        if not self.cfg.has_bias_key:
            return None
        return self.v_bias.float().expand(self.n_heads, -1)[None, :, None, :]

    def _fused_kernels(self, q, plain_causal: bool):
        """The fused kernels' plan for this dtype and shape, or None (the config fits: dispatch.fused_fits)."""
        return attention_sums.fused_plan(q.device.type, q.dtype, self.head_dim, q.shape[-2],
                                         mask_kind="window" if not plain_causal else "causal")

    def _attend_and_observe_fused(self, recorder, fused, q, k, v, full, pos_bias, mask_fn):
        """Output and column sums from the fused kernels; returns the output as (B, H, T, d)."""
        cfg = self.cfg
        B, H, T, _ = q.shape
        window = None if cfg.window is None or cfg.window >= T else int(cfg.window)
        sink = None
        if cfg.sink_logit:
            sink = self.sink_logit
        elif cfg.score == "off_by_one":
            sink = q.new_zeros(H, dtype=torch.float32)
        out, col, sink_col = attention_sums.attention_with_column_sums(q, k, v, self.scale, fused, window=window,
                                                                       sink_logits=sink)
        visible = None
        if window is not None:  # the queries that see key j: min(T - j, window)
            visible = (T - torch.arange(T, device=q.device)).clamp_max(window).float()
        amap = None
        if recorder.keep_map_upto and T <= recorder.keep_map_upto:
            n_extra = 0 if sink is None else 1
            amap = self.weights(q[:1], full(k[:1]), pos_bias, mask_fn, 0, T)[0, :, :, n_extra:].float()
        recorder.observe_columns(self.layer_idx, q, k, v, col, None if sink_col is None else sink_col[..., None],
                                 visible=visible, attention_map=amap)
        return out.transpose(1, 2)

    def _observe(self, recorder, q, k, v, pos_bias, mask_fn, n_prefix, dyn=None, plain_causal=False):
        """Report this layer to the measurement, real tokens as rows and added positions leading."""
        n_extra = self.cfg.n_extra_keys + n_prefix

        def rows(i0, i1):  # the weights applied; under proxy scores the recorder also measures the proxy
            return self.weights(q, k, pos_bias, mask_fn, i0 + n_prefix, i1 + n_prefix, dyn)

        visible = None  # plain causal: the paper's T - k + 1
        if not plain_causal or dyn is not None:
            T = q.shape[-2]
            allowed = masks.dense_mask(mask_fn, T, T, device=q.device)
            if dyn is not None:
                allowed = allowed & dyn
            visible = masks.visible_counts(allowed[..., n_prefix:, n_prefix:])  # queries that see each real key
        qr, kr, vr = q[:, :, n_prefix:], k[:, :, n_prefix:], v[:, :, n_prefix:]
        recorder.observe(self.layer_idx, qr, kr, vr, rows, n_extra=n_extra, visible=visible,
                         proxy=self._proxy if self.cfg.proxy_scores else None)


# -- single-pass backends: one signature, (layer, q, k, v, inputs) -> output (B, H, T, d) ------------

@dataclass
class BackendInputs:
    """What a backend reads besides q, k, v. k and v have the KV heads; `full` repeats them for
    every query head (SDPA's causal path takes them grouped)."""
    full: Callable[[torch.Tensor], torch.Tensor]
    pos_bias: torch.Tensor | None
    mask_fn: masks.MaskFn
    dyn: torch.Tensor | None = None    # a data-dependent token pattern (MoBA per token, DSA)
    block_mask: object = None          # flex BlockMask of the pattern
    far_block_mask: object = None      # causal flex BlockMask beyond a learned bias's band


def _scaled(layer: "Attention", out: torch.Tensor) -> torch.Tensor:
    return out * layer.cfg.score_scale if layer.cfg.score == "scaled_softmax" else out


def sdpa_causal(layer: "Attention", q, k, v, a: BackendInputs) -> torch.Tensor:
    return _scaled(layer, F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=k.shape[1] != q.shape[1]))


def sdpa_bool_mask(layer: "Attention", q, k, v, a: BackendInputs) -> torch.Tensor:
    T = q.shape[-2]
    allowed = a.dyn & masks.dense_mask(a.mask_fn, T, T, device=q.device)
    return _scaled(layer, F.scaled_dot_product_attention(q, a.full(k), a.full(v), attn_mask=allowed, scale=layer.scale))


def band_and_far(layer: "Attention", q, k, v, a: BackendInputs) -> torch.Tensor:
    return layer._band_and_far(q, a.full(k), a.full(v), a.pos_bias, a.far_block_mask)


def flex(layer: "Attention", q, k, v, a: BackendInputs) -> torch.Tensor:
    return layer._flex(q, a.full(k), a.full(v), a.pos_bias, a.block_mask)


def sdpa_extra_key(layer: "Attention", q, k, v, a: BackendInputs) -> torch.Tensor:
    return layer._sdpa_extra_key(q, a.full(k), a.full(v), a.mask_fn)


def sdpa_bias_query(layer: "Attention", q, k, v, a: BackendInputs) -> torch.Tensor:
    return layer._sdpa_bias_query(q, a.full(k), a.full(v))


def dense(layer: "Attention", q, k, v, a: BackendInputs) -> torch.Tensor:
    return layer._dense(q, a.full(k), a.full(v), a.pos_bias, a.mask_fn, a.dyn)


# the backends dispatch.choose_backend names that run in one pass; nsa, moba_flex* and fused need the layer
# input or the recorder and run in Attention.forward
SINGLE_PASS = {"sdpa_causal": sdpa_causal, "sdpa_bool_mask": sdpa_bool_mask, "band_and_far": band_and_far,
               "flex": flex, "sdpa_extra_key": sdpa_extra_key,
               "sdpa_bias_query": sdpa_bias_query, "dense": dense}


def _bias_kind(pos_bias) -> str:
    """How dispatch sees a position bias: none, fixed, or learned (its gradient is wanted)."""
    if pos_bias is None:
        return "none"
    return "learned" if pos_bias.requires_grad else "fixed"


def _attend_scores(s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention from float32 scores: (output in v's dtype, the rows' log-sum-exp)."""
    lse = torch.logsumexp(s, -1)
    return torch.exp(s - lse[..., None]).to(v.dtype) @ v, lse


def _merge_by_lse(o_a, lse_a, o_b, lse_b) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention over two disjoint key sets from each set's own normalised output and
    log-sum-exp: (the joint output in float32, the joint log-sum-exp)."""
    lse_a, lse_b = lse_a.float(), lse_b.float()
    lse = torch.logaddexp(lse_a, lse_b)
    out = o_a.float() * torch.exp(lse_a - lse)[..., None] + o_b.float() * torch.exp(lse_b - lse)[..., None]
    return out, lse


def _distance_bias_mod(pos_bias):
    """A FlexAttention score_mod adding a fixed (H, T) bias by distance q - k (ALiBi)."""
    if pos_bias is None:
        return None

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + pos_bias[h, torch.where(q_idx >= kv_idx, q_idx - kv_idx, 0)]
    return score_mod


def _masked_softmax(s: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax over the allowed entries; a row with none allowed gives zeros (not NaN)."""
    s = s.masked_fill(~allowed, float("-inf"))
    return torch.nan_to_num(torch.softmax(s, dim=-1), nan=0.0)


def _softmax(cfg: ModelConfig, s, allowed, T: int) -> torch.Tensor:
    w = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
    return w * cfg.score_scale if cfg.score == "scaled_softmax" else w


def _softpick(cfg: ModelConfig, s, allowed, T: int) -> torch.Tensor:
    """relu(e^x - 1) / (sum |e^x - 1| + eps), scaled by e^-m for stability."""
    m = s.masked_fill(~allowed, float("-inf")).amax(-1, keepdim=True).clamp_min(0).detach()
    shifted = (torch.exp(s - m) - torch.exp(-m)).masked_fill(~allowed, 0.0)
    return F.relu(shifted) / (shifted.abs().sum(-1, keepdim=True) + 1e-6 * torch.exp(-m))


def _row_normalised(cfg: ModelConfig, w: torch.Tensor) -> torch.Tensor:
    return w / w.sum(-1, keepdim=True).clamp_min(1e-6) if cfg.normalize else w


def _sigmoid(cfg: ModelConfig, s, allowed, T: int) -> torch.Tensor:
    bias = -math.log(T) if cfg.sigmoid_bias == "auto" else float(cfg.sigmoid_bias or 0.0)
    return _row_normalised(cfg, torch.sigmoid(s + bias) * allowed)


def _elu1(cfg: ModelConfig, s, allowed, T: int) -> torch.Tensor:
    return _row_normalised(cfg, (F.elu(s) + 1) * allowed)


def _kernel_similarity(cfg: ModelConfig, s, allowed, T: int) -> torch.Tensor:
    """Kernel similarities phi(q) . phi(k), divided by the configured normaliser."""
    w = s * allowed
    if cfg.kernel_normalizer == "sum":
        return w / w.sum(-1, keepdim=True).clamp_min(1e-6)
    if cfg.kernel_normalizer == "max_abs_sum":
        return w / w.sum(-1, keepdim=True).abs().clamp_min(1.0)
    return w


# score name -> (cfg, logits or similarities, allowed mask, T) -> weights; one entry per CHOICES["score"]
SCORES = {"softmax": _softmax, "scaled_softmax": _softmax, "off_by_one": _softmax, "softpick": _softpick,
          "sigmoid": _sigmoid, "elu1": _elu1, "kernel": _kernel_similarity}


def score_function(cfg: ModelConfig, s: torch.Tensor, allowed: torch.Tensor, T: int) -> torch.Tensor:
    """Turn logits (or kernel similarities) into weights; `allowed` is the (rows, cols) mask. The
    off-by-one zero logit and a sink logit are columns of `s` already."""
    return SCORES[cfg.score](cfg, s, allowed, T)
