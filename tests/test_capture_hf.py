"""Streamed importance scores equal those of `output_attentions=True` eager attention."""
import pytest
import torch

from sinklab.load import load_model
from sinklab.measure import capture, metrics
from sinklab.measure.run import measure
from sinklab.report import write_results

FAMILIES = ["llama", "gpt2", "gpt_neox", "qwen2"]


def eager_alpha(folder, ids):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True)
    return torch.stack([metrics.importance_scores(a) for a in out.attentions], dim=1)  # (B, L, H, T)


@pytest.mark.parametrize("family", FAMILIES)
def test_streamed_alpha_matches_eager(tiny_hf_folders, family):
    folder = tiny_hf_folders[family]
    torch.manual_seed(0)
    ids = torch.randint(0, 128, (3, 40))
    expected = eager_alpha(folder, ids)
    loaded = load_model(str(folder))
    rec = capture.AttentionRecorder(budget_elems=3 * 4 * 40 * 7)  # force several row blocks
    loaded.capture_forward(ids, rec)
    got = torch.stack([rec.layers[l].alpha for l in sorted(rec.layers)], dim=1)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_capture_keeps_model_outputs_unchanged(tiny_hf_folders, family):
    """Registering the capture function must not change what the model computes."""
    from transformers import AutoModelForCausalLM

    folder = tiny_hf_folders[family]
    ids = torch.randint(0, 128, (2, 24))
    ref = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    loaded = load_model(str(folder))
    with torch.no_grad(), capture.recording(capture.AttentionRecorder()):
        got = loaded.model(input_ids=ids).logits
        want = ref(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)


def test_measure_writes_every_output(tiny_hf_folders, tmp_path):
    result = measure(str(tiny_hf_folders["llama"]), probe="random", n=6, T=[16, 32], eps=[0.2, 0.3],
                     batch_size=4, K=4, progress=False)
    assert set(result.summary["sink"]) == {"1", "2", "3", "4"}
    assert result.summary["Ts"] == [16, 32] and result.summary["eps_values"] == [0.2, 0.3]
    # one sweep row per (T, eps, k)
    assert len(result.sweep) == 2 * 2 * 4
    # one heads row per (T, layer, head, k) with a rate per eps
    assert len(result.heads) == 2 * 2 * 4 * 4 and "sink_rate_eps0.2" in result.heads[0]
    out = write_results(result, tmp_path / "res")
    for name in ("summary.json", "sweep.csv", "heads.csv", "layers.csv", "report.html",
                 "figures/alpha1_heatmap.png", "figures/sink_by_position.png", "figures/sink_vs_T.png",
                 "figures/norms_by_layer.png", "figures/strongest_heads.png"):
        assert (out / name).exists(), name
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "http" not in html.split("<body>")[1].split("Run")[0]


def test_sink_rate_agrees_with_eager_thresholding(tiny_hf_folders):
    """Sink_1 from the run equals the paper's per-sample threshold on eager attention."""
    folder = tiny_hf_folders["gpt2"]
    result = measure(str(folder), probe="random", n=5, T=24, eps=0.1, batch_size=2, K=2, seed=3, progress=False)
    from sinklab.measure.probes import build_inputs

    loaded = load_model(str(folder))
    ids = build_inputs("random", loaded.tokenizer, 5, 24, "auto", seed=3)
    alpha = eager_alpha(folder, ids)
    assert abs(result.summary["sink"]["1"] - metrics.sink_rate(alpha[..., 0], 0.1).item()) < 1e-3


def test_gpt_oss_style_sink_logit_is_an_extra_column():
    """With a per-head sink logit (HF passes `s_aux`), weights gain a leading column and rows still sum to 1."""
    q, k = torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    w = capture.hf_weights_for_rows(q, k, 0.5, None, sink_logits=torch.tensor([0.0, 3.0]))(0, 5)
    assert w.shape == (1, 2, 5, 6)
    assert torch.allclose(w.sum(-1), torch.ones(1, 2, 5))
    assert w[0, 1, :, 0].mean() > w[0, 0, :, 0].mean()


def test_unknown_attention_keywords_are_refused_and_repeated_layers_kept_per_pass():
    from sinklab.errors import SinklabError
    from sinklab.measure import capture

    class Attn(torch.nn.Module):
        layer_idx = 0

    q, k = torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    rec = capture.AttentionRecorder()
    with capture.recording(rec):
        for name, value in (("cu_seq_lens_q", torch.tensor([0, 5])), ("block_tables", torch.zeros(1, 5))):
            with pytest.raises(SinklabError, match=name):
                capture.sinklab_hf_attention(Attn(), q, k, k, None, **{name: value})
        capture.sinklab_hf_attention(Attn(), q, k, k, None, position_ids=torch.arange(5)[None], indices=None)
        capture.sinklab_hf_attention(Attn(), q, k, k, None)   # the same layer again: a shared block's second pass
    assert len(rec.layers) == 2 and rec.passes == {0: (0, 0), 1: (0, 1)}


def test_indices_position_bias_and_per_query_sinks_are_applied_as_eager_applies_them():
    """Top-k indices fold into the mask, a position bias adds to the scores before the mask, and a
    per-query sink logit joins the softmax: output and alpha equal the eager computation."""
    from sinklab.measure import capture, metrics

    class Attn(torch.nn.Module):
        layer_idx = 0
        is_causal = True

    torch.manual_seed(0)
    B, H, T, d = 2, 2, 6, 4
    q, k, v = torch.randn(B, H, T, d) * 3, torch.randn(B, H, T, d) * 3, torch.randn(B, H, T, d)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    mask = torch.zeros(B, 1, T, T).masked_fill(~causal, torch.finfo(torch.float32).min)
    indices = torch.stack([torch.arange(T), torch.zeros(T, dtype=torch.long)], -1).expand(B, T, 2)  # self and token 1
    bias = torch.randn(1, H, T, T)
    sinks = torch.randn(B, H, T, 1)
    selected = torch.zeros(B, T, T, dtype=torch.bool).scatter(-1, indices, True)[:, None]
    s = (q @ k.transpose(-1, -2)) * 0.5 + bias + mask.masked_fill(~selected, torch.finfo(torch.float32).min)
    full = torch.softmax(torch.cat([s, sinks], -1), -1)[..., :-1]
    rec = capture.AttentionRecorder()
    with capture.recording(rec):
        out, _ = capture.sinklab_hf_attention(Attn(), q, k, v, mask, scaling=0.5, indices=indices,
                                              position_bias=bias, sinks=sinks)
    assert torch.allclose(out, (full @ v).transpose(1, 2), atol=1e-5)
    assert torch.allclose(rec.layers[0].alpha, metrics.importance_scores(full), atol=1e-6)
    assert torch.allclose(rec.layers[0].alpha_extra[..., 0], 1 - full.sum(-1).mean(-1), atol=1e-6)
    over_tokens = metrics.importance_scores(full / full.sum(-1, keepdim=True))
    assert torch.allclose(rec.layers[0].alpha_tokens_only, over_tokens, atol=1e-6)


def test_full_mask_is_eager_mask_never_none():
    """Models that use the mask themselves (MPT, BLOOM) need eager's additive mask; a None would make
    them bidirectional or crash. They load under the full-mask name."""
    from transformers.masking_utils import causal_mask_function
    from sinklab.measure import capture

    m = capture.sinklab_full_mask(batch_size=1, q_length=4, kv_length=4, mask_function=causal_mask_function,
                                  allow_is_causal_skip=True, dtype=torch.float32)
    assert m is not None and m.dtype == torch.float32
    assert torch.equal(m[0, 0] == 0, torch.ones(4, 4, dtype=torch.bool).tril())
    assert capture.mask_kind(m, 4, None) == "causal"


def test_sliding_window_mask_gives_the_mask_aware_alpha_beside_the_papers():
    from sinklab.measure import capture, metrics

    class Attn(torch.nn.Module):
        layer_idx = 0

    T, W = 6, 2
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = (j <= i) & (i - j < W)
    mask = torch.zeros(1, 1, T, T).masked_fill(~allowed, torch.finfo(torch.float32).min)
    q, k = torch.randn(1, 2, T, 4), torch.randn(1, 2, T, 4)
    rec = capture.AttentionRecorder()
    with capture.recording(rec):
        capture.sinklab_hf_attention(Attn(), q, k, k, mask, sliding_window=W)
    w = torch.softmax((q @ k.transpose(-1, -2)) / 2 + mask, -1)
    cap = rec.layers[0]
    assert torch.allclose(cap.alpha, metrics.importance_scores(w), atol=1e-6)
    assert torch.allclose(cap.alpha_mask_aware, w.sum(-2) / allowed.sum(0).float(), atol=1e-6)


def test_half_dtype_logits_guard_allows_the_models_own_rounding_spread_and_no_more():
    """In bf16 sinklab's logits may differ from eager's by twice what the model's own SDPA does, up to 5 % of
    the scale; a larger difference (a dropped input) is still refused, and float32 ignores the spread."""
    from sinklab.measure.load import logits_close

    want = torch.zeros(1, 4, 8)
    want[0, 0, 0] = 1.0
    got = want.clone()
    got[0, 1, 1] = 0.045
    assert not logits_close(got, want, torch.bfloat16)
    assert logits_close(got, want, torch.bfloat16, floor=0.03)
    assert not logits_close(got, want, torch.bfloat16, floor=0.01)
    assert not logits_close(got, want, torch.float32, floor=1.0)
    got[0, 1, 1] = 0.3  # a model whose own SDPA is far from eager lends no more than 5 % of the scale
    assert not logits_close(got, want, torch.bfloat16, floor=1.0)
