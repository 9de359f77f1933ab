"""Synthetic e-commerce sample data with a known truth, for the churn warehouse.

Usage::

    python -m churnwarehouse.generate --customers 20000 --seed 42 --out data/raw \\
        [--truth-out data/truth] [--start 2024-11-01] [--days 730] [--dirty-rate 1.0]

Writes one Parquet file per contract table (:data:`churnwarehouse.contract.TABLES`)
to ``--out`` with exactly the contract's columns and types (ids are strings such
as ``C0000123`` / ``O00001234``; timestamps naive UTC, microseconds; zstd, row
groups of up to 1M rows), and the ground truth to ``--truth-out`` (default: a
``truth`` folder beside ``--out``), which the warehouse never reads:

``customers.parquet``
    customer_id, acquired_at, is_existing_at_start, churn_decided_at,
    churned_at (null: no churn within the period), is_alive_at_end, the latent
    parameters (base_order_rate_weekly, engagement_tau_days, engagement_at_end,
    visit_rate_weekly, discount_sensitivity, email_affinity, review_pickiness,
    favourite_category), p_order_30d_without_send, campaign_response_prob and
    true_uplift_30d: the effect of a send (standard offer) at the end of the
    period on P(at least one completed order within 30 days).
``sends.parquet``
    send_id, customer_id, campaign_id, sent_at, is_holdout, is_alive_at_send,
    p_purchase_30d_without_send, true_uplift_30d (this send), had_induced_purchase,
    purchased_30d (a clean completed order in (sent_at, sent_at + 30 days]),
    is_window_complete (the 30 days end inside the period).
``dirty_rows.parquet``
    table_name, reason, row_key: one row per planted dirty row.
``manifest.json``
    seed, arguments, period, row counts, dirty-row counts and shares.

Output is fully determined by the arguments: customers are simulated in chunks
of ``CHUNK_SIZE``, each with its own generator spawned from ``--seed``
(``numpy.random.SeedSequence.spawn``), so the same seed gives identical tables.

Simulation
----------
Time runs over ``--days`` days from ``--start`` (default 2024-11-01 + 730 days:
the data ends 2026-10-31, before the load date) and is simulated a week at a
time, vectorised over the customers of a chunk, up to 35 days past the end so
that every 30-day window is defined. Within a week, events follow a fixed
day-of-week x hour-of-day profile; weeks follow a yearly season (Nov/Dec peak).

Customers
    30% are a stock registered up to three years before the start; the rest
    sign up during the period (seasonal, growing 30%/year). Ids follow sign-up
    order. 92% of new customers order right at sign-up (signed_up_at <= first
    order). Country from a weighted list (GB 46%, US, DE, FR, IE, NL, ...),
    marketing opt-in 70%, emails ``firstname.lastname<number>@example.com``.
Latent state
    base purchase rate ~ Gamma(shape 0.42, mean 0.28 orders/week) (heavy tail:
    few frequent buyers, many one-and-done); engagement ``exp(-tenure / tau)`` times AR(1) noise,
    tau log-normal around 16 months; discount sensitivity ~ Beta(0.9, 2.4);
    email affinity; review pickiness; favourite categories; preferred channel.
Churn
    each week an alive customer takes the churn decision with hazard
    ``h0 * (rate / mean)^-0.3 * exp(2.0 * (1 - engagement) + 0.45 * frustration)``
    where frustration accumulates unresolved tickets, 1-2 star reviews,
    cancellations and returns (decaying 12%/week). The decision starts a
    wind-down of 4-13 weeks in which orders fade (to 20%) faster than visits
    (to 45%), cart abandonment, cancellations, returns, bad reviews and
    unresolved tickets rise; churn (``churned_at``) ends it: no more orders,
    visits at 3%. Behaviour in the 1-3 months before churn therefore predicts
    it, and so does the low engagement that raised the hazard.
Orders
    Poisson per week at ``rate x season x engagement x wind-down``; ~2.5
    distinct products per order from the customer's favourite categories
    (500 products in 10 categories, Zipf popularity, unit_cost 35-70% of the
    list price); status ~3% cancelled, ~4% returned; currency GBP or the
    customer's local one (EUR, USD, AUD, CAD, SEK); coupons from campaigns and
    generic codes (WELCOME10 on first orders, BLACKFRIDAY20, SAVE10, LOYAL5,
    STUDENT10); ``order_total = sum(quantity * unit_price) - discount_amount``
    (rounded to 2 dp, never negative for clean rows).
Events
    one checkout session per order (page_view, search, product_view,
    add_to_cart per line, checkout at ``ordered_at``) plus browse sessions
    (35% bounces; carts abandoned more often in the wind-down).
Reviews and tickets
    ~18% of completed orders are reviewed, typically 1-3 weeks later; rating
    and text tone worsen in the wind-down; texts are composed from positive / neutral /
    negative / mixed templates with product nouns, a second sentence of noisy
    tone and service remarks. Tickets (delivery, refund, product_quality,
    account, payment) follow orders; unresolved (``resolved_at`` null) far more
    often near churn; satisfaction_score 1-5, null ~35%.
Marketing sends
    a campaign every ~14 days to a random 20-45% of opted-in customers; each
    send is in a randomised holdout with probability 0.15 (never sent: opened,
    clicked, redeemed null). A treated send adds a purchase with probability
    ``q = min(0.6, 0.32 * discount_sensitivity * offer_effect * (0.4 + 1.2 * lapse))``
    (lapse = 1 - effective engagement; q = 0 once churned) at a delay ~ Exp(5
    days) truncated to 30 days, redeeming the campaign coupon; ``q_eff`` is q
    times P(that delay ends before churn). Baseline completed orders are a
    Poisson process with a known intensity L over the 30 days, so the true
    uplift is ``q_eff * exp(-L) * P(no purchase from other sends)`` (large for
    lapsing, discount-hungry customers, ~0 for frequent buyers and the
    insensitive). Openers may also redeem the coupon on an order they would
    have placed anyway (not incremental). Campaigns do not change churn.
    Purchases that the customer's other treated sends may bring into the
    window count as baseline (their probability is known too), so the mean
    per-send uplift is exactly the expected treated-minus-holdout difference.

Calibration
-----------
With 20,000 customers (seed 42; volumes scale linearly to 1M): ~7.6 orders per
customer, 2.5 lines per order, ~54 events per customer, 30% of buyers order
once; 2.8% cancelled, 3.8% returned; 54% of customers churn within the period.
Among customers with a completed order in the last 90 days, 35-44% place none
in the next 90 days (true churn within 90 days: 12-15%). Treated minus holdout
30-day purchase rate ~3.5 points, equal to the mean true uplift; cart
abandonment ~22% overall.

Dirty rows
----------
Planted as extra rows (clean rows never change, dirty orders have no items),
shares of the clean rows times ``--dirty-rate`` (0 disables):

=========  ===================  =====  ==================================================
table      reason               share  what
=========  ===================  =====  ==================================================
orders     duplicate            0.5%   exact copy of a clean order
orders     missing_order_id     0.1%   copy of a clean order with order_id null
orders     missing_customer_id  0.1%   new order_id, customer_id null
orders     negative_amount      0.1%   new order_id, order_total < 0
orders     future_timestamp     0.1%   new order_id, ordered_at in 2099-2101
orders     unknown_customer     0.2%   new order_id, customer_id not in customers
customers  malformed_email      1%     a real customer (with orders) whose email lacks
                                       the domain (``x@``), the ``@`` or has a space
customers  duplicate            0.2%   exact copy of a customer row (valid email)
events     duplicate            0.3%   exact copy of an event
=========  ===================  =====  ==================================================

``row_key`` is the row's key (order_id, customer_id, event_id), null for
``missing_order_id``. Valid emails match ``^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$``; the
malformed ones do not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnwarehouse import _gen_catalog as cat
from churnwarehouse._gen_core import Clock, Counters, draw_acquisition_days
from churnwarehouse._gen_dirty import (
    DIRTY_SCHEMA,
    DIRTY_SHARES,
    dirty_customers,
    dirty_events,
    dirty_orders,
)
from churnwarehouse._gen_rows import draw_campaigns, simulate_chunk
from churnwarehouse.contract import TABLES

CHUNK_SIZE = 100_000
ROW_GROUP_SIZE = 1_000_000
DEFAULT_START = "2024-11-01"
DEFAULT_DAYS = 730
MAX_CUSTOMERS = 8_999_999
GENERATOR_VERSION = "1"

_ARROW_TYPES = {
    "varchar": pa.string(),
    "timestamp": pa.timestamp("us"),
    "double": pa.float64(),
    "integer": pa.int32(),
    "boolean": pa.bool_(),
}


def contract_schema(table: str) -> pa.Schema:
    """Arrow schema of a contract table (DuckDB logical types mapped to Arrow)."""
    return pa.schema([(c.name, _ARROW_TYPES[c.data_type]) for c in TABLES[table].columns])


class _Sink:
    """Parquet file written chunk by chunk with a fixed schema."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema, self.rows = path, schema, 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
            self._writer.write_table(self.schema.empty_table())
        self._writer.close()


def _products_table(products: cat.Products) -> pa.Table:
    return pa.table({
        "product_id": pa.array(products.product_id.tolist()),
        "product_name": pa.array(products.product_name.tolist()),
        "category": pa.array([c[0] for c in cat.CATEGORIES]).take(pa.array(products.category)),
        "unit_cost": products.unit_cost_gbp,
    })


def default_truth_dir(out: Path) -> Path:
    """The ``truth`` folder beside ``out`` (``data/raw`` -> ``data/truth``)."""
    return Path(out).parent / "truth"


def generate(
    customers: int,
    seed: int,
    out: str | Path,
    truth_out: str | Path | None = None,
    start: str = DEFAULT_START,
    days: int = DEFAULT_DAYS,
    dirty_rate: float = 1.0,
    verbose: bool = False,
) -> dict:
    """Simulate the shop and write the raw tables and the truth.

    Parameters
    ----------
    customers
        Number of customers (1 .. 8,999,999).
    seed
        Seed of everything; same seed and arguments give identical tables.
    out
        Folder for the raw contract tables (created).
    truth_out
        Folder for the truth tables; default ``truth`` beside ``out``.
    start
        First day of the period (ISO date, UTC).
    days
        Length of the period; it must end before now.
    dirty_rate
        Multiplier on the default dirty-row shares; 0 plants none.
    verbose
        Print progress per chunk.

    Returns
    -------
    dict
        The manifest (also written to ``truth_out/manifest.json``).
    """
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers must be in 1..{MAX_CUSTOMERS}")
    if days < 60:
        raise ValueError("days must be at least 60")
    if not 0 <= dirty_rate <= 50:
        raise ValueError("dirty_rate must be in 0..50")
    t0 = time.perf_counter()
    start_day = np.datetime64(start, "D")
    start_us = int(start_day.astype("datetime64[us]").astype(np.int64))
    clock = Clock(start_us, int(days), int((start_day.astype(np.int64) + 3) % 7))
    now_us = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1e6)
    if clock.end_us > now_us:
        raise ValueError("the period must end before now (clean rows are never in the future)")
    out = Path(out)
    truth = Path(truth_out) if truth_out is not None else default_truth_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)

    n_chunks = (customers + CHUNK_SIZE - 1) // CHUNK_SIZE
    children = np.random.SeedSequence(seed).spawn(n_chunks + 2)
    g = np.random.default_rng(children[0])
    products = cat.build_products(g)
    camps = draw_campaigns(g, clock)
    acq = draw_acquisition_days(g, customers, clock)
    dirty_rng = np.random.default_rng(children[1])

    sinks = {name: _Sink(out / f"{name}.parquet", contract_schema(name)) for name in TABLES}
    t_sinks = {}
    counters = Counters()
    dirty_parts: list[pa.Table] = []
    clean_rows = {name: 0 for name in TABLES}
    stats = {"carts": 0.0, "abandoned": 0.0}
    sinks["products"].write(_products_table(products))
    clean_rows["products"] = len(products.product_id)
    for k in range(n_chunks):
        lo, hi = k * CHUNK_SIZE, min((k + 1) * CHUNK_SIZE, customers)
        rng = np.random.default_rng(children[k + 2])
        res = simulate_chunk(rng, acq[lo:hi], lo + 1, clock, products, camps, counters)
        for name, tbl in res.tables.items():
            clean_rows[name] += tbl.num_rows
        tables = dict(res.tables)
        tables["orders"], recs_o = dirty_orders(dirty_rng, tables["orders"], res.order_t_us,
                                                counters, dirty_rate)
        tables["events"], recs_e = dirty_events(dirty_rng, tables["events"], dirty_rate)
        tables["customers"], recs_c = dirty_customers(dirty_rng, tables["customers"],
                                                      res.has_order, dirty_rate)
        dirty_parts.extend(recs_o + recs_e + recs_c)
        for name, tbl in tables.items():
            sinks[name].write(tbl)
        for name, tbl in (("customers", res.truth_customers), ("sends", res.truth_sends)):
            if name not in t_sinks:
                t_sinks[name] = _Sink(truth / f"{name}.parquet", tbl.schema)
            t_sinks[name].write(tbl)
        for key in stats:
            stats[key] += res.stats.get("abandon_" + key, 0.0)
        if verbose:
            print(f"chunk {k + 1}/{n_chunks}: customers {hi}, "
                  f"{time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        del res, tables
    for s in list(sinks.values()) + list(t_sinks.values()):
        s.close()
    dirty = pa.concat_tables(dirty_parts) if dirty_parts else DIRTY_SCHEMA.empty_table()
    pq.write_table(dirty, truth / "dirty_rows.parquet", compression="zstd")

    counts: dict[str, int] = {}
    for t_name, reason in zip(dirty["table_name"].to_pylist(), dirty["reason"].to_pylist()):
        counts[f"{t_name}.{reason}"] = counts.get(f"{t_name}.{reason}", 0) + 1
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "args": {"customers": customers, "seed": seed, "start": str(start_day), "days": days,
                 "dirty_rate": dirty_rate, "out": str(out), "truth_out": str(truth)},
        "period": {"start": str(start_day),
                   "end_exclusive": str((start_day + np.timedelta64(days, "D")))},
        "chunk_size": CHUNK_SIZE,
        "rows": {name: s.rows for name, s in sinks.items()},
        "clean_rows": clean_rows,
        "truth_rows": {**{name: s.rows for name, s in t_sinks.items()},
                       "dirty_rows": dirty.num_rows},
        "dirty_rows": counts,
        "dirty_shares_configured": {f"{t}.{r}": v * dirty_rate
                                    for (t, r), v in DIRTY_SHARES.items()},
        "dirty_shares_realised": {
            key: round(c / max(clean_rows[key.split(".")[0]], 1), 6)
            for key, c in counts.items()},
        "cart_abandonment_rate": round(stats["abandoned"] / max(stats["carts"], 1.0), 4),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints rows per table and seconds."""
    p = argparse.ArgumentParser(prog="python -m churnwarehouse.generate",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="data/raw", help="folder for the raw tables")
    p.add_argument("--truth-out", default=None, help="default: 'truth' beside --out")
    p.add_argument("--start", default=DEFAULT_START, help="first day (YYYY-MM-DD, UTC)")
    p.add_argument("--days", type=int, default=DEFAULT_DAYS)
    p.add_argument("--dirty-rate", type=float, default=1.0,
                   help="multiplier on the default dirty-row shares (0 disables)")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    try:
        m = generate(a.customers, a.seed, a.out, a.truth_out, a.start, a.days, a.dirty_rate,
                     verbose=a.verbose)
    except ValueError as exc:
        p.error(str(exc))
    width = max(len(k) for k in m["rows"])
    for name, rows in m["rows"].items():
        print(f"{name:<{width}}  {rows:>12,}")
    print(f"{'dirty rows':<{width}}  {m['truth_rows']['dirty_rows']:>12,}")
    print(f"wrote {a.out} and {m['args']['truth_out']} in {m['seconds']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
