"""Latent simulation of the sample generator: time grid, customers, weekly loop.

Time is measured in (float) days since the start of the simulated period. The
weekly loop runs over all customers of a chunk at once (vectorised numpy), one
iteration per week of the simulation horizon (the period plus 35 days, so that
30-day windows after the last send are defined). See
:mod:`churnwarehouse.generate` for the model description.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from churnwarehouse import _gen_catalog as cat

DAY_US = 86_400_000_000
HORIZON_EXTRA_DAYS = 35
STOCK_SHARE = 0.3  # customers already registered at the start of the period
STOCK_MAX_TENURE_DAYS = 3 * 365

# Calibration constants of the behavioural model (per week unless noted).
RATE_SHAPE = 0.42  # gamma shape of the base purchase rate (heavy tail)
RATE_MEAN = 0.28  # mean base purchase rate, orders per week at full engagement
RATE_CAP = 6.0
ENGAGEMENT_TAU_DAYS = 480.0  # median e-folding time of engagement decay
HAZARD_BASE = 0.0042  # weekly hazard of the churn decision at full engagement
HAZARD_ENGAGEMENT = 2.0  # log-hazard per unit of lost engagement
HAZARD_FRUSTRATION = 0.45  # log-hazard per unit of frustration
HAZARD_RATE_EXPONENT = -0.3  # frequent buyers churn less
FRUSTRATION_DECAY = 0.88
WINDDOWN_DAYS = (28.0, 91.0)  # churn follows the decision after 1-3 months
POST_CHURN_VISIT_SHARE = 0.03

_DOW_WEIGHTS = np.array([1.05, 1.0, 0.98, 1.0, 0.92, 0.85, 1.2])  # Mon..Sun
_HOUR_WEIGHTS = np.array([
    0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.3, 0.55, 0.8, 0.95, 1.0, 1.05,
    1.2, 1.15, 1.0, 0.95, 1.0, 1.1, 1.3, 1.55, 1.7, 1.6, 1.15, 0.6,
])
_MONTH_SEASON = np.array([0.86, 0.84, 0.93, 0.95, 0.98, 0.94, 0.93, 0.95, 0.99, 1.04, 1.42, 1.36])


@dataclass(frozen=True)
class Clock:
    """The simulated period and the within-week intensity profile.

    ``G`` is the cumulative intensity over one week (hour-of-week weights from the
    day-of-week and hour-of-day profiles), normalised to 1 over a full week, in
    week-local days. Events of a week-level rate ``r`` in a window ``[lo, hi)`` of
    that week number Poisson(``r * (G(hi) - G(lo))``), placed by inverting G.
    """

    start_us: int
    days: int
    start_dow: int  # weekday of day 0, Monday = 0

    @property
    def horizon(self) -> float:
        return float(self.days + HORIZON_EXTRA_DAYS)

    @property
    def n_weeks(self) -> int:
        return int(np.ceil(self.horizon / 7.0))

    @property
    def end_us(self) -> int:
        return self.start_us + self.days * DAY_US

    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        hours = np.arange(168)
        w = _DOW_WEIGHTS[(self.start_dow + hours // 24) % 7] * _HOUR_WEIGHTS[hours % 24]
        cum = np.concatenate([[0.0], np.cumsum(w)])
        return np.arange(169) / 24.0, cum / cum[-1]

    def mass(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Intensity mass of week-local windows ``[lo, hi)`` (days in 0..7)."""
        x, g = self._knots()
        return np.interp(hi, x, g) - np.interp(lo, x, g)

    def place(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Week-local times in ``[lo, hi)`` with the weekly profile, from uniforms ``u``."""
        x, g = self._knots()
        glo = np.interp(lo, x, g)
        ghi = np.interp(hi, x, g)
        return np.interp(glo + u * (ghi - glo), g, x)

    def season(self, t: np.ndarray) -> np.ndarray:
        """Yearly seasonality multiplier at day offsets ``t`` (Nov/Dec peak)."""
        us = self.start_us + (np.asarray(t, dtype=np.float64) * DAY_US).astype(np.int64)
        months = us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64) % 12
        return _MONTH_SEASON[months]

    def to_us(self, t: np.ndarray) -> np.ndarray:
        """Day offsets to integer microseconds since the epoch."""
        return self.start_us + np.round(np.asarray(t, dtype=np.float64) * DAY_US).astype(np.int64)


def fixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Zero-padded string ids ``prefix + number`` built straight into an Arrow buffer.

    Parameters
    ----------
    prefix
        ASCII prefix such as ``"C"``.
    numbers
        Non-negative integers below ``10**width``.
    width
        Number of digits.

    Returns
    -------
    pyarrow.StringArray
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    n = len(numbers)
    if n and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(f"id numbers out of range for {prefix!r} with {width} digits")
    p = prefix.encode()
    k = len(p) + width
    buf = np.empty((n, k), dtype=np.uint8)
    buf[:, : len(p)] = np.frombuffer(p, dtype=np.uint8)
    rest = numbers.copy()
    for j in range(k - 1, len(p) - 1, -1):
        buf[:, j] = 48 + rest % 10
        rest //= 10
    offsets = (np.arange(n + 1, dtype=np.int64) * k).astype(np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.tobytes()))


def draw_acquisition_days(rng: np.random.Generator, n: int, clock: Clock) -> np.ndarray:
    """Sign-up times (days since start, sorted) for all customers.

    A stock of ``STOCK_SHARE`` customers registered up to three years before the
    start; the rest arrive during the period with seasonality, the weekly profile
    and 30%/year growth.
    """
    n_stock = int(round(STOCK_SHARE * n))
    stock = -rng.uniform(1.0, STOCK_MAX_TENURE_DAYS, n_stock)
    day = np.arange(clock.days, dtype=np.float64)
    weight = clock.season(day + 0.5) * (1.0 + 0.3 * day / 365.0)
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    cum /= cum[-1]
    # day by inverse CDF, then a within-week position with the weekly profile
    d = np.floor(np.interp(rng.random(n - n_stock), cum, np.arange(clock.days + 1.0)))
    d = np.minimum(d, clock.days - 1)
    wk = np.floor(d / 7.0) * 7.0
    local = clock.place(d - wk, np.minimum(d - wk + 1.0, clock.days - wk), rng.random(len(d)))
    new = np.minimum(wk + local, clock.days - 1e-4)
    return np.sort(np.concatenate([stock, new]))


@dataclass
class Latent:
    """Per-customer latent parameters of one chunk."""

    acq: np.ndarray  # sign-up time (days)
    rate: np.ndarray  # base purchase rate (orders / week at full engagement)
    tau: np.ndarray  # engagement e-folding time (days)
    discount_sensitivity: np.ndarray
    email_affinity: np.ndarray
    pickiness: np.ndarray  # base probability of a bad (1-2 star) review
    winddown: np.ndarray  # days from churn decision to churn
    visit_rate: np.ndarray  # browse sessions / week at full engagement
    fav1: np.ndarray
    fav2: np.ndarray
    channel: np.ndarray  # preferred order channel index
    country: np.ndarray
    currency: np.ndarray  # index into CURRENCIES used by non-GBP orders
    local_currency_share: np.ndarray
    opt_in: np.ndarray
    first_order_at: np.ndarray  # days; nan when the acquisition has no order in-window
    first_name: np.ndarray
    last_name: np.ndarray


def draw_latent(rng: np.random.Generator, acq: np.ndarray) -> Latent:
    """Draw the latent parameters of a chunk of customers with sign-up times ``acq``."""
    n = len(acq)
    rate = np.minimum(rng.gamma(RATE_SHAPE, RATE_MEAN / RATE_SHAPE, n), RATE_CAP)
    cat_share = np.array([c[1] for c in cat.CATEGORIES])
    cat_share /= cat_share.sum()
    country_w = np.array([c[1] for c in cat.COUNTRIES])
    country = rng.choice(len(cat.COUNTRIES), n, p=country_w / country_w.sum())
    local_cur = np.array([cat.CURRENCIES.index(c[2]) for c in cat.COUNTRIES])[country]
    is_new = acq >= 0
    has_first = is_new & (rng.random(n) < 0.92)
    quick = rng.random(n) < 0.7
    delay = np.where(quick, rng.uniform(2.0, 30.0, n) / 1440.0, rng.exponential(2.0, n) + 0.01)
    first = np.where(has_first, acq + delay, np.nan)
    return Latent(
        acq=acq,
        rate=rate,
        tau=ENGAGEMENT_TAU_DAYS * rng.lognormal(0.0, 0.5, n),
        discount_sensitivity=rng.beta(0.9, 2.4, n),
        email_affinity=rng.beta(2.0, 4.0, n),
        pickiness=rng.beta(2.0, 18.0, n),
        winddown=rng.uniform(*WINDDOWN_DAYS, n),
        visit_rate=0.02 + 0.65 * rate * rng.lognormal(0.0, 0.3, n),
        fav1=rng.choice(len(cat_share), n, p=cat_share),
        fav2=rng.choice(len(cat_share), n, p=cat_share),
        channel=rng.choice(3, n, p=np.array(cat.ORDER_CHANNEL_WEIGHTS)),
        country=country,
        currency=local_cur,
        local_currency_share=np.where(local_cur == 0, 0.0, 0.7),
        opt_in=rng.random(n) < 0.7,
        first_order_at=first,
        first_name=rng.integers(0, len(cat.FIRST_NAMES), n),
        last_name=rng.integers(0, len(cat.LAST_NAMES), n),
    )


@dataclass
class WeekState:
    """Output of the weekly loop for one chunk (matrices are customers x weeks)."""

    decided: np.ndarray  # churn decision time (days, inf if none within horizon)
    churn: np.ndarray  # churn time (days, inf if none within horizon)
    rate_completed: np.ndarray  # float32, completed-order intensity per unit mass
    engagement: np.ndarray  # float32, effective engagement (engagement x wind-down)
    distress: np.ndarray  # float32, 0 before the churn decision, 0.4..1 during wind-down
    n_orders: np.ndarray  # int16 baseline orders
    n_cancelled: np.ndarray
    n_returned: np.ndarray
    n_reviews: np.ndarray  # reviews among completed baseline orders
    n_bad_reviews: np.ndarray  # 1-2 star reviews among those
    n_tickets: np.ndarray
    n_unresolved: np.ndarray
    n_sessions: np.ndarray  # browse sessions while alive
    n_post_sessions: np.ndarray  # browse sessions after churn


def p_cancelled(distress: np.ndarray) -> np.ndarray:
    return 0.029 + 0.03 * distress


def p_returned(distress: np.ndarray) -> np.ndarray:
    return 0.039 + 0.045 * distress


def p_bad_review(pickiness: np.ndarray, distress: np.ndarray) -> np.ndarray:
    return np.clip(pickiness + 0.45 * distress, 0.0, 0.95)


P_REVIEW = 0.18


def simulate_weeks(rng: np.random.Generator, lat: Latent, clock: Clock) -> WeekState:
    """Run the weekly engagement / experience / churn loop for one chunk.

    Each week, for every customer registered and alive: engagement decays
    (``exp(-tenure / tau)`` times AR(1) noise); the churn decision arrives with a
    hazard rising with lost engagement and accumulated frustration; during the
    wind-down visits and orders fade and experiences worsen; orders, statuses,
    reviews, tickets and sessions are drawn; bad experiences feed frustration.
    """
    n, n_weeks = len(lat.acq), clock.n_weeks
    shape = (n, n_weeks)
    st = WeekState(
        decided=np.full(n, np.inf), churn=np.full(n, np.inf),
        rate_completed=np.zeros(shape, np.float32), engagement=np.zeros(shape, np.float32),
        distress=np.zeros(shape, np.float32),
        **{k: np.zeros(shape, np.int16) for k in (
            "n_orders", "n_cancelled", "n_returned", "n_reviews", "n_bad_reviews",
            "n_tickets", "n_unresolved", "n_sessions", "n_post_sessions")},
    )
    frustration = np.zeros(n)
    phi, sd = 0.9, 0.28
    log_noise = rng.normal(0.0, sd, n)
    innov = sd * np.sqrt(1 - phi**2)
    hazard_scale = HAZARD_BASE * (lat.rate / RATE_MEAN) ** HAZARD_RATE_EXPONENT
    for w in range(n_weeks):
        ws = 7.0 * w
        we = min(ws + 7.0, clock.horizon)
        log_noise = phi * log_noise + rng.normal(0.0, innov, n)
        season = clock.season(np.array([ws + 3.5]))[0]
        idx = np.flatnonzero((lat.acq < we) & (st.churn > ws))
        a = lat.acq[idx]
        lo = np.maximum(a, ws)
        t_mid = 0.5 * (lo + we)
        eng = np.exp(-(t_mid - a) / lat.tau[idx] + log_noise[idx] - sd**2 / 2)
        # churn decision
        undecided = np.isinf(st.decided[idx])
        h = hazard_scale[idx] * np.exp(
            HAZARD_ENGAGEMENT * (1.0 - np.minimum(eng, 1.0))
            + HAZARD_FRUSTRATION * frustration[idx])
        frac = clock.mass(lo - ws, np.full(len(idx), we - ws))
        hit = undecided & (rng.random(len(idx)) < -np.expm1(-h * frac))
        when = lo + rng.random(len(idx)) * (we - lo)
        di = idx[hit]
        st.decided[di] = when[hit]
        st.churn[di] = when[hit] + lat.winddown[di]
        d = st.decided[idx]
        in_wd = d <= t_mid
        prog = np.where(in_wd, np.clip((t_mid - d) / lat.winddown[idx], 0.0, 1.0), 0.0)
        distress = np.where(in_wd, 0.4 + 0.6 * prog, 0.0)
        eff = eng * np.where(in_wd, 1.0 - 0.8 * prog, 1.0)  # orders fade faster than visits
        eff_visits = eng * np.where(in_wd, 1.0 - 0.55 * prog, 1.0)
        c = st.churn[idx]
        hi = np.minimum(c, we)
        m_alive = np.where(hi > lo, clock.mass(lo - ws, np.maximum(hi, lo) - ws), 0.0)
        r = lat.rate[idx] * season * eff
        pc_, pr_ = p_cancelled(distress), p_returned(distress)
        n_ord = rng.poisson(r * m_alive)
        n_c = rng.binomial(n_ord, pc_)
        n_r = rng.binomial(n_ord - n_c, pr_ / (1.0 - pc_))
        n_comp = n_ord - n_c - n_r
        n_rev = rng.binomial(n_comp, P_REVIEW + 0.1 * distress)
        n_bad = rng.binomial(n_rev, p_bad_review(lat.pickiness[idx], distress))
        n_tix = rng.poisson(0.1 * n_ord + m_alive * (0.006 + 0.08 * distress))
        n_unres = rng.binomial(n_tix, 0.08 + 0.5 * distress)
        vis = lat.visit_rate[idx] * season
        n_sess = rng.poisson(vis * eff_visits * m_alive)
        frustration[idx] = (FRUSTRATION_DECAY * frustration[idx] + 1.0 * n_unres + 0.7 * n_bad
                            + 0.3 * (n_c + n_r) + 0.1 * (n_tix - n_unres))
        st.rate_completed[idx, w] = r * (1.0 - pc_ - pr_)
        st.engagement[idx, w] = eff
        st.distress[idx, w] = distress
        for name, val in (("n_orders", n_ord), ("n_cancelled", n_c), ("n_returned", n_r),
                          ("n_reviews", n_rev), ("n_bad_reviews", n_bad), ("n_tickets", n_tix),
                          ("n_unresolved", n_unres), ("n_sessions", n_sess)):
            getattr(st, name)[idx, w] = val
        # visits almost stop after churn (customers churned this week or earlier)
        post = np.flatnonzero(st.churn < we)
        if len(post):
            m_post = clock.mass(np.clip(st.churn[post], ws, we) - ws, np.full(len(post), we - ws))
            st.n_post_sessions[post, w] = rng.poisson(
                POST_CHURN_VISIT_SHARE * lat.visit_rate[post] * season * m_post)
    return st


def window_completed_intensity(
    clock: Clock, st: WeekState, acq: np.ndarray, cust: np.ndarray,
    t0: np.ndarray, length: float = 30.0,
) -> np.ndarray:
    """Expected number of completed baseline orders in ``[t0, t0 + length)``.

    Integrates the weekly completed-order intensity over the part of the window in
    which each customer is registered and not churned.
    """
    total = np.zeros(len(cust))
    w0 = np.floor(t0 / 7.0).astype(np.int64)
    churn = st.churn[cust]
    a = acq[cust]
    for k in range(int(np.ceil(length / 7.0)) + 1):
        w = w0 + k
        ok = w < clock.n_weeks
        wc = np.minimum(w, clock.n_weeks - 1)
        ws = 7.0 * wc
        lo = np.maximum.reduce([t0, ws, a])
        hi = np.minimum.reduce([t0 + length, ws + 7.0, churn, np.full(len(t0), clock.horizon)])
        good = ok & (hi > lo)
        m = np.where(good, clock.mass(np.clip(lo - ws, 0, 7), np.clip(hi - ws, 0, 7)), 0.0)
        total += st.rate_completed[cust, wc] * m
    return total


@dataclass
class Counters:
    """Running id counters, carried from chunk to chunk (ids are global)."""

    order: int = 0
    event: int = 0
    session: int = 0
    review: int = 0
    ticket: int = 0
    send: int = 0
    unknown_customer: int = 0

    def take(self, name: str, n: int) -> np.ndarray:
        """Reserve ``n`` consecutive numbers of counter ``name`` (1-based)."""
        first = getattr(self, name)
        setattr(self, name, first + n)
        return np.arange(first + 1, first + n + 1, dtype=np.int64)


def expand_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (customer, week) pair per unit of a customers x weeks count matrix."""
    i, w = np.nonzero(counts)
    k = counts[i, w].astype(np.int64)
    return np.repeat(i, k), np.repeat(w, k)


def group_rank(*keys: np.ndarray) -> np.ndarray:
    """Position of each row within its run of equal keys (rows already grouped)."""
    n = len(keys[0])
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
    for k in keys:
        new[1:] |= k[1:] != k[:-1]
    pos = np.arange(n)
    return pos - np.maximum.accumulate(np.where(new, pos, 0))


def place_in_weeks(rng: np.random.Generator, clock: Clock, w: np.ndarray, lo: np.ndarray,
                   hi: np.ndarray) -> np.ndarray:
    """Times (days) in ``[lo, hi)`` of weeks ``w`` following the weekly profile."""
    ws = 7.0 * w
    return ws + clock.place(lo - ws, hi - ws, rng.random(len(w)))


def alive_window(lat: Latent, st: WeekState, clock: Clock, i: np.ndarray,
                 w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Part ``[lo, hi)`` of week ``w`` in which customer ``i`` is registered and not churned."""
    ws = 7.0 * w
    lo = np.maximum(lat.acq[i], ws)
    hi = np.minimum.reduce([st.churn[i], ws + 7.0, np.full(len(i), clock.horizon)])
    return lo, hi


def us_array(us: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Arrow timestamp[us] array from epoch microseconds (null where not ``valid``)."""
    return pa.array(us, type=pa.timestamp("us"), mask=None if valid is None else ~valid)


def draw_products(rng: np.random.Generator, products: cat.Products,
                  category: np.ndarray) -> np.ndarray:
    """One product per row of ``category``, by popularity within the category."""
    per = cat.PRODUCTS_PER_CATEGORY
    p = np.searchsorted(products.cum_weight, category + rng.random(len(category)), side="right")
    return np.clip(p, category * per, category * per + per - 1)


def line_categories(rng: np.random.Generator, lat: Latent, cust: np.ndarray) -> np.ndarray:
    """Category per basket line: favourite (45%), second favourite (20%) or any (35%)."""
    share = np.array([c[1] for c in cat.CATEGORIES])
    u = rng.random(len(cust))
    other = rng.choice(len(share), len(cust), p=share / share.sum())
    return np.where(u < 0.45, lat.fav1[cust], np.where(u < 0.65, lat.fav2[cust], other))
