"""The trainer's sink measurement: fixed held-out probe windows, measured with the same code as
`sinklab measure`, at the same settings wherever a run is measured (the trainer, `sinklab report`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from ..config import ModelConfig
from ..data.shards import document_starts, open_split
from ..errors import SinklabError
from ..measure.run import MeasureResult, measure
from ..measure.sinklab_model import load_for_measurement, wrap_sinklab_model
from ..model.decoder import SinkLM
from .batches import Batches, apply_interventions
from .checkpoint import latest_checkpoint
from .config import TrainConfig

PROBE_EPS = 0.3      # the paper's threshold
PROBE_BATCH = 16     # probe sequences per forward
PROBE_K = 8          # positions k of Sink_k reported
PROBE_SEED = 12345   # the held-out windows the probe takes


def probe_ids(tc: TrainConfig, manifest: dict, T: int | None = None) -> torch.Tensor:
    """Fixed held-out windows for the sink measurement (interventions applied as in training). The
    long probe (T given) always takes windows: few documents are that long."""
    if T is None and tc.measure_probe == "doc_starts":
        val, _ = open_split(tc.data, "val")
        try:
            x = torch.from_numpy(document_starts(val, manifest["eot_id"], tc.measure_n, tc.measure_T))
        except SinklabError as e:
            raise SinklabError(f"train field measure_probe=doc_starts: {e} in the held-out split; "
                               f"lower train.measure_n or use measure_probe=windows") from None
    else:
        T = T or tc.measure_T
        x = Batches(tc.data, "val", T - 1, seed=PROBE_SEED).get(tc.measure_n, 0)[:, :T]
    return apply_interventions(x, tc, manifest["vocab_size"], -1)


def long_probe_T(tc: TrainConfig, mc: ModelConfig, val_tokens: int) -> int:
    """The long probe's T (0: none). Auto only for sparse or windowed models, where T = 64 sits
    inside one block or window and so measures dense attention."""
    if tc.measure_T_long is not None:
        return tc.measure_T_long
    if mc.sparse == "none" and not mc.window:
        return 0
    T = min(tc.seq_len, 1024, val_tokens - 2)
    return T if T > tc.measure_T else 0


LONG_KEYS = ("sink_1", "mean_alpha_1", "largest_sink_position", "largest_sink", "sink_1_mask_aware", "sink_by_branch")


def measure_on_probe(loaded, ids: torch.Tensor, keep_map_upto: int = 0) -> MeasureResult:
    """`sinklab measure` of a loaded model on the probe token ids, at the trainer's settings."""
    return measure(loaded, probe="tokens", input_ids=ids, T=ids.shape[1], eps=PROBE_EPS, batch_size=PROBE_BATCH,
                   K=PROBE_K, keep_map_upto=keep_map_upto, progress=False)


def measure_sink(model: SinkLM, probe: torch.Tensor, final_report: Callable | None = None,
                 step: int | None = None) -> dict:
    """The same measurement as `sinklab measure`, on fixed held-out windows, as a row of the log.
    With `final_report`, the whole result is handed to it as the measurement of step `step`
    (`sinklab train` writes it to RUN/final_measure, which `sinklab report` links)."""
    r = measure_on_probe(wrap_sinklab_model(model), probe, keep_map_upto=probe.shape[1] if final_report else 0)
    if final_report is not None:
        r.summary["checkpoint_step"] = step
        final_report(r)
    return sink_row(r.summary)


def sink_row(s: dict) -> dict:
    """The log's sink columns from a measurement summary."""
    hr = [v for v in s["diagnostics"]["hidden_ratio"] if v == v]
    out = {"sink_1": s["sink"]["1"], "mean_alpha_1": s["mean_alpha_1"],
           "largest_sink_position": s["largest_sink"]["position"], "largest_sink": s["largest_sink"]["sink_pct"],
           "massive_activation": round(max(hr), 3) if hr else None}
    if s.get("sink_star"):
        out["sink_star"] = s["sink_star"]
    if s.get("sink_star_paper"):
        out["sink_star_paper"] = s["sink_star_paper"]
    if s.get("sink_by_branch"):
        out["sink_by_branch"] = s["sink_by_branch"]
    if s.get("unnormalised"):  # proxy-score models: Sink_1 of heads that also weigh token 1 > eps; the largest weight
        out["sink_1_share_and_weight"] = s["unnormalised"]["sink_1_share_and_weight"]
        out["max_head_weight_1"] = s["unnormalised"]["max_head_weight_1"]["weight"]
    if s.get("sink_mask_aware"):  # sparse patterns: alpha over the queries that can see position 1
        out["sink_1_mask_aware"] = s["sink_mask_aware"]["1"]
    return out


def measure_final_checkpoint(run: Path, write: Callable[..., Path]) -> Path | None:
    """`sinklab measure` of the run's last complete checkpoint on the probe its trainer used, handed to
    `write(result, run/final_measure, overwrite=True)` (the CLI passes sinklab.report.write_results: tables,
    figures, report.html). A finished run's trainer wrote it already at its last step; it is measured here
    only for a checkpoint of another step (a run stopped early). None when the run has no checkpoint or
    its data folder (the probe's source) is gone."""
    ck = latest_checkpoint(run)
    if ck is None:
        return None
    meta = json.loads((ck / "sinklab.json").read_text())
    out = run / "final_measure"
    done = out / "summary.json"
    if done.exists() and json.loads(done.read_text()).get("checkpoint_step") == meta["step"]:
        return out
    tc = TrainConfig.from_dict(meta["train"])
    if not (Path(tc.data) / "manifest.json").exists():
        print(f"note: the run's data folder {tc.data} is gone, so its probe cannot be rebuilt; "
              f"measure the checkpoint with `sinklab measure --model {ck}`")
        return None
    probe = probe_ids(tc, meta["data_manifest"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = measure_on_probe(load_for_measurement(ck, device=device), probe, keep_map_upto=256)
    result.summary["checkpoint_step"] = meta["step"]
    return write(result, out, overwrite=True)  # the run's own report, for a newer checkpoint
