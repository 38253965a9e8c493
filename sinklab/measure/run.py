"""`sinklab.measure`: load a model, batch the probe, stream through layers, return tidy tables."""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..errors import SinklabError
from ..tokens import check_token_ids, embedding_rows
from ..kernels import attention_sums
from . import capture, metrics, probes, sink_tokens

DEFAULT_T = 64
DEFAULT_EPS = 0.3
DEFAULT_N = 100


@dataclass
class _Accumulator:
    """Running sums for one T: everything the tables need, O(layers * heads * T) memory."""
    n_layers: int
    n_heads: int
    T: int
    eps: Sequence[float]
    K: int
    n: int = 0
    alpha_sum: torch.Tensor = None       # (L, H, T); (L, H, K) once on the host
    exceed: torch.Tensor = None          # (E, L, H, T) samples with alpha > eps; (E, L, H, K) on the host
    exceed_by_position: torch.Tensor = None  # (E, T) exceed averaged over layers and heads (host)
    alpha_by_position: torch.Tensor = None   # (T,) alpha_sum averaged over layers and heads (host)
    first_k: list = field(default_factory=list)   # per batch (B, L, H, K)
    extra: list = field(default_factory=list)     # per batch (B, L, H, n_extra)
    first_k_mask_aware: list = field(default_factory=list)  # per batch (B, L, H, K), sparse patterns only
    first_k_tokens_only: list = field(default_factory=list)  # learned sinks: alpha renormalised over real tokens
    branch_first: dict = field(default_factory=dict)  # NSA branch -> per batch (B, L, H) alpha of position 1
    weight_first_k: list = field(default_factory=list)  # unnormalised attention: per batch (B, L, H, K) raw weights
    row_mass: list = field(default_factory=list)        # unnormalised attention: per batch (B, L, H)
    diag_sum: dict = field(default_factory=dict)  # name -> (L,) weighted by samples
    attention_maps: torch.Tensor | None = None    # (L, H, T, T) of sample 0
    passes: dict = field(default_factory=dict)    # capture index -> (model layer, pass), for shared blocks
    tokens_first: sink_tokens.TokenSums | None = None  # by token id, position 1 (on the device until to_host)
    tokens_later: sink_tokens.TokenSums | None = None  # by token id, positions 2..T/2

    def add(self, rec: capture.AttentionRecorder, ids: torch.Tensor | None = None) -> None:
        layers = sorted(rec.layers)
        caps = [rec.layers[l] for l in layers]
        if not self.passes:
            self.passes = dict(rec.passes)
        dev = caps[0].alpha.device  # reduce where the layers ran: the host gets (L, H, T) sums, not (B, L, H, T)
        alpha = torch.stack([c.alpha.to(dev) for c in caps], dim=1).double()  # (B, L, H, T)
        B = alpha.shape[0]
        if self.alpha_sum is None:
            self.alpha_sum = torch.zeros(alpha.shape[1:], dtype=torch.float64, device=dev)
            self.exceed = torch.zeros((len(self.eps),) + alpha.shape[1:], dtype=torch.int64, device=dev)
        self.alpha_sum += alpha.sum(0)
        for e, eps in enumerate(self.eps):
            self.exceed[e] += metrics.is_sink(alpha, eps).sum(0)
        self.first_k.append(alpha[..., : self.K].float().cpu())
        if ids is not None:
            self._add_tokens(alpha, ids)
        self._add_variants(rec, caps)
        self._add_diagnostics(rec, caps, B)
        if self.attention_maps is None and caps[0].attention_map is not None:
            self.attention_maps = torch.stack([c.attention_map.cpu() for c in caps])
        self.n += B

    def _add_tokens(self, alpha: torch.Tensor, ids: torch.Tensor) -> None:
        """Sums keyed by token id, where alpha lives (see sink_tokens: position 1 apart, later up to T/2)."""
        if self.tokens_first is None:
            self.tokens_first = sink_tokens.empty(len(self.eps), self.T, alpha.device)
            self.tokens_later = sink_tokens.empty(len(self.eps), self.T, alpha.device)
        last = max(1, self.T // 2)
        self.tokens_first = sink_tokens.add_batch(self.tokens_first, alpha[..., :1], ids[:, :1], self.eps, first=1)
        self.tokens_later = sink_tokens.add_batch(self.tokens_later, alpha[..., 1:last], ids[:, 1:last], self.eps,
                                                  first=2)

    def _add_variants(self, rec: capture.AttentionRecorder, caps: list) -> None:
        """What only some attentions record: mask-aware alpha, NSA branches, raw weights, added keys."""
        if any(c.alpha_mask_aware is not None for c in caps):  # a plain causal layer's mask-aware alpha is alpha
            ma = torch.stack([(c.alpha if c.alpha_mask_aware is None else c.alpha_mask_aware).expand_as(c.alpha).cpu()
                              for c in caps], dim=1)
            self.first_k_mask_aware.append(ma[..., : self.K].float())
        for name, by_layer in rec.branches.items():
            alphas = [(c.alpha_mask_aware if c.alpha_mask_aware is not None else c.alpha)
                      .expand_as(c.alpha)[..., 0].cpu() for _, c in sorted(by_layer.items())]
            self.branch_first.setdefault(name, []).append(torch.stack(alphas, dim=1).float())
        if caps[0].weight_raw is not None:
            self.weight_first_k.append(torch.stack([c.weight_raw[..., : self.K].cpu() for c in caps], dim=1).float())
            self.row_mass.append(torch.stack([c.row_mass.cpu() for c in caps], dim=1).float())
        if caps[0].alpha_extra is not None:
            self.extra.append(torch.stack([c.alpha_extra.cpu() for c in caps], dim=1).float())
        if all(c.alpha_tokens_only is not None for c in caps):
            self.first_k_tokens_only.append(
                torch.stack([c.alpha_tokens_only[..., : self.K].cpu() for c in caps], 1).float())

    def _add_diagnostics(self, rec: capture.AttentionRecorder, caps: list, B: int) -> None:
        """Per-layer norms and q.k terms, summed weighted by the batch's samples."""
        per_layer = {
            "hidden_ratio": [rec.hidden_ratio.get(i, float("nan")) for i in range(len(caps))],
            "key_ratio": [c.key_ratio for c in caps],
            "value_ratio": [c.value_ratio for c in caps],
        }
        for name in ("normprod_first", "normprod_rest", "cos_first", "cos_rest"):
            per_layer[name] = [c.qk[name] for c in caps]
        for name, values in per_layer.items():
            t = torch.tensor([float(v) for v in values], dtype=torch.float64) * B
            self.diag_sum[name] = self.diag_sum.get(name, 0) + t

    def to_host(self) -> "_Accumulator":
        """Reduce over layers and heads where the sums live, then move only what the tables read: the
        (E, T) and (T,) curves and the first K positions per head (at T = 32768 the full (E, L, H, T)
        counts are 70 MB per eps, whose host copy and reduction cost about as much as a 135M model's forward)."""
        self.exceed_by_position = self.exceed.double().mean(dim=(1, 2)).cpu()   # (E, T)
        self.alpha_by_position = self.alpha_sum.mean(dim=(0, 1)).cpu()          # (T,)
        self.alpha_sum, self.exceed = self.alpha_sum[..., : self.K].cpu(), self.exceed[..., : self.K].cpu()
        if self.tokens_first is not None:
            self.tokens_first, self.tokens_later = self.tokens_first.to("cpu"), self.tokens_later.to("cpu")
        return self


@dataclass
class MeasureResult:
    """Tidy tables (lists of dicts) plus the summary; `sinklab.report.write_results(result, out)`
    saves them and the figures (the report reads the measurement, never the other way)."""
    summary: dict
    sweep: list[dict]
    heads: list[dict]
    layers: list[dict]
    alpha1: torch.Tensor                   # (L, H) mean alpha_1 at the first T
    sink_by_position: torch.Tensor         # (T,) Sink_k for every k at the first T and eps
    attention_maps: torch.Tensor | None    # (L, H, T, T) of one sample at the first T, if kept
    sink_tokens: list[dict] = field(default_factory=list)  # by token id at the first T (sink_tokens.csv)

    @property
    def sink_1(self) -> float:
        return self.summary["sink"]["1"]


def _as_list(x, cast) -> list:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return [cast(v) for v in x]
    return [cast(x)]


def measure(model=None, probe: str = "natural", *, n: int = DEFAULT_N, T=DEFAULT_T, eps=DEFAULT_EPS,
            bos: str = "auto", batch_size: int = 16, K: int = 8, device: str | None = None,
            dtype: str | None = None, seed: int = 0, tokenizer=None, trust_remote_code: bool = False,
            keep_map_upto: int = 256, progress: bool = True, input_ids: torch.Tensor | None = None,
            device_map: str | None = None, max_memory: dict | None = None,
            revision: str | None = None) -> MeasureResult:
    """Measure Sink_k^eps, importance scores and the sink diagnostics of a causal LM.

    model: a spec string (HF id or folder, .gguf, sinklab checkpoint; None = SmolLM2-135M), a
    `LoadedModel`, or an in-memory HF / sinklab model (pass `tokenizer` for text probes).
    device / dtype: where and in what dtype a spec is loaded (default cpu, float32); a model passed in
    memory runs where it is, and naming another device or dtype for it is refused, not silently ignored.
    T and eps may be lists: one forward pass per T serves every eps. `input_ids` (n, T) measures
    given tokens instead of a probe (probe is then only a label, e.g. "tokens").
    device_map / max_memory: accelerate's placement of an HF model over several devices;
    revision: a hub revision of an HF model id.
    """
    Ts, epss = _as_list(T, int), _as_list(eps, float)
    if input_ids is not None:
        input_ids = check_token_ids(input_ids, None)
        Ts, n = [int(input_ids.shape[1])], int(input_ids.shape[0])
    _validate(Ts, epss, n, batch_size, K, probe if input_ids is None else "random", bos)
    t0 = time.perf_counter()
    loaded = _resolve_model(model, tokenizer, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                            device_map=device_map, max_memory=max_memory, revision=revision)
    load_s = time.perf_counter() - t0
    if input_ids is not None:
        check_token_ids(input_ids, embedding_rows(loaded.model) or (
            loaded.tokenizer.vocab_size if loaded.tokenizer else None))
    if loaded.max_context and max(Ts) > loaded.max_context:
        raise SinklabError(f"T={max(Ts)} is longer than the model's context of {loaded.max_context} tokens")
    inputs = _probe_inputs(loaded, probe, input_ids, Ts, n, bos, seed)
    for t, ids in inputs.items():
        if len(ids) < n:
            print(f"note: probe {probe!r} has only {len(ids)} passages of >= {t} tokens; using {len(ids)} of n={n}")
    accs, measure_s = _accumulate(loaded, inputs, epss, batch_size, K, keep_map_upto, progress)
    device, dtype = _runs_on(loaded.model)
    return _tabulate(loaded, probe, bos, accs, epss, load_s, measure_s, device, dtype, seed)


def _resolve_model(model, tokenizer, device=None, dtype=None, **load_args):
    """A `LoadedModel` as given, loaded from a spec (None = the built-in model), or wrapped around a module."""
    from .load import load_model, wrap_module
    from .loaded import LoadedModel

    if model is None or isinstance(model, (str, os.PathLike)):
        return load_model(None if model is None else str(model), device=device or "cpu", dtype=dtype or "float32",
                          **load_args)
    if not isinstance(model, (LoadedModel, torch.nn.Module)):
        raise SinklabError(f"model must be a spec (HF id or folder, .gguf, checkpoint), a torch module or a "
                           f"LoadedModel, not {type(model).__name__}")
    _check_in_memory(model.model if isinstance(model, LoadedModel) else model, device, dtype)
    return model if isinstance(model, LoadedModel) else wrap_module(model, tokenizer)


def _runs_on(model) -> tuple[str, str]:
    """(device, dtype name) of a model's first parameter: what the summary records."""
    p = next(model.parameters(), None)
    if p is None:
        return "cpu", "float32"
    return str(p.device), str(p.dtype).removeprefix("torch.")


def _check_in_memory(model, device, dtype) -> None:
    """A model in memory is measured where it is: a different device or dtype asked for is an error."""
    on_device, on_dtype = _runs_on(model)
    if device is not None and torch.device(device) != torch.device(on_device) and \
            not (torch.device(device).index is None and torch.device(device).type == torch.device(on_device).type):
        raise SinklabError(f"device={device!r}, but the model is on {on_device}; move it first (model.to(...)), "
                           "or leave device out")
    if dtype is not None and dtype != on_dtype:
        raise SinklabError(f"dtype={dtype!r}, but the model's weights are {on_dtype}; convert it first, "
                           "or leave dtype out")


def _probe_inputs(loaded, probe: str, input_ids, Ts: list[int], n: int, bos: str, seed: int) -> dict:
    """T -> the (n, T) token ids to measure: the given ids, or the probe built at each T."""
    if input_ids is not None:
        return {Ts[0]: input_ids}
    tok = loaded.tokenizer
    if probe not in ("random", "repeat") and (tok is None or tok.encode is None):
        raise SinklabError(f"probe {probe!r} needs a tokenizer, and {loaded.name} has none; "
                           f"use --probe random or repeat")
    texts = probes.load_texts(probe) if probe not in ("random", "repeat") else None
    return {t: probes.build_inputs(probe, tok, n, t, bos, seed, texts=texts) for t in Ts}


def _accumulate(loaded, inputs: dict, epss, batch_size: int, K: int, keep_map_upto: int,
                progress: bool) -> tuple[dict, float]:
    """(T -> accumulator on the host, seconds of forward passes); one attention map kept, from the first batch."""
    from tqdm.auto import tqdm

    total_batches = sum(math.ceil(len(ids) / batch_size) for ids in inputs.values())
    bar = tqdm(total=total_batches, desc="measuring", unit="batch", leave=False,
               disable=not progress or os.environ.get("SINKLAB_NO_PROGRESS") == "1")
    recorder = capture.AttentionRecorder(keep_map_upto=keep_map_upto)
    accs: dict[int, _Accumulator] = {}
    t1 = time.perf_counter()
    for i_t, (t, ids) in enumerate(inputs.items()):
        acc = None
        for b0 in range(0, len(ids), batch_size):
            recorder.keep_map_upto = keep_map_upto if (i_t == 0 and b0 == 0) else 0
            loaded.capture_forward(ids[b0:b0 + batch_size], recorder)
            if acc is None:
                n_heads = next(iter(recorder.layers.values())).alpha.shape[1]
                acc = _Accumulator(len(recorder.layers), n_heads, t, epss, min(K, t))
            acc.add(recorder, ids[b0:b0 + batch_size])
            bar.update(1)
        accs[t] = acc.to_host()
    bar.close()
    return accs, time.perf_counter() - t1


def _validate(Ts, epss, n, batch_size, K, probe, bos):
    if not Ts or any(t < 2 for t in Ts):
        raise SinklabError(f"--T must be at least 2 (got {Ts})")
    if max(Ts) > attention_sums.MAX_TOKENS:
        raise SinklabError(f"--T {max(Ts)} is beyond the measurement kernels' limit of "
                           f"{attention_sums.MAX_TOKENS:,} tokens")
    if not epss or any(not (0.0 < e < 1.0) for e in epss):
        bad = [e for e in epss if not (0.0 < e < 1.0)]
        raise SinklabError(f"--eps must lie in (0, 1) (got {bad[0] if bad else epss})")
    if n < 1 or batch_size < 1 or K < 1:
        raise SinklabError("--n, --batch-size and -K must be at least 1")
    if bos not in probes.BOS_POLICIES:
        raise SinklabError(f"unknown --bos {bos!r}: use one of {', '.join(probes.BOS_POLICIES)}")
    if probe not in probes.BUILTIN_PROBES and not Path(probe).exists():
        raise SinklabError(f"unknown --probe {probe!r}: use one of {', '.join(probes.BUILTIN_PROBES)} "
                           f"or a .txt/.jsonl file")


def library_versions() -> dict:
    """Python and the versions of the libraries a measurement depends on, as recorded in summary.json."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("sinklab", "torch", "transformers", "tokenizers", "gguf"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _added_key_rows(base: dict, n: int, T: int, eps: float, extra: torch.Tensor, prepended: range) -> list[dict]:
    """Sweep rows of the added keys, `extra` (n, L, H, n_extra) in sinklab's convention (the sum over the T real
    queries / T); a key the paper treats as a prepended position also gets its convention, labelled `_paper`."""
    rows = []
    for j in range(extra.shape[-1]):
        row = {**base, "n": n, "T": T, "eps": eps, "position": f"sink*{j + 1}" if j else "sink*",
               "sink_pct": round(metrics.sink_rate(extra[..., j], eps).item(), 4),
               "sink_se": float("nan"), "mean_alpha": round(extra[..., j].mean().item(), 6)}
        if j in prepended:
            paper = metrics.prepended_query_alpha(extra[..., j], T)
            row.update(sink_pct_paper=round(metrics.sink_rate(paper, eps).item(), 4),
                       mean_alpha_paper=round(paper.mean().item(), 6))
        rows.append(row)
    return rows


def _tabulate(loaded, probe, bos, accs, epss, load_s, measure_s, device, dtype, seed) -> MeasureResult:
    sweep, heads, layers_rows = [], [], []
    base = {"model": loaded.name, "probe": probe, "bos": bos}
    first_T = next(iter(accs))
    out = {}
    for t, acc in accs.items():
        f = _reduce(t, acc)
        sweep += _sweep_rows(base, t, f, epss, loaded.info.get("config"))
        heads += _head_rows(t, f, epss)
        rows, f["diag"] = _layer_rows(t, f, epss)
        layers_rows += rows
        out[t] = f
    f = out[first_T]
    acc = f["acc"]
    timing = {"load_time_s": round(load_s, 3), "measure_time_s": round(measure_s, 3),
              "wall_time_s": round(load_s + measure_s, 3)}
    run = {"device": device, "dtype": dtype, "seed": seed, **timing}
    summary = _summary(loaded, base, f, sweep, list(accs), epss, run)
    token_table = _token_rows(acc, epss, _token_decoder(loaded))
    summary["sink_tokens"] = _token_summary(token_table, first_T)
    return MeasureResult(summary=summary, sweep=sweep, heads=heads, layers=layers_rows,
                         alpha1=(acc.alpha_sum[..., 0] / acc.n).float(),
                         sink_by_position=f["sink_all"][0].float(), attention_maps=acc.attention_maps,
                         sink_tokens=token_table)


def _token_decoder(loaded):
    """id -> text through the loaded HF tokenizer, or None (the table then names ids only)."""
    tok = getattr(loaded, "hf_tokenizer", None)
    return None if tok is None else (lambda i: tok.decode([i]))


def _token_rows(acc: _Accumulator, epss, decode) -> list[dict]:
    """sink_tokens.csv: position 1 as one row, then every later token id that is a sink at least once."""
    if acc.tokens_first is None:
        return []
    heads = acc.n_layers * acc.n_heads
    return ([sink_tokens.first_row(acc.tokens_first, heads, epss, decode)]
            + sink_tokens.token_rows(acc.tokens_later, heads, epss, "later", decode))


def _token_summary(rows: list[dict], T: int) -> dict | None:
    """summary.json's `sink_tokens`: the line, position 1 and the top later tokens (the CSV has them all)."""
    if not rows:
        return None
    return {"line": sink_tokens.summary_line(rows[0], rows[1:]), "searched": f"2 <= k <= T/2 = {max(1, T // 2)}",
            "first": rows[0], "top": rows[1:11]}


def _reduce(t: int, acc: _Accumulator) -> dict:
    """The tensors the tables of one T read, from its accumulator."""
    sink_all = acc.exceed_by_position / acc.n * 100                      # (E, T)
    half = max(1, t // 2)
    return dict(
        acc=acc, sink_all=sink_all,
        first_k=torch.cat(acc.first_k),                                   # (n, L, H, K)
        mean_alpha=acc.alpha_by_position / acc.n,                         # (T,)
        mean_alpha_lh=acc.alpha_sum / acc.n,                              # (L, H, K)
        extra=torch.cat(acc.extra) if acc.extra else None,                # (n, L, H, n_extra)
        mask_aware=torch.cat(acc.first_k_mask_aware) if acc.first_k_mask_aware else None,  # (n, L, H, K)
        weights=torch.cat(acc.weight_first_k) if acc.weight_first_k else None,           # (n, L, H, K)
        mass=torch.cat(acc.row_mass).mean(0) if acc.row_mass else None,                  # (L, H)
        largest=int(sink_all[0, :half].argmax().item()))


def _sweep_rows(base: dict, t: int, f: dict, epss, config: dict | None) -> list[dict]:
    """Sink_k and mean alpha_k for every eps and k <= K, then the added keys' rows."""
    acc, mask_aware, rows = f["acc"], f["mask_aware"], []
    for e, eps in enumerate(epss):
        per_sample = metrics.is_sink(f["first_k"], eps).float().mean(dim=(1, 2))          # (n, K) Sink of each sample
        se = per_sample.std(0, unbiased=True) / math.sqrt(acc.n) * 100 if acc.n > 1 else torch.zeros(acc.K)
        for k in range(acc.K):
            row = {**base, "n": acc.n, "T": t, "eps": eps, "position": str(k + 1),
                   "sink_pct": round(f["sink_all"][e, k].item(), 4), "sink_se": round(se[k].item(), 4),
                   "mean_alpha": round(f["mean_alpha"][k].item(), 6)}
            if mask_aware is not None:  # sparse pattern: alpha over the queries that can see k
                row["sink_pct_mask_aware"] = round(metrics.sink_rate(mask_aware[..., k], eps).item(), 4)
                row["mean_alpha_mask_aware"] = round(mask_aware[..., k].mean().item(), 6)
            rows.append(row)
        if f["extra"] is not None:
            rows.extend(_added_key_rows(base, acc.n, t, eps, f["extra"], metrics.prepended_columns(config)))
    return rows


def _head_rows(t: int, f: dict, epss) -> list[dict]:
    """One row per (layer, head, position k <= K)."""
    acc, mean_alpha_lh, weights, mass = f["acc"], f["mean_alpha_lh"], f["weights"], f["mass"]
    L, H = acc.alpha_sum.shape[:2]
    alpha_lhk, exceed = mean_alpha_lh.tolist(), acc.exceed.tolist()  # (L, H, K), (E, L, H, K): no per-cell .item()
    rows = []
    for l in range(L):
        for h in range(H):
            for k in range(acc.K):
                row = {"T": t, "layer": l, "head": h, "position": k + 1,
                       "mean_alpha": round(alpha_lhk[l][h][k], 6)}
                for e, eps in enumerate(epss):
                    row[f"sink_rate_eps{eps:g}"] = round(exceed[e][l][h][k] / acc.n, 4)
                if weights is not None:  # the weight the head applies, beside the proxy's share
                    row["mean_weight"] = round(weights[:, l, h, k].mean().item(), 6)
                    row["row_mass"] = round(mass[l, h].item(), 6)
                rows.append(row)
    return rows


def _layer_rows(t: int, f: dict, epss) -> tuple[list[dict], dict]:
    """(one row per layer: diagnostics and Sink_1, the diagnostics averaged over samples)."""
    acc, mean_alpha_lh = f["acc"], f["mean_alpha_lh"]
    diag = {name: (v / acc.n).tolist() for name, v in acc.diag_sum.items()}
    repeated = any(p for _, p in acc.passes.values())
    rows = []
    for l in range(acc.alpha_sum.shape[0]):
        origin = {"model_layer": acc.passes[l][0], "pass": acc.passes[l][1]} if repeated and l in acc.passes else {}
        sink_1 = acc.exceed[0, l, :, 0].double().mean().item() / acc.n * 100
        rows.append({"T": t, "layer": l, **origin, **{name: round(diag[name][l], 6) for name in diag},
                     "mean_alpha_1": round(mean_alpha_lh[l, :, 0].mean().item(), 6),
                     f"sink_1_eps{epss[0]:g}": round(sink_1, 4)})
    return rows, diag


def _summary(loaded, base: dict, f: dict, sweep: list[dict], Ts: list[int], epss, run: dict) -> dict:
    """The headline numbers at the first T and eps, the diagnostics and how the measurement ran."""
    acc, first_T = f["acc"], Ts[0]
    first_rows = [r for r in sweep if r["T"] == first_T and r["eps"] == epss[0]]
    on_tokens = [r for r in first_rows if not r["position"].startswith("sink*")]
    tokens_only = torch.cat(acc.first_k_tokens_only) if acc.first_k_tokens_only else None
    return {
        **base, "model_kind": loaded.kind, "n": acc.n, "T": first_T, "eps": epss[0],
        "sink": {r["position"]: r["sink_pct"] for r in on_tokens},
        "sink_se": {r["position"]: r["sink_se"] for r in on_tokens},
        "mean_alpha_1": round(f["mean_alpha"][0].item(), 6),
        "sink_mask_aware": ({r["position"]: r["sink_pct_mask_aware"] for r in first_rows if "sink_pct_mask_aware" in r}
                            or None),
        "sink_by_branch": ({"selected": next(r["sink_pct_mask_aware"] for r in first_rows if r["position"] == "1"),
                            **{name: round(metrics.sink_rate(torch.cat(v), epss[0]).item(), 4)
                               for name, v in acc.branch_first.items()}} if acc.branch_first else None),
        "largest_sink": {"position": f["largest"] + 1, "sink_pct": round(f["sink_all"][0, f["largest"]].item(), 4),
                         "searched": f"k <= T/2 = {max(1, first_T // 2)}"},
        "sink_star": ({r["position"]: r["sink_pct"] for r in first_rows if r["position"].startswith("sink*")}
                      if f["extra"] is not None else None),
        "sink_star_paper": ({r["position"]: r["sink_pct_paper"] for r in first_rows if "sink_pct_paper" in r}
                            or None),
        # learned sinks: Sink_k of the weights renormalised over the real tokens (what an output-gate sink's
        # own output_attentions shows), beside `sink` of the weights applied (the extra-column convention)
        "sink_tokens_only": ({str(k + 1): round(metrics.sink_rate(tokens_only[..., k], epss[0]).item(), 4)
                              for k in range(acc.K)} if tokens_only is not None else None),
        "unnormalised": _unnormalised(f["first_k"][..., 0], f["weights"], f["mass"], epss[0]),
        "diagnostics": f["diag"],
        "Ts": list(Ts), "eps_values": list(epss),
        "layers": acc.alpha_sum.shape[0], "heads": acc.alpha_sum.shape[1],
        "layer_passes": ([list(acc.passes[l]) for l in sorted(acc.passes)]
                         if any(p for _, p in acc.passes.values()) else None),
        "device": run["device"], "dtype": run["dtype"], "seed": run["seed"],
        "load_time_s": run["load_time_s"], "measure_time_s": run["measure_time_s"],
        "wall_time_s": run["wall_time_s"],
        "versions": library_versions(), "model_info": loaded.info,
    }


def _unnormalised(share_1, weights, mass, eps) -> dict | None:
    """Attention without row normalisation: the paper's Sink reads proxy scores (rows rescaled to
    sum 1), so a nearly silent head can read as a sink. Beside it, from the weights the model
    applies: Sink_1 counting only (sample, head) pairs whose token-1 weight also exceeds eps (under
    softmax both conditions are one, so this equals Sink_1), the largest mean weight a head puts on
    token 1, and the row masses. Neither condition alone will do: sigmoid weights near 0.5 on every
    key pass eps without concentrating on anything."""
    if weights is None:
        return None
    w1 = weights[..., 0]                                   # (n, L, H)
    per_head = w1.mean(0)                                  # (L, H)
    top, H = int(per_head.argmax()), per_head.shape[1]
    m = mass.flatten().sort().values
    both = (metrics.is_sink(share_1, eps) & metrics.is_sink(w1, eps)).float().mean() * 100
    return {"sink_1_share_and_weight": round(both.item(), 4),
            "mean_weight_1": round(w1.mean().item(), 6),
            "max_head_weight_1": {"weight": round(per_head.max().item(), 6), "layer": top // H, "head": top % H},
            "row_mass": {"min": round(m[0].item(), 6), "median": round(m[len(m) // 2].item(), 6),
                         "max": round(m[-1].item(), 6)}}

