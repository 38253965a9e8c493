"""Measure tiny models and print their alphas and logits as JSON; the fused-path test runs this with
and without TRITON_INTERPRET=1 (the Triton kernels interpreted on the CPU) and compares."""
import json
import sys

import torch


def hf_models():
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig

    common = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    yield "llama_gqa", AutoModelForCausalLM.from_config(LlamaConfig(**common))
    yield "mistral_window", AutoModelForCausalLM.from_config(MistralConfig(**common, sliding_window=9))


def sinklab_models():
    from sinklab.config import ModelConfig
    from sinklab.model.decoder import SinkLM

    base = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ffn=64, max_seq_len=128)
    for name, extra in (("sinklab_softmax", {}), ("sinklab_window", dict(window=7)),
                        ("sinklab_sink_logit", dict(sink_logit=True)), ("sinklab_off_by_one", dict(score="off_by_one"))):
        model = SinkLM(ModelConfig(**base, **extra))
        if extra.get("sink_logit"):
            for layer in model.layers:
                torch.nn.init.normal_(layer.attn.sink_logit, std=2.0)
        yield name, model


def _logits(output):
    return output.logits if hasattr(output, "logits") else output


def main():
    from sinklab.load import wrap_module
    from sinklab.measure import capture

    torch.manual_seed(0)
    out = {}
    ids = torch.randint(0, 97, (2, 40))
    for name, model in list(hf_models()) + list(sinklab_models()):
        model.eval()
        loaded = wrap_module(model)
        rec = capture.AttentionRecorder(keep_map_upto=0)
        loaded.capture_forward(ids, rec)
        alpha = torch.stack([rec.layers[l].alpha for l in sorted(rec.layers)], 1)
        extra = [rec.layers[l].alpha_extra for l in sorted(rec.layers)]
        with torch.no_grad():
            own = _logits(model(ids))
            with capture.recording(capture.AttentionRecorder(keep_map_upto=0)):
                captured = _logits(model(ids))
        out[name] = {"alpha": alpha.tolist(),
                     "extra": None if extra[0] is None else torch.stack(extra, 1).tolist(),
                     "qk": {k: float(v) for k, v in rec.layers[0].qk.items()},
                     "key_ratio": float(rec.layers[0].key_ratio),
                     "logits_diff": float((own - captured).abs().max())}
    json.dump(out, sys.stdout)


def kernel_errors():
    """Column sums and row LSE at several tile shapes (BLOCK_M above, equal to and below BLOCK_N),
    windows and T not a multiple of any tile, against float64: the largest error of each case."""
    from sinklab.kernels import attention_sums

    torch.manual_seed(0)
    out = {}
    for T, window in ((45, None), (70, 9), (70, 33), (64, 16), (41, 100)):
        q, k = torch.randn(1, 4, T, 16) * 2, torch.randn(1, 2, T, 16) * 2
        i = torch.arange(T)
        allowed = i[None, :] <= i[:, None]
        if window:
            allowed &= i[:, None] - i[None, :] < window
        s = (q.double() @ k.double().repeat_interleave(2, 1).transpose(-1, -2) / 4).masked_fill(~allowed, float("-inf"))
        lse = torch.logsumexp(s, -1)
        ref = torch.exp(s - lse[..., None]).sum(-2)
        for bm, bn in ((16, 32), (32, 16), (16, 16)):
            blocks = dict(D_PAD=16, BLOCK_M=bm, BLOCK_N=bn, num_warps=1, num_stages=1)
            col = attention_sums.column_sums(q, k, lse.float(), 0.25, window if window and window < T else None, blocks)
            out[f"T{T} w{window} M{bm} N{bn}"] = (col.double() - ref).abs().max().item()
        got = attention_sums.row_logsumexp(q, k, 0.25, window if window and window < T else None)
        out[f"T{T} w{window} lse"] = (got.double() - lse).abs().max().item()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    kernel_errors() if sys.argv[1:] == ["--kernels"] else main()
