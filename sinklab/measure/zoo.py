"""The architecture zoo: every causal-LM type of the installed transformers, built tiny and random,
measured through `sinklab.load.load_model` as `--model` does, and compared with alpha from eager
`output_attentions=True` computed here, plus the logits under capture against the model's own.

A type ends as one of: exact (max alpha difference <= TOLERANCE, logits unchanged), refused (the
loader's one-line reason), not buildable (no tiny config of it builds), or the two failures the zoo
exists to find: WRONG (a number differs, or the model's output changed) and CRASH.
"""
from __future__ import annotations

import math
import tempfile
import traceback
from dataclasses import dataclass

import torch

from ..errors import SinklabError
from . import metrics, tiny

TOLERANCE = 1e-4
T, BATCH = tiny.T, 2
SHARPEN = 16.0


@dataclass
class ZooRow:
    model_type: str
    status: str          # exact | refused | not buildable | no reference | WRONG | CRASH
    detail: str = ""
    max_alpha_diff: float | None = None
    max_logit_diff: float | None = None
    layers: int | None = None


# query and key projections, and the fused ones that hold them (values scale too, harmlessly)
SHARPENED = ("q_proj", "k_proj", "query", "key", "q", "k", "wq", "wk", "q_b_proj", "kv_b_proj", "query_key_value",
             "c_attn", "qkv_proj", "Wqkv", "qkv", "W_pack", "in_proj")


def sharpen(model: torch.nn.Module, factor: float = SHARPEN) -> None:
    """Query and key weights x factor (scores x factor^2), softcaps at 3: small random models hide
    biases and caps, whose effect grows with the scores."""
    with torch.no_grad():
        for name, module in model.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(module, torch.nn.Linear) and leaf in SHARPENED:
                module.weight.mul_(factor)
    for cfg in tiny.all_configs(model.config):
        for field in ("attn_logit_softcapping", "final_logit_softcapping"):
            if getattr(cfg, field, None):
                setattr(cfg, field, 3.0)


def check_type(model_type: str, sharpened: bool = False) -> ZooRow:
    """Build, save, load as `--model` does, and compare; every outcome is a row, never an exception."""
    with tempfile.TemporaryDirectory() as folder:
        model, why = tiny.build_tiny(model_type, folder, prepare=sharpen if sharpened else None)
        if model is None:
            return ZooRow(model_type, "not buildable", why)
        return _compare(model_type, model, folder)


def check_both(model_type: str) -> tuple[ZooRow, ZooRow]:
    """The plain and the sharpened row from one build: the same weights, sharpened after the first."""
    with tempfile.TemporaryDirectory() as plain, tempfile.TemporaryDirectory() as sharp:
        model, why = tiny.build_tiny(model_type, plain)
        if model is None:
            return ZooRow(model_type, "not buildable", why), ZooRow(model_type, "not buildable", why)
        first = _compare(model_type, model, plain)
        try:
            sharpen(model)
            tiny.save(model, sharp)
        except Exception as e:  # the sharpened copy failing to save is this row's status
            return first, ZooRow(model_type, "not buildable", "sharpened save_pretrained: " + _first_line(e))
        return first, _compare(model_type, model, sharp)


def _compare(model_type, model, folder) -> ZooRow:
    from .load import load_model
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
        side = capture.AttentionRecorder(keep_map_upto=0)
        side.seq_len = ids.shape[1]
        with _quiet(), torch.no_grad(), capture.recording(side):
            captured_logits = loaded.model(input_ids=ids, use_cache=False).logits.float()
    except SinklabError as e:
        return ZooRow(model_type, "refused", str(e).replace(folder, model_type))
    except Exception as e:  # a crash inside measurement is exactly what the zoo reports
        return ZooRow(model_type, "CRASH", "measure: " + _first_line(e) + _where(e))
    try:
        reference, own_logits = eager_reference(folder, ids)
    except Exception as e:  # the zoo's own eager reference failing is no verdict on sinklab
        return ZooRow(model_type, "no reference", "eager output_attentions: " + _first_line(e))
    return _verdict(model_type, loaded, rec, reference, float((captured_logits - own_logits).abs().max()))


def _verdict(model_type, loaded, rec, reference, logit_diff) -> ZooRow:
    """Each captured layer against the eager weights of the same call. A layer with learned sinks
    is compared in the convention its eager weights show: rows summing to 1 are the output-gate
    convention (granite_swa: compare alpha over the real tokens only), rows short of 1 the
    extra-column one (gpt-oss: compare alpha, and alpha over tokens only with the rows renormalised)."""
    caps = [rec.layers[k] for k in sorted(rec.layers)]
    notes = [loaded.info.get("capture_route", "")]
    if len(caps) != len(reference):
        return ZooRow(model_type, "WRONG", f"{len(caps)} layers captured, eager has {len(reference)}",
                      None, logit_diff, len(caps))
    diffs, conventions = [], set()
    for cap, weights in zip(caps, reference):
        rows = weights.sum(-1)
        renormalised = metrics.importance_scores(weights / rows.unsqueeze(-1))
        if cap.alpha_tokens_only is None:
            diffs.append(float((cap.alpha.float().cpu() - metrics.importance_scores(weights)).abs().max()))
            continue
        tok = float((cap.alpha_tokens_only.float().cpu() - renormalised).abs().max())
        if bool(((rows - 1).abs() < 1e-5).all()):
            conventions.add("output gate")
            diffs.append(tok)
        else:
            conventions.add("extra column")
            diffs.append(max(tok, float((cap.alpha.float().cpu() - metrics.importance_scores(weights)).abs().max())))
    if conventions:
        notes.append("learned sinks as " + " and ".join(sorted(conventions)) + "; Sink* and alpha over tokens only")
    if any(p for _, p in rec.passes.values()):
        notes.append(f"{len(caps)} passes over {len({l for l, _ in rec.passes.values()})} layers")
    if rec.other_calls:
        notes.append(f"{rec.other_calls} attention calls over other axes computed, not measured")
    worst = max(diffs) if diffs else math.nan
    ok = worst <= TOLERANCE and logit_diff <= TOLERANCE * 10
    detail = "; ".join(n for n in notes if n)
    return ZooRow(model_type, "exact" if ok else "WRONG", detail if ok else "alpha or logits differ; " + detail,
                  worst, logit_diff, len(caps))


def _ids(model) -> torch.Tensor:
    return tiny.ids_for(model, BATCH)


def eager_reference(folder, ids):
    """The weights of every attention call from eager output_attentions=True, and the model's logits,
    from the saved model loaded afresh as eager (some models fix their attention classes when built)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from .load import _causal_lm_class

    with _quiet(), torch.no_grad():
        cls = _causal_lm_class(AutoConfig.from_pretrained(folder)) or AutoModelForCausalLM
        model = cls.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
        out = model(input_ids=ids, output_attentions=True, use_cache=False)
    T = ids.shape[1]  # token attention only: linear-attention layers report states of other shapes
    attentions = [a.float() for a in (out.attentions or ())
                  if a is not None and a.dim() == 4 and a.shape[-2:] == (T, T)]
    return attentions, out.logits.float()


_quiet = tiny.quiet
_first_line = tiny.first_line


def _where(e: Exception) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    return f" ({frames[-1].filename.rsplit('/', 2)[-1]}:{frames[-1].lineno})" if frames else ""


def causal_lm_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def run(types: list[str], sharpened: bool, progress=None) -> tuple[list[ZooRow], list[ZooRow] | None]:
    """Rows for every type, plain, and sharpened too when asked (from the same builds)."""
    plain, sharp = [], []
    for t in types:
        if sharpened:
            a, b = check_both(t)
            plain.append(a)
            sharp.append(b)
        else:
            plain.append(check_type(t))
        if progress:
            progress(_worse(plain[-1], sharp[-1] if sharpened else None))
    return plain, (sharp if sharpened else None)


# the statuses paragraph of docs/architectures.md
ZOO_STATUSES = (
    'Statuses: **exact** (alpha and logits as above); **refused** (sinklab declines in one line, the reason '
    'is given); **not buildable** (no tiny config of the type builds and runs its own forward; the detail '
    'says whether its default config builds at all); **WRONG** and **CRASH** are what this table exists to '
    'catch. The detail names the capture route (AttentionInterface with no mask where the pattern is plain '
    "causal; AttentionInterface with eager's full mask for a model that reads the mask itself; or eager "
    'output_attentions through module hooks), learned sinks and their convention (an extra softmax column as '
    'gpt-oss, an output gate as granite_swa; both report Sink* and alpha over the real tokens only), layers '
    'measured per pass, and attention calls over other axes that are computed exactly but not measured.'
)


def zoo_markdown(rows: list[ZooRow], sharpened_rows: list[ZooRow] | None, versions: dict, command: str) -> str:
    """docs/architectures.md: one row per model type, the status, and the largest alpha difference."""
    by_type = {r.model_type: r for r in sharpened_rows or []}
    counts: dict[str, int] = {}
    for r in rows:
        worst = _worse(r, by_type.get(r.model_type))
        counts[worst.status] = counts.get(worst.status, 0) + 1
    lines = ["# Architectures: what sinklab measures exactly, and what it refuses", "",
             f"Every causal-LM model type of transformers {versions.get('transformers')} "
             f"(torch {versions.get('torch')}), "
             f"built tiny and random (float32, T = {T}, batch {BATCH}), loaded as `--model` loads a folder, and "
             f"compared with alpha from eager `output_attentions=True`; the logits under capture are compared "
             f"with the model's own. 'exact' means both within {TOLERANCE:g} (logits {TOLERANCE * 10:g})"
             + (", in plain and in sharpened form (query/key weights x16, softcaps at 3)" if sharpened_rows else "")
             + ".",
             "", ZOO_STATUSES, "", f"Made by `{command}`.", "",
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
