"""Checkpoints (safetensors + sinklab.json) and Hugging Face export/import.

A checkpoint folder loads from itself alone: `sinklab.json` holds the resolved config.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import torch

from ..config import ModelConfig
from ..errors import SinklabError
from .decoder import SinkLM

FORMAT = 1
# a run folder's checkpoints, newest first; ckpt.old is where older versions left the previous
# checkpoint between two renames. A checkpoint is complete once its COMPLETE marker is written.
CHECKPOINT_NAMES = ("ckpt", "ckpt.prev", "ckpt.old")


def complete_checkpoints(run_folder: Path) -> list[Path]:
    """The complete checkpoints of a run folder, newest first (a kill mid-write leaves no COMPLETE)."""
    return [run_folder / n for n in CHECKPOINT_NAMES if (run_folder / n / "COMPLETE").exists()]


def is_run_folder(folder: Path) -> bool:
    """A `sinklab train` output folder: its config.json is the run's (model, train, world_size), not
    a Hugging Face model's."""
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return (folder / "metrics.jsonl").is_file()
    return isinstance(cfg, dict) and {"model", "train", "world_size"} <= cfg.keys()


def write_atomically(folder: str | os.PathLike, fill: Callable[[Path], None], keep_previous: str | None = None) -> Path:
    """Write a folder whole or not at all: `fill(tmp)` writes FOLDER.tmp, which is then renamed into
    place, so a kill mid-write leaves the last folder whole. The folder it replaces is kept as
    `keep_previous` (a fallback, e.g. ckpt.prev), or removed when that is None."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fill(tmp)
    old = folder.with_name(keep_previous or folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    if keep_previous is None:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def write_model_files(folder: Path, model: SinkLM, extra: dict | None = None, tokenizer_file=None) -> None:
    """model.safetensors, sinklab.json (format, resolved config, `extra`) and tokenizer.json, if any."""
    from safetensors.torch import save_model as st_save

    st_save(model, str(folder / "model.safetensors"))
    meta = {"format": FORMAT, "model": model.cfg.to_dict(), **(extra or {})}
    (folder / "sinklab.json").write_text(json.dumps(meta, indent=1))
    if tokenizer_file:
        shutil.copy(tokenizer_file, folder / "tokenizer.json")


def save_model(model: SinkLM, folder: str | os.PathLike, extra: dict | None = None, tokenizer_file=None) -> Path:
    """Write weights and config atomically (see `write_atomically`)."""
    return write_atomically(folder, lambda tmp: write_model_files(tmp, model, extra, tokenizer_file))


def load_sinklm(folder: str | os.PathLike, device="cpu", dtype=torch.float32) -> SinkLM:
    from safetensors import SafetensorError
    from safetensors.torch import load_model as st_load

    folder = Path(folder)
    try:
        meta = json.loads((folder / "sinklab.json").read_text())
        cfg = ModelConfig.from_dict(meta["model"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise SinklabError(f"corrupt sinklab checkpoint {folder}: bad sinklab.json ({type(e).__name__})") from None
    model = SinkLM(cfg)
    try:
        st_load(model, str(folder / "model.safetensors"), strict=True)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise SinklabError(f"corrupt sinklab checkpoint {folder}: model.safetensors does not load "
                           f"({str(e).splitlines()[0][:120]})") from None
    return model.to(device=device, dtype=dtype).eval()


# -- Hugging Face parity -----------------------------------------------------------------------

# what LlamaForCausalLM carries; every other field must be at its default or export refuses (an
# allow-list: a new field, such as a sparse pattern, is refused until export learns to carry it)
HF_CARRIED = ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ffn", "max_seq_len", "rope_theta",
              "norm_eps", "tie_embeddings",
              "init_std")  # the initialisation only: trained weights carry what it did


def hf_export_refusal(cfg: ModelConfig) -> str | None:
    """Why this config does not export to LlamaForCausalLM (every field off its default), or None."""
    default = ModelConfig()
    off = [(f.name, getattr(cfg, f.name), getattr(default, f.name)) for f in dataclasses.fields(ModelConfig)
           if f.name not in HF_CARRIED and getattr(cfg, f.name) != getattr(default, f.name)]
    if not off:
        return None
    return ("only the LLaMA-shaped config exports to LlamaForCausalLM: "
            + ", ".join(f"{name}={value!r} (needs {needs!r})" for name, value, needs in off))


def _check_llama_compatible(cfg: ModelConfig) -> None:
    why = hf_export_refusal(cfg)
    if why:
        raise SinklabError(why)


def _name_map(n_layers: int) -> dict[str, str]:
    m = {"embed.weight": "model.embed_tokens.weight", "final_norm.weight": "model.norm.weight",
         "lm_head.weight": "lm_head.weight"}
    for i in range(n_layers):
        p, h = f"layers.{i}.", f"model.layers.{i}."
        m.update({p + "attn_norm.weight": h + "input_layernorm.weight",
                  p + "ffn_norm.weight": h + "post_attention_layernorm.weight",
                  p + "ffn.gate.weight": h + "mlp.gate_proj.weight", p + "ffn.up.weight": h + "mlp.up_proj.weight",
                  p + "ffn.down.weight": h + "mlp.down_proj.weight"})
        for x in "qkvo":
            m[p + f"attn.{x}_proj.weight"] = h + f"self_attn.{x}_proj.weight"
    return m


def to_hf_llama(model: SinkLM):
    """A `LlamaForCausalLM` with the same weights (the default LLaMA-shaped config only)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = model.cfg
    _check_llama_compatible(cfg)
    hf_cfg = LlamaConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.d_ffn,
                         num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                         num_key_value_heads=cfg.kv_heads, max_position_embeddings=cfg.max_seq_len,
                         rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
                         tie_word_embeddings=cfg.tie_embeddings, attention_bias=False, mlp_bias=False)
    hf = LlamaForCausalLM(hf_cfg)
    names = _name_map(cfg.n_layers)
    state = {names[k]: v for k, v in model.state_dict().items() if k in names}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (cfg.tie_embeddings and m == "lm_head.weight")]
    if missing or unexpected:
        raise SinklabError(f"HF export mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return hf.to(next(model.parameters()).dtype)


def export_hf(model: SinkLM, folder) -> Path:
    hf = to_hf_llama(model)
    hf.save_pretrained(folder, safe_serialization=True)
    return Path(folder)


def from_hf_llama(hf) -> SinkLM:
    """Import a `LlamaForCausalLM` (no biases, no rope scaling) as a SinkLM."""
    c = hf.config
    if getattr(c, "model_type", "") != "llama":
        raise SinklabError(f"only LLaMA models import into SinkLM (got {getattr(c, 'model_type', '?')})")
    theta = getattr(c, "rope_theta", None) or (getattr(c, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    cfg = ModelConfig(vocab_size=c.vocab_size, d_model=c.hidden_size, n_layers=c.num_hidden_layers,
                      n_heads=c.num_attention_heads, n_kv_heads=c.num_key_value_heads, d_ffn=c.intermediate_size,
                      max_seq_len=c.max_position_embeddings, norm_eps=c.rms_norm_eps, rope_theta=float(theta),
                      tie_embeddings=bool(getattr(c, "tie_word_embeddings", False)))
    model = SinkLM(cfg)
    inverse = {v: k for k, v in _name_map(cfg.n_layers).items()}
    state = {inverse[k]: v for k, v in hf.state_dict().items() if k in inverse}
    model.load_state_dict(state, strict=not cfg.tie_embeddings)
    return model
