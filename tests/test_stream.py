"""Streaming with the sink cache: exactness, agreement with StreamingLLM's procedure, the NLL, the CLI."""
import json

import pytest
import torch

from sinklab import stream
from sinklab.cli import main
from sinklab.errors import SinklabError
from sinklab.load import load_model
from stream_reference import ppl, reference_nll


def tiny_llama(context=1024, init=0.02, layers=2, seed=0):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                      initializer_range=init)
    return AutoModelForCausalLM.from_config(cfg).eval()


@pytest.fixture(scope="module")
def tiny_stream(tiny_hf_folders):
    return stream.prepare_stream(load_model(str(tiny_hf_folders["llama"])))


@pytest.fixture(scope="module")
def sharp_llama():
    """Larger weights than the default init, so the next-token distribution depends on the context."""
    return tiny_llama(init=0.3)


@pytest.mark.slow  # token-by-token reference
def test_exact_while_the_cache_is_not_full(tiny_stream):
    torch.manual_seed(0)
    ids = torch.randint(0, 128, (2, 40))
    with torch.no_grad():
        full = tiny_stream.model(input_ids=ids).logits
    streamed = stream.stream_logits(tiny_stream.model, ids, n_sink=4, window=36)  # 40 tokens fit exactly
    assert (streamed - full).abs().max().item() < 1e-5


@pytest.mark.slow  # token-by-token reference over 256+ tokens
@pytest.mark.parametrize("n_sink,window", [(4, 252), (0, 256)])
def test_perplexity_agrees_with_the_streamingllm_procedure(sharp_llama, n_sink, window):
    """One stream of 800 tokens, three times the cache: the reference loop caches keys before RoPE and
    re-rotates them to 0..L-1 every step; sinklab turns its ring buffer's keys instead."""
    torch.manual_seed(1)
    ids = torch.randint(0, 128, (1, 800))
    ref = reference_nll(sharp_llama, ids, n_sink, window)
    ours, _ = stream.stream_nll(sharp_llama, ids, n_sink, window)
    assert abs(ppl(ours[0]) / ppl(ref) - 1) < 1e-4
    assert (ours[0] - ref).abs().max().item() < 1e-4
    other, _ = stream.stream_nll(sharp_llama, ids, 4 - n_sink, window + n_sink - (4 - n_sink))
    assert abs(ppl(other[0]) / ppl(ref) - 1) > 1e-3  # the other policy reads differently: the check can fail


def test_nll_rows_equal_a_float64_reference_per_token():
    torch.manual_seed(2)
    logits = torch.randn(3, 50, 4000) * 8
    logits[:, :, 7] += 40  # a peaked row, where float32 cross-entropy loses digits
    targets = torch.randint(0, 4000, (3, 50))
    ref = -torch.log_softmax(logits.double(), dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    ours = stream.nll_rows(logits, targets, rows=64)
    assert ours.shape == (3, 50) and (ours - ref).abs().max().item() < 1e-6


@pytest.mark.slow  # ten cache windows
def test_cache_size_stays_constant_after_ten_windows(tiny_stream):
    streamer = stream.Streamer(tiny_stream.model, 4, 16)
    ids = torch.randint(0, 128, (2, 200))  # > 10x the window
    shapes = set()
    for t in range(200):
        streamer.step(ids[:, t:t + 1])
        shapes.update(tuple(layer.keys.shape) for layer in streamer.cache.layers)
    assert shapes == {(2, 2, 21, 8)}  # 4 sinks + 16 recent + the slot the next token takes
    assert int(streamer.cache.ring.seen) == 200


@pytest.mark.parametrize("family", ["llama", "gpt_neox"])
def test_evicted_keys_are_turned_to_their_positions_inside_the_cache(tiny_hf_folders, family):
    """Layer-0 keys depend only on token and position: after eviction, each slot turned to its target
    position must equal a fresh pass's key at that position of the kept tokens. GPT-NeoX rotates only
    part of each head and passes no positions to the cache."""
    tiny_stream = stream.prepare_stream(load_model(str(tiny_hf_folders[family])))
    torch.manual_seed(3)
    ids = torch.randint(0, 128, (1, 30))
    n_sink, window = 2, 5
    streamer = stream.Streamer(tiny_stream.model, n_sink, window)
    for t in range(30):
        streamer.step(ids[:, t:t + 1])
    ring, layer = streamer.cache.ring, streamer.cache.layers[0]
    turned = stream.rotate(layer.keys, ring.turn, layer.inv_freq)
    target = (ring.slot_pos + ring.turn)[0]
    kept = torch.cat([ids[:, :n_sink], ids[:, 30 - window - 1:]], dim=1)  # what the last step attended to
    from transformers import DynamicCache

    fresh = DynamicCache()
    with torch.no_grad():
        tiny_stream.model(input_ids=kept, use_cache=True, **{stream.cache_kwarg(tiny_stream.model): fresh})
    assert sorted(target.tolist()) == list(range(kept.shape[1]))
    assert torch.allclose(turned[:, :, :], fresh.layers[0].keys[:, :, target], atol=1e-5)


def test_perplexity_reports_every_policy(tiny_stream):
    ids = torch.randint(0, 128, (2, 80))
    result = stream.perplexity(tiny_stream, ids, cache_size=16, n_sink=4, recompute_stride=8, progress=False)
    rows = {r["policy"]: r for r in stream.summarise(result, 8)}
    assert set(rows) == {"full", "window", "sink", "recompute"}
    assert all(r["ppl_past_cache"] > 1 for r in rows.values())
    assert rows["sink"]["ppl_all"] > 1 and rows["recompute"]["ppl_all"] is None


def test_bad_sizes_and_models(tiny_stream, tiny_hf_folders):
    with pytest.raises(SinklabError, match="window must be at least 1"):
        stream.SinkCache(tiny_stream.model, 4, 0)
    with pytest.raises(SinklabError, match="larger than the model's context of 256"):
        stream.SinkCache(tiny_stream.model, 4, 300)
    with pytest.raises(SinklabError, match="gpt2 uses learned absolute position embeddings"):
        stream.prepare_stream(load_model(str(tiny_hf_folders["gpt2"])))


def test_a_model_without_rope_is_refused():
    from transformers import AutoModelForCausalLM, BloomConfig

    model = AutoModelForCausalLM.from_config(BloomConfig(vocab_size=64, hidden_size=32, n_layer=2, n_head=4))
    with pytest.raises(SinklabError, match="bloom has no rotary position embedding"):
        stream.SinkCache(model, 4, 16)


def test_length_dependent_rope_scaling_is_refused():
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})
    with pytest.raises(SinklabError, match="RoPE scaling 'dynamic' changes with length"):
        stream.SinkCache(AutoModelForCausalLM.from_config(cfg), 4, 16)


def test_partial_rotary_keys_agree_while_the_cache_fits(tiny_hf_folders):
    """GPT-NeoX rotates only a quarter of each head (rotary_pct 0.5 of 8 dims): the rest must stay put."""
    sm = stream.prepare_stream(load_model(str(tiny_hf_folders["gpt_neox"])))
    ids = torch.randint(0, 128, (1, 30))
    with torch.no_grad():
        full = sm.model(input_ids=ids).logits
    assert (stream.stream_logits(sm.model, ids, 2, 28) - full).abs().max().item() < 1e-5


def _cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("argv,message", [
    (["--prompt", "x", "--window", "0"], "--window must be at least 1"),
    (["--prompt", "x", "--window", "-5"], "--window must be at least 1"),
    (["--prompt", "x", "--max-new-tokens", "-3"], "--max-new-tokens must be at least 1"),
    (["--eval", "F", "--streams", "0"], "--streams must be at least 1"),
    (["--eval", "F", "--n-sink", "300"], "--n-sink 300 leaves no room in --cache-size 256"),
    (["--eval", "F", "--tokens", "3", "--streams", "2"], "fewer than 2 tokens a stream"),
    (["--eval", "F", "--policies", "full,nope"], "unknown policy 'nope'"),
    (["--prompt", "x", "--temperature", "-1"], "--temperature must be 0 (greedy) or from 0.001 up"),
    (["--prompt", "x", "--temperature", "1e-163"], "--temperature must be 0 (greedy) or from 0.001 up"),
    (["--prompt", "x", "--temperature", "inf"], "--temperature must be 0 (greedy) or from 0.001 up"),
])
def test_cli_bad_options_are_one_line(tiny_hf_folders, tmp_path, capsys, argv, message):
    text = tmp_path / "t.txt"
    text.write_text("some text " * 50)
    argv = [str(text) if a == "F" else a for a in argv]
    code, err = _cli(capsys, "stream", "--model", str(tiny_hf_folders["llama"]), *argv)
    assert code == 2 and len(err) == 1 and err[0].startswith("sinklab: error: ") and message in err[0]


def test_cli_models_the_cache_cannot_serve(tiny_hf_folders, capsys):
    code, err = _cli(capsys, "stream", "--model", str(tiny_hf_folders["gpt2"]), "--prompt", "x")
    assert code == 2 and len(err) == 1 and "learned absolute position embeddings" in err[0]


def test_cli_empty_and_non_utf8_text(tmp_path, tiny_hf_folders, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, err = _cli(capsys, "stream", "--model", str(tiny_hf_folders["llama"]), "--eval", str(empty))
    assert code == 2 and "empty" in err[0]
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\u00e9 ".encode("latin-1") * 10)
    code, err = _cli(capsys, "stream", "--model", str(tiny_hf_folders["llama"]), "--eval", str(latin))
    assert code == 2 and len(err) == 1 and "is not UTF-8 text: byte 3 is 0xe9" in err[0]


@pytest.fixture(scope="module")
def tiny_with_tokenizer(tmp_path_factory):
    """A tiny random Llama with a byte-level BPE tokenizer saved beside it."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    from sinklab.data.tokenizers import train_bpe

    folder = tmp_path_factory.mktemp("tiny_tok")
    tok = train_bpe(["the quick brown fox jumps over the lazy dog. " * 20] * 50, 300)
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tok.tokenizer_json), eos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    return folder


@pytest.mark.slow  # a measurement, then a streamed evaluation
def test_cli_eval_one_stream_and_sink_from_measure(tiny_with_tokenizer, tmp_path, capsys):
    text = tmp_path / "long.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    measured = tmp_path / "m"
    measured.mkdir()
    (measured / "summary.json").write_text(json.dumps({"largest_sink": {"position": 3}}))
    code = main(["stream", "--model", str(tiny_with_tokenizer), "--eval", str(text), "--cache-size", "32",
                 "--tokens", "400", "--recompute-stride", "16", "--sink-from-measure", str(measured),
                 "--out", str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert code == 0 and "keeping tokens 1..3 as sinks" in out and "one stream x 400 tokens" in out
    saved = json.loads((tmp_path / "s" / "stream.json").read_text())
    assert saved["streams"] == 1 and saved["n_sink"] == 3
    assert {p["policy"] for p in saved["policies"]} == {"full", "window", "sink", "recompute"}
    assert (tmp_path / "s" / "running_ppl.png").exists()


def test_cli_prompt_default_window_fits_a_short_context(tiny_with_tokenizer, capsys):
    """A 1020-token window does not fit this 512-token context; the default shrinks to what fits."""
    assert main(["stream", "--model", str(tiny_with_tokenizer), "--prompt", "the", "--max-new-tokens", "5"]) == 0
    assert main(["stream", "--model", str(tiny_with_tokenizer), "--prompt", "the", "--window", "1020"]) == 2
    assert "larger than the model's context of 512" in capsys.readouterr().err


def test_cli_prompt_generates_text(tiny_with_tokenizer, capsys):
    code = main(["stream", "--model", str(tiny_with_tokenizer), "--prompt", "the quick", "--max-new-tokens", "40",
                 "--window", "16"])
    assert code == 0 and capsys.readouterr().out.strip()


def test_python_generate_from_text_as_in_the_readme(tiny_with_tokenizer):
    model = load_model(str(tiny_with_tokenizer))
    text = stream.generate(model, "the quick brown", max_new_tokens=30, window=8, stop_at_eos=False)
    assert isinstance(text, str) and text


def test_generate_rejects_a_batch_split_over_devices(tiny_stream):
    ids = torch.randint(1, 128, (2, 5))
    with pytest.raises(SinklabError, match="attention mask is on meta and the prompt on cpu"):
        stream.generate(tiny_stream, ids, max_new_tokens=3, attention_mask=torch.ones(2, 5, device="meta"))
    with pytest.raises(SinklabError, match="max_new_tokens must be at least 1"):
        stream.generate(tiny_stream, ids, max_new_tokens=0)


@pytest.mark.slow
def test_compiled_decoding_equals_eager(sharp_llama):
    """torch.compile of the static step (inductor on the CPU here; CUDA graphs on a GPU): same NLL."""
    ids = torch.randint(0, 128, (2, 60))
    eager, _ = stream.stream_nll(sharp_llama, ids, 4, 20)
    compiled, _ = stream.stream_nll(sharp_llama, ids, 4, 20, decode="compile")
    assert (eager - compiled).abs().max().item() < 1e-5


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_cuda_graph_and_compiled_decoding_equal_eager_on_the_gpu():
    model = tiny_llama(init=0.3).cuda()
    ids = torch.randint(0, 128, (2, 300), device="cuda")
    eager, _ = stream.stream_nll(model, ids, 4, 60)
    graph, _ = stream.stream_nll(model, ids, 4, 60, decode="graph")
    compiled, _ = stream.stream_nll(model, ids, 4, 60, decode="compile")
    assert (eager - graph).abs().max().item() < 1e-5
    assert (eager - compiled).abs().max().item() < 1e-4


@cuda
def test_cli_eval_on_cuda(tiny_with_tokenizer, tmp_path, capsys):
    text = tmp_path / "long.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    code = main(["stream", "--model", str(tiny_with_tokenizer), "--eval", str(text), "--cache-size", "32",
                 "--tokens", "600", "--device", "cuda", "--out", str(tmp_path / "s")])
    assert code == 0 and "sink" in capsys.readouterr().out


def test_stream_loads_without_the_capture_or_its_checks(tiny_llama_with_tokenizer, monkeypatch):
    """`load_model(capture=False)`, as `sinklab stream` loads: SDPA, no load-time checks, and measuring is refused."""
    import pytest

    from sinklab.errors import SinklabError
    from sinklab.load import load_model
    from sinklab.measure import load as measure_load

    def no_checks(*args, **kwargs):
        raise AssertionError("the load-time checks ran")

    monkeypatch.setattr(measure_load, "check_causal", no_checks)
    loaded = load_model(tiny_llama_with_tokenizer, capture=False)
    assert loaded.model.config._attn_implementation == "sdpa" and loaded.info["capture_route"] == "none"
    with pytest.raises(SinklabError, match="without the capture"):
        loaded.capture_forward(None, None)
