"""The verdict rule of sinklab.experiments.verdicts, on hand-made seed rows."""
import random

import pytest

from sinklab.experiments import load_suite, suite_names
from sinklab.experiments.scorecard import judge, reference_run
from sinklab.experiments.verdicts import (FAILS, HOLDS, NO_SINK, NOT_RUN, VERDICTS, WITHIN_SPREAD, decide,
                                          judge_over_seeds)


def seeds(*sink_1, **fields):
    return {i: {"sink_1": v, "sink_star": None, "largest_sink_position": 1, **fields} for i, v in enumerate(sink_1)}


GREATER = {"text": "a has a larger sink than b", "greater": ["a", "b"]}
BASE = seeds(10.0, 11.0, 12.0)


@pytest.mark.parametrize("a, b, verdict, effect", [
    ((20.0, 21.0), (10.0, 11.0), HOLDS, 10.0),            # every seed pair clears the spread
    ((5.0, 6.0), (20.0, 21.0), FAILS, -15.0),
    ((12.0, 8.0), (10.0, 11.0), WITHIN_SPREAD, -0.5),     # the seeds disagree on the sign
    ((12.5, 16.0), (10.0, 11.0), WITHIN_SPREAD, 3.75),    # the means clear the spread of 2, but 12.5 - 11 does not
    ((14.5, 15.0), (10.0, 11.0), HOLDS, 4.25),
])
def test_greater_is_decided_only_where_every_seed_pair_clears_the_spread(a, b, verdict, effect):
    v = judge_over_seeds(GREATER, {"baseline": BASE, "a": seeds(*a), "b": seeds(*b)}, "baseline")
    assert v.verdict == verdict
    assert v.effect == pytest.approx(effect)
    assert v.spread == pytest.approx(max(max(a) - min(a), max(b) - min(b), 2.0))  # widest of a, b, the baseline
    margins = [x - y for x in a for y in b]
    assert (v.low, v.high) == (pytest.approx(min(margins)), pytest.approx(max(margins)))
    assert v.seeds == {"a": 2, "b": 2, "baseline": 3}


def test_a_baseline_without_a_sink_makes_every_claim_inconclusive():
    rows = {"baseline": seeds(0.2, 0.5, 0.3), "a": seeds(20.0, 21.0), "b": seeds(0.1, 0.2)}
    v = judge_over_seeds(GREATER, rows, "baseline")
    assert v.verdict == NO_SINK and "no sink to move" in v.evidence
    assert v.effect == pytest.approx(20.35)  # the numbers are still reported


@pytest.mark.parametrize("rows, named", [
    ({"baseline": BASE, "a": seeds(20.0), "b": seeds(10.0, 11.0)}, "a: 1 seed(s) measured, 2 needed"),
    ({"baseline": seeds(10.0, 11.0), "a": seeds(20.0, 21.0), "b": seeds(10.0, 11.0)},
     "baseline: 2 seed(s) measured, 3 needed"),
    ({"baseline": BASE, "a": seeds(20.0, 21.0)}, "b: 0 seed(s) measured, 2 needed"),
])
def test_too_few_seeds_is_not_run_and_names_the_run(rows, named):
    v = judge_over_seeds(GREATER, rows, "baseline")
    assert (v.verdict, v.evidence) == (NOT_RUN, named)


def test_a_threshold_claim_reads_its_own_runs_spread_not_the_baselines():
    claim = {"text": "x has no sink", "below": ["x", 1.0]}
    rows = {"baseline": seeds(10.0, 14.0, 18.0), "x": seeds(0.1, 0.2)}
    v = judge_over_seeds(claim, rows, "baseline")
    assert v.verdict == HOLDS and v.spread == pytest.approx(0.1)
    rows["x"] = seeds(0.5, 1.5)
    assert judge_over_seeds(claim, rows, "baseline").verdict == WITHIN_SPREAD


def test_star_over_first_and_position_claims():
    star = {"text": "k takes the sink", "star_over_first": "k"}
    k = {0: {"sink_1": 1.0, "sink_star": 70.0}, 1: {"sink_1": 2.0, "sink_star": 72.0}}
    assert judge_over_seeds(star, {"baseline": BASE, "k": k}, "baseline").verdict == HOLDS
    at = {"text": "the sink is at position 2", "largest_at": ["f", 2]}
    agree = {0: {"sink_1": 5.0, "largest_sink_position": 2}, 1: {"sink_1": 6.0, "largest_sink_position": 2}}
    split = {0: {"sink_1": 5.0, "largest_sink_position": 2}, 1: {"sink_1": 6.0, "largest_sink_position": 1}}
    assert judge_over_seeds(at, {"baseline": BASE, "f": agree}, "baseline").verdict == HOLDS
    v = judge_over_seeds(at, {"baseline": BASE, "f": split}, "baseline")
    assert v.verdict == WITHIN_SPREAD and v.effect is None and "1 of 2 seed combinations agree" in v.evidence


def test_decide_on_numbers_alone():
    assert decide(0.5, [10.0], 0.0) == NO_SINK
    assert decide(5.0, [3.0, 2.5], 2.0) == HOLDS
    assert decide(5.0, [3.0, 1.5], 2.0) == WITHIN_SPREAD
    assert decide(5.0, [-3.0, -2.5], 2.0) == FAILS
    assert decide(5.0, [1.0, -1.0], None) == WITHIN_SPREAD


def _random_rows(suite, n_seeds, rng):
    return {c["name"]: {s: {"sink_1": rng.uniform(0, 60), "sink_star": rng.uniform(0, 80),
                            "largest_sink_position": rng.choice([1, 2, 3])} for s in range(n_seeds)}
            for c in suite["changes"]}


@pytest.mark.parametrize("name", suite_names())
def test_every_claim_of_every_suite_gets_a_verdict(name):
    suite, rng = load_suite(name), random.Random(name)
    rows = _random_rows(suite, 3, rng)
    for claim in suite.get("claims", []):
        assert judge_over_seeds(claim, rows, reference_run(suite)).verdict in VERDICTS


@pytest.mark.parametrize("name", suite_names())
def test_one_seed_and_no_spread_agrees_with_the_scorecards_judge(name):
    """With one seed a run, the rule must read each claim as the single-run scorecard does."""
    suite, rng = load_suite(name), random.Random(name + "1")
    seeded = _random_rows(suite, 1, rng)
    single = {n: {**r[0], "largest_sink": 0.0} for n, r in seeded.items()}
    for claim in suite.get("claims", []):
        ours = judge_over_seeds(claim, seeded, reference_run(suite), min_seeds=1, min_reference_seeds=1)
        assert ours.verdict == judge(claim, single, reference_run(suite))[0], claim["text"]


def test_a_seed_without_the_field_a_claim_reads_is_not_counted():
    star = {"text": "k takes the sink", "star_over_first": "k"}
    k = {0: {"sink_1": 1.0, "sink_star": 70.0}, 1: {"sink_1": 2.0, "sink_star": 72.0}, 2: {"sink_1": 2.0, "sink_star": None}}
    v = judge_over_seeds(star, {"baseline": BASE, "k": k}, "baseline")
    assert v.verdict == HOLDS and v.seeds == {"k": 2, "baseline": 3}
    k.pop(1)
    v = judge_over_seeds(star, {"baseline": BASE, "k": k}, "baseline")
    assert (v.verdict, v.evidence) == (NOT_RUN, "k: 1 seed(s) measured, 2 needed")
