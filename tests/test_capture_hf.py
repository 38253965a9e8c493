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
        for name, value in (("indices", torch.zeros(1, 5, 2, dtype=torch.long)), ("position_bias", torch.zeros(2, 5)),
                            ("sinks", torch.zeros(2)), ("cu_seq_lens_q", torch.tensor([0, 5]))):
            with pytest.raises(SinklabError, match=name):
                capture.sinklab_hf_attention(Attn(), q, k, k, None, **{name: value})
        capture.sinklab_hf_attention(Attn(), q, k, k, None, position_ids=torch.arange(5)[None], indices=None)
        capture.sinklab_hf_attention(Attn(), q, k, k, None)   # the same layer again: a shared block's second pass
    assert len(rec.layers) == 2 and rec.passes == {0: (0, 0), 1: (0, 1)}
