"""Sink tokens by identity: the pure sums on hand-made attention, a model steered so that one token id
draws the attention wherever it stands, the report's table and figure, and keeping such tokens in the stream."""
import csv

import pytest
import torch

from sinklab import stream
from sinklab.cli import main
from sinklab.errors import SinklabError
from sinklab.measure import sink_tokens
from sinklab.measure.run import measure
from sinklab.report import format_summary, write_results
from stream_reference import reference_nll


def test_hand_made_attention_gives_exact_counts():
    """Two samples, one layer, two heads, four positions (1-based first = 2); eps 0.3 and 0.6."""
    ids = torch.tensor([[7, 3, 7, 9], [3, 3, 9, 7]])
    alpha = torch.zeros(2, 1, 2, 4)
    alpha[0, 0, :, 0] = torch.tensor([0.5, 0.7])   # token 7 at position 2: both heads > 0.3, one > 0.6
    alpha[0, 0, 0, 2] = 0.4                          # token 7 at position 4: one head
    alpha[1, 0, 1, 1] = 0.9                          # token 3 at position 3: one head
    alpha[1, 0, 0, 3] = 0.2                          # token 7 at position 5: below eps
    sums = sink_tokens.add_batch(sink_tokens.empty(2, 8, "cpu"), alpha, ids, [0.3, 0.6], first=2)
    assert sums.occurrences[[3, 7, 9]].tolist() == [3, 3, 2]
    assert sums.sink_occurrences[:, [3, 7, 9]].tolist() == [[1, 2, 0], [1, 1, 0]]
    assert sums.head_exceed[:, [3, 7, 9]].tolist() == [[1, 3, 0], [1, 1, 0]]
    assert sums.alpha_sum[7].item() == pytest.approx((1.2 + 0.4 + 0.2) / 2)
    assert sink_tokens.positions_of(sums, 7) == [(2, 1), (4, 1)]
    assert sink_tokens.positions_of(sums, 3) == [(3, 1)]
    rows = sink_tokens.token_rows(sums, n_heads=2, eps=[0.3, 0.6], where="later")
    assert [r["token_id"] for r in rows] == [7, 3]   # most sink (occurrence, head) pairs first; 9 is never a sink
    assert rows[0]["head_share_pct"] == pytest.approx(100 * 3 / 6) and rows[0]["head_share_pct_eps0.6"] == \
        pytest.approx(100 / 6, abs=1e-4)
    assert rows[0]["share_of_sink_pairs_pct"] == 75.0 and rows[0]["positions_common"] == "2:1 4:1"
    assert (rows[0]["position_min"], rows[0]["position_max"]) == (2, 4)


def test_batches_add_up_like_one_batch():
    torch.manual_seed(0)
    alpha, ids = torch.rand(6, 2, 3, 5), torch.randint(0, 20, (6, 5))
    one = sink_tokens.add_batch(sink_tokens.empty(1, 5, "cpu"), alpha, ids, [0.5])
    two = sink_tokens.empty(1, 5, "cpu")
    for b in (slice(0, 2), slice(2, 6)):
        two = sink_tokens.add_batch(two, alpha[b], ids[b], [0.5])
    width = one.occurrences.numel()
    assert torch.equal(one.head_exceed, two.head_exceed[:, :width]) and torch.equal(one.position_keys, two.position_keys)
    assert torch.equal(one.position_counts, two.position_counts)
    assert int(one.head_exceed.sum()) == int((alpha > 0.5).sum())


def test_mismatched_shapes_are_one_clear_error():
    with pytest.raises(SinklabError, match="disagree on samples or positions"):
        sink_tokens.add_batch(sink_tokens.empty(1, 4, "cpu"), torch.rand(2, 1, 1, 4), torch.zeros(2, 3), [0.3])


def test_summary_line_names_the_first_token_and_the_later_sinks():
    first = {"head_share_pct": 73.24}
    later = [{"where": "later", "token": "'\\n'", "token_id": 5, "head_share_pct": 4.1, "occurrences": 40,
              "position_min": 9, "position_max": 30},
             {"where": "later", "token": "'x'", "token_id": 6, "head_share_pct": 50.0, "occurrences": 1,
              "position_min": 3, "position_max": 3}]  # one occurrence: too few to name
    assert sink_tokens.summary_line(first, later) == ("the sinks are the first token (73.2 %) and '\\n' (4.1 % of "
                                                      "heads, positions 9-30, 40 occurrences)")
    assert "no later token" in sink_tokens.summary_line(first, later[1:])


SINK_ID, VOCAB, T = 5, 64, 32


def steered_llama():
    """A Llama whose every query looks for token SINK_ID: its embedding carries a direction that the key
    projection maps onto the one the query projection gives every token. RoPE's slowest pair (theta 1e12)
    barely turns, and the layers write nothing back, so each layer sees the embeddings."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128, rope_theta=1e12)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        emb = model.model.embed_tokens.weight
        emb.normal_(0, 1)
        emb[:, :2] = 0
        emb[:, 1] = 3.0            # every token: the direction queries read
        emb[SINK_ID, 0] = 8.0      # the sink token: the direction keys read
        for layer in model.model.layers:
            att = layer.self_attn
            for proj in (att.q_proj, att.k_proj):
                proj.weight.mul_(0.05)
            for h in range(4):  # dim 7 of each 8-dim head: the pair that turns by 1e-9 rad per position
                att.q_proj.weight[h * 8 + 7, 1] = 3.0
                att.k_proj.weight[h * 8 + 7, 0] = 3.0
            att.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    return model


@pytest.fixture(scope="module")
def steered_result():
    torch.manual_seed(1)
    ids = torch.randint(10, VOCAB, (6, T))
    where = [3, 7, 12, 16, 5, 9]  # 1-based positions of the sink token, one per sample, all <= T/2
    for b, p in enumerate(where):
        ids[b, p - 1] = SINK_ID
    return measure(steered_llama(), probe="tokens", input_ids=ids, eps=[0.3], K=4, progress=False), where


def test_a_token_forced_to_be_a_sink_comes_out_on_top(steered_result):
    result, where = steered_result
    later = [r for r in result.sink_tokens if r["where"] == "later"]
    top = later[0]
    assert top["token_id"] == SINK_ID and top["occurrences"] == 6 and top["sink_occurrences"] == 6
    assert top["head_share_pct"] == 100.0 and top["mean_alpha"] > 0.9
    assert (top["position_min"], top["position_max"]) == (min(where), max(where))
    assert sorted(int(p.split(":")[0]) for p in top["positions_common"].split()) == sorted(where)[:3]
    assert all(r["head_share_pct"] < 100 for r in later[1:])
    assert result.summary["sink_tokens"]["top"][0]["token_id"] == SINK_ID
    assert "token 5 (100.0 % of heads, positions 3-16, 6 occurrences)" in format_summary(result)


def test_write_results_adds_the_table_and_figure(steered_result, tmp_path):
    result, _ = steered_result
    write_results(result, tmp_path)
    with open(tmp_path / "sink_tokens.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["where"] == "first" and rows[1]["token_id"] == str(SINK_ID)
    assert (tmp_path / "figures" / "sink_tokens.png").exists()
    assert "sink_tokens.csv" in (tmp_path / "report.html").read_text()


def test_the_figure_draws_one_bar_per_token(steered_result):
    from sinklab.report.plots import draw_sink_tokens

    result, _ = steered_result
    fig = draw_sink_tokens(result.sink_tokens, 0.3, count=3)
    bars = fig.axes[0].patches
    assert len(bars) == min(4, len(result.sink_tokens)) and bars[1].get_width() == 100.0
    assert fig.axes[0].get_xlim() == (0.0, 100.0)


def test_kept_tokens_survive_eviction_and_match_a_reference(steered_result):
    """Streams of 120 tokens through 2 sinks + 10 recent + 3 kept: every evicted token of the kept ids is
    still cached (the newest three), and the NLL equals an independent loop that re-rotates pre-RoPE keys."""
    from test_stream import tiny_llama

    model = tiny_llama(init=0.3)
    torch.manual_seed(4)
    ids = torch.randint(0, 128, (2, 120))
    keep = [3, 7, 11, 50]
    streamer = stream.Streamer(model, 2, 10, keep_ids=keep, keep_slots=3)
    for t in range(120):
        streamer.step(ids[:, t:t + 1])
    kept = streamer.cache.ring.kept
    for b in range(2):
        evicted = [c for c in range(2, 120 - 11) if int(ids[b, c]) in keep]
        assert sorted(c for c in kept.col[b].tolist() if c >= 0) == evicted[-3:]
    ours, _ = stream.stream_nll(model, ids, 2, 10, keep_ids=keep, keep_slots=3)
    for b in range(2):
        ref = reference_nll(model, ids[b:b + 1], 2, 10, keep=keep, slots=3)
        assert (ours[b] - ref).abs().max().item() < 1e-4
        plain = reference_nll(model, ids[b:b + 1], 2, 13)
        assert (ours[b] - plain).abs().max().item() > 1e-2  # keeping changes what is read: the check can fail


def test_perplexity_keep_policy_and_its_errors(tiny_hf_folders):
    from sinklab.load import load_model

    sm = stream.prepare_stream(load_model(str(tiny_hf_folders["llama"])))
    ids = torch.randint(0, 128, (2, 60))
    result = stream.perplexity(sm, ids, cache_size=16, n_sink=2, policies=("sink", "keep"), progress=False,
                               keep_ids=[1, 2, 3], keep_slots=4)
    rows = {r["policy"]: r for r in stream.summarise(result)}
    assert set(rows) == {"sink", "keep"} and rows["keep"]["ppl_all"] > 1 and result["keep_slots"] == 4
    with pytest.raises(SinklabError, match="needs the ids"):
        stream.perplexity(sm, ids, cache_size=16, policies=("keep",), progress=False)
    with pytest.raises(SinklabError, match="must leave room"):
        stream.perplexity(sm, ids, cache_size=8, n_sink=4, policies=("keep",), keep_ids=[1], keep_slots=4)
    with pytest.raises(SinklabError, match="token ids >= 0"):
        stream.SinkCache(sm.model, 2, 8, keep_ids=[], keep_slots=2)


def test_cli_keep_sink_tokens(tiny_llama_with_tokenizer, tmp_path, capsys):
    text = tmp_path / "long.txt"
    text.write_text("attention sinks appear in trained language models . " * 60)
    measured = tmp_path / "m"
    measured.mkdir()
    (measured / "sink_tokens.csv").write_text(
        "where,token_id,token,occurrences,head_share_pct\nfirst,,,10,70\nlater,2,'sinks',9,3.5\nlater,3,'appear',1,50\n")
    code = main(["stream", "--model", str(tiny_llama_with_tokenizer), "--eval", str(text), "--cache-size", "24",
                 "--tokens", "200", "--policies", "sink", "--keep-sink-tokens", str(measured), "--keep-slots", "3",
                 "--out", str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert code == 0 and "keeping evicted sink tokens 'sinks' (2) in 3 slots" in out
    assert "keep" in out.split("policy")[1]


@pytest.mark.parametrize("extra,message", [
    (["--keep-sink-tokens", "a,b"], "neither a measurement folder nor"),
    (["--keep-sink-tokens", "1", "--keep-slots", "0"], "--keep-slots 0 must be at least 1"),
    (["--policies", "keep"], "policy 'keep' needs --keep-sink-tokens"),
    (["--keep-sink-tokens", "MISSING_DIR_AS_IDS"], "neither a measurement folder"),
])
def test_cli_keep_errors_are_one_line(tiny_llama_with_tokenizer, tmp_path, capsys, extra, message):
    text = tmp_path / "long.txt"
    text.write_text("attention sinks appear in trained language models . " * 30)
    code = main(["stream", "--model", str(tiny_llama_with_tokenizer), "--eval", str(text), "--cache-size", "24",
                 "--tokens", "100", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_keep_needs_eval_and_a_table(tiny_llama_with_tokenizer, tmp_path, capsys):
    assert main(["stream", "--model", str(tiny_llama_with_tokenizer), "--prompt", "hi", "--keep-sink-tokens", "3"]) == 2
    assert "works with --eval" in capsys.readouterr().err
    text = tmp_path / "long.txt"
    text.write_text("attention sinks appear in trained language models . " * 30)
    assert main(["stream", "--model", str(tiny_llama_with_tokenizer), "--eval", str(text), "--cache-size", "24",
                 "--tokens", "100", "--keep-sink-tokens", str(tmp_path)]) == 2
    assert "sink_tokens.csv does not exist" in capsys.readouterr().err
