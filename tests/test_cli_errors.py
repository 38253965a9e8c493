"""Bad input: one line naming the problem, a non-zero exit, no traceback."""
import json
import subprocess
import sys

import pytest

from sinklab.cli import main


def run_cli(capsys, *args):
    code = main(["measure", "--no-figures", *args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    from transformers import AutoModelForCausalLM, BertConfig

    folder = tmp_path_factory.mktemp("bert")
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    return folder


def check_one_line(code, err, *words):
    assert code != 0
    errors = [line for line in err if line.startswith("sinklab: error:")]
    assert len(errors) == 1, err
    assert not any("Traceback" in line for line in err)
    for w in words:
        assert w in errors[0], errors[0]


def test_missing_model_path(capsys, tmp_path):
    check_one_line(*run_cli(capsys, "--model", str(tmp_path / "no" / "such" / "model")), "does not exist")


def test_non_causal_model(capsys, bert_folder):
    check_one_line(*run_cli(capsys, "--model", str(bert_folder), "--probe", "random", "--n", "2", "--T", "8"),
                   "not a causal LM")


def test_corrupt_gguf(capsys, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    check_one_line(*run_cli(capsys, "--model", str(bad)), "GGUF", str(bad))


def test_empty_probe_file(capsys, tmp_path, tiny_hf_folders):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    check_one_line(*run_cli(capsys, "--model", str(tiny_hf_folders["llama"]), "--probe", str(empty)), "empty")


def test_too_short_probe_file(capsys, tmp_path):
    short = tmp_path / "short.jsonl"
    short.write_text('{"text": "hi"}\n')
    from sinklab.measure.probes import build_inputs, byte_tokenizer
    from sinklab.errors import SinklabError

    with pytest.raises(SinklabError, match="too short"):
        build_inputs(str(short), byte_tokenizer(), 4, 64)


def test_T_beyond_context(capsys, tiny_hf_folders):
    check_one_line(*run_cli(capsys, "--model", str(tiny_hf_folders["llama"]), "--probe", "random",
                            "--T", "300"), "T=300", "context of 256")


@pytest.mark.parametrize("eps", ["0", "1.5", "-0.2"])
def test_eps_outside_unit_interval(capsys, tiny_hf_folders, eps):
    check_one_line(*run_cli(capsys, "--model", str(tiny_hf_folders["llama"]), "--eps", eps), "--eps", "(0, 1)")


def test_unknown_probe(capsys, tiny_hf_folders):
    check_one_line(*run_cli(capsys, "--model", str(tiny_hf_folders["llama"]), "--probe", "banana"),
                   "unknown --probe", "banana")


def test_unknown_option_value(capsys):
    with pytest.raises(SystemExit) as e:
        main(["measure", "--bos", "sometimes"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sometimes" in err[0]


def test_process_exit_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sinklab.cli", "measure", "--model", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("sinklab: error: model path does not exist")


def test_gguf_cache_key_is_the_files_content(tmp_path, monkeypatch):
    from sinklab.measure.load import gguf_content_key

    monkeypatch.setenv("SINKLAB_CACHE", str(tmp_path / "cache"))
    a, b, c = (tmp_path / n for n in ("a.gguf", "b.gguf", "c.gguf"))
    a.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    b.write_bytes(a.read_bytes())
    c.write_bytes(a.read_bytes()[:-1] + b"x")
    assert gguf_content_key(a) == gguf_content_key(b) != gguf_content_key(c)
    assert len(json.loads((tmp_path / "cache" / "gguf" / "content-index.json").read_text())) == 3
