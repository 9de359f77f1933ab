"""BG/NBD: parameters recovered from simulated customers, predictions track the future."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnwarehouse import bgnbd

TRUE = (0.8, 20.0, 0.6, 3.0)  # r, alpha (days), a, b


def simulate(n: int, observed_days: float, future_days: float, seed: int = 0):
    """Purchase days in [0, observed) and whether any purchase follows in [observed, observed + future)."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = TRUE
    rate = rng.gamma(r, 1 / alpha, n)
    dropout = rng.beta(a, b, n)
    now = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    x = np.zeros(n)
    t_x = np.zeros(n)
    bought_later = np.zeros(n, dtype=bool)
    for _ in range(400):
        now = now + rng.exponential(1 / rate)
        inside = alive & (now < observed_days)
        x[inside] += 1
        t_x[inside] = now[inside]
        bought_later |= alive & (now >= observed_days) & (now < observed_days + future_days)
        alive &= now < observed_days + future_days
        alive &= ~(rng.random(n) < dropout)  # after a purchase, drop out with probability p
    return x, t_x, np.full(n, observed_days), bought_later


def test_fit_recovers_the_parameters():
    x, t_x, age, _ = simulate(20_000, 365, 90)
    params = bgnbd.fit(x, t_x, age)
    assert params is not None
    np.testing.assert_allclose(params, TRUE, rtol=0.25)


def test_expected_purchases_and_probability_alive_predict_the_future():
    x, t_x, age, bought_later = simulate(10_000, 365, 90, seed=1)
    params = bgnbd.fit(x, t_x, age)
    expected = bgnbd.expected_purchases(params, 90.0, x, t_x, age)
    alive = bgnbd.probability_alive(params, x, t_x, age)
    assert np.all(expected >= 0) and np.all((alive >= 0) & (alive <= 1))
    assert expected[bought_later].mean() > 2 * expected[~bought_later].mean()
    # same history but a longer silence since the last purchase: less likely alive
    later = bgnbd.probability_alive(params, np.array([5.0, 5.0]), np.array([350.0, 100.0]), np.array([365.0, 365.0]))
    assert later[0] > later[1]


def test_probability_of_no_purchase_is_calibrated_on_simulated_customers():
    """With the true parameters, P(no purchase in the next 90 days | history) matches what the
    simulated customers then did: overall and within each quintile of the prediction."""
    x, t_x, age, bought_later = simulate(40_000, 365, 90, seed=3)
    silent = bgnbd.probability_no_purchase(np.array(TRUE), 90.0, x, t_x, age)
    assert np.all((silent >= 0) & (silent <= 1))
    assert abs(silent.mean() - (~bought_later).mean()) < 0.01
    edges = np.quantile(silent, [0.2, 0.4, 0.6, 0.8])
    bins = np.searchsorted(edges, silent)
    for b in range(5):
        inside = bins == b
        assert abs(silent[inside].mean() - (~bought_later[inside]).mean()) < 0.03, b
    # a new customer (no history yet) is silent with the NBD probability (alpha / (alpha + t)) ** r
    r, alpha, _, _ = TRUE
    new = bgnbd.probability_no_purchase(np.array(TRUE), 90.0, np.zeros(1), np.zeros(1), np.zeros(1))
    np.testing.assert_allclose(new, (alpha / (alpha + 90.0)) ** r)


def test_features_per_snapshot_and_null_when_too_few_customers():
    x, t_x, age, _ = simulate(3_000, 365, 90, seed=2)
    frame = pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(len(x))],
        "as_of_date": pd.Timestamp("2024-01-31"),
        "purchase_day_count": x + 1,
        "tenure_days": age - 1,
        "days_since_last_order": age - 1 - t_x,
    })
    tiny = frame.head(10).assign(as_of_date=pd.Timestamp("2024-02-29"))
    out = bgnbd.purchase_model_features(pd.concat([frame, tiny]), 90)
    assert list(out.columns) == bgnbd.OUTPUT_COLUMNS
    big = out[out["as_of_date"] == pd.Timestamp("2024-01-31")]
    assert big["probability_alive"].notna().all() and len(big) == 3_000
    assert big["probability_no_purchase_next_horizon"].between(0, 1).all()
    assert out[out["as_of_date"] == pd.Timestamp("2024-02-29")]["probability_alive"].isna().all()
