"""SinkCache as a drop-in for transformers' generate, one tiny random model per architecture."""
import warnings

import pytest
import torch

from sinklab import stream
from stream_reference import reference_greedy

COMMON = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.2, pad_token_id=0)


def _config(family):
    import transformers as t

    return {
        "llama": lambda: t.LlamaConfig(**COMMON),
        "mistral": lambda: t.MistralConfig(**COMMON, sliding_window=64),  # cache inside the sliding window
        "qwen2": lambda: t.Qwen2Config(**COMMON),
        "qwen3": lambda: t.Qwen3Config(**COMMON, head_dim=8),
        "smollm3": lambda: t.SmolLM3Config(**COMMON, no_rope_layers=[1, 1, 1, 0]),  # one NoPE layer
        "gemma3": lambda: t.Gemma3TextConfig(**COMMON, head_dim=8, sliding_window=8,
                                             layer_types=["sliding_attention", "full_attention"] * 2),
    }[family]()


# Llama in the quick suite; the other families (each its own cache quirks) with the slow tests
@pytest.fixture(scope="module", params=["llama", *(pytest.param(f, marks=pytest.mark.slow)
                                                   for f in ("mistral", "qwen2", "qwen3", "smollm3", "gemma3"))])
def model(request):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(_config(request.param)).eval()


def _generate(model, ids, new_tokens, cache=None, mask=None):
    kwargs = {} if cache is None else {stream.cache_kwarg(model): cache}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids) if mask is None else mask,
                             max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0, **kwargs)
    return out[:, ids.shape[1]:]


def test_equals_the_full_cache_while_the_stream_fits(model):
    ids = torch.randint(1, 128, (2, 6))
    assert torch.equal(_generate(model, ids, 30, stream.SinkCache(model, 4, 40)), _generate(model, ids, 30))


def test_keeps_running_past_the_cache_with_constant_size(model):
    ids = torch.randint(1, 128, (1, 6))
    cache = stream.SinkCache(model, 2, 10)
    out = _generate(model, ids, 80, cache)
    assert out.shape == (1, 80)
    sizes = {layer.keys.shape[-2] for layer in cache.layers if not layer.is_sliding}
    sliding = {layer.keys.shape[-2] for layer in cache.layers if layer.is_sliding}
    assert sizes == {2 + 10 + 1}
    if sliding:  # Gemma 3's sliding layers keep transformers' own window: 7 cached keys of an 8-token window
        assert sliding == {model.config.sliding_window - 1}
    if not sliding:  # one rotary module and no native window: StreamingLLM's procedure applies
        assert torch.equal(out, reference_greedy(model, ids, 2, 10, 80))


def test_left_padded_batch_rows_equal_each_row_alone(model):
    """The sink region starts after the longest padding: the row with less padding keeps that many more
    of its first tokens, so each row equals itself alone with n_sink + its padding deficit."""
    a, b = torch.randint(1, 128, (1, 8)), torch.randint(1, 128, (1, 5))
    ids = torch.cat([a, torch.cat([torch.zeros(1, 3, dtype=torch.long), b], dim=1)])
    mask = (torch.arange(8) >= torch.tensor([[0], [3]])).long()
    assert torch.equal(_generate(model, ids, 20, stream.SinkCache(model, 4, 40), mask), _generate(model, ids, 20, mask=mask))
    batch = _generate(model, ids, 40, stream.SinkCache(model, 2, 6), mask)
    assert torch.equal(batch[:1], _generate(model, a, 40, stream.SinkCache(model, 2 + 3, 6)))
    assert torch.equal(batch[1:], _generate(model, b, 40, stream.SinkCache(model, 2, 6)))
