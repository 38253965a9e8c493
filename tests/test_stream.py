"""Streaming with a sink + window KV cache."""
import pytest
import torch

from sinklab import stream
from sinklab.errors import SinklabError
from sinklab.load import load_model


@pytest.fixture(scope="module")
def tiny_stream(tiny_hf_folders):
    return stream.prepare(load_model(str(tiny_hf_folders["llama"])))


def test_exact_while_the_cache_is_not_full(tiny_stream):
    torch.manual_seed(0)
    ids = torch.randint(0, 128, (2, 40))
    with torch.no_grad():
        full = tiny_stream.model(input_ids=ids).logits
    streamed = stream.stream_logits(tiny_stream, ids, n_sink=4, window=36)  # 40 tokens fit exactly
    assert (streamed - full).abs().max().item() < 1e-5


def test_cache_size_stays_constant_after_ten_windows(tiny_stream):
    cache = stream.make_cache(4, 16, tiny_stream.inv_freq)
    ids = torch.randint(0, 128, (1, 200))  # > 10x the window
    sizes = []
    for t in range(200):
        stream.step(tiny_stream, cache, ids[:, t:t + 1])
        sizes.append(cache.get_seq_length())
    assert max(sizes) == 20 and sizes[-1] == 20
    assert all(layer.keys.shape[-2] == 20 for layer in cache.layers)


def test_evicted_cache_keys_are_re_positioned(tiny_stream):
    """Layer-0 keys depend only on token and position: after eviction they must equal fresh keys at the new slots."""
    torch.manual_seed(1)
    ids = torch.randint(0, 128, (1, 30))
    n_sink, window = 2, 5
    cache = stream.make_cache(n_sink, window, tiny_stream.inv_freq)
    for t in range(30):
        stream.step(tiny_stream, cache, ids[:, t:t + 1])
    kept = torch.cat([ids[:, :n_sink], ids[:, 30 - window:]], dim=1)
    fresh = stream.make_cache(0, None, tiny_stream.inv_freq)
    with torch.no_grad():
        tiny_stream.model(input_ids=kept, use_cache=True, **stream.cache_kwarg(tiny_stream.model, fresh))
    assert torch.allclose(cache.layers[0].keys, fresh.layers[0].keys, atol=1e-5)


def test_perplexity_reports_every_policy(tiny_stream):
    ids = torch.randint(0, 128, (2, 80))
    result = stream.perplexity(tiny_stream, ids, cache_size=16, n_sink=4, recompute_stride=8, progress=False)
    rows = {r["policy"]: r for r in stream.summarise(result, 8)}
    assert set(rows) == {"full", "window", "sink", "recompute"}
    assert all(r["ppl_past_cache"] > 1 for r in rows.values())


def test_bad_sizes(tiny_stream):
    with pytest.raises(SinklabError, match="window must be at least 1"):
        stream.check_sizes(tiny_stream, 4, 0)
    with pytest.raises(SinklabError, match="larger than the model's context of 256"):
        stream.check_sizes(tiny_stream, 4, 300)


def test_learned_absolute_positions_are_named(tiny_hf_folders):
    with pytest.raises(SinklabError, match="gpt2 uses learned absolute position embeddings"):
        stream.prepare(load_model(str(tiny_hf_folders["gpt2"])))


def test_cli_empty_text_and_window_zero(tmp_path, tiny_hf_folders, capsys):
    from sinklab.cli import main

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["stream", "--model", str(tiny_hf_folders["llama"]), "--eval", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["stream", "--model", str(tiny_hf_folders["llama"]), "--prompt", "x", "--window", "0"]) == 2
    assert "window must be at least 1" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_with_tokenizer(tmp_path_factory):
    """A tiny random Llama with a byte-level BPE tokenizer saved beside it."""
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    from sinklab.data.tokenizers import train_bpe
    from tokenizers import Tokenizer

    folder = tmp_path_factory.mktemp("tiny_tok")
    tok = train_bpe(["the quick brown fox jumps over the lazy dog. " * 20] * 50, 300)
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tok.tokenizer_json), eos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    return folder


def test_generate_keeps_the_cache_bounded(tiny_stream):
    out = stream.generate(tiny_stream, torch.randint(0, 128, (1, 10)), max_new_tokens=60, n_sink=2, window=8)
    assert out.shape == (1, 60)


def test_cli_eval_and_sink_from_measure(tiny_with_tokenizer, tmp_path, capsys):
    import json

    from sinklab.cli import main

    text = tmp_path / "long.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    measured = tmp_path / "m"
    measured.mkdir()
    (measured / "summary.json").write_text(json.dumps({"largest_sink": {"position": 3}}))
    code = main(["stream", "--model", str(tiny_with_tokenizer), "--eval", str(text), "--cache-size", "32",
                 "--tokens", "400", "--streams", "2", "--recompute-stride", "16", "--sink-from-measure", str(measured),
                 "--out", str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert code == 0 and "keeping tokens 1..3 as sinks" in out and "n_sink=3" in out
    saved = json.loads((tmp_path / "s" / "stream.json").read_text())
    assert {p["policy"] for p in saved["policies"]} == {"full", "window", "sink", "recompute"}
    assert (tmp_path / "s" / "running_ppl.png").exists()
    assert main(["stream", "--model", str(tiny_with_tokenizer), "--prompt", "the quick", "--max-new-tokens", "5",
                 "--window", "16"]) == 0


def test_cli_cache_larger_than_context(tiny_with_tokenizer, capsys):
    from sinklab.cli import main

    assert main(["stream", "--model", str(tiny_with_tokenizer), "--prompt", "x", "--window", "600"]) == 2
    assert "larger than the model's context of 512" in capsys.readouterr().err
