"""Sessions and events of the sample generator.

One checkout session per order (page_view, optional search, product_view of some
lines, add_to_cart per line, checkout at ``ordered_at``) plus browse sessions
while the customer is alive (35% bounce; carts are abandoned more often in the
churn wind-down) and rare visits after churn. See :mod:`churnwarehouse.generate`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from churnwarehouse import _gen_catalog as cat
from churnwarehouse._gen_core import (
    Clock,
    Counters,
    Latent,
    WeekState,
    alive_window,
    draw_products,
    expand_counts,
    fixed_ids,
    line_categories,
    place_in_weeks,
    us_array,
)

PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT, SEARCH = 0, 1, 2, 3, 4  # contract.EVENT_TYPES


def build_events(
    rng: np.random.Generator, clock: Clock, lat: Latent, st: WeekState,
    products: cat.Products, cust_ids: pa.Array, counters: Counters,
    o_cust: np.ndarray, o_t: np.ndarray, o_first: np.ndarray, line_start: np.ndarray,
    n_lines: np.ndarray, line_prod: np.ndarray,
) -> tuple[pa.Table, np.ndarray, dict[str, float]]:
    """Sessions and their events: one checkout session per order plus browse sessions."""
    end_us = clock.end_us
    # browse sessions while alive, and the rare visits after churn
    bc, bw = expand_counts(st.n_sessions)
    lo, hi = alive_window(lat, st, clock, bc, bw)
    bt = place_in_weeks(rng, clock, bw, lo, hi)
    post_c, pw = expand_counts(st.n_post_sessions)
    ws = 7.0 * pw
    plo = np.clip(st.churn[post_c], ws, ws + 7.0)
    phi = np.minimum(ws + 7.0, clock.horizon)
    pt = place_in_weeks(rng, clock, pw, plo, phi)
    n_o, n_b, n_p = len(o_cust), len(bc), len(post_c)
    n_s = n_o + n_b + n_p
    kind = np.concatenate([np.zeros(n_o, np.int8), np.ones(n_b, np.int8), np.full(n_p, 2, np.int8)])
    s_cust = np.concatenate([o_cust, bc, post_c])
    anchor = np.concatenate([o_t, bt, pt])
    distress = np.zeros(n_s)
    distress[n_o:n_o + n_b] = st.distress[bc, bw]
    # event counts per session
    bounce = (kind == 1) & (rng.random(n_s) < 0.35)
    n_search = np.where(kind == 0, rng.random(n_s) < 0.15,
                        np.where(kind == 1, ~bounce & (rng.random(n_s) < 0.4), 0)).astype(np.int64)
    lines = np.zeros(n_s, np.int64)
    lines[:n_o] = n_lines
    n_pv = np.where(kind == 0, rng.binomial(lines, 0.2),
                    np.where(kind == 1, np.where(bounce, 0, 1 + rng.poisson(0.8, n_s)),
                             rng.poisson(0.5, n_s)))
    p_cart = np.minimum(0.6 + 0.35 * distress, 0.95)
    has_cart = (kind == 1) & ~bounce & (rng.random(n_s) < p_cart)
    n_cart = np.where(kind == 0, lines,
                      np.where(has_cart, np.minimum(1 + (rng.random(n_s) < 0.3), n_pv), 0))
    n_chk = (kind == 0).astype(np.int64)
    k = 1 + n_search + n_pv + n_cart + n_chk
    ev_s = np.repeat(np.arange(n_s), k)
    n_e = len(ev_s)
    starts = np.cumsum(k) - k
    pos = np.arange(n_e) - starts[ev_s]
    b2 = (1 + n_search)[ev_s]
    b3 = b2 + n_pv[ev_s]
    b4 = b3 + n_cart[ev_s]
    etype = np.select([pos < 1, pos < b2, pos < b3, pos < b4],
                      [PAGE_VIEW, SEARCH, PRODUCT_VIEW, ADD_TO_CART], CHECKOUT).astype(np.int8)
    ekind = kind[ev_s]
    prod = np.full(n_e, -1, dtype=np.int64)
    # checkout sessions: viewed / carted products are the order's lines
    chk = ekind == 0
    ls = np.zeros(n_s, np.int64)
    ls[:n_o] = line_start
    sel = chk & (etype == PRODUCT_VIEW)
    prod[sel] = line_prod[ls[ev_s[sel]] + (pos[sel] - b2[sel])]
    sel = chk & (etype == ADD_TO_CART)
    prod[sel] = line_prod[ls[ev_s[sel]] + (pos[sel] - b3[sel])]
    # browse sessions: views from the customer's favourite categories, carts among the views
    sel = ~chk & (etype == PRODUCT_VIEW)
    prod[sel] = draw_products(rng, products, line_categories(rng, lat, s_cust[ev_s[sel]]))
    sel = np.flatnonzero(~chk & (etype == ADD_TO_CART))
    prod[sel] = prod[sel - n_pv[ev_s[sel]]]
    # times: checkout sessions end at the order, browse sessions start at their anchor
    gap = rng.exponential(1.3 / 1440.0, n_e)
    gap[pos == 0] = 0.0
    cs = np.cumsum(gap)
    offset = cs - cs[starts][ev_s]
    total = offset[starts + k - 1]
    is_first = np.zeros(n_s, bool)
    is_first[:n_o] = o_first
    avail = np.where(is_first, anchor - lat.acq[s_cust], np.inf)
    scale = np.where(total > 0, np.minimum(1.0, avail / np.maximum(total, 1e-12)), 1.0)
    et = np.where(chk, anchor[ev_s] - (total[ev_s] - offset) * scale[ev_s], anchor[ev_s] + offset)
    e_us = clock.to_us(et)
    keep = (e_us < end_us) & (e_us >= clock.to_us(lat.acq[s_cust[ev_s]]))
    # session numbers in order of session start, event ids in time order
    s_start_us = clock.to_us(np.where(kind == 0, anchor - total * scale, anchor))
    s_keep = s_start_us < end_us
    s_order = np.flatnonzero(s_keep)[np.argsort(s_start_us[s_keep], kind="stable")]
    s_num = np.zeros(n_s, np.int64)
    s_num[s_order] = counters.take("session", len(s_order))
    keep &= s_keep[ev_s]
    eo = np.flatnonzero(keep)
    eo = eo[np.lexsort((pos[eo], e_us[eo]))]
    ev_s, etype, prod, e_us = ev_s[eo], etype[eo], prod[eo], e_us[eo]
    events_tbl = pa.table({
        "event_id": fixed_ids("E", counters.take("event", len(eo)), 10),
        "customer_id": cust_ids.take(pa.array(s_cust[ev_s])),
        "session_id": fixed_ids("S", s_num[ev_s], 9),
        "event_type": pa.array(["page_view", "product_view", "add_to_cart", "checkout",
                                "search"]).take(pa.array(etype)),
        "product_id": pa.array(products.product_id.tolist()).take(
            pa.array(np.maximum(prod, 0), mask=prod < 0)),
        "occurred_at": us_array(e_us),
    })
    carts = int(has_cart.sum()) + n_o
    stats = {"carts": float(carts), "abandoned": float(has_cart.sum())}
    return events_tbl, e_us, stats
