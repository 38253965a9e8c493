"""The architecture zoo on a subset that covers every capture route: AttentionInterface (Llama, GPT-2,
GPT-NeoX, Qwen2), ALiBi through eager output_attentions (BLOOM, MPT), attention classes picked by
implementation name (Falcon, GPT-Neo), a head whose base_model_prefix names no submodule (Llama 4
text), MLA with a top-k indexer (DeepSeek-V3.2), learned sinks in both conventions (gpt-oss's extra
column, granite_swa's output gate), position biases passed as keywords (Inkling), softcaps and
sliding windows (Gemma 2), MoE (Mixtral), BERT-family and XGLM decoders whose causal mask came from
the mask builder, hybrids of linear and softmax attention (Qwen3-Next, MiniMax), layers that run
more than once (Dory, HRM), and the refusals: no softmax attention (Mamba), differential attention
(DiffLlama). None may be silently wrong or crash. `sinklab zoo --sharpened` runs every type
(the `slow` test below)."""
import pytest

from sinklab.measure import zoo

EXACT = ["llama", "gpt2", "gpt_neox", "qwen2", "bloom", "mpt", "falcon", "gpt_neo", "llama4_text", "deepseek_v32",
         "gpt_oss", "granite_swa", "inkling_text", "gemma2", "mixtral", "bert", "xglm", "qwen3_next", "minimax",
         "dory", "hrm_text"]
REFUSED = {"mamba": "has no softmax attention", "diffllama": "twice per layer"}
# biases, caps and sinks hide in small random models: these run sharpened too
SHARPENED = ["bloom", "mpt", "deepseek_v32", "gpt_oss", "granite_swa", "inkling_text", "gemma2"]
CASES = [(t, False) for t in EXACT + list(REFUSED)] + [(t, True) for t in SHARPENED]


@pytest.mark.parametrize("model_type,sharpened", [c for c in CASES if c[0] in zoo.causal_lm_types()])
def test_zoo_type_is_exact_or_refused_by_name(model_type, sharpened):
    row = zoo.check_type(model_type, sharpened)
    assert row.status not in ("WRONG", "CRASH"), row
    if model_type in REFUSED:
        assert row.status == "refused" and REFUSED[model_type] in row.detail, row
    else:
        assert row.status == "exact", row
        assert row.max_alpha_diff <= zoo.TOLERANCE and row.max_logit_diff <= 10 * zoo.TOLERANCE and row.layers >= 1


def test_repeated_layers_are_measured_per_pass():
    row = zoo.check_type("hrm_text")
    assert row.status == "exact" and "passes over" in row.detail, row


def test_learned_sinks_name_their_convention():
    assert "output gate" in zoo.check_type("granite_swa").detail
    assert "extra column" in zoo.check_type("gpt_oss").detail


def test_zoo_markdown_ranks_the_worse_of_plain_and_sharpened():
    plain = [zoo.ZooRow("a", "exact", "", 1e-8, 1e-7, 2), zoo.ZooRow("b", "refused", "why")]
    sharp = [zoo.ZooRow("a", "WRONG", "differs", 3e-2, 1e-7, 2), zoo.ZooRow("b", "refused", "why")]
    text = zoo.zoo_markdown(plain, sharp, {"transformers": "x", "torch": "y"}, "sinklab zoo --sharpened")
    assert "| a | WRONG | 3.0e-02 |" in text and "| b | refused |" in text and "1 WRONG" in text


@pytest.mark.slow
def test_every_causal_lm_type_is_exact_refused_or_not_buildable():
    """The full zoo, plain and sharpened: what `sinklab zoo --sharpened` writes to docs/architectures.md."""
    plain, sharp = zoo.run(zoo.causal_lm_types(), True)
    rows = plain + sharp
    bad = [r for r in rows if r.status in ("WRONG", "CRASH", "no reference")]
    assert not bad, bad


def test_a_capture_that_changes_the_logits_is_refused_at_load(tiny_hf_folders):
    """sinklab must never measure another model than the user's: an attention function whose output
    differs from the model's own eager attention is caught by the logits check, in one line."""
    from transformers import AttentionInterface

    from sinklab.errors import SinklabError
    from sinklab.load import load_model
    from sinklab.measure import capture

    name = capture.register_hf_attention()

    def shifted(*args, **kwargs):
        out, weights = capture.sinklab_hf_attention(*args, **kwargs)
        return out * 1.5, weights

    AttentionInterface.register(name, shifted)
    try:
        with pytest.raises(SinklabError, match="logits under sinklab's capture differ"):
            load_model(str(tiny_hf_folders["llama"]))
    finally:
        AttentionInterface.register(name, capture.sinklab_hf_attention)


def test_a_config_that_cannot_be_built_is_one_refusal_line(tmp_path):
    import json

    from sinklab.errors import SinklabError
    from sinklab.load import load_model

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 30, "num_attention_heads": 4,
                                                      "num_hidden_layers": 1, "intermediate_size": 8, "vocab_size": 16}))
    with pytest.raises(SinklabError, match="cannot load model"):
        load_model(str(tmp_path))


def test_plain_causal_layers_get_no_mask_and_mask_readers_get_eager_s():
    """No (T, T) mask where the pattern is plain causal, so long inputs reach the fused kernels without
    one; a model that reads the mask itself (it turns bidirectional without it) is loaded again under
    the full-mask name and stays exact."""
    import torch

    from sinklab.measure import capture

    assert capture.sinklab_mask(batch_size=1, q_length=8, kv_length=8) is None
    padded = capture.sinklab_mask(batch_size=1, q_length=8, kv_length=8,
                                  attention_mask=torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1]]).bool())
    assert padded is not None and padded.is_floating_point() and padded.shape[-2:] == (8, 8)
    assert torch.equal(padded, capture.sinklab_full_mask(batch_size=1, q_length=8, kv_length=8,
                                                         attention_mask=torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1]]).bool()))
    assert capture.sinklab_full_mask(batch_size=1, q_length=8, kv_length=8).shape[-2:] == (8, 8)
    assert zoo.check_type("llama").status == "exact"
    row = zoo.check_type("gpt_neox_japanese")
    assert row.status == "exact", row


def test_an_unwritable_table_path_fails_in_one_line_and_a_late_failure_keeps_the_table(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    from sinklab.cli import main

    blocked = tmp_path / "a_file"
    blocked.write_text("")
    assert main(["zoo", "--types", "llama", "--out", str(blocked / "table.md")]) == 2  # caught before the sweep
    assert "--out" in capsys.readouterr().err

    def refuse(self, text):  # the folder checked out, but the write fails after the sweep (a full disk)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", refuse)
    assert main(["zoo", "--types", "llama", "--out", str(tmp_path / "table.md")]) == 2
    out, err = capsys.readouterr()
    assert "| llama | exact |" in out and "cannot be written (No space left on device)" in err


def test_remote_code_without_the_flag_is_one_line(tmp_path, capsys):
    """A folder whose config names its own code is refused until --trust-remote-code is given."""
    import json

    from sinklab.cli import main

    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "my_custom", "auto_map": {"AutoConfig": "configuration_x.XConfig",
                                                "AutoModelForCausalLM": "modeling_x.XModel"}}))
    (tmp_path / "configuration_x.py").write_text("raise SystemExit('this code must never run')\n")
    assert main(["measure", "--model", str(tmp_path), "--no-figures", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "custom code" in err and "--trust-remote-code" in err and len(err.strip().splitlines()) == 1
