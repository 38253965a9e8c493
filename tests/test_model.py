"""The one decoder: every variant trains, the identities that pin the maths, HF parity, bad config."""
import math

import pytest
import torch

from sinklab.config import ModelConfig, preset
from sinklab.errors import SinklabError
from sinklab.model import masks, variants
from sinklab.model.attention import Attention
from sinklab.model.decoder import SinkLM
from sinklab.model.position import alibi_slopes

VARIANTS = variants.dense_catalogue(block=4)  # the shared catalogue at T = 24
# one entry per family of path (position, bias key, score, window) runs in the quick suite, every entry in CI
QUICK_VARIANTS = {"default", "kv_bias", "sink_logit", "sigmoid", "window", "gqa"}
VARIANT_PARAMS = [n if n in QUICK_VARIANTS else pytest.param(n, marks=pytest.mark.slow) for n in sorted(VARIANTS)]


@pytest.mark.parametrize("name", VARIANT_PARAMS)
def test_every_variant_trains(name):
    torch.manual_seed(0)
    model = SinkLM(preset("tiny", **VARIANTS[name]))
    ids = torch.randint(0, 256, (2, 24))
    loss = model(ids[:, :-1], ids[:, 1:])
    assert torch.isfinite(loss) and 4.0 < loss.item() < 7.0  # ~ln(256) = 5.5 at init
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def _layer(cfg, seed=0):
    torch.manual_seed(seed)
    return Attention(cfg, 0)


def _run(attn, x, T, mask_fn=None):
    from sinklab.model.position import rope_cache

    rope = rope_cache(T, attn.head_dim, attn.cfg.rope_theta)
    mask_fn = mask_fn or masks.causal()
    return attn(x, rope, None, mask_fn, plain_causal=True)


def test_k_bias_with_zero_value_is_softmax_with_an_extra_zero_value_key():
    cfg = preset("tiny", attn_bias="k")
    attn = _layer(cfg)
    with torch.no_grad():
        attn.k_bias.normal_()
    x = torch.randn(2, 10, cfg.d_model)
    got = _run(attn, x, 10)
    # by hand: append the bias key with a zero value, softmax, mix
    from sinklab.model.position import apply_rope, rope_cache

    B, T, H, hd = 2, 10, cfg.n_heads, cfg.head_dim
    cos, sin = rope_cache(T, hd, cfg.rope_theta)
    q = apply_rope(attn.q_proj(x).view(B, T, H, hd).transpose(1, 2), cos, sin)
    k = apply_rope(attn.k_proj(x).view(B, T, H, hd).transpose(1, 2), cos, sin)
    v = attn.v_proj(x).view(B, T, H, hd).transpose(1, 2)
    kb = attn.k_bias[:, None, :].expand(H, 1, hd)[None].expand(B, -1, -1, -1)
    k_ext = torch.cat([kb, k], 2)
    v_ext = torch.cat([torch.zeros_like(kb), v], 2)
    mask = torch.cat([torch.ones(T, 1, dtype=torch.bool), torch.tril(torch.ones(T, T, dtype=torch.bool))], 1)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k_ext, v_ext, attn_mask=mask)
    ref = attn.o_proj(ref.transpose(1, 2).reshape(B, T, H * hd))
    assert torch.allclose(got, ref, atol=1e-5)


def test_off_by_one_equals_zero_sink_logit_equals_zero_k_bias():
    x = torch.randn(2, 12, 64)
    outs = []
    for change in (dict(score="off_by_one"), dict(sink_logit=True), dict(attn_bias="k")):
        attn = _layer(preset("tiny", **change))  # same seed: same projections; sink logit and k bias start at 0
        outs.append(_run(attn, x, 12))
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    assert torch.allclose(outs[0], outs[2], atol=1e-6)
    # and off-by-one really differs from softmax
    plain = _run(_layer(preset("tiny")), x, 12)
    assert not torch.allclose(outs[0], plain, atol=1e-4)


def test_softmax_off_by_one_formula():
    cfg = preset("tiny", score="off_by_one")
    s = torch.randn(1, 1, 3, 4)
    allowed = torch.ones(3, 4, dtype=torch.bool)
    from sinklab.model.attention import score_function

    w = score_function(cfg, torch.cat([torch.zeros(1, 1, 3, 1), s], -1), torch.cat([allowed[:, :1], allowed], -1), 4)
    expected = s.exp() / (1 + s.exp().sum(-1, keepdim=True))
    assert torch.allclose(w[..., 1:], expected, atol=1e-6)


def test_window_of_at_least_T_equals_causal():
    torch.manual_seed(0)
    ids = torch.randint(0, 256, (2, 20))
    base = SinkLM(preset("tiny")).eval()
    windowed = SinkLM(preset("tiny", window=20)).eval()
    windowed.load_state_dict(base.state_dict())
    assert torch.allclose(base(ids), windowed(ids), atol=1e-5)
    narrow = SinkLM(preset("tiny", window=4)).eval()
    narrow.load_state_dict(base.state_dict())
    assert not torch.allclose(base(ids), narrow(ids), atol=1e-4)


def test_dense_path_equals_sdpa_fast_path():
    attn = _layer(preset("tiny"))
    x = torch.randn(2, 16, 64)
    fast = _run(attn, x, 16)
    slow = attn(x, __import__("sinklab.model.position", fromlist=["rope_cache"]).rope_cache(16, 16, 10000.0),
                None, masks.causal(), plain_causal=False)  # not plain: takes the dense path on CPU
    assert torch.allclose(fast, slow, atol=1e-5)


def test_prefix_lm_mask():
    m = masks.dense_mask(masks.build_mask(prefix_len=3), 6, 6)
    assert m[:3, :3].all()                      # prefix tokens see each other
    assert not m[:3, 3:].any()                  # and nothing after the prefix
    assert torch.equal(m[3:], torch.tril(torch.ones(6, 6, dtype=torch.bool))[3:])  # the rest is causal


def test_sliding_window_mask():
    m = masks.dense_mask(masks.build_mask(window=2), 4, 4)
    assert m.int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    with_sink = masks.dense_mask(masks.build_mask(window=2, n_global=1), 4, 4)
    assert with_sink[:, 0].all()


def test_alibi_slopes_match_the_published_formula():
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    # non-power of two: the nearest power's slopes, then every other slope of twice as many heads
    assert torch.allclose(alibi_slopes(6), torch.tensor([0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]))


def test_normalised_sigmoid_rows_sum_to_one():
    cfg = preset("tiny", score="sigmoid", normalize=True)
    attn = _layer(cfg)
    q, k = torch.randn(1, 4, 9, 16), torch.randn(1, 4, 9, 16)
    w = attn.weights(q, k, None, masks.causal(), 0, 9)
    assert torch.allclose(w.sum(-1), torch.ones(1, 4, 9), atol=1e-5)
    raw = _layer(preset("tiny", score="sigmoid")).weights(q, k, None, masks.causal(), 0, 9)
    assert not torch.allclose(raw.sum(-1), torch.ones(1, 4, 9), atol=1e-2)


def test_gate_of_one_equals_no_gate():
    x = torch.randn(2, 10, 64)
    plain = _layer(preset("tiny"))
    for kind in ("elementwise", "headwise"):
        gated = _layer(preset("tiny", gate=kind))
        with torch.no_grad():
            gated.gate_proj.weight.zero_()
            gated.gate_proj.bias.fill_(100.0)  # sigmoid(100) == 1 in float32
        assert torch.allclose(_run(plain, x, 10), _run(gated, x, 10), atol=1e-6)


def test_softpick_formula():
    from sinklab.model.attention import score_function

    cfg = preset("tiny", score="softpick")
    s = torch.tensor([[[[0.5, -1.0, 2.0]]]])
    w = score_function(cfg, s, torch.ones(1, 3, dtype=torch.bool), 3)
    e = s.exp() - 1
    assert torch.allclose(w, torch.relu(e) / (e.abs().sum(-1, keepdim=True) + 1e-6), atol=1e-6)


def test_hf_llama_parity_both_ways(tmp_path):
    from transformers import LlamaForCausalLM

    from sinklab.model.checkpoint import export_hf, from_hf_llama

    torch.manual_seed(0)
    model = SinkLM(preset("tiny", n_kv_heads=2)).eval()
    folder = export_hf(model, tmp_path / "hf")
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    hf = LlamaForCausalLM.from_pretrained(folder).eval()
    ids = torch.randint(0, 256, (2, 32))
    with torch.no_grad():
        ours, theirs = model(ids), hf(ids).logits
        back = from_hf_llama(hf).eval()(ids)
    assert (ours - theirs).abs().max().item() < 1e-5
    assert (back - theirs).abs().max().item() < 1e-5


def test_checkpoint_round_trip_and_measure(tmp_path):
    from sinklab.measure.run import measure
    from sinklab.model.checkpoint import load_sinklm, save_model

    torch.manual_seed(0)
    model = SinkLM(preset("tiny", sink_token=True, attn_bias="kv"))
    save_model(model, tmp_path / "ck")
    again = load_sinklm(tmp_path / "ck")
    ids = torch.randint(0, 256, (1, 16))
    assert torch.equal(model.eval()(ids), again(ids))
    result = measure(str(tmp_path / "ck"), probe="random", n=3, T=16, progress=False)
    # Sink* is reported for both added positions (the K/KV bias key and the sink token)
    assert set(result.summary["sink_star"]) == {"sink*", "sink*2"}
    # both are prepended positions in the paper, so both also get its convention, never below ours
    assert set(result.summary["sink_star_paper"]) == {"sink*", "sink*2"}
    rows = {r["position"]: r for r in result.sweep if r["position"].startswith("sink*") and r["T"] == 16}
    for r in rows.values():
        assert abs(r["mean_alpha_paper"] - (1 + 16 * r["mean_alpha"]) / 17) < 2e-6
        assert r["sink_pct_paper"] >= r["sink_pct"]


def test_sink_logit_has_no_paper_convention(tmp_path):
    from sinklab.measure.run import measure
    from sinklab.model.checkpoint import save_model

    torch.manual_seed(0)
    save_model(SinkLM(preset("tiny", sink_logit=True)), tmp_path / "ck")
    result = measure(str(tmp_path / "ck"), probe="random", n=2, T=16, progress=False)
    assert set(result.summary["sink_star"]) == {"sink*"} and result.summary["sink_star_paper"] is None


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    from sinklab.cli import main
    from sinklab.model.checkpoint import save_model

    save_model(SinkLM(preset("tiny")), tmp_path / "ck")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(SinklabError, match="corrupt sinklab checkpoint"):
        from sinklab.model.checkpoint import load_sinklm

        load_sinklm(tmp_path / "ck")
    assert main(["measure", "--model", str(tmp_path / "ck"), "--probe", "random"]) == 2


def test_measured_alpha_matches_dense_weights_for_every_score():
    """The recorder's alpha equals importance scores of the dense weights (or proxy scores)."""
    from sinklab.measure import capture, metrics

    for change in ({}, dict(score="sigmoid"), dict(score="kernel", kernel="identity", kernel_normalizer="none"),
                   dict(position="alibi"), dict(window=5)):
        torch.manual_seed(0)
        model = SinkLM(preset("tiny", **change)).eval()
        ids = torch.randint(0, 256, (2, 12))
        rec = capture.AttentionRecorder(budget_elems=64)
        with torch.no_grad():
            model.hidden_states(ids, recorder=rec)
        layer0 = model.layers[0]
        # recompute layer 0's weights in one block
        x = layer0.attn_norm(model.embed(ids))
        captured = {}
        h = layer0.attn.hook_k.register_forward_hook(lambda m, i, o: captured.setdefault("k", o))
        h2 = layer0.attn.hook_q.register_forward_hook(lambda m, i, o: captured.setdefault("q", o))
        ctx = model.forward_context(12, ids.device)
        with torch.no_grad():
            layer0.attn(x, **ctx.attention_args())
        h.remove(), h2.remove()
        w = layer0.attn.measured_weights(captured["q"], captured["k"], ctx.pos_bias, ctx.mask_fn, 0, 12)
        assert torch.allclose(rec.layers[0].alpha, metrics.importance_scores(w), atol=1e-5), change
        if model.cfg.proxy_scores:  # the weights applied are reported beside the proxy
            raw = layer0.attn.weights(captured["q"], captured["k"], ctx.pos_bias, ctx.mask_fn, 0, 12)
            assert torch.allclose(rec.layers[0].weight_raw, metrics.importance_scores(raw), atol=1e-5), change
            assert torch.allclose(rec.layers[0].row_mass, raw.sum(-1).mean(-1), atol=1e-5), change
        else:
            assert rec.layers[0].weight_raw is None and rec.layers[0].row_mass is None


def test_unnormalised_summary_counts_heads_that_also_weigh_token_1():
    """Sink_1 on proxy scores, and beside it the share of (sample, head) pairs whose token-1 weight
    exceeds eps too: by brute force from the dense weights. Softmax models have no such block."""
    from sinklab.measure import metrics
    from sinklab.measure.run import measure
    from sinklab.measure.sinklab_model import wrap_sinklab_model

    torch.manual_seed(0)
    ids = torch.randint(0, 256, (6, 16))
    softmax = wrap_sinklab_model(SinkLM(preset("tiny")).eval())
    assert measure(softmax, probe="tokens", input_ids=ids, T=16, progress=False).summary["unnormalised"] is None
    model = SinkLM(preset("tiny", score="sigmoid", sigmoid_bias=-3.0)).eval()
    with torch.no_grad():  # spread scores far below 0: small weights, the proxy concentrates (dormant heads)
        for block in model.layers:
            block.attn.q_proj.weight.mul_(30)
    captured = {}
    for i, block in enumerate(model.layers):
        block.attn.hook_q.register_forward_hook(lambda m, a, o, i=i: captured.__setitem__(("q", i), o))
        block.attn.hook_k.register_forward_hook(lambda m, a, o, i=i: captured.__setitem__(("k", i), o))
    with torch.no_grad():
        model(ids)
    ctx = model.forward_context(16, ids.device)
    share, weight = [], []
    for i, block in enumerate(model.layers):
        raw = block.attn.weights(captured[("q", i)], captured[("k", i)], None, ctx.mask_fn, 0, 16)
        share.append((raw / raw.sum(-1, keepdim=True)).mean(-2)[..., 0])    # (B, H) proxy alpha_1
        weight.append(raw.mean(-2)[..., 0])                                   # (B, H) mean weight on token 1
    share, weight = torch.stack(share, 1), torch.stack(weight, 1)
    for eps in (0.05, 0.1, 0.2):  # at 0.1 and 0.2 the proxy reads a sink that the weights do not carry
        s = measure(wrap_sinklab_model(model), probe="tokens", input_ids=ids, T=16, eps=eps, progress=False).summary
        both = ((share > eps) & (weight > eps)).float().mean() * 100
        assert s["sink"]["1"] == pytest.approx(metrics.sink_rate(share, eps).item(), abs=1e-3)
        assert s["unnormalised"]["sink_1_share_and_weight"] == pytest.approx(both.item(), abs=1e-3)
        if eps == 0.2:
            assert s["sink"]["1"] > 50 and s["unnormalised"]["sink_1_share_and_weight"] == 0
    assert s["unnormalised"]["max_head_weight_1"]["weight"] == pytest.approx(weight.mean(0).max().item(), abs=1e-5)


@pytest.mark.parametrize("change,field", [
    (dict(position="fourier"), "position"), (dict(window=0), "window"),
    (dict(n_heads=4, n_kv_heads=3), "n_kv_heads"), (dict(score="relu"), "score"),
    (dict(ffn="mish"), "ffn"), (dict(d_model=65, n_heads=4), "n_heads"),
])
def test_bad_config_values_name_the_field(change, field):
    with pytest.raises(SinklabError, match=field):
        preset("tiny", **change)


def test_prefix_longer_than_T_and_typo_suggestion():
    model = SinkLM(preset("tiny", prefix_len=30))
    with pytest.raises(SinklabError, match="prefix_len=30 is longer than T=16"):
        model(torch.zeros(1, 16, dtype=torch.long))
    with pytest.raises(SinklabError, match="did you mean 'n_heads'"):
        ModelConfig.from_dict({"n_head": 4})


def test_presets_have_the_published_shapes():
    p = preset("paper-60m")
    assert (p.d_model, p.n_layers, p.n_heads, p.d_ffn, p.position, p.ffn) == (768, 10, 8, 1536, "rope", "swiglu")
    assert 55e6 < SinkLM.count_params(p) < 62e6
    b = preset("paper-1b")
    assert (b.d_model, b.n_layers, b.n_heads, b.d_ffn) == (2048, 22, 16, 5632)
    assert math.isclose(SinkLM.count_params(b) / 1e9, 1.13, rel_tol=0.05)


@pytest.mark.parametrize("name", VARIANT_PARAMS)
def test_every_variant_is_causal(name):
    """Changing the last token never changes earlier logits (prefix-LM: outside the prefix)."""
    torch.manual_seed(0)
    model = SinkLM(preset("tiny", **VARIANTS[name])).train()  # training mode: the path that learns
    ids = torch.randint(0, 256, (1, 24))
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 256
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)


def test_flops_per_token_is_6n_plus_12_l_d_t_with_d_the_attention_width():
    T = 2048
    base = SinkLM(preset("paper-60m", vocab_size=8192))
    n = sum(p.numel() for name, p in base.named_parameters() if not name.startswith("embed."))
    assert base.flops_per_token(T) == 6 * n + 12 * 10 * 768 * T
    summed = SinkLM(preset("tiny", head_combine="sum"))  # 4 heads, each d_model = 64 wide
    n = sum(p.numel() for name, p in summed.named_parameters() if not name.startswith("embed."))
    assert summed.flops_per_token(64) == 6 * n + 12 * 2 * (4 * 64) * 64


def test_fsdp_input_cast_passes_the_recorder_through_uncopied():
    """FSDP2 with a bf16 param dtype maps its cast over a block's arguments and rebuilds any
    dataclass it meets; a copied recorder would collect nothing (what happened on the GPU)."""
    from torch.distributed.utils import _apply_to_tensors

    from sinklab.measure import capture
    rec = capture.AttentionRecorder()
    ctx = {"recorder": rec, "rope": (torch.ones(2), torch.ones(2))}
    cast = _apply_to_tensors(lambda t: t.to(torch.bfloat16), ctx)
    assert cast["recorder"] is rec and cast["rope"][0].dtype == torch.bfloat16


def test_the_catalogue_reaches_every_choice_switch_and_optional_size():
    import dataclasses

    from sinklab.config import CHOICES

    configs = [preset("tiny", **change) for change in variants.catalogue().values()]
    missing = [f"{name}={value!r}" for name, allowed in CHOICES.items() for value in allowed
               if all(getattr(c, name) != value for c in configs)]
    for f in dataclasses.fields(ModelConfig):
        if f.type == "bool" and all(getattr(c, f.name) is not True for c in configs):
            missing.append(f"{f.name}=True")
        if f.default is None and all(getattr(c, f.name) is None for c in configs):
            missing.append(f"{f.name} set")
    assert not missing, f"no catalogue entry has {', '.join(missing)}: add one to sinklab/model/variants.py"


EXPORTABLE = {"default", "gqa", "one_head", "tied_embeddings", "wide_head"}  # what LlamaForCausalLM computes


@pytest.mark.parametrize("name", sorted(variants.catalogue()))
def test_hf_export_carries_the_model_or_refuses_naming_the_field(name):
    from sinklab.model.checkpoint import HF_CARRIED, to_hf_llama

    torch.manual_seed(0)
    change = variants.catalogue()[name]
    model = SinkLM(preset("tiny", **change)).eval()
    if name not in EXPORTABLE:
        with pytest.raises(SinklabError, match="exports to LlamaForCausalLM: ") as e:
            to_hf_llama(model)
        off = [k for k, v in change.items() if k not in HF_CARRIED and v != getattr(ModelConfig(), k)]
        assert off and all(f"{k}=" in str(e.value) for k in off) and "\n" not in str(e.value)
        return
    hf = to_hf_llama(model).eval()
    ids = torch.randint(0, 256, (2, 24))
    with torch.no_grad():
        assert (model(ids) - hf(ids).logits).abs().max().item() < 1e-5


def test_hf_export_refuses_every_sparse_pattern_by_name():
    from sinklab.model.checkpoint import to_hf_llama

    for name, change in variants.sparse().items():
        with pytest.raises(SinklabError, match=rf"sparse={change['sparse']!r}"):
            to_hf_llama(SinkLM(preset("tiny", **change)))


def test_stream_refuses_a_sparse_checkpoint(tmp_path, capsys):
    from sinklab.cli import main
    from sinklab.model.checkpoint import save_model

    folder = save_model(SinkLM(preset("tiny", **variants.sparse()["local_global"])), tmp_path / "ck")
    assert main(["stream", "--model", str(folder), "--prompt", "hello", "--max-new-tokens", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sparse='local_global'" in err[0]


# the attention backend for (catalogue entry at block 128, device, real tokens T, recording, gradient)
PLAN_TABLE = [
    ("default", "cpu", 256, False, True, "sdpa_causal"),
    ("default", "cuda", 256, False, True, "sdpa_causal"),
    ("default", "cpu", 256, True, False, "fused"),
    ("scaled_softmax", "cuda", 256, False, True, "sdpa_causal"),
    ("wide_head", "cpu", 256, False, True, "sdpa_causal"),
    ("wide_head", "cuda", 256, False, True, "dense"),          # head dim 512: past the kernels' 256
    ("window", "cpu", 512, False, True, "dense"),              # a window of 256
    ("window", "cuda", 512, False, True, "flex"),
    ("window", "cuda", 512, True, False, "fused"),
    ("window", "cpu", 256, False, True, "sdpa_causal"),        # a window as long as T is plain causal
    ("prefix_lm", "cuda", 256, True, False, "flex"),           # a prefix: not what the fused kernels take
    ("alibi", "cuda", 256, False, True, "flex"),
    ("alibi", "cpu", 256, False, True, "dense"),
    ("relative", "cuda", 256, False, True, "band_and_far"),
    ("relative", "cuda", 256, False, False, "flex"),           # no gradient: the bias is a fixed score_mod
    ("relative", "cuda", 100, False, True, "dense"),           # T not a multiple of the 128 tile
    ("sink_logit", "cpu", 256, False, True, "dense"),
    ("sink_logit", "cuda", 256, False, True, "flex"),
    ("sink_logit", "cuda", 256, True, False, "fused"),
    ("off_by_one", "cuda", 256, False, True, "flex"),
    ("kv_bias", "cuda", 256, False, True, "sdpa_bias_query"),
    ("k_bias", "cpu", 256, True, False, "sdpa_bias_query"),
    ("sigmoid", "cuda", 256, False, True, "dense"),
    ("softpick", "cuda", 256, False, True, "dense"),
    ("sink_token", "cuda", 256, True, False, "sdpa_causal"),   # recorded: the sink token is no fused shape
    ("moba", "cuda", 256, False, True, "moba_flex"),
    ("moba", "cuda", 256, True, False, "sdpa_bool_mask"),      # measured per token
    ("moba", "cpu", 256, False, True, "sdpa_bool_mask"),
    ("moba_sink_token", "cuda", 256, False, True, "moba_flex_prefix_keys"),
    ("moba_per_token", "cuda", 256, False, True, "sdpa_bool_mask"),
    ("moba_gated_sink_logit", "cpu", 256, False, True, "dense"),
    ("nsa", "cuda", 256, False, True, "nsa"),
    ("dsa", "cuda", 256, False, True, "sdpa_bool_mask"),
]


@pytest.mark.parametrize("name,device,T,recording,grad,backend", PLAN_TABLE)
def test_attention_plan_table(name, device, T, recording, grad, backend):
    from sinklab.model import dispatch

    cfg = preset("tiny", max_seq_len=512, **variants.catalogue(block=128)[name])
    assert dispatch.choose_backend(cfg, dispatch.Where.derive(cfg, device, T, recording, grad)) == backend


def test_the_plan_names_a_known_backend_for_every_entry_and_place():
    from sinklab.model import dispatch

    for change in variants.catalogue(block=128).values():
        cfg = preset("tiny", max_seq_len=512, **change)
        for device in ("cpu", "cuda"):
            for recording in (False, True):
                assert dispatch.choose_backend(cfg, dispatch.Where.derive(cfg, device, 256, recording)) in dispatch.BACKENDS


def test_every_score_choice_has_a_score_function():
    from sinklab.config import CHOICES
    from sinklab.model.attention import SCORES

    assert set(SCORES) == set(CHOICES["score"])


def test_every_planned_backend_is_implemented():
    from sinklab.model import dispatch
    from sinklab.model.attention import SINGLE_PASS

    in_forward = {"nsa", "moba_flex", "moba_flex_prefix_keys", "fused"}  # need the layer input or the recorder
    assert set(SINGLE_PASS) | in_forward == set(dispatch.BACKENDS) and not set(SINGLE_PASS) & in_forward


@pytest.mark.parametrize("change", [dict(attn_bias="k"), dict(attn_bias="kv"), dict(attn_bias="kv", attn_bias_shared=True),
                                    dict(attn_bias="k", attn_bias_dim=8), dict(attn_bias="kv", n_kv_heads=2),
                                    dict(attn_bias="kv", score="scaled_softmax", score_scale=0.5)])
def test_the_bias_query_path_equals_the_masked_extra_key_and_the_dense_path(change):
    """The fast K/KV-bias path (the bias key with a query of its own, SDPA's causal flag) against the boolean-mask
    SDPA path it replaces for plain causal masks and against the dense reference: outputs and every gradient."""
    from sinklab.model import attention

    cfg = preset("tiny", **change)
    layer = _layer(cfg, seed=1)
    torch.nn.init.normal_(layer.k_bias, std=1.0)
    if cfg.attn_bias == "kv":
        torch.nn.init.normal_(layer.v_bias, std=1.0)
    H, hd, T = cfg.n_heads, layer.head_dim, 48
    q, k, v = (torch.randn(2, H, T, hd, dtype=torch.float64, requires_grad=True) for _ in range(3))
    layer = layer.double()
    inputs = attention.BackendInputs(lambda t: t, None, masks.causal())
    outs, grads = {}, {}
    for name in ("sdpa_bias_query", "sdpa_extra_key", "dense"):
        out = attention.SINGLE_PASS[name](layer, q, k, v, inputs)
        params = [q, k, v, layer.k_bias] + ([layer.v_bias] if cfg.attn_bias == "kv" else [])
        outs[name], grads[name] = out, torch.autograd.grad(out.square().sum(), params)
    for name, tol in (("sdpa_extra_key", 1e-12), ("dense", 2e-6)):  # the dense reference computes in float32
        torch.testing.assert_close(outs["sdpa_bias_query"], outs[name], rtol=tol, atol=tol)
        for a, b in zip(grads["sdpa_bias_query"], grads[name]):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol * 10)


def test_a_bias_key_takes_the_fast_path_only_under_a_plain_causal_mask():
    from sinklab.model import dispatch

    plain, windowed = preset("tiny", attn_bias="kv"), preset("tiny", attn_bias="kv", window=16)
    assert dispatch.choose_backend(plain, dispatch.Where.derive(plain, "cuda", 256)) == "sdpa_bias_query"
    assert dispatch.choose_backend(windowed, dispatch.Where.derive(windowed, "cuda", 256)) != "sdpa_bias_query"
