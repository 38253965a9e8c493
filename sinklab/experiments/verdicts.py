"""One rule that judges a suite's claim over seeds: holds, does not hold, within seed spread, or
inconclusive (no baseline sink), with the effect size and the interval it rests on.

Each claim kind reads as a margin in Sink points that is positive where the claim holds (for
`greater: [a, b]`, Sink_1 of a minus Sink_1 of b). The margin is computed on every combination of
the seeds of the runs the claim compares; the margin of the seed means is the effect, and the
smallest and largest margins are the interval. The claim is decided only when every margin is
larger than the seed spread, on the same side of zero: a difference that two seeds of one run
can show is not an effect. The seed spread is the widest max - min of Sink_1 over the seeds of a
run the claim compares and, for any claim but a fixed threshold, of the reference run too (its seeds are
the protocol's best measure of seed noise, so Sink* against Sink_1 of one run must clear it as well); a claim
against a fixed threshold reads its own runs' only.
Position claims (`largest_at`, `largest_within`) have no margin in points: they hold or fail only
when every seed combination agrees.
"""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

from .scorecard import CLAIM_CHECKS, NO_SINK_BELOW

HOLDS, FAILS, WITHIN_SPREAD = "holds", "does not hold", "within seed spread"
NO_SINK, NOT_RUN = "inconclusive (no baseline sink)", "not run"
VERDICTS = (HOLDS, FAILS, WITHIN_SPREAD, NO_SINK, NOT_RUN)
MIN_SEEDS, MIN_REFERENCE_SEEDS = 2, 3
POSITION_KINDS = ("largest_at", "largest_within")
THRESHOLD_KINDS = ("below", "above", "above_all")

SeedRows = dict[str, dict[int, dict]]  # change -> seed -> its probe fields (sink_1, sink_star, ...)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    effect: float | None      # mean margin over seeds, in Sink points (> 0: the claim's direction)
    low: float | None         # the interval: smallest and largest margin over seed combinations
    high: float | None
    spread: float | None      # widest seed range of Sink_1 among the runs compared
    seeds: dict[str, int]     # seeds per run compared
    evidence: str


def claim_kind(claim: dict) -> tuple[str, object]:
    kind = next(k for k in claim if k != "text")
    if kind not in CLAIM_CHECKS:
        raise ValueError(f"unknown claim kind {kind!r} in {claim.get('text', claim)!r}")
    return kind, claim[kind]


def compared_runs(claim: dict, changes: list[str]) -> list[str]:
    """The runs a claim reads (above_all reads every run of its suite)."""
    kind, arg = claim_kind(claim)
    if kind == "above_all":
        return list(changes)
    if kind == "within":
        return [*arg[0], arg[1]]
    if kind in ("greater", "order"):
        return list(arg)
    return [arg if isinstance(arg, str) else arg[0]]


def margin(kind: str, arg, rows: dict[str, dict]) -> float:
    """How far the claim holds on one row per run, in Sink points: > 0 holds, < 0 fails (position claims: +-1)."""
    s = {n: r["sink_1"] for n, r in rows.items()}
    if kind == "greater":
        return s[arg[0]] - s[arg[1]]
    if kind in ("below", "above"):
        return (arg[1] - s[arg[0]]) if kind == "below" else (s[arg[0]] - arg[1])
    if kind == "above_all":
        return min(s.values()) - arg
    if kind == "order":
        return min(s[a] - s[b] for a, b in zip(arg, arg[1:]))
    if kind == "within":
        others, base, d = arg
        return d - max(abs(s[o] - s[base]) for o in others)
    if kind == "star_over_first":
        return rows[arg]["sink_star"] - s[arg]
    pos = rows[arg[0]]["largest_sink_position"]
    return 1.0 if (pos == arg[1] if kind == "largest_at" else pos <= arg[1]) else -1.0


def _needed_field(kind: str) -> str:
    fields = {"star_over_first": "sink_star", **dict.fromkeys(POSITION_KINDS, "largest_sink_position")}
    return fields.get(kind, "sink_1")


def seed_range(values: list[float]) -> float:
    return max(values) - min(values) if values else 0.0


def decide(reference_sink: float, margins: list[float], spread: float | None) -> str:
    """The rule itself, on numbers alone (spread None: a position claim, decided by agreement)."""
    if reference_sink < NO_SINK_BELOW:
        return NO_SINK
    clear = 0.0 if spread is None else spread
    if all(m > clear for m in margins):
        return HOLDS
    if all(m < -clear for m in margins):
        return FAILS
    return WITHIN_SPREAD


def spread_runs(kind: str, runs: list[str], reference: str) -> list[str]:
    return list(runs) if kind in THRESHOLD_KINDS else list(dict.fromkeys([*runs, reference]))


def usable_rows(seed_rows: SeedRows, runs: list[str], reference: str, kind: str) -> SeedRows:
    """Each run's seeds that hold what the claim reads (Sink_1, and the claim's own field for a compared run)."""
    out = {}
    for name in dict.fromkeys([*runs, reference]):
        need = ("sink_1", _needed_field(kind)) if name in runs else ("sink_1",)
        out[name] = {s: r for s, r in seed_rows.get(name, {}).items() if all(r.get(k) is not None for k in need)}
    return out


def _missing(usable: SeedRows, reference: str, min_seeds: int, min_reference_seeds: int) -> str | None:
    for name, rows in usable.items():
        need = min_reference_seeds if name == reference else min_seeds
        if len(rows) < need:
            return f"{name}: {len(rows)} seed(s) measured, {need} needed"
    return None


def judge_over_seeds(claim: dict, seed_rows: SeedRows, reference: str, min_seeds: int = MIN_SEEDS,
                     min_reference_seeds: int = MIN_REFERENCE_SEEDS) -> Verdict:
    """A suite's claim over the seeds of its runs, against its reference run (the baseline)."""
    kind, arg = claim_kind(claim)
    runs = compared_runs(claim, list(seed_rows))
    seed_rows = usable_rows(seed_rows, runs, reference, kind)
    seeds = {n: len(rows) for n, rows in seed_rows.items()}
    missing = _missing(seed_rows, reference, min_seeds, min_reference_seeds)
    if missing:
        return Verdict(NOT_RUN, None, None, None, None, seeds, missing)
    per_run = [list(seed_rows[n].values()) for n in runs]
    margins = [margin(kind, arg, dict(zip(runs, combo))) for combo in itertools.product(*per_run)]
    mean_rows = {n: _mean_row(seed_rows[n].values()) for n in runs}
    positional = kind in POSITION_KINDS
    effect = None if positional else margin(kind, arg, mean_rows)
    spread = None if positional else max(seed_range([r["sink_1"] for r in seed_rows[n].values()])
                                          for n in spread_runs(kind, runs, reference))
    reference_sink = statistics.fmean(r["sink_1"] for r in seed_rows[reference].values())
    verdict = decide(reference_sink, margins, spread)
    return Verdict(verdict, effect, min(margins), max(margins), spread, seeds,
                   _evidence(runs, seed_rows, effect, margins, spread, reference, reference_sink))


def _mean_row(rows) -> dict:
    rows = list(rows)
    mean = {k: statistics.fmean(r[k] for r in rows) for k in ("sink_1", "sink_star") if rows[0].get(k) is not None}
    return {**rows[0], **mean}


def _evidence(runs, seed_rows, effect, margins, spread, reference, reference_sink) -> str:
    def summary(name):
        v = [r["sink_1"] for r in seed_rows[name].values()]
        return f"{name} {statistics.fmean(v):.2f} [{min(v):.2f}, {max(v):.2f}] (n={len(v)})"

    text = "; ".join(summary(n) for n in dict.fromkeys([*runs, reference]))
    if effect is not None:
        text += (f"; effect {effect:+.2f} points, interval [{min(margins):+.2f}, {max(margins):+.2f}], "
                 f"spread {spread:.2f}")
    else:
        text += f"; {sum(m > 0 for m in margins)} of {len(margins)} seed combinations agree"
    if reference_sink < NO_SINK_BELOW:
        text += f"; {reference} Sink_1 {reference_sink:.2f} % < {NO_SINK_BELOW:g} %: no sink to move"
    return text
