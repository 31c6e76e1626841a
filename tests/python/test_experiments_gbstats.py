"""Liftoff's experiment statistics against GrowthBook's `gbstats` (the reference engine).

Two parts:
- the engine itself, through `POST /api/experiments/analyze`, on binomial, mean, ratio and
  CUPED statistics, 2 and 3 arms, Bayesian, frequentist and sequential, SRM flagged and not,
  and Holm-adjusted p-values: every figure equals gbstats' to 1e-4;
- an experiment end to end with the official PostHog SDK: the SDK asks Liftoff for the flag
  (`/flags`), sends its `$feature_flag_called` exposure events and the conversions; the
  results Liftoff computes equal gbstats run on the counts the SDK produced.
"""

from __future__ import annotations

import math
import time
import uuid

import pytest
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    QuantileStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm
from posthog import Posthog

TOLERANCE = 1e-4


def prop(n, s):
    return {"kind": "proportion", "n": n, "sum": s}, ProportionStatistic(n=n, sum=s)


def mean(n, s, ss):
    return {"kind": "mean", "n": n, "sum": s, "sum_squares": ss}, SampleMeanStatistic(n=n, sum=s, sum_squares=ss)


def ratio(n, m, d, mds):
    (mj, mg), (dj, dg) = m, d
    return (
        {"kind": "ratio", "n": n, "numerator": mj, "denominator": dj, "sum_of_products": mds},
        RatioStatistic(n=n, m_statistic=mg, d_statistic=dg, m_d_sum_of_products=mds),
    )


def adjusted(n, post, pre, pps):
    (pj, pg), (qj, qg) = post, pre
    return (
        {"kind": "adjusted", "n": n, "post": pj, "pre": qj, "sum_of_products": pps},
        RegressionAdjustedStatistic(n=n, post_statistic=pg, pre_statistic=qg, post_pre_sum_of_products=pps, theta=0),
    )


def quantile(n, q, lower, upper):
    return (
        {"kind": "quantile", "n": n, "quantile": q, "lower": lower, "upper": upper},
        QuantileStatistic(n=n, n_star=n, nu=0.95, quantile_hat=q, quantile_lower=lower, quantile_upper=upper),
    )


# (name, method, sequential, lower_is_better, weights, arms) — control first.
CASES = [
    ("p95 latency frequentist", "frequentist", False, True, None, [quantile(5000, 120.0, 115.0, 126.0), quantile(5200, 130.0, 124.0, 137.0)]),
    ("p95 latency bayesian", "bayesian", False, True, None, [quantile(5000, 120.0, 115.0, 126.0), quantile(5200, 130.0, 124.0, 137.0)]),
    ("binomial 10% vs 11% bayesian", "bayesian", False, False, None, [prop(10000, 1000), prop(10000, 1100)]),
    ("binomial 10% vs 11% frequentist", "frequentist", False, False, None, [prop(10000, 1000), prop(10000, 1100)]),
    ("binomial sequential", "frequentist", True, False, None, [prop(10000, 1000), prop(10000, 1100)]),
    ("binomial small sample sequential", "frequentist", True, False, None, [prop(500, 60), prop(520, 81)]),
    ("binomial lower is better bayesian", "bayesian", False, True, None, [prop(4000, 120), prop(4100, 150)]),
    ("mean frequentist", "frequentist", False, False, None, [mean(3000, 45000.0, 900000.0), mean(3100, 48000.0, 960000.0)]),
    ("mean bayesian", "bayesian", False, False, None, [mean(3000, 45000.0, 900000.0), mean(3100, 48000.0, 960000.0)]),
    ("mean sequential", "frequentist", True, False, None, [mean(800, 1600.0, 9000.0), mean(820, 1750.0, 9900.0)]),
    (
        "three arms frequentist (Holm)",
        "frequentist",
        False,
        False,
        None,
        [prop(5000, 500), prop(5000, 560), prop(5000, 505)],
    ),
    ("three arms bayesian", "bayesian", False, False, None, [prop(5000, 500), prop(5000, 560), prop(5000, 470)]),
    ("SRM flagged 5,000 vs 5,400", "frequentist", False, False, [50, 50], [prop(5000, 500), prop(5400, 540)]),
    ("SRM fine at 30/70", "frequentist", False, False, [30, 70], [prop(3000, 300), prop(7020, 710)]),
    (
        "ratio frequentist",
        "frequentist",
        False,
        False,
        None,
        [
            ratio(2000, mean(2000, 5000.0, 20000.0), mean(2000, 3000.0, 7000.0), 9500.0),
            ratio(2100, mean(2100, 5600.0, 23000.0), mean(2100, 3100.0, 7300.0), 10400.0),
        ],
    ),
    (
        "CUPED mean frequentist",
        "frequentist",
        False,
        False,
        None,
        [
            adjusted(1500, mean(1500, 3000.0, 9000.0), mean(1500, 2900.0, 8500.0), 8200.0),
            adjusted(1480, mean(1480, 3200.0, 9800.0), mean(1480, 2880.0, 8400.0), 8600.0),
        ],
    ),
    (
        "CUPED mean bayesian",
        "bayesian",
        False,
        False,
        None,
        [
            adjusted(1500, mean(1500, 3000.0, 9000.0), mean(1500, 2900.0, 8500.0), 8200.0),
            adjusted(1480, mean(1480, 3200.0, 9800.0), mean(1480, 2880.0, 8400.0), 8600.0),
        ],
    ),
]


def gbstats_compare(method, sequential, lower_is_better, a, b):
    if method == "bayesian":
        return EffectBayesianABTest(a, b, EffectBayesianConfig(inverse=lower_is_better)).compute_result()
    if sequential:
        return SequentialTwoSidedTTest(a, b, SequentialConfig(sequential_tuning_parameter=5000)).compute_result()
    return TwoSidedTTest(a, b, FrequentistConfig()).compute_result()


def holm(p_values):
    """Holm–Bonferroni step-down adjustment (what GrowthBook applies across metrics)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def close(got, want, what):
    assert math.isclose(got, want, rel_tol=0, abs_tol=TOLERANCE), f"{what}: Liftoff {got} vs gbstats {want}"


def analyze(liftoff, method, sequential, lower_is_better, weights, arms):
    body = {
        "analysis": {"method": method, "sequential": sequential, "alpha": 0.05, "sequential_tuning": 5000},
        "lower_is_better": lower_is_better,
        "variants": [j for j, _ in arms],
    }
    if weights is not None:
        body["weights"] = weights
    r = liftoff.admin("POST", "/api/experiments/analyze", body, expect=200)
    return r.json()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_the_engine_matches_gbstats(liftoff, case):
    name, method, sequential, lower_is_better, weights, arms = case
    got = analyze(liftoff, method, sequential, lower_is_better, weights, arms)
    control = arms[0][1]
    raw_p = []
    for k, (_, treatment) in enumerate(arms[1:]):
        want = gbstats_compare(method, sequential, lower_is_better, control, treatment)
        c = got["comparisons"][k]
        close(c["relative"], want.expected, f"{name} arm {k + 1} uplift")
        close(c["ci_low"], want.ci[0], f"{name} arm {k + 1} ci low")
        close(c["ci_high"], want.ci[1], f"{name} arm {k + 1} ci high")
        if method == "bayesian":
            close(c["chance_to_beat_control"], want.chance_to_win, f"{name} chance to win")
            close(c["risk"][0], want.risk[0], f"{name} risk control")
            close(c["risk"][1], want.risk[1], f"{name} risk treatment")
        else:
            close(c["p_value"], want.p_value, f"{name} p-value")
            raw_p.append(want.p_value)
    if raw_p:
        for got_p, want_p in zip(got["holm_p_values"], holm(raw_p)):
            close(got_p, want_p, f"{name} Holm-adjusted p")
    users = [a[1].n for a in arms]
    srm_p = check_srm(users, weights or [1] * len(arms))
    close(got["srm"]["p_value"], srm_p, f"{name} SRM p")
    assert got["srm"]["flagged"] == (srm_p < 0.001 and min(users) >= 8), name


def test_the_issue_examples_hold(liftoff):
    got = analyze(liftoff, "frequentist", False, False, None, [prop(10000, 1000), prop(10000, 1100)])
    c = got["comparisons"][0]
    close(c["relative"], 0.1, "uplift")
    close(c["p_value"], 0.027890, "p")
    close(c["ci_low"], 0.010865, "ci low")
    close(c["ci_high"], 0.189135, "ci high")
    got = analyze(liftoff, "bayesian", False, False, None, [prop(10000, 1000), prop(10000, 1100)])
    close(got["comparisons"][0]["chance_to_beat_control"], 0.986061, "chance to win")
    got = analyze(liftoff, "frequentist", False, False, [50, 50], [prop(5000, 500), prop(5400, 540)])
    assert abs(got["srm"]["p_value"] - 8.7699e-5) < 1e-8 and got["srm"]["flagged"]


def test_an_experiment_run_with_the_posthog_sdk_matches_gbstats(liftoff, ingest_token):
    flag = f"py-exp-{uuid.uuid4().hex[:6]}"
    liftoff.admin(
        "POST",
        "/api/feature-flags",
        {"flag_id": flag, "variants": [{"name": "control", "weight": 50}, {"name": "fast-checkout", "weight": 50}]},
        expect=201,
    )
    liftoff.admin(
        "POST",
        "/api/experiments",
        {
            "key": flag,
            "flag_id": flag,
            "metrics": {"primary": {"kind": "conversion", "event": "purchase"}},
            "analysis": {"method": "frequentist"},
        },
        expect=201,
    )
    errors: list = []
    ph = Posthog(ingest_token, host=liftoff.url, capture_mode="v0", max_retries=0,
                 on_error=lambda error, batch: errors.append(error))
    counts = {"control": [0, 0], "fast-checkout": [0, 0]}
    for i in range(600):
        user = f"{flag}-u{i}"
        # One /flags request; reading the flag sends the `$feature_flag_called` exposure.
        variant = ph.evaluate_flags(user).get_flag(flag)
        assert variant in counts, variant
        counts[variant][0] += 1
        rate = 0.25 if variant == "fast-checkout" else 0.15
        if (i * 7919) % 100 < rate * 100:
            counts[variant][1] += 1
            ph.capture("purchase", distinct_id=user, properties={"amount": 20})
    ph.flush()
    ph.shutdown()
    assert errors == []

    deadline = time.monotonic() + 10
    while True:
        got = liftoff.admin("GET", f"/api/experiments/{flag}/results", expect=200).json()
        users = {v["variant"]: v["users"] for v in got["variants"]}
        if users == {k: v[0] for k, v in counts.items()} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert users == {k: v[0] for k, v in counts.items()}, (users, counts)
    assert got["multiple_exposures"] == 0
    want = TwoSidedTTest(
        ProportionStatistic(n=counts["control"][0], sum=counts["control"][1]),
        ProportionStatistic(n=counts["fast-checkout"][0], sum=counts["fast-checkout"][1]),
        FrequentistConfig(),
    ).compute_result()
    treatment = got["metrics"][0]["variants"][1]
    assert treatment["variant"] == "fast-checkout"
    close(treatment["value"], counts["fast-checkout"][1] / counts["fast-checkout"][0], "conversion rate")
    close(treatment["uplift"]["relative"], want.expected, "uplift")
    close(treatment["uplift"]["ci_low"], want.ci[0], "ci low")
    close(treatment["uplift"]["ci_high"], want.ci[1], "ci high")
    close(treatment["p_value"], want.p_value, "p-value (one goal metric: Holm changes nothing)")
    close(got["srm"]["p_value"], check_srm([v[0] for v in counts.values()], [50, 50]), "SRM")
