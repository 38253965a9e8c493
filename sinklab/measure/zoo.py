"""The architecture zoo: every causal-LM type of the installed transformers, built tiny and random,
measured through `sinklab.load.load_model` as `--model` does, and compared with alpha from eager
`output_attentions=True` computed here, plus the logits under capture against the model's own.

A type ends as one of: exact (max alpha difference <= TOLERANCE, logits unchanged), refused (the
loader's one-line reason), not buildable (no tiny config of it builds), or the two failures the zoo
exists to find: WRONG (a number differs, or the model's output changed) and CRASH.
"""
from __future__ import annotations

import contextlib
import io
import math
import tempfile
import traceback
import warnings
from dataclasses import dataclass

import torch

from ..errors import SinklabError

TOLERANCE = 1e-4
T, BATCH = 32, 2
_SIZES = {  # config fields shrunk for a tiny model, by name, wherever they appear (sub-configs too)
    "hidden_size": 64, "d_model": 64, "n_embd": 64, "n_embed": 64, "dim": 64, "embed_dim": 64, "word_embed_proj_dim": 64,
    "num_hidden_layers": 2, "n_layer": 2, "n_layers": 2, "num_layers": 2, "decoder_layers": 2, "encoder_layers": 2,
    "num_attention_heads": 4, "n_head": 4, "n_heads": 4, "decoder_attention_heads": 4, "encoder_attention_heads": 4,
    "num_key_value_heads": 2, "n_kv_heads": 2, "num_kv_heads": 2, "multi_query_group_num": 2,
    "intermediate_size": 128, "ffn_dim": 128, "n_inner": 128, "decoder_ffn_dim": 128, "encoder_ffn_dim": 128,
    "d_ff": 128, "ffn_hidden_size": 128, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32,
    "num_experts": 4, "n_routed_experts": 4, "num_local_experts": 4, "moe_num_experts": 4,
    "num_experts_per_tok": 2, "top_k": 2, "moe_topk": 2, "n_shared_experts": 1,
    "head_dim": 16, "kv_lora_rank": 16, "q_lora_rank": 32, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8,
    "v_head_dim": 16, "index_head_dim": 16, "index_n_heads": 2,
}


@dataclass
class ZooRow:
    model_type: str
    status: str          # exact | refused | not buildable | no reference | WRONG | CRASH
    detail: str = ""
    max_alpha_diff: float | None = None
    max_logit_diff: float | None = None
    layers: int | None = None


def tiny_config(model_type: str):
    """The type's default config rebuilt with small sizes passed to its constructor, so the fields it
    derives from them (head dims, layer-type lists, rope sizes) are derived again."""
    from transformers import AutoConfig, PretrainedConfig

    default = AutoConfig.for_model(model_type)
    kwargs = _small_sizes(default)
    for name, value in vars(default).items():
        if isinstance(value, PretrainedConfig):  # text / vision sub-configs, rebuilt the same way
            kwargs[name] = {**value.to_dict(), **_small_sizes(value)}
            kwargs[name].pop("layer_types", None)
    for name in ("layer_types", "mlp_only_layers", "block_types", "layers_block_type", "hybrid_override_pattern"):
        value = getattr(default, name, None)
        n = kwargs.get("num_hidden_layers", getattr(default, "num_hidden_layers", None))
        if isinstance(value, (list, str)) and n and len(value) > n:
            kwargs[name] = value[:n]
    try:
        cfg = AutoConfig.for_model(model_type, **kwargs)
    except Exception:  # a constructor that rejects the small sizes: shrink the default in place instead
        cfg = default
        _shrink(cfg, depth=0)
    if getattr(cfg, "max_position_embeddings", None) and cfg.max_position_embeddings < T:
        cfg.max_position_embeddings = 2 * T
    return cfg


def _shrink(cfg, depth: int) -> None:
    from transformers import PretrainedConfig

    for name, value in list(vars(cfg).items()):
        if isinstance(value, PretrainedConfig) and depth < 2:
            _shrink(value, depth + 1)
        elif name in _SIZES and isinstance(value, int) and not isinstance(value, bool) and value > _SIZES[name]:
            setattr(cfg, name, _SIZES[name])


def _small_sizes(cfg) -> dict:
    return {name: size for name, size in _SIZES.items()
            if isinstance(getattr(cfg, name, None), int) and not isinstance(getattr(cfg, name), bool)
            and getattr(cfg, name) > size}


def sharpen(model: torch.nn.Module, factor: float = 4.0) -> None:
    """Query and key weights x factor (scores x factor^2), softcaps at 3: small random models hide
    biases and caps, whose effect grows with the scores."""
    with torch.no_grad():
        for name, module in model.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(module, torch.nn.Linear) and leaf in ("q_proj", "k_proj", "query", "key", "q", "k", "wq", "wk"):
                module.weight.mul_(factor)
    for cfg in (model.config, getattr(model.config, "text_config", None)):
        if cfg is None:
            continue
        for field in ("attn_logit_softcapping", "final_logit_softcapping"):
            if getattr(cfg, field, None):
                setattr(cfg, field, 3.0)


def check_type(model_type: str, sharpened: bool = False) -> ZooRow:
    """Build, save, load as `--model` does, and compare; every outcome is a row, never an exception."""
    from transformers import AutoModelForCausalLM

    try:
        with _quiet():
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(tiny_config(model_type), dtype=torch.float32).eval()
            if sharpened:
                sharpen(model)
    except Exception as e:  # any failure to build a tiny config is this row's status, not the zoo's
        return ZooRow(model_type, "not buildable", _first_line(e))
    try:  # the tiny model must run on its own before sinklab is asked to measure it
        with _quiet(), torch.no_grad():
            model(input_ids=_ids(model))
    except Exception as e:  # a tiny config whose own forward fails says nothing about sinklab
        return ZooRow(model_type, "not buildable", "its own forward fails at tiny size: " + _first_line(e))
    with tempfile.TemporaryDirectory() as folder:
        try:
            with _quiet():
                model.save_pretrained(folder)
        except Exception as e:  # a model that cannot be saved cannot be given as --model either
            return ZooRow(model_type, "not buildable", "save_pretrained: " + _first_line(e))
        return _compare(model_type, model, folder)


def _compare(model_type, model, folder) -> ZooRow:
    from ..load import load_model
    from . import capture

    ids = _ids(model)
    try:
        with _quiet():
            loaded = load_model(folder)
    except SinklabError as e:
        return ZooRow(model_type, "refused", str(e).replace(folder, model_type))
    except Exception as e:  # the loader must never raise anything else: recorded as a crash
        return ZooRow(model_type, "CRASH", "load: " + _first_line(e) + _where(e))
    try:
        rec = capture.AttentionRecorder(keep_map_upto=0)
        with _quiet():
            loaded.capture_forward(ids, rec)
        got = {key: c.alpha for key, c in rec.layers.items()}
        with _quiet(), torch.no_grad(), capture.recording(capture.AttentionRecorder(keep_map_upto=0)):
            captured_logits = loaded.model(input_ids=ids).logits.float()
    except SinklabError as e:
        return ZooRow(model_type, "refused", str(e).replace(folder, model_type))
    except Exception as e:  # a crash inside measurement is exactly what the zoo reports
        return ZooRow(model_type, "CRASH", "measure: " + _first_line(e) + _where(e))
    try:
        reference, own_logits = eager_reference(folder, ids)
    except Exception as e:  # the zoo's own eager reference failing is no verdict on sinklab
        return ZooRow(model_type, "no reference", "eager output_attentions: " + _first_line(e))
    logit_diff = float((captured_logits - own_logits).abs().max())
    if len(got) != len(reference):
        return ZooRow(model_type, "WRONG", f"{len(got)} layers captured, eager has {len(reference)}",
                      None, logit_diff, len(got))
    diffs = [float((a.float().cpu() - r).abs().max()) for a, r in zip([got[k] for k in sorted(got)], reference)]
    worst = max(diffs) if diffs else math.nan
    ok = worst <= TOLERANCE and logit_diff <= TOLERANCE * 10
    return ZooRow(model_type, "exact" if ok else "WRONG", "" if ok else "alpha or logits differ", worst, logit_diff,
                  len(got))


def _ids(model) -> torch.Tensor:
    vocab = int(getattr(model.config.get_text_config(), "vocab_size", 100) or 100)
    return torch.randint(3, max(4, min(vocab, 1000)), (BATCH, T), generator=torch.Generator().manual_seed(1))


def eager_reference(folder, ids):
    """alpha of every attention layer from eager output_attentions=True, and the model's logits, from
    the saved model loaded afresh as eager (some models fix their attention classes when built)."""
    from transformers import AutoModelForCausalLM

    from . import metrics

    with _quiet(), torch.no_grad():
        model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
        out = model(input_ids=ids, output_attentions=True)
    attentions = [a for a in (out.attentions or ()) if a is not None and a.dim() == 4]
    return [metrics.importance_scores(a.float()) for a in attentions], out.logits.float()


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _where(e: Exception) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    return f" ({frames[-1].filename.rsplit('/', 2)[-1]}:{frames[-1].lineno})" if frames else ""


def causal_lm_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def run(types: list[str], sharpened: bool, progress=None) -> list[ZooRow]:
    rows = []
    for t in types:
        rows.append(check_type(t, sharpened))
        if progress:
            progress(rows[-1])
    return rows


def markdown(rows: list[ZooRow], sharpened_rows: list[ZooRow] | None, versions: dict, command: str) -> str:
    """docs/architectures.md: one row per model type, the status, and the largest alpha difference."""
    by_type = {r.model_type: r for r in sharpened_rows or []}
    counts: dict[str, int] = {}
    for r in rows:
        worst = _worse(r, by_type.get(r.model_type))
        counts[worst.status] = counts.get(worst.status, 0) + 1
    lines = ["# Architectures: what sinklab measures exactly, and what it refuses", "",
             f"Every causal-LM model type of transformers {versions.get('transformers')} (torch {versions.get('torch')}), "
             f"built tiny and random (float32, T = {T}, batch {BATCH}), loaded as `--model` loads a folder, and "
             f"compared with alpha from eager `output_attentions=True`; the logits under capture are compared "
             f"with the model's own. 'exact' means both within {TOLERANCE:g} (logits {TOLERANCE * 10:g})"
             + (", in plain and in sharpened form (query/key weights x4, softcaps at 3)" if sharpened_rows else "") + ".",
             "", f"Made by `{command}`.", "",
             "Summary: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda x: -x[1])) + ".", "",
             "| model type | status | max alpha diff | max logit diff | layers | detail |", "|---|---|---|---|---|---|"]
    for r in rows:
        w = _worse(r, by_type.get(r.model_type))
        fmt = lambda x: "" if x is None else f"{x:.1e}"
        lines.append(f"| {r.model_type} | {w.status} | {fmt(w.max_alpha_diff)} | {fmt(w.max_logit_diff)} | "
                     f"{w.layers or ''} | {w.detail.replace('|', '/')[:220]} |")
    return "\n".join(lines) + "\n"


_RANK = {"CRASH": 0, "WRONG": 1, "no reference": 2, "not buildable": 3, "refused": 4, "exact": 5}


def _worse(a: ZooRow, b: ZooRow | None) -> ZooRow:
    if b is None:
        return a
    return b if _RANK.get(b.status, 0) < _RANK.get(a.status, 0) else a
