"""Row expansion of the sample generator: one chunk of customers to contract tables.

Turns the weekly counts of :func:`churnwarehouse._gen_core.simulate_weeks` into
timestamped rows (orders, items, events, reviews, tickets), simulates the
marketing sends with their randomised holdout and causal effect, and returns
Arrow tables with exactly the contract's columns plus the ground-truth tables.
See :mod:`churnwarehouse.generate` for the model description.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnwarehouse import _gen_catalog as cat
from churnwarehouse._gen_core import (
    DAY_US,
    P_REVIEW,
    Clock,
    Counters,
    Latent,
    WeekState,
    alive_window,
    draw_latent,
    draw_products,
    expand_counts,
    fixed_ids,
    group_rank,
    line_categories,
    p_bad_review,
    p_cancelled,
    p_returned,
    place_in_weeks,
    simulate_weeks,
    us_array,
    window_completed_intensity,
)
from churnwarehouse._gen_events import build_events

COMPLETED, CANCELLED, RETURNED = 0, 1, 2  # indexes into contract.ORDER_STATUSES

HOLDOUT_SHARE = 0.15
RESPONSE_SCALE = 0.32  # campaign response probability per unit discount sensitivity
RESPONSE_CAP = 0.6
INDUCED_DELAY_MEAN = 5.0  # days; induced purchases follow the send (truncated at 30 days)
WINDOW_DAYS = 30.0


@dataclass(frozen=True)
class Campaigns:
    """Campaign schedule shared by all chunks."""

    day: np.ndarray  # start of the campaign day (days since start)
    offer: np.ndarray  # index into OFFERS
    audience: np.ndarray  # share of eligible opted-in customers selected

    @property
    def campaign_ids(self) -> list[str]:
        return [f"CAMP{k + 1:03d}" for k in range(len(self.day))]

    @property
    def coupon_codes(self) -> list[str]:
        return [f"{c}-{cat.OFFERS[o][0]}" for c, o in zip(self.campaign_ids, self.offer)]


def draw_campaigns(rng: np.random.Generator, clock: Clock) -> Campaigns:
    """A campaign roughly every two weeks, each with an offer and an audience share."""
    days = []
    d = 6.0 + rng.integers(0, 4)
    while d < clock.days - 1:
        days.append(d)
        d += 14 + rng.integers(-2, 3)
    k = len(days)
    return Campaigns(np.array(days, dtype=np.float64), rng.integers(0, len(cat.OFFERS), k),
                     rng.uniform(0.2, 0.45, k))


@dataclass
class ChunkResult:
    """Contract tables and truth tables of one chunk (clean rows only)."""

    tables: dict[str, pa.Table]
    truth_customers: pa.Table
    truth_sends: pa.Table
    order_t_us: np.ndarray  # ordered_at of the clean orders (row order)
    event_t_us: np.ndarray
    has_order: np.ndarray  # per customer of the chunk
    stats: dict[str, float] = field(default_factory=dict)


def next_after(q_key: np.ndarray, q_t: np.ndarray, e_key: np.ndarray,
               e_t: np.ndarray) -> np.ndarray:
    """Index of the first event with the same key strictly after each query time.

    Returns -1 where there is none. Exact on integer times.
    """
    nq, ne = len(q_key), len(e_key)
    key = np.concatenate([q_key, e_key])
    t = np.concatenate([q_t, e_t])
    is_event = np.concatenate([np.zeros(nq, bool), np.ones(ne, bool)])
    # at equal times events sort before queries, so "strictly after" holds
    order = np.lexsort((is_event.astype(np.int8) * -1, t, key))
    pos = np.arange(nq + ne)
    cand = np.where(is_event[order], pos, nq + ne)
    nxt = np.minimum.accumulate(cand[::-1])[::-1]
    nxt = np.concatenate([nxt[1:], [nq + ne]])
    inv = np.empty(nq + ne, dtype=np.int64)
    inv[order] = pos
    qpos = inv[:nq]
    hit = nxt[qpos]
    out = np.full(nq, -1, dtype=np.int64)
    ok = hit < nq + ne
    ev = order[hit[ok]] - nq
    same = e_key[ev] == q_key[ok]
    idx = np.flatnonzero(ok)[same]
    out[idx] = ev[same]
    return out


def campaign_response(lat: Latent, st: WeekState, cust: np.ndarray, t: np.ndarray,
                      offer_mult: np.ndarray) -> np.ndarray:
    """Probability that a send at ``t`` triggers an extra purchase (alive customers).

    Grows with discount sensitivity and with lapsing (lost effective engagement).
    """
    w = np.minimum(np.floor(t / 7.0).astype(np.int64), st.engagement.shape[1] - 1)
    eff = np.clip(st.engagement[cust, w], 0.0, 1.0)
    alive = (t < st.churn[cust]) & (t >= lat.acq[cust])
    q = RESPONSE_SCALE * lat.discount_sensitivity[cust] * offer_mult * (0.4 + 1.2 * (1.0 - eff))
    return np.where(alive, np.minimum(q, RESPONSE_CAP), 0.0)


def _trunc_exp_cdf(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, WINDOW_DAYS)
    return -np.expm1(-x / INDUCED_DELAY_MEAN) / -np.expm1(-WINDOW_DAYS / INDUCED_DELAY_MEAN)


def other_sends_no_purchase(
    q_cust: np.ndarray, q_t: np.ndarray, q_self: np.ndarray, s_cust: np.ndarray,
    s_t: np.ndarray, s_q: np.ndarray, churn: np.ndarray,
) -> np.ndarray:
    """P(no purchase induced by the customer's other treated sends falls in ``(t, t + 30]``).

    Parameters
    ----------
    q_cust, q_t
        Query customer (chunk index) and time (days).
    q_self
        Index of the query's own send in the send arrays (-1: none), which is skipped.
    s_cust, s_t, s_q
        All sends of the chunk: customer, time, response probability (0 for holdout).
    churn
        Churn time per customer of the chunk.
    """
    order = np.lexsort((s_t, s_cust))
    sc, st_, sq = s_cust[order], s_t[order], s_q[order]
    pos_of = np.empty(len(order), dtype=np.int64)
    pos_of[order] = np.arange(len(order))
    key = sc * 1e4 + st_
    lo = np.searchsorted(key, q_cust * 1e4 + q_t - WINDOW_DAYS, side="right")
    hi = np.searchsorted(key, q_cust * 1e4 + q_t + WINDOW_DAYS, side="left")
    self_pos = np.where(q_self >= 0, pos_of[np.maximum(q_self, 0)], -1) if len(order) else q_self
    out = np.ones(len(q_cust))
    for k in range(int((hi - lo).max(initial=0))):
        j = lo + k
        ok = (j < hi) & (j != self_pos)
        jj = np.minimum(j, len(sc) - 1)
        a = q_t - st_[jj]
        b = np.minimum(q_t + WINDOW_DAYS, churn[sc[jj]]) - st_[jj]
        p = sq[jj] * np.clip(_trunc_exp_cdf(b) - _trunc_exp_cdf(a), 0.0, 1.0)
        out *= np.where(ok, 1.0 - p, 1.0)
    return out


def true_uplift(clock: Clock, lat: Latent, st: WeekState, cust: np.ndarray, t: np.ndarray,
                offer_mult: np.ndarray,
                no_other: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True effect of a send at ``t`` on P(completed order within 30 days).

    Baseline completed orders are a Poisson process with known intensity L, and
    the customer's other treated sends add purchases that reach the window with
    a known probability (``no_other`` = P(none does)); so P0 = 1 - exp(-L) *
    no_other. The send adds an independent purchase with probability q_eff =
    q * P(delay < time to churn), hence uplift = q_eff * exp(-L) * no_other.

    Returns
    -------
    uplift, p_baseline, q_eff
    """
    lam = window_completed_intensity(clock, st, lat.acq, cust, t, WINDOW_DAYS)
    q = campaign_response(lat, st, cust, t, offer_mult)
    q_eff = q * _trunc_exp_cdf(st.churn[cust] - t)
    p_none = np.exp(-lam) * no_other
    return q_eff * p_none, 1.0 - p_none, q_eff


def _orders_from_weeks(rng: np.random.Generator, clock: Clock, lat: Latent,
                       st: WeekState) -> dict[str, np.ndarray]:
    """Acquisition orders plus the weekly baseline orders (status, review flags)."""
    bc, bw = expand_counts(st.n_orders)
    lo, hi = alive_window(lat, st, clock, bc, bw)
    bt = place_in_weeks(rng, clock, bw, lo, hi)
    rank = group_rank(bc, bw)  # rows of a group are iid in time: rank is a random order
    n_c = st.n_cancelled[bc, bw]
    n_r = st.n_returned[bc, bw]
    b_status = np.where(rank < n_c, CANCELLED, np.where(rank < n_c + n_r, RETURNED, COMPLETED))
    crank = rank - n_c - n_r
    b_rev = (b_status == COMPLETED) & (crank < st.n_reviews[bc, bw])
    b_bad = b_rev & (crank < st.n_bad_reviews[bc, bw])

    ac = np.flatnonzero(np.isfinite(lat.first_order_at))
    at = lat.first_order_at[ac]
    aw = np.minimum(np.floor(at / 7.0).astype(np.int64), clock.n_weeks - 1)
    d = st.distress[ac, aw]
    u = rng.random(len(ac))
    a_status = np.where(u < p_cancelled(d), CANCELLED,
                        np.where(u < p_cancelled(d) + p_returned(d), RETURNED, COMPLETED))
    a_rev = (a_status == COMPLETED) & (rng.random(len(ac)) < P_REVIEW + 0.1 * d)
    a_bad = a_rev & (rng.random(len(ac)) < p_bad_review(lat.pickiness[ac], d))
    return {
        "cust": np.concatenate([ac, bc]), "t": np.concatenate([at, bt]),
        "status": np.concatenate([a_status, b_status]),
        "reviewed": np.concatenate([a_rev, b_rev]), "bad": np.concatenate([a_bad, b_bad]),
        "is_first": np.concatenate([np.ones(len(ac), bool), np.zeros(len(bc), bool)]),
    }


def _sends(rng: np.random.Generator, clock: Clock, lat: Latent, st: WeekState,
           camps: Campaigns, orders: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Marketing sends with randomised holdout, opens, clicks and causal purchases."""
    n = len(lat.acq)
    cust_parts, camp_parts = [], []
    for k, day in enumerate(camps.day):
        elig = lat.opt_in & (lat.acq < day - 1.0) & ~(lat.first_order_at >= day)
        sel = np.flatnonzero(elig & (rng.random(n) < camps.audience[k]))
        cust_parts.append(sel)
        camp_parts.append(np.full(len(sel), k))
    cust = np.concatenate(cust_parts).astype(np.int64)
    k = np.concatenate(camp_parts).astype(np.int64)
    m = len(cust)
    sent = camps.day[k] + (9.0 + 3.0 * rng.random(m)) / 24.0
    sent_us = clock.to_us(sent)
    sent = (sent_us - clock.start_us) / DAY_US
    holdout = rng.random(m) < HOLDOUT_SHARE
    channel = rng.choice(3, m, p=np.array(cat.SEND_CHANNEL_WEIGHTS))
    offer_mult = np.array([o[3] for o in cat.OFFERS])[camps.offer[k]]
    q = campaign_response(lat, st, cust, sent, offer_mult)
    q_treated = np.where(holdout, 0.0, q)
    no_other = other_sends_no_purchase(cust, sent, np.arange(m), cust, sent, q_treated, st.churn)
    uplift, p_base, _ = true_uplift(clock, lat, st, cust, sent, offer_mult, no_other)
    # the send's own extra purchase: Bernoulli(q), delay truncated-exponential on [0, 30)
    v = rng.random(m)
    delay = -INDUCED_DELAY_MEAN * np.log1p(v * np.expm1(-WINDOW_DAYS / INDUCED_DELAY_MEAN))
    delay = np.clip(delay, 1.0 / 1440.0, WINDOW_DAYS - 1e-6)
    induced = ~holdout & (rng.random(m) < q) & (sent + delay < st.churn[cust])
    t_ind = sent + delay
    # opens and clicks (treated only)
    w = np.minimum(np.floor(sent / 7.0).astype(np.int64), clock.n_weeks - 1)
    eff = np.clip(st.engagement[cust, w], 0.0, 1.0)
    alive = sent < st.churn[cust]
    aff = lat.email_affinity[cust]
    p_open = np.where(alive, aff * (0.35 + 0.65 * eff), 0.15 * aff)
    opened = ~holdout & np.where(induced, rng.random(m) < 0.9, rng.random(m) < p_open)
    p_click = np.where(induced, 0.75, 0.05 + 0.3 * lat.discount_sensitivity[cust])
    clicked = opened & (rng.random(m) < p_click)
    open_lag = np.where(induced, rng.uniform(0.05, 0.6, m) * delay,
                        np.minimum(rng.lognormal(np.log(3.0 / 24.0), 1.0, m), 10.0))
    t_open = sent + open_lag
    t_click = t_open + np.where(induced, rng.uniform(0.1, 0.9, m) * (t_ind - t_open),
                                rng.exponential(0.25 / 24.0, m))
    # non-incremental redemptions: an opener's next completed baseline order uses the coupon
    claim = -np.ones(m, dtype=np.int64)
    cand = np.flatnonzero(~holdout & opened & ~induced
                          & (rng.random(m) < 0.6 * lat.discount_sensitivity[cust]))
    base = np.flatnonzero((orders["status"] == COMPLETED) & ~orders["is_first"])
    o_us = clock.to_us(orders["t"][base])
    nxt = next_after(cust[cand], sent_us[cand], orders["cust"][base], o_us)
    ok = nxt >= 0
    ok[ok] = ((o_us[nxt[ok]] <= sent_us[cand[ok]] + int(WINDOW_DAYS * DAY_US))
              & (o_us[nxt[ok]] > clock.to_us(t_open[cand[ok]])))  # redeemed after opening
    cand, nxt = cand[ok], base[nxt[ok]]
    _, first = np.unique(nxt, return_index=True)  # an order redeems one coupon (earliest send)
    claim[cand[first]] = nxt[first]
    return {
        "cust": cust, "campaign": k, "sent": sent, "sent_us": sent_us, "holdout": holdout,
        "q_treated": q_treated,
        "channel": channel, "uplift": uplift, "p_base": p_base, "alive": alive,
        "induced": induced, "t_ind": t_ind, "opened": opened, "t_open": t_open,
        "clicked": clicked, "t_click": t_click, "claim": claim,
    }


def _ts(clock: Clock, t: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    us = clock.to_us(np.nan_to_num(t, nan=0.0, posinf=0.0))
    mask = None if valid is None else ~valid
    return pa.array(us, type=pa.timestamp("us"), mask=mask)


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row from row-wise probabilities ``probs`` (rows x classes)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def simulate_chunk(
    rng: np.random.Generator, acq: np.ndarray, first_number: int, clock: Clock,
    products: cat.Products, camps: Campaigns, counters: Counters,
) -> ChunkResult:
    """Simulate one chunk of customers and build its clean contract and truth tables.

    Parameters
    ----------
    rng
        The chunk's own generator.
    acq
        Sign-up times (days since start) of the chunk's customers.
    first_number
        Customer number of the chunk's first customer (ids are ``C`` + 7 digits).
    clock, products, camps
        Period, catalog and campaign schedule shared by all chunks.
    counters
        Global id counters, advanced in place.

    Returns
    -------
    ChunkResult
    """
    n = len(acq)
    end_us = clock.end_us
    lat = draw_latent(rng, acq)
    st = simulate_weeks(rng, lat, clock)
    cust_ids = fixed_ids("C", first_number + np.arange(n), 7)

    # ---- orders: acquisition + baseline + campaign-induced --------------------------
    o = _orders_from_weeks(rng, clock, lat, st)
    s = _sends(rng, clock, lat, st, camps, o)
    n_base = len(o["cust"])
    ind = np.flatnonzero(s["induced"])
    iw = np.minimum(np.floor(s["t_ind"][ind] / 7.0).astype(np.int64), clock.n_weeks - 1)
    d_ind = st.distress[s["cust"][ind], iw]
    i_rev = rng.random(len(ind)) < P_REVIEW + 0.1 * d_ind
    i_bad = i_rev & (rng.random(len(ind)) < p_bad_review(lat.pickiness[s["cust"][ind]], d_ind))
    o_camp = np.full(n_base, -1, dtype=np.int64)
    claimed = np.flatnonzero(s["claim"] >= 0)
    o_camp[s["claim"][claimed]] = s["campaign"][claimed]
    cust = np.concatenate([o["cust"], s["cust"][ind]])
    t = np.concatenate([o["t"], s["t_ind"][ind]])
    t_us = clock.to_us(t)
    status = np.concatenate([o["status"], np.full(len(ind), COMPLETED)])
    reviewed = np.concatenate([o["reviewed"], i_rev])
    bad = np.concatenate([o["bad"], i_bad])
    is_first = np.concatenate([o["is_first"], np.zeros(len(ind), bool)])
    camp = np.concatenate([o_camp, s["campaign"][ind]])
    # redemption time per send (clean, in-period orders only)
    redeem_us = np.full(len(s["cust"]), -1, dtype=np.int64)
    redeem_us[claimed] = t_us[s["claim"][claimed]]
    redeem_us[ind] = t_us[n_base + np.arange(len(ind))]
    redeem_us[redeem_us >= end_us] = -1
    keep = t_us < end_us
    order = np.flatnonzero(keep)[np.argsort(t_us[keep], kind="stable")]
    cust, t, t_us, status, reviewed, bad, is_first, camp = (
        x[order] for x in (cust, t, t_us, status, reviewed, bad, is_first, camp))
    n_ord = len(order)
    o_week = np.minimum(np.floor(t / 7.0).astype(np.int64), clock.n_weeks - 1)
    o_distress = st.distress[cust, o_week]

    # ---- order items ----------------------------------------------------------------
    n_lines = 1 + np.minimum(rng.poisson(1.6, n_ord), 9)
    line_order = np.repeat(np.arange(n_ord), n_lines)
    line_cat = line_categories(rng, lat, cust[line_order])
    prod = draw_products(rng, products, line_cat)
    srt = np.lexsort((prod, line_order))
    line_order, prod = line_order[srt], prod[srt]
    dup = np.zeros(len(prod), bool)
    dup[1:] = (line_order[1:] == line_order[:-1]) & (prod[1:] == prod[:-1])
    line_order, prod = line_order[~dup], prod[~dup]
    n_lines = np.bincount(line_order, minlength=n_ord)
    line_start = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    n_items = len(prod)
    qty = rng.choice(4, n_items, p=[0.78, 0.15, 0.05, 0.02]) + 1
    grocery = products.category[prod] == len(cat.CATEGORIES) - 1
    qty += np.where(grocery, rng.poisson(0.6, n_items), 0)
    use_local = rng.random(n_ord) < lat.local_currency_share[cust]
    currency = np.where(use_local, lat.currency[cust], 0)
    fx = np.array(list(cat.FX_PER_GBP.values()))[currency]
    sale = np.where(rng.random(n_items) < 0.12, rng.uniform(0.7, 0.9, n_items), 1.0)
    unit_price = np.round(products.list_price_gbp[prod] * fx[line_order] * sale, 2)
    unit_price = np.maximum(unit_price, 0.01)
    subtotal = np.round(np.bincount(line_order, weights=qty * unit_price, minlength=n_ord), 2)

    # ---- coupons and discounts ------------------------------------------------------
    n_generic = len(cat.GENERIC_CODES)
    code = np.where(camp >= 0, n_generic + camp, -1)
    day = t_us.astype("datetime64[us]").astype("datetime64[D]")
    month_start = day.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12 + 1
    dom = (day - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    black_friday = ((month == 11) & (dom >= 22)) | ((month == 12) & (dom <= 2))
    sens = lat.discount_sensitivity[cust]
    p_generic = np.where(is_first, 0.3,
                         np.where(black_friday, 0.1 + 0.4 * sens, 0.02 + 0.12 * sens))
    generic = (code < 0) & (rng.random(n_ord) < p_generic)
    pick = np.where(is_first, 0, np.where(black_friday, 1, rng.integers(2, n_generic, n_ord)))
    code = np.where(generic, pick, code)
    kinds = [c[1] for c in cat.GENERIC_CODES] + [cat.OFFERS[of][1] for of in camps.offer]
    values = [c[2] for c in cat.GENERIC_CODES] + [cat.OFFERS[of][2] for of in camps.offer]
    is_pct = np.array([k_ == "pct" for k_ in kinds] + [False])[code]  # -1 -> last (False)
    value = np.array(values + [0.0])[code]
    discount = np.where(is_pct, np.round(subtotal * value, 2), np.round(value * fx, 2))
    discount = np.where(code >= 0, np.minimum(discount, subtotal), 0.0)
    total = np.round(subtotal - discount, 2) + 0.0

    channel = np.where(rng.random(n_ord) < 0.8, lat.channel[cust], rng.choice(3, n_ord))
    order_numbers = counters.take("order", n_ord)
    order_ids = fixed_ids("O", order_numbers, 8)
    cust_pa = pa.array(cust)
    all_codes = pa.array([c[0] for c in cat.GENERIC_CODES] + camps.coupon_codes)
    orders_tbl = pa.table({
        "order_id": order_ids,
        "customer_id": cust_ids.take(cust_pa),
        "ordered_at": us_array(t_us),
        "order_total": total,
        "status": pa.array(["completed", "cancelled", "returned"]).take(pa.array(status)),
        "discount_amount": discount,
        "coupon_code": all_codes.take(pa.array(np.maximum(code, 0), mask=code < 0)),
        "channel": pa.array(list(cat.ORDER_CHANNELS)).take(pa.array(channel)),
        "currency": pa.array(list(cat.CURRENCIES)).take(pa.array(currency)),
    })
    items_tbl = pa.table({
        "order_id": order_ids.take(pa.array(line_order)),
        "product_id": pa.array(products.product_id.tolist()).take(pa.array(prod)),
        "quantity": pa.array(qty.astype(np.int32)),
        "unit_price": unit_price,
    })

    # ---- reviews --------------------------------------------------------------------
    ro = np.flatnonzero(reviewed)
    r_prod = prod[line_start[ro] + (rng.random(len(ro)) * n_lines[ro]).astype(np.int64)]
    rd = o_distress[ro]
    u = rng.random(len(ro))
    p3 = 0.17 + 0.2 * rd
    p4 = 0.36 + 0.05 * rd
    rating = np.where(bad[ro], np.where(rng.random(len(ro)) < 0.55, 1, 2),
                      np.where(u < p3, 3, np.where(u < p3 + p4, 4, 5)))
    r_us = t_us[ro] + ((1.0 + rng.exponential(6.0, len(ro))) * DAY_US).astype(np.int64)
    rk = np.flatnonzero(r_us < end_us)
    rk = rk[np.argsort(r_us[rk], kind="stable")]
    ro, r_prod, rating, r_us = ro[rk], r_prod[rk], rating[rk], r_us[rk]
    reviews_tbl = pa.table({
        "review_id": fixed_ids("R", counters.take("review", len(ro)), 8),
        "customer_id": cust_ids.take(pa.array(cust[ro])),
        "product_id": pa.array(products.product_id.tolist()).take(pa.array(r_prod)),
        "rating": pa.array(rating.astype(np.int32)),
        "review_text": cat.review_texts(rng, rating, products.noun[r_prod]),
        "reviewed_at": us_array(r_us),
    })

    # ---- support tickets ------------------------------------------------------------
    tc, tw = expand_counts(st.n_tickets)
    lo, hi = alive_window(lat, st, clock, tc, tw)
    tt = place_in_weeks(rng, clock, tw, lo, hi)
    unresolved = group_rank(tc, tw) < st.n_unresolved[tc, tw]
    tt_us = clock.to_us(tt)
    tk = np.flatnonzero(tt_us < end_us)
    tk = tk[np.argsort(tt_us[tk], kind="stable")]
    tc, tw, tt_us, unresolved = tc[tk], tw[tk], tt_us[tk], unresolved[tk]
    td = st.distress[tc, tw].astype(np.float64)[:, None]
    topic_p = (1 - td) * np.array(cat.TICKET_TOPIC_BASE) + td * np.array(cat.TICKET_TOPIC_DISTRESS)
    topic = _categorical(rng, topic_p)
    res_us = tt_us + (rng.lognormal(np.log(18.0), 1.1, len(tc)) * 3_600_000_000).astype(np.int64)
    res_ok = ~unresolved & (res_us < end_us)
    sat = np.where(unresolved, rng.normal(1.7, 0.8, len(tc)),
                   rng.normal(4.1 - 1.3 * td[:, 0], 0.9, len(tc)))
    sat = np.clip(np.round(sat), 1, 5).astype(np.int32)
    sat_ok = (rng.random(len(tc)) >= 0.35) & (res_ok | unresolved)
    tickets_tbl = pa.table({
        "ticket_id": fixed_ids("T", counters.take("ticket", len(tc)), 8),
        "customer_id": cust_ids.take(pa.array(tc)),
        "opened_at": us_array(tt_us),
        "resolved_at": us_array(res_us, res_ok),
        "topic": pa.array(list(cat.TICKET_TOPICS)).take(pa.array(topic)),
        "satisfaction_score": pa.array(sat, mask=~sat_ok),
    })

    # ---- events ---------------------------------------------------------------------
    events_tbl, event_t_us, ev_stats = build_events(
        rng, clock, lat, st, products, cust_ids, counters,
        cust, t, is_first, line_start, n_lines, prod)

    # ---- marketing sends ------------------------------------------------------------
    sk = np.argsort(s["sent_us"], kind="stable")
    s = {key: val[sk] for key, val in s.items()}
    redeem_us = redeem_us[sk]
    m = len(s["cust"])
    treated = ~s["holdout"]
    open_us = clock.to_us(s["t_open"])
    click_us = clock.to_us(s["t_click"])
    send_numbers = counters.take("send", m)
    send_ids = fixed_ids("M", send_numbers, 9)
    sends_tbl = pa.table({
        "send_id": send_ids,
        "customer_id": cust_ids.take(pa.array(s["cust"])),
        "campaign_id": pa.array(camps.campaign_ids).take(pa.array(s["campaign"])),
        "offer_id": pa.array([of[0] for of in cat.OFFERS]).take(
            pa.array(camps.offer[s["campaign"]])),
        "channel": pa.array(list(cat.SEND_CHANNELS)).take(pa.array(s["channel"])),
        "sent_at": us_array(s["sent_us"]),
        "is_holdout": pa.array(s["holdout"]),
        "opened_at": us_array(open_us, treated & s["opened"] & (open_us < end_us)),
        "clicked_at": us_array(click_us, treated & s["clicked"] & (click_us < end_us)),
        "redeemed_at": us_array(np.maximum(redeem_us, 0), redeem_us >= 0),
    })
    # observed purchase within 30 days (clean completed orders in the period)
    comp = np.flatnonzero(status == COMPLETED)
    nxt = next_after(s["cust"], s["sent_us"], cust[comp], t_us[comp])
    window_us = int(WINDOW_DAYS * DAY_US)
    purchased = nxt >= 0
    purchased[purchased] = t_us[comp[nxt[purchased]]] <= s["sent_us"][purchased] + window_us
    truth_sends = pa.table({
        "send_id": send_ids,
        "customer_id": cust_ids.take(pa.array(s["cust"])),
        "campaign_id": pa.array(camps.campaign_ids).take(pa.array(s["campaign"])),
        "sent_at": us_array(s["sent_us"]),
        "is_holdout": pa.array(s["holdout"]),
        "is_alive_at_send": pa.array(s["alive"]),
        "p_purchase_30d_without_send": s["p_base"],
        "true_uplift_30d": s["uplift"],
        "had_induced_purchase": pa.array(s["induced"] & (redeem_us >= 0)),
        "purchased_30d": pa.array(purchased),
        "is_window_complete": pa.array(s["sent_us"] + window_us <= end_us),
    })

    # ---- customers ------------------------------------------------------------------
    first_lower = pa.array(list(cat.FIRST_NAMES))
    numbers = first_number + np.arange(n)
    email = pc.binary_join_element_wise(
        first_lower.take(pa.array(lat.first_name)), ".",
        pa.array(list(cat.LAST_NAMES)).take(pa.array(lat.last_name)),
        pc.cast(pa.array(numbers), pa.string()), "@example.com", "")
    customers_tbl = pa.table({
        "customer_id": cust_ids,
        "email": email,
        "first_name": pa.array([f.title() for f in cat.FIRST_NAMES]).take(pa.array(lat.first_name)),
        "country": pa.array([c[0] for c in cat.COUNTRIES]).take(pa.array(lat.country)),
        "signed_up_at": _ts(clock, lat.acq),
        "marketing_opt_in": pa.array(lat.opt_in),
    })
    # customer-level truth, evaluated at the end of the period (standard offer)
    all_c = np.arange(n)
    t_end = np.full(n, float(clock.days))
    no_other = other_sends_no_purchase(all_c, t_end, np.full(n, -1), s["cust"], s["sent"],
                                       s["q_treated"], st.churn)
    up_end, p_end, q_end = true_uplift(clock, lat, st, all_c, t_end, np.ones(n), no_other)
    w_end = min(clock.days // 7, clock.n_weeks - 1)
    truth_customers = pa.table({
        "customer_id": cust_ids,
        "acquired_at": _ts(clock, lat.acq),
        "is_existing_at_start": pa.array(lat.acq < 0),
        "churn_decided_at": _ts(clock, st.decided,
                                np.isfinite(st.decided) & (st.decided < clock.days)),
        "churned_at": _ts(clock, st.churn, np.isfinite(st.churn) & (st.churn < clock.days)),
        "is_alive_at_end": pa.array(~(np.isfinite(st.churn) & (st.churn < clock.days))),
        "base_order_rate_weekly": lat.rate,
        "engagement_tau_days": lat.tau,
        "engagement_at_end": st.engagement[:, w_end].astype(np.float64),
        "visit_rate_weekly": lat.visit_rate,
        "discount_sensitivity": lat.discount_sensitivity,
        "email_affinity": lat.email_affinity,
        "review_pickiness": lat.pickiness,
        "favourite_category": pa.array([c[0] for c in cat.CATEGORIES]).take(pa.array(lat.fav1)),
        "p_order_30d_without_send": p_end,
        "campaign_response_prob": q_end,
        "true_uplift_30d": up_end,
    })
    stats = {"abandon_" + k_: v_ for k_, v_ in ev_stats.items()}
    return ChunkResult(
        tables={"customers": customers_tbl, "orders": orders_tbl, "order_items": items_tbl,
                "events": events_tbl, "reviews": reviews_tbl, "support_tickets": tickets_tbl,
                "marketing_sends": sends_tbl},
        truth_customers=truth_customers, truth_sends=truth_sends,
        order_t_us=t_us, event_t_us=event_t_us,
        has_order=np.bincount(cust, minlength=n) > 0, stats=stats,
    )
