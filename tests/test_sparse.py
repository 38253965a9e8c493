"""Sparse attention patterns and the mask-aware metric."""
import pytest
import torch

from sinklab.config import preset
from sinklab.errors import SinklabError
from sinklab.measure import metrics
from sinklab.model import attention, masks, variants
from sinklab.model.decoder import SinkLM

PATTERNS = variants.sparse(block=4, topk=1)  # the shared catalogue at T = 24
# a fixed pattern, a block choice and NSA's branches in the quick suite; every pattern in CI
QUICK_PATTERNS = {"local_global", "moba", "nsa"}
PATTERN_PARAMS = [n if n in QUICK_PATTERNS else pytest.param(n, marks=pytest.mark.slow) for n in sorted(PATTERNS)]


def brute_static(kind, T, **p):
    m = torch.zeros(T, T, dtype=torch.bool)
    for q in range(T):
        for k in range(q + 1):
            if kind == "local_global":
                m[q, k] = q - k < p["window"] or k < p["n_global"]
            else:
                m[q, k] = q - k < p["stride"] or (q - k) % p["stride"] == 0
    return m


def test_static_masks_equal_brute_force():
    assert torch.equal(masks.dense_mask(masks.local_global(4, 2), 16, 16), brute_static("local_global", 16, window=4, n_global=2))
    assert torch.equal(masks.dense_mask(masks.strided(4), 16, 16), brute_static("strided", 16, stride=4))


def brute_moba(q, k, block, topk, force_first, per_block):
    B, H, T, D = q.shape
    out = torch.zeros(B, H, T, T, dtype=torch.bool)
    nb = -(-T // block)
    for b in range(B):
        for h in range(H):
            pooled = [k[b, h, j * block:(j + 1) * block].mean(0) for j in range(nb)]
            for i in range(T):
                own = i // block
                past = list(range(own))
                # per block: the block chooses with the summed queries of the block before it
                query = q[b, h, max(own - 1, 0) * block:own * block].sum(0) if per_block else q[b, h, i]
                ranked = sorted(past, key=lambda j: -(query @ pooled[j]).item())
                chosen = set(ranked[:topk])
                if force_first and past:
                    chosen = set(([0] + [j for j in ranked if j != 0])[:topk]) if topk else set()
                for j in chosen | {own}:
                    for t in range(j * block, min((j + 1) * block, i + 1)):
                        out[b, h, i, t] = True
    return out


@pytest.mark.parametrize("per_block", [True, False])
@pytest.mark.parametrize("force_first,T", [(False, 16), (True, 16), (False, 18)])
def test_moba_mask_equals_brute_force_and_never_sees_the_future(force_first, T, per_block):
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, T, 8), torch.randn(2, 3, T, 8)
    got = masks.moba_mask(q, k, block=4, topk=2, force_first=force_first, per_block=per_block)
    assert torch.equal(got, brute_moba(q, k, 4, 2, force_first, per_block))
    assert not (got & ~torch.tril(torch.ones(T, T, dtype=torch.bool))).any()
    if force_first:
        assert got[..., 4:, 0].all()  # every query past the first block sees token 0


def test_moba_with_topk_covering_every_block_is_dense_causal():
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 16, 8), torch.randn(1, 2, 16, 8)
    assert torch.equal(masks.moba_mask(q, k, 4, 4)[0, 0], torch.tril(torch.ones(16, 16, dtype=torch.bool)))
    dense = SinkLM(preset("tiny")).eval()
    moba = SinkLM(preset("tiny", sparse="moba", sparse_block=4, sparse_topk=4)).eval()
    moba.load_state_dict(dense.state_dict())
    ids = torch.randint(0, 256, (2, 16))
    assert torch.allclose(dense(ids), moba(ids), atol=1e-5)


@pytest.mark.parametrize("name", PATTERN_PARAMS)
def test_every_pattern_trains_and_is_causal(name):
    torch.manual_seed(0)
    model = SinkLM(preset("tiny", **PATTERNS[name]))
    ids = torch.randint(0, 256, (2, 24))
    loss = model(ids, ids)
    loss.backward()
    assert torch.isfinite(loss)
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 256
    with torch.no_grad():
        assert torch.allclose(model(ids)[:, :-1], model(changed)[:, :-1], atol=1e-6)


# a sink logit adds a column to the weights: those entries are checked with the dense path instead
@pytest.mark.parametrize("name", sorted(n for n in PATTERNS if not n.startswith(("nsa", "dsa"))
                                         and not PATTERNS[n].get("sink_logit")))
def test_attention_outside_the_pattern_is_exactly_zero(name):
    torch.manual_seed(0)
    cfg = preset("tiny", **PATTERNS[name])
    attn = SinkLM(cfg).layers[0].attn
    q, k = torch.randn(1, 4, 16, 16), torch.randn(1, 4, 16, 16)
    mask_fn = masks.build_mask(sparse=cfg.sparse, sparse_window=cfg.sparse_window, sparse_globals=cfg.sparse_globals,
                               sparse_stride=cfg.sparse_stride)
    allowed = masks.dense_mask(mask_fn, 16, 16)
    dyn = masks.moba_mask(q, k, 4, cfg.sparse_topk, cfg.force_first_block) if cfg.sparse == "moba" else None
    if dyn is not None:
        allowed = allowed & dyn
    w = attn.weights(q, k, None, mask_fn, 0, 16, dyn)
    assert (w[~allowed.expand_as(w)] == 0).all()
    assert torch.allclose(w.sum(-1), torch.ones(1, 4, 16), atol=1e-5)


def test_mask_aware_alpha_equals_paper_alpha_for_dense_causal():
    A = torch.softmax(torch.randn(2, 3, 8, 8).masked_fill(~torch.tril(torch.ones(8, 8, dtype=torch.bool)), -1e9), -1)
    visible = masks.visible_counts(torch.tril(torch.ones(8, 8, dtype=torch.bool)))
    assert torch.allclose(metrics.mask_aware_importance(A.sum(-2), visible), metrics.importance_scores(A), atol=1e-6)


def test_mask_aware_alpha_by_hand_on_a_window_of_two():
    # T = 4, window 2: row i sees keys i-1, i. Column 1 (k=1) is seen by queries 1 and 2 only.
    A = torch.tensor([[1.0, 0, 0, 0], [0.8, 0.2, 0, 0], [0, 0.6, 0.4, 0], [0, 0, 0.3, 0.7]])
    visible = masks.visible_counts(masks.dense_mask(masks.sliding_window(2), 4, 4))
    assert visible.tolist() == [2, 2, 2, 1]
    aware = metrics.mask_aware_importance(A.sum(-2), visible)
    paper = metrics.importance_scores(A)
    assert torch.allclose(aware, torch.tensor([0.9, 0.4, 0.35, 0.7]))       # (1+.8)/2, (.2+.6)/2, (.4+.3)/2, .7
    assert torch.allclose(paper, torch.tensor([1.8 / 4, 0.8 / 3, 0.7 / 2, 0.7]))  # the paper divides by T-k+1


def test_measure_reports_mask_aware_sink_for_sparse_models():
    torch.manual_seed(0)
    model = SinkLM(preset("tiny", sparse="local_global", sparse_window=8))
    from sinklab.measure.run import measure

    r = measure(model, probe="random", n=3, T=32, progress=False)
    assert set(r.summary["sink_mask_aware"]) == set(r.summary["sink"])
    dense = measure(SinkLM(preset("tiny")), probe="random", n=3, T=32, progress=False)
    assert dense.summary["sink_mask_aware"] is None  # plain causal: identical to the paper's alpha


def test_bad_sparse_values_name_the_field():
    with pytest.raises(SinklabError, match="sparse_block=5 does not divide max_seq_len=256"):
        preset("tiny", sparse="moba", sparse_block=5)
    with pytest.raises(SinklabError, match="sparse_topk=9 is larger than the 4 blocks"):
        preset("tiny", sparse="moba", sparse_block=64, sparse_topk=9)
    with pytest.raises(SinklabError, match="sparse"):
        preset("tiny", sparse="bigbird")


@pytest.mark.parametrize("per_block", [True, False])
@pytest.mark.parametrize("force_first", [False, True])
def test_nsa_selection_never_sees_the_future_and_forces_block_zero(force_first, per_block):
    torch.manual_seed(0)
    p_cmp = torch.softmax(torch.randn(2, 3, 18, 4), -1)  # 18 tokens, 4 complete blocks of 4
    sel = masks.nsa_block_selection(p_cmp, 4, 18, topk=1, force_first=force_first, per_block=per_block)
    assert not (sel & ~torch.tril(torch.ones(18, 18, dtype=torch.bool))).any()
    # the partial last block (tokens 16, 17) is its own queries' block, causally
    assert torch.equal(sel[..., 16:, 16:], torch.tril(torch.ones(2, 2, dtype=torch.bool)).expand(2, 3, 2, 2))
    if force_first:
        assert sel[..., 4:, 0].all()
    # own block + at most one selected past block
    per_query_blocks = sel.view(2, 3, 18, 18)[..., :16].reshape(2, 3, 18, 4, 4).any(-1).sum(-1)
    assert per_query_blocks.max() <= 2


def test_nsa_branches_are_recorded_with_zero_outside_their_masks():
    from sinklab.measure import capture
    from sinklab.measure.run import measure

    torch.manual_seed(0)
    model = SinkLM(preset("tiny", sparse="nsa", sparse_block=8, sparse_topk=2, sparse_window=8)).eval()
    rec = capture.AttentionRecorder()
    with torch.no_grad():
        model.hidden_states(torch.randint(0, 256, (2, 32)), recorder=rec)
    assert set(rec.branches) == {"window", "compressed"} and len(rec.layers) == 2
    assert rec.branches["compressed"][0].alpha.shape[-1] == 4  # one position per compressed block
    r = measure(model, probe="random", n=2, T=32, progress=False)
    assert set(r.summary["sink_by_branch"]) == {"selected", "window", "compressed"}


def test_branch_gate_needs_nsa():
    with pytest.raises(SinklabError, match="branch_gate='sigmoid' applies only to sparse='nsa'"):
        preset("tiny", sparse="moba", branch_gate="sigmoid")


def test_dsa_top_k_tokens_are_causal_and_keep_the_query():
    torch.manual_seed(0)
    sel = masks.topk_tokens(torch.randn(2, 12, 12), 4)[:, 0]
    assert not (sel & ~torch.tril(torch.ones(12, 12, dtype=torch.bool))).any()
    assert sel.diagonal(dim1=-2, dim2=-1).all()
    assert (sel.sum(-1) == torch.clamp(torch.arange(1, 13), max=4)).all()


def test_dsa_keeping_every_token_is_dense_and_only_the_indexer_learns_from_its_loss():
    torch.manual_seed(0)
    dense = SinkLM(preset("tiny")).eval()
    dsa = SinkLM(preset("tiny", sparse="dsa", dsa_tokens=64))
    dsa.load_state_dict(dense.state_dict(), strict=False)
    ids = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        assert torch.allclose(dense(ids), dsa.eval()(ids), atol=1e-5)
    dsa.train()
    dsa(ids)  # each layer's indexer KL (aux_loss); backed alone, main weights must get no gradient from it
    aux = sum(b.attn.aux_loss for b in dsa.layers)
    aux.backward()
    assert dsa.layers[0].attn.index_q.weight.grad.abs().sum() > 0
    assert dsa.layers[0].attn.q_proj.weight.grad is None and dsa.embed.weight.grad is None


def _eager_flex(monkeypatch):
    """Run the FlexAttention paths eagerly on CPU (forward only): they must equal the dense path."""
    import warnings

    from torch.nn.attention.flex_attention import flex_attention

    warnings.filterwarnings("ignore", message=".*flex_attention.*")
    monkeypatch.setattr(attention, "compiled_flex_attention", lambda: flex_attention)


def _inputs(pos_bias=None, mask_fn=None, dyn=None, block_mask=None, far_block_mask=None):
    """A single-pass backend's inputs for q, k, v that already have every query head."""
    return attention.BackendInputs(lambda t: t, pos_bias, mask_fn, dyn, block_mask, far_block_mask)


@pytest.mark.parametrize("force_first", [False, True])
def test_flex_block_mask_of_a_block_choice_equals_the_token_mask(monkeypatch, force_first):
    _eager_flex(monkeypatch)
    torch.manual_seed(0)
    T, block = 64, 16
    q, k, v = torch.randn(2, 3, T, 8), torch.randn(2, 3, T, 8), torch.randn(2, 3, T, 8)
    chosen = masks.moba_blocks(q, k, block, topk=1, force_first=force_first)
    bm = masks.flex_block_mask(chosen, block, T)
    assert torch.equal(bm.to_dense().bool().repeat_interleave(block, -2).repeat_interleave(block, -1)
                       & torch.tril(torch.ones(T, T, dtype=torch.bool)),
                       masks.blocks_to_token_mask(chosen, block, T) | torch.eye(T, dtype=torch.bool))
    from torch.nn.attention.flex_attention import flex_attention
    got = flex_attention(q, k, v, block_mask=bm)
    allowed = masks.blocks_to_token_mask(chosen, block, T)
    want = torch.softmax((q @ k.transpose(-1, -2) / 8 ** 0.5).masked_fill(~allowed, float("-inf")), -1) @ v
    assert torch.allclose(got, want, atol=1e-5)


def test_flex_distance_bias_equals_the_dense_path(monkeypatch):
    """ALiBi as an (H, T) bias indexed by q - k in a FlexAttention score_mod, against dense weights."""
    _eager_flex(monkeypatch)
    from torch.nn.attention.flex_attention import create_block_mask
    torch.manual_seed(0)
    model = SinkLM(preset("tiny", position="alibi", window=5)).eval()
    attn, T = model.layers[0].attn, 32
    ctx = model.forward_context(T, torch.device("cpu"))
    q, k, v = (torch.randn(2, attn.n_heads, T, attn.head_dim) * 2 for _ in range(3))
    bm = create_block_mask(lambda b, h, qi, ki: ctx.mask_fn(qi, ki), None, None, T, T, device="cpu", BLOCK_SIZE=16)
    with torch.no_grad():
        dense = attention.dense(attn, q, k, v, _inputs(ctx.pos_bias, ctx.mask_fn))
        flex = attention.flex(attn, q, k, v, _inputs(ctx.pos_bias, block_mask=bm))
    assert torch.allclose(flex, dense, atol=1e-5), (flex - dense).abs().max()


def test_distance_bias_expansion_equals_indexing_and_its_gradient():
    from sinklab.model.position import expand_distance_bias
    b = torch.randn(3, 10, requires_grad=True)
    q = torch.arange(2, 7)[:, None]
    k = torch.arange(10)[None, :]
    want = b[:, (q - k).clamp_min(0)]
    got = expand_distance_bias(b, 2, 7, 10)
    assert torch.equal(got, want)
    w = torch.randn_like(want)
    g_want, = torch.autograd.grad((want * w).sum(), b)
    g_got, = torch.autograd.grad((got * w).sum(), b)
    assert torch.allclose(g_got, g_want, atol=1e-6)


_SLOW_GPU_CHANGES = [dict(sparse="moba", sparse_topk=1, gate="elementwise"),
                     dict(sparse="moba", sparse_topk=1, sink_token=True),
                     dict(sparse="moba", sparse_topk=1, sink_token=True, sink_logit=True),
                     dict(sparse="nsa", sparse_topk=1, sparse_window=64),
                     dict(sparse="nsa", sparse_topk=1, sparse_window=64, force_first_block=True)]


# plain MoBA in the quick suite; the gated, sink and NSA paths in CI
@pytest.mark.parametrize("change", [dict(sparse="moba", sparse_topk=1),
                                    *(pytest.param(c, marks=pytest.mark.slow) for c in _SLOW_GPU_CHANGES)])
def test_gpu_block_sparse_forward_equals_the_dense_path(monkeypatch, change):
    """The GPU-only MoBA / NSA forward (block choice -> flex BlockMask -> FlexAttention, NSA's gate
    mix), run on CPU with eager flex, equals the dense path of the same model."""
    _eager_flex(monkeypatch)
    from torch.nn.attention.flex_attention import create_block_mask

    torch.manual_seed(0)
    model = SinkLM(preset("tiny", sparse_block=128, **change)).eval()
    ids = torch.randint(0, 256, (2, 256))
    with torch.no_grad():
        dense = model(ids)
        from sinklab.model import dispatch
        monkeypatch.setattr(dispatch, "flex_computes", lambda cfg, where: True)
        context = SinkLM.forward_context

        def with_cpu_block_masks(self, T, device, recorder=None):
            ctx = context(self, T, device, recorder)
            if self.cfg.sparse == "nsa":
                w = self.cfg.sparse_window
                ctx.window_block_mask = create_block_mask(lambda b, h, q, k: (k <= q) & (q - k < w), None, None,
                                                             T, T, device="cpu", BLOCK_SIZE=128)
            return ctx
        monkeypatch.setattr(SinkLM, "forward_context", with_cpu_block_masks)
        calls, eager = [], attention.compiled_flex_attention()

        def counted(*a, **kw):
            calls.append(1)
            return eager(*a, **kw)
        monkeypatch.setattr(attention, "compiled_flex_attention", lambda: counted)
        flex = model(ids)
    assert len(calls) >= model.cfg.n_layers  # the flex path was taken
    assert torch.allclose(flex, dense, atol=1e-5), (flex - dense).abs().max()


def reference_flex(q, k, v, score_mod=None, block_mask=None, scale=None, return_lse=False):
    """FlexAttention's contract (output and LSE under the block mask's mask_mod), differentiable on
    CPU, where flex has no backward; the compiled kernels are checked on the GPU (gpu_checks.py)."""
    assert score_mod is None and return_lse
    B, H = q.shape[:2]
    qi, ki = torch.arange(q.shape[-2])[:, None], torch.arange(k.shape[-2])[None, :]
    allowed = torch.stack([torch.stack([block_mask.mask_mod(torch.tensor(b), torch.tensor(h), qi, ki)
                                        for h in range(H)]) for b in range(B)])
    s = (q @ k.transpose(-1, -2) * scale).masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(s, -1)
    return torch.exp(s - lse[..., None]) @ v, lse


@pytest.mark.parametrize("change", [dict(), dict(sink_logit=True)])
def test_moba_with_a_sink_token_on_flex_equals_the_dense_path_with_gradients(monkeypatch, change):
    """MoBA + sink token on the GPU path: block-sparse flex over the real tokens (aligned to the
    tiles), the sink key joined by LSE. Outputs and the gradients of q, k, v equal the dense path."""
    monkeypatch.setattr(attention, "compiled_flex_attention", lambda: reference_flex)
    torch.manual_seed(0)
    model = SinkLM(preset("tiny", sparse="moba", sparse_block=128, sparse_topk=1, sink_token=True, **change))
    if model.cfg.sink_logit:
        torch.nn.init.normal_(model.layers[0].attn.sink_logit)
    attn, T, n = model.layers[0].attn, 257, 1
    ctx = model.forward_context(T, torch.device("cpu"))
    q, k, v = (torch.randn(2, attn.n_heads, T, attn.head_dim, requires_grad=True) for _ in range(3))
    chosen = masks.moba_blocks(q[:, :, n:], k[:, :, n:], 128, 1)
    got = attn.flex_with_prefix_keys(q, k, v, n, masks.flex_block_mask(chosen, 128, T - n))
    g_got = torch.autograd.grad(got.square().sum(), [q, k, v])
    dyn = torch.nn.functional.pad(masks.blocks_to_token_mask(chosen, 128, T - n), (n, 0, n, 0), value=True)
    want = attention.dense(attn, q, k, v, _inputs(None, ctx.mask_fn, dyn))
    g_want = torch.autograd.grad(want.square().sum(), [q, k, v])
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    for a, b in zip(g_got, g_want):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()


@pytest.mark.parametrize("change", [dict(), dict(sink_logit=True), dict(relative_max_distance=200)])
def test_relative_band_and_far_equals_the_dense_path_with_gradients(monkeypatch, change):
    """The GPU path of T5 relative bias (a dense band below the last bucket, flex beyond it, joined
    by LSE): outputs and the gradients of q, k, v and the bias table equal the dense path's. CPU flex
    has no backward, so a differentiable reference with flex's contract stands in for it; the
    compiled kernel is checked on the GPU (benchmarks/gpu_checks.py)."""
    from torch.nn.attention.flex_attention import create_block_mask

    monkeypatch.setattr(attention, "compiled_flex_attention", lambda: reference_flex)

    from sinklab.model.position import relative_band
    torch.manual_seed(0)
    model = SinkLM(preset("tiny", position="relative", **change))
    torch.nn.init.normal_(model.relative_bias.table.weight, std=2.0)
    if model.cfg.sink_logit:
        torch.nn.init.normal_(model.layers[0].attn.sink_logit)
    attn, T = model.layers[0].attn, 512
    band = relative_band(model.cfg.relative_max_distance)
    far = create_block_mask(lambda b, h, qi, ki: ki <= qi, None, None, T - band, T - band, device="cpu", BLOCK_SIZE=128)
    ctx = model.forward_context(T, torch.device("cpu"))
    q, k, v = (torch.randn(2, attn.n_heads, T, attn.head_dim, requires_grad=True) for _ in range(3))
    got = attention.band_and_far(attn, q, k, v, _inputs(model.relative_bias.by_distance(T), far_block_mask=far))
    g_got = torch.autograd.grad(got.square().sum(), [q, k, v, model.relative_bias.table.weight])
    want = attention.dense(attn, q, k, v, _inputs(ctx.pos_bias, ctx.mask_fn))
    g_want = torch.autograd.grad(want.square().sum(), [q, k, v, model.relative_bias.table.weight])
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    for a, b in zip(g_got, g_want):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()


def test_dsa_ties_by_position_keep_the_earliest_tied_tokens_and_change_nothing_without_ties(monkeypatch):
    """The check mode that makes DSA's choice the same on every device: equal scores go to the earlier token;
    where no scores tie it chooses what topk chooses."""
    from sinklab.model import masks

    T, k = 12, 4
    tied = torch.zeros(1, T, T)
    monkeypatch.setattr(masks, "TIES_BY_POSITION", True)
    chosen = masks.topk_tokens(tied, k)[0, 0]
    for i in range(k, T):
        assert chosen[i].nonzero().flatten().tolist() == [0, 1, 2, i]  # the query's own token, then the earliest
    distinct = torch.randn(2, T, T)
    stable = masks.topk_tokens(distinct, k)
    monkeypatch.setattr(masks, "TIES_BY_POSITION", False)
    assert torch.equal(stable, masks.topk_tokens(distinct, k))
