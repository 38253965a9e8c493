"""The public Python API at user scale: what a user passes gets the right result or one clear error."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import sinklab
from sinklab import stream
from sinklab.errors import SinklabError
from sinklab.measure.load import parse_max_memory
from sinklab.report import write_results
from sinklab.train.loop import utilisation
from sinklab.train.optim import MEASURED_PEAK_FLOPS, PEAK_FLOPS, peak_for_name


@pytest.mark.parametrize("name, datasheet, measured", [
    ("NVIDIA H100 80GB HBM3", 989e12, 790e12),
    ("NVIDIA H200", 989e12, 790e12),
    ("NVIDIA H100 PCIe", 756e12, None),
    ("NVIDIA H100 NVL", 835e12, None),
    ("NVIDIA A100-SXM4-80GB", 312e12, None),
    ("Some Other GPU", None, None),
])
def test_mfu_is_against_the_datasheet_peak(name, datasheet, measured):
    assert peak_for_name(name, PEAK_FLOPS) == datasheet
    assert peak_for_name(name, MEASURED_PEAK_FLOPS) == measured


def test_utilisation_labels_the_measured_peak():
    assert utilisation(494.5e12, 989e12, 790e12) == {"mfu": 0.5, "mfu_measured_peak": 0.6259}
    assert utilisation(494.5e12, 989e12, None, "_overall") == {"mfu_overall": 0.5}
    assert utilisation(1.0, None, None) == {"mfu": None}


# -- bad input to the Python API: one SinklabError naming the problem, never a traceback ----------------

@pytest.fixture(scope="module")
def llama():
    from transformers import AutoModelForCausalLM

    from conftest import tiny_hf_configs

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_hf_configs()["llama"]).eval()


def _ids(*shape, high=128, dtype=torch.long):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(0)).to(dtype)


API_CASES = {
    "float input_ids": (lambda m: sinklab.measure(m, input_ids=_ids(2, 8, dtype=torch.float32)), "integer"),
    "1-D input_ids": (lambda m: sinklab.measure(m, input_ids=_ids(8)), "shape (n, T)"),
    "3-D input_ids": (lambda m: sinklab.measure(m, input_ids=_ids(1, 2, 8)), "shape (n, T)"),
    "ids beyond the vocabulary": (lambda m: sinklab.measure(m, input_ids=_ids(2, 8) + 500), "vocabulary of 128"),
    "negative ids": (lambda m: sinklab.measure(m, input_ids=_ids(2, 8) - 200), "negative"),
    "empty input_ids": (lambda m: sinklab.measure(m, input_ids=torch.zeros(1, 0, dtype=torch.long)), "empty"),
    "dtype unlike the model's": (lambda m: sinklab.measure(m, input_ids=_ids(2, 8), dtype="bfloat16"), "float32"),
    "device unlike the model's": (lambda m: sinklab.measure(m, input_ids=_ids(2, 8), device="meta"), "on cpu"),
    "perplexity on 1 token": (lambda m: stream.perplexity(m, _ids(1, 1)), "at least 2 tokens"),
    "perplexity on 0 tokens": (lambda m: stream.perplexity(m, torch.zeros(1, 0, dtype=torch.long)), "empty"),
    "perplexity on float ids": (lambda m: stream.perplexity(m, _ids(1, 9, dtype=torch.float32)), "integer"),
    "generate from a string model": (lambda m: stream.generate(object(), [1, 2]), "stream takes a model"),
    "generate with an empty prompt": (lambda m: stream.generate(m, []), "empty"),
    "generate beyond the vocabulary": (lambda m: stream.generate(m, [1, 999]), "vocabulary"),
    "max_memory with an unknown unit": (lambda m: parse_max_memory("0=10XB"), "not a size"),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_bad_api_input_is_one_clear_error(case, llama):
    call, words = API_CASES[case]
    with pytest.raises(SinklabError, match=re.escape(words)):
        call(llama)


def test_generate_and_perplexity_take_a_transformers_model(llama):
    new = stream.generate(llama, [1, 2, 3], max_new_tokens=4, stop_at_eos=False)  # ids in, new ids out
    assert new.shape == (1, 4) and not new.is_floating_point()
    scored = stream.perplexity(llama, _ids(2, 24), cache_size=8, n_sink=2, policies=("full", "sink"))
    assert set(scored["nll"]) == {"full", "sink"} and scored["nll"]["sink"].shape == (2, 23)


def test_write_results_takes_a_string_path_and_never_replaces_silently(llama, tmp_path):
    result = sinklab.measure(llama, input_ids=_ids(2, 16), progress=False)
    folder = str(tmp_path / "m")
    assert write_results(result, folder, figures=False) == Path(folder)
    assert json.loads((Path(folder) / "summary.json").read_text())["sink"] == result.summary["sink"]
    with pytest.raises(SinklabError, match="already holds"):
        write_results(result, folder, figures=False)
    write_results(result, folder, figures=False, overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinklabError, match="file"):
        write_results(result, str(tmp_path / "file"), figures=False)


def test_the_load_verdict_is_remembered_and_rechecked_when_the_dtype_changes(llama):
    from sinklab.measure import load

    sinklab.measure(llama, input_ids=_ids(1, 8), progress=False)
    assert load.remembered_route(llama) is not None
    llama.to(torch.bfloat16)
    try:
        assert load.remembered_route(llama) is None  # another dtype: the checks run again
        sinklab.measure(llama, input_ids=_ids(1, 8), dtype="bfloat16", progress=False)
        assert load.remembered_route(llama) is not None  # remembered for bfloat16 now
    finally:
        llama.to(torch.float32)


def test_xlm_built_non_causal_is_refused_as_not_a_causal_lm():
    from transformers import XLMConfig, XLMWithLMHeadModel

    torch.manual_seed(0)
    model = XLMWithLMHeadModel(XLMConfig(vocab_size=64, emb_dim=32, n_layers=2, n_heads=4, causal=False)).eval()
    with pytest.raises(SinklabError, match="not a causal LM"):
        sinklab.measure(model, input_ids=_ids(2, 8, high=64), progress=False)


def test_musicgen_decoder_is_refused_by_name_not_a_crash():
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    torch.manual_seed(0)
    model = MusicgenForCausalLM(MusicgenDecoderConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                                      num_attention_heads=4, ffn_dim=64, num_codebooks=2)).eval()
    with pytest.raises(SinklabError, match="(?i)musicgen"):
        sinklab.measure(model, input_ids=_ids(2, 8, high=64), progress=False)
