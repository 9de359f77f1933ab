"""BG/NBD purchase model (Fader, Hardie & Lee 2005) as point-in-time customer features.

For each snapshot, the four BG/NBD parameters are fitted by maximum likelihood on that
snapshot's own customers (repeat purchase days x, time of the last purchase t_x and age T, in
days, all known at the as-of date), and every customer gets the expected number of purchase
days in the next ``horizon`` days and the probability of still being "alive". No label is used,
so fitting on the scoring snapshot is as legitimate as on a training one. Fitting uses at most
``max_fit_rows`` customers per snapshot (a deterministic sample); the closed forms apply to all.

It also gives the purchase model's own churn probability, the chance of no purchase at all in
the next ``horizon`` days (``probability_no_purchase_next_horizon``): the BG/NBD baseline the
backtest reports beside the churn model. It is not a churn-model feature: the history it is
computed from already is one, and adding it did not improve out-of-time validation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

OUTPUT_COLUMNS = ["customer_id", "as_of_date", "expected_purchases_next_horizon", "probability_alive",
                  "probability_no_purchase_next_horizon"]
MIN_FIT_ROWS = 50


class _Histories:
    """Customers' (x, t_x, age) for the likelihood, each as its distinct values and every
    customer's index into them.

    Purchase counts and ages in days repeat a lot, so the special functions (gammaln, log) are
    evaluated once per distinct value and gathered: each customer's terms are bitwise the ones
    evaluated customer by customer, and they are summed in the same order, so the likelihood,
    and the fitted parameters, are the same numbers, about 3x faster.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray):
        self.x = np.asarray(x, dtype=float)
        self.x_values, self.x_index = np.unique(self.x, return_inverse=True)
        self.t_x_values, self.t_x_index = np.unique(np.asarray(t_x, dtype=float), return_inverse=True)
        self.age_values, self.age_index = np.unique(np.asarray(age, dtype=float), return_inverse=True)
        self.has_repeat = self.x > 0

    def negative_log_likelihood(self, log_params: np.ndarray) -> float:
        """Minus the BG/NBD log-likelihood of these customers at log(r, alpha, a, b)."""
        r, alpha, a, b = np.exp(log_params)
        x, xs, ix = self.x, self.x_values, self.x_index
        a1 = gammaln(r + xs)[ix] - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + xs)[ix] - gammaln(b) - gammaln(a + b + xs)[ix]
        a3 = -(r + x) * np.log(alpha + self.age_values)[self.age_index]
        with np.errstate(divide="ignore"):
            a4 = np.where(self.has_repeat,
                          np.log(a) - np.log(np.maximum(b + xs - 1, 1e-12))[ix]
                          - (r + x) * np.log(alpha + self.t_x_values)[self.t_x_index],
                          -np.inf)
        return float(-(a1 + a2 + np.logaddexp(a3, a4)).sum())


def fit(x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray | None:
    """Maximum-likelihood (r, alpha, a, b); None when the fit does not converge."""
    histories = _Histories(x, t_x, age)
    result = minimize(histories.negative_log_likelihood, np.log([0.5, 10.0, 0.5, 2.0]),
                      method="Nelder-Mead", options={"maxiter": 4_000, "xatol": 1e-5, "fatol": 1e-5})
    params = np.exp(result.x)
    if not result.success or not np.all(np.isfinite(params)):
        return None
    return params


def probability_alive(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    ratio = (a / np.maximum(b + x - 1, 1e-12)) * ((alpha + age) / (alpha + t_x)) ** (r + x)
    return np.where(x > 0, 1.0 / (1.0 + ratio), 1.0)


def probability_no_purchase(params: np.ndarray, horizon: float, x: np.ndarray, t_x: np.ndarray,
                            age: np.ndarray) -> np.ndarray:
    """P(no purchase in (age, age + horizon] | history): dead already, or alive and silent.

    Alive at ``age``, the customer buys at rate lambda, whose posterior is Gamma(r + x, alpha + age);
    a dropout only happens right after a purchase, so silence for ``horizon`` days has probability
    E[exp(-lambda * horizon)] = ((alpha + age) / (alpha + age + horizon)) ** (r + x).
    """
    r, alpha, _, _ = params
    alive = probability_alive(params, x, t_x, age)
    return 1.0 - alive + alive * ((alpha + age) / (alpha + age + horizon)) ** (r + x)


def expected_purchases(params: np.ndarray, horizon: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Expected purchase days in (age, age + horizon] given the history (x, t_x, age)."""
    r, alpha, a, b = params
    if a <= 1:  # the closed form needs a > 1
        a = 1.0 + 1e-6
    hypergeometric = hyp2f1(r + x, b + x, a + b + x - 1, horizon / (alpha + age + horizon))
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + age) / (alpha + age + horizon)) ** (r + x) * hypergeometric)
    denominator = 1 + (x > 0) * a / np.maximum(b + x - 1, 1e-12) * ((alpha + age) / (alpha + t_x)) ** (r + x)
    return numerator / denominator


def history(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, age) in days from ml order features: purchase days, tenure and recency."""
    x = np.clip(frame["purchase_day_count"].to_numpy(dtype=float) - 1, 0, None)
    age = frame["tenure_days"].to_numpy(dtype=float) + 1.0
    t_x = np.clip(frame["tenure_days"].to_numpy(dtype=float) - frame["days_since_last_order"].to_numpy(dtype=float), 0, None)
    return x, t_x, age


def purchase_model_features(order_features: pd.DataFrame, horizon_days: int, max_fit_rows: int = 20_000,
                            random_state: int = 0) -> pd.DataFrame:
    """One row per customer per as_of_date: BG/NBD expected purchases, probability alive and
    probability of no purchase in the horizon.

    Parameters
    ----------
    order_features : DataFrame
        ``customer_id``, ``as_of_date``, ``purchase_day_count``, ``tenure_days``, ``days_since_last_order``.
    horizon_days : int
        The churn horizon: expected purchase days in the next ``horizon_days``.
    """
    parts = []
    for as_of_date, rows in order_features.groupby("as_of_date", sort=True):
        rows = rows.sort_values("customer_id", kind="stable")
        x, t_x, age = history(rows)
        fit_rows = rows if len(rows) <= max_fit_rows else rows.sample(n=max_fit_rows, random_state=random_state)
        params = fit(*history(fit_rows)) if len(fit_rows) >= MIN_FIT_ROWS else None
        if params is None:
            expected = alive = silent = np.full(len(rows), np.nan)
        else:
            with np.errstate(all="ignore"):
                expected = expected_purchases(params, float(horizon_days), x, t_x, age)
                alive = probability_alive(params, x, t_x, age)
                silent = probability_no_purchase(params, float(horizon_days), x, t_x, age)
            expected = np.where(np.isfinite(expected), np.clip(expected, 0, None), np.nan)
            alive = np.where(np.isfinite(alive), np.clip(alive, 0, 1), np.nan)
            silent = np.where(np.isfinite(silent), np.clip(silent, 0, 1), np.nan)
        parts.append(pd.DataFrame({
            "customer_id": rows["customer_id"].astype("string").to_numpy(),
            "as_of_date": pd.to_datetime(rows["as_of_date"]).to_numpy(),
            "expected_purchases_next_horizon": expected,
            "probability_alive": alive,
            "probability_no_purchase_next_horizon": silent,
        }))
    if not parts:
        return pd.DataFrame({"customer_id": pd.Series(dtype="string"), "as_of_date": pd.Series(dtype="datetime64[us]"),
                             "expected_purchases_next_horizon": pd.Series(dtype="float64"),
                             "probability_alive": pd.Series(dtype="float64"),
                             "probability_no_purchase_next_horizon": pd.Series(dtype="float64")})
    return pd.concat(parts, ignore_index=True)[OUTPUT_COLUMNS]
