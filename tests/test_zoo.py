"""The architecture zoo on a subset that covers every capture route: AttentionInterface (Llama, GPT-2),
sliding windows and softcaps (Gemma 2), learned sink logits (gpt-oss), MoE (Qwen2-MoE, Mixtral),
MLA (DeepSeek-V2 shape), a head whose base_model_prefix names no submodule (Llama 4 text), and the
eager route for attention classes picked by implementation name (Falcon), and the refusals: position
biases passed as keywords (Inkling), differential attention (DiffLlama). None may be silently wrong or crash; `sinklab zoo` runs all types."""
import pytest

from sinklab.measure import zoo

# falcon picks its attention class by implementation name: measured through the eager route
EXACT = ["llama", "gpt2", "gemma2", "gpt_oss", "qwen2_moe", "mixtral", "llama4_text", "mistral", "qwen3", "falcon"]
REFUSED = {"inkling_text": "'position_bias'", "diffllama": "twice per layer"}


@pytest.mark.parametrize("sharpened", [False, True])
@pytest.mark.parametrize("model_type", [t for t in EXACT + list(REFUSED) if t in zoo.causal_lm_types()])
def test_zoo_type_is_exact_or_refused_by_name(model_type, sharpened):
    row = zoo.check_type(model_type, sharpened)
    assert row.status not in ("WRONG", "CRASH"), row
    if model_type in REFUSED:
        assert row.status == "refused" and REFUSED[model_type] in row.detail, row
    else:
        assert row.status == "exact", row
        assert row.max_alpha_diff <= zoo.TOLERANCE and row.layers >= 2


def test_zoo_markdown_ranks_the_worse_of_plain_and_sharpened():
    plain = [zoo.ZooRow("a", "exact", "", 1e-8, 1e-7, 2), zoo.ZooRow("b", "refused", "why")]
    sharp = [zoo.ZooRow("a", "WRONG", "differs", 3e-2, 1e-7, 2), zoo.ZooRow("b", "refused", "why")]
    text = zoo.markdown(plain, sharp, {"transformers": "x", "torch": "y"}, "sinklab zoo --sharpened")
    assert "| a | WRONG | 3.0e-02 |" in text and "| b | refused |" in text and "1 WRONG" in text
