"""Planted dirty rows of the sample generator.

Dirty rows are EXTRA rows added next to the clean ones (clean rows are never
changed), except ``malformed_email``: a share of real customers (with orders)
carry a malformed address. Every planted row is recorded as
``(table_name, reason, row_key)``; reasons are the contract's quarantine codes.
Shares are documented in :mod:`churnwarehouse.generate`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnwarehouse._gen_core import DAY_US, Counters, fixed_ids

# (table, reason) -> default share of the table's clean rows (multiplied by --dirty-rate)
DIRTY_SHARES: dict[tuple[str, str], float] = {
    ("orders", "duplicate"): 0.005,
    ("orders", "missing_order_id"): 0.001,
    ("orders", "missing_customer_id"): 0.001,
    ("orders", "negative_amount"): 0.001,
    ("orders", "future_timestamp"): 0.001,
    ("orders", "unknown_customer"): 0.002,
    ("customers", "malformed_email"): 0.01,
    ("customers", "duplicate"): 0.002,
    ("events", "duplicate"): 0.003,
}
UNKNOWN_CUSTOMER_BASE = 9_000_000  # customer numbers from here on never exist
FUTURE_START_US = int(np.datetime64("2099-01-01", "us").astype(np.int64))

DIRTY_SCHEMA = pa.schema([("table_name", pa.string()), ("reason", pa.string()),
                          ("row_key", pa.string())])


def _count(rng: np.random.Generator, n: int, table: str, reason: str, rate: float) -> int:
    share = DIRTY_SHARES[(table, reason)] * rate
    return int(rng.binomial(n, min(share, 1.0))) if n and share > 0 else 0


def _records(table: str, reason: str, keys: pa.Array) -> pa.Table:
    n = len(keys)
    return pa.table({"table_name": pa.array([table] * n, pa.string()),
                     "reason": pa.array([reason] * n, pa.string()),
                     "row_key": keys.cast(pa.string())}, schema=DIRTY_SCHEMA)


def _set(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def dirty_orders(rng: np.random.Generator, orders: pa.Table, t_us: np.ndarray,
                 counters: Counters, rate: float) -> tuple[pa.Table, list[pa.Table]]:
    """Orders plus planted duplicates, null keys, negative totals, future dates, unknown customers.

    Returns the combined table (sorted by ``ordered_at``; future rows last) and the
    dirty-row records.
    """
    n = orders.num_rows
    parts, keys, recs = [orders], [t_us], []
    k = _count(rng, n, "orders", "duplicate", rate)
    src = np.sort(rng.choice(n, k, replace=False)) if k else np.zeros(0, np.int64)
    parts.append(orders.take(pa.array(src, pa.int64())))
    keys.append(t_us[src])
    recs.append(_records("orders", "duplicate", orders["order_id"].take(pa.array(src, pa.int64()))))
    for reason in ("missing_order_id", "missing_customer_id", "negative_amount",
                   "future_timestamp", "unknown_customer"):
        k = _count(rng, n, "orders", reason, rate)
        src = rng.integers(0, n, k) if k else np.zeros(0, np.int64)
        tbl = orders.take(pa.array(src, pa.int64()))
        key_t = t_us[src]
        if reason == "missing_order_id":
            tbl = _set(tbl, "order_id", pa.nulls(k, pa.string()))
            recs.append(_records("orders", reason, pa.nulls(k, pa.string())))
            parts.append(tbl)
            keys.append(key_t)
            continue
        new_ids = fixed_ids("O", counters.take("order", k), 8)
        tbl = _set(tbl, "order_id", new_ids)
        if reason == "missing_customer_id":
            tbl = _set(tbl, "customer_id", pa.nulls(k, pa.string()))
        elif reason == "negative_amount":
            total = tbl["order_total"].to_numpy()
            tbl = _set(tbl, "order_total", pa.array(np.where(total > 0, -total, -1.0)))
        elif reason == "future_timestamp":
            key_t = FUTURE_START_US + (rng.random(k) * 3 * 365 * DAY_US).astype(np.int64)
            tbl = _set(tbl, "ordered_at", pa.array(key_t, pa.timestamp("us")))
        else:  # unknown_customer
            numbers = UNKNOWN_CUSTOMER_BASE + counters.take("unknown_customer", k)
            tbl = _set(tbl, "customer_id", fixed_ids("C", numbers, 7))
        recs.append(_records("orders", reason, new_ids))
        parts.append(tbl)
        keys.append(key_t)
    combined = pa.concat_tables(parts)
    order = np.argsort(np.concatenate(keys), kind="stable")
    return combined.take(pa.array(order)), recs


def dirty_events(rng: np.random.Generator, events: pa.Table,
                 rate: float) -> tuple[pa.Table, list[pa.Table]]:
    """Events with exact duplicates placed right after their originals."""
    n = events.num_rows
    k = _count(rng, n, "events", "duplicate", rate)
    if k == 0:
        return events, []
    src = rng.choice(n, k, replace=False)
    idx = np.sort(np.concatenate([np.arange(n), src]), kind="stable")
    recs = [_records("events", "duplicate", events["event_id"].take(pa.array(np.sort(src))))]
    return events.take(pa.array(idx)), recs


def dirty_customers(rng: np.random.Generator, customers: pa.Table, has_order: np.ndarray,
                    rate: float) -> tuple[pa.Table, list[pa.Table]]:
    """Malformed emails on real customers (with orders) plus exact duplicate rows."""
    n = customers.num_rows
    recs = []
    buyers = np.flatnonzero(has_order)
    k = min(_count(rng, n, "customers", "malformed_email", rate), len(buyers))
    bad = np.sort(rng.choice(buyers, k, replace=False)) if k else np.zeros(0, np.int64)
    if k:
        email = customers["email"]
        bad_pa = pa.array(bad)
        orig = email.take(bad_pa)
        style = rng.integers(0, 3, k)
        broken = pc.case_when(
            pc.make_struct(pa.array(style == 0), pa.array(style == 1)),
            pc.replace_substring_regex(orig, "@.*$", "@"),  # 'john.smith12@'
            pc.replace_substring(orig, "@", "."),  # 'john.smith12.example.com'
            pc.replace_substring(orig, ".", " ", max_replacements=1),  # 'john smith12@example.com'
        )
        new_email = email.to_numpy(zero_copy_only=False).copy()
        new_email[bad] = broken.to_numpy(zero_copy_only=False)
        customers = _set(customers, "email", pa.array(new_email, pa.string()))
        recs.append(_records("customers", "malformed_email", customers["customer_id"].take(bad_pa)))
    clean = np.setdiff1d(np.arange(n), bad)
    k = min(_count(rng, n, "customers", "duplicate", rate), len(clean))
    if k:
        src = np.sort(rng.choice(clean, k, replace=False))
        keys = customers["customer_id"].take(pa.array(src))
        recs.append(_records("customers", "duplicate", keys))
        idx = np.sort(np.concatenate([np.arange(n), src]), kind="stable")
        customers = customers.take(pa.array(idx))
    return customers, recs
