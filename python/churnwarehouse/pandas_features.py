"""The order and browsing features in plain pandas: the baseline a data scientist would write.

Reproduces exactly two dbt models, row for row and column for column:

- ``int_customer_order_features`` (``models/intermediate/customers/int_customer_order_features.sql``):
  one row per customer per snapshot with at least one completed order on or before the
  as_of_date; counts and spend over the whole history and the 30/90/180/365-day windows, the
  prior 90 days, the same label window one year earlier (null when that window starts before
  the first order in the data), cancellations, returns, discounts, gaps between distinct
  purchase days, and the completed orders in the label window.
- ``int_customer_browsing_features`` (``models/intermediate/customers/int_customer_browsing_features.sql``):
  one row per customer per snapshot with a visit in the 365 days up to it; sessions,
  product views, cart adds, searches, cart sessions and abandoned cart sessions.

It reads the same staged inputs as those models (``stg_shop__orders``, ``stg_shop__events``
and ``int_snapshot_dates``, exported to Parquet by :func:`export_staged`) and computes every
snapshot, so timing it against the two dbt models compares equal work. When the warehouse
has ``int_customer_snapshots`` (the customers whose features are computed at each snapshot:
everyone on the scoring snapshot, the training sample on training snapshots), the models join
it instead of ``int_snapshot_dates``; it is then exported too and restricts both tables to
those (customer, snapshot) pairs here as well. Without it every customer is computed.
``tests/python/test_pandas_features.py`` proves the outputs are equal.

Written the way it usually is in a notebook: load the tables, loop over the snapshot dates,
filter with a boolean mask, group by customer, merge. Nothing deliberately slow, nothing
heroically vectorised. Only the columns the models use are read.

Representation differences that are not differences of value: ``as_of_date`` is a
``datetime64`` at midnight (DuckDB: ``DATE``), counts are ``int64`` (DuckDB sums of integers
are ``HUGEINT``), and a SQL null is ``NaN``/``NaT``.

    python -m churnwarehouse.pandas_features --staged DIR     # DIR holds orders.parquet, events.parquet,
                                                              # snapshot_dates.parquet [, customer_snapshots.parquet]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

#: Staged relation exported to each Parquet file by :func:`export_staged`.
STAGED_TABLES = {
    "orders": "stg_shop__orders",
    "events": "stg_shop__events",
    "snapshot_dates": "int_snapshot_dates",
}
#: Optional input: the (customer, snapshot) population, when the warehouse has that model.
POPULATION = ("customer_snapshots", "int_customer_snapshots", ["customer_id", "as_of_date"])
#: The columns the two models read from each staged relation.
STAGED_COLUMNS = {
    "orders": ["customer_id", "ordered_at", "order_total", "status", "discount_amount", "coupon_code"],
    "events": ["customer_id", "session_id", "event_type", "occurred_at"],
    "snapshot_dates": ["as_of_date", "cutoff_at", "label_window_end_at"],
}
#: Look-back windows of the order features, in days.
WINDOWS = [30, 90, 180, 365]
#: Default of the ``churn_horizon_days`` dbt var (used by the same-window-last-year features).
DEFAULT_HORIZON_DAYS = 90

ORDER_FEATURE_COLUMNS = [
    "customer_id", "as_of_date", "order_count", "total_spend_amount", "first_order_at", "last_order_at",
    "days_since_last_order", "tenure_days", "average_order_value",
    *[f"{kind}_{days}d" for days in WINDOWS for kind in ("order_count", "spend_amount")],
    "order_count_prior_90d", "spend_amount_prior_90d", "order_count_trend_90d", "spend_amount_trend_90d",
    "order_count_same_window_last_year", "spend_amount_same_window_last_year",
    "cancelled_order_count", "returned_order_count", "cancellation_rate", "return_rate",
    "discounted_order_count", "discount_amount_total",
    "purchase_day_count", "mean_purchase_gap_days", "stddev_purchase_gap_days",
    "label_window_order_count", "next_order_at",
]
BROWSING_FEATURE_COLUMNS = [
    "customer_id", "as_of_date", "days_since_last_visit", "session_count_30d", "session_count_prior_30d",
    "session_count_90d", "session_count_365d", "active_day_count_90d", "product_view_count_90d",
    "cart_add_count_90d", "search_count_90d", "cart_session_count_90d", "abandoned_cart_session_count_90d",
]


def export_staged(db_path: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write the staged inputs of the two models from a built warehouse to Parquet.

    ``out_dir`` gets ``orders.parquet``, ``events.parquet`` and ``snapshot_dates.parquet``
    (every column of ``stg_shop__orders``, ``stg_shop__events`` and ``int_snapshot_dates``),
    and ``customer_snapshots.parquet`` when the warehouse has ``int_customer_snapshots``.
    The warehouse is opened read-only. Returns the files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    with duckdb.connect(str(db_path), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        relations = dict(STAGED_TABLES)
        if _has_relation(con, POPULATION[1]):
            relations[POPULATION[0]] = POPULATION[1]
        for name, relation in relations.items():
            path = out_dir / f"{name}.parquet"
            con.execute(f"copy (select * from {relation}) to '{path}' (format parquet)")
            written[name] = path
    return written


def _has_relation(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_name = ?",
                       [name]).fetchall()[0][0] > 0


def load_staged(source: str | Path) -> dict[str, pd.DataFrame | None]:
    """The staged inputs as DataFrames, from a directory of Parquet files or a warehouse file.

    ``customer_snapshots`` is None when the source does not have the population.
    """
    source = Path(source)
    name, relation, columns = POPULATION
    if source.is_dir():
        staged = {table: pd.read_parquet(source / f"{table}.parquet", columns=cols)
                  for table, cols in STAGED_COLUMNS.items()}
        path = source / f"{name}.parquet"
        staged[name] = pd.read_parquet(path, columns=columns) if path.exists() else None
        return staged
    with duckdb.connect(str(source), read_only=True) as con:
        staged = {table: con.execute(f"select {', '.join(cols)} from {STAGED_TABLES[table]}").df()
                  for table, cols in STAGED_COLUMNS.items()}
        staged[name] = (con.execute(f"select {', '.join(columns)} from {relation}").df()
                        if _has_relation(con, relation) else None)
        return staged


def _populations(customer_snapshots: pd.DataFrame | None) -> dict[pd.Timestamp, pd.Series] | None:
    """The customer ids of each snapshot's population, by as_of_date (None: everyone)."""
    if customer_snapshots is None:
        return None
    as_of = pd.to_datetime(customer_snapshots["as_of_date"]).dt.normalize()
    return {date: group for date, group in customer_snapshots["customer_id"].groupby(as_of)}


def _in_population(frame: pd.DataFrame, populations: dict | None, as_of: pd.Timestamp) -> pd.DataFrame:
    if populations is None:
        return frame
    return frame[frame["customer_id"].isin(populations.get(as_of, []))]


def _snapshot_list(snapshots: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]]:
    """(as_of_date, cutoff_at, label_window_end_at) per snapshot; a missing label end is NaT."""
    as_of = pd.to_datetime(snapshots["as_of_date"]).dt.normalize()
    cutoff = pd.to_datetime(snapshots["cutoff_at"])
    label_end = pd.to_datetime(snapshots["label_window_end_at"])
    return sorted(zip(as_of, cutoff, label_end, strict=True))


def compute_order_features(orders: pd.DataFrame, snapshots: pd.DataFrame,
                           horizon_days: int = DEFAULT_HORIZON_DAYS,
                           customer_snapshots: pd.DataFrame | None = None) -> pd.DataFrame:
    """``int_customer_order_features`` from staged orders and the snapshot dates.

    Per snapshot: orders before ``cutoff_at`` give the features (windows count calendar days
    between the order's date and the as_of_date: ``days_ago < 30`` is the as_of_date and the 29
    days before it); completed orders in ``[cutoff_at, label_window_end_at)`` give the label
    columns (zero and NaT for the scoring snapshot, which has no label window). Customers
    without a completed order before the cutoff get no row, nor, when ``customer_snapshots``
    (customer_id, as_of_date) is given, customers outside it at that snapshot.
    """
    orders = orders.copy()
    orders["order_total"] = orders["order_total"].astype("float64")
    orders["discount_amount"] = orders["discount_amount"].astype("float64")
    orders["order_date"] = orders["ordered_at"].dt.normalize()
    orders["is_completed"] = orders["status"] == "completed"
    orders["is_cancelled"] = orders["status"] == "cancelled"
    orders["is_returned"] = orders["status"] == "returned"

    # gaps between distinct purchase days, over the whole history (a gap only looks back)
    purchase_days = (orders.loc[orders["is_completed"], ["customer_id", "order_date"]]
                     .drop_duplicates()
                     .sort_values(["customer_id", "order_date"]))
    purchase_days["gap_days"] = purchase_days.groupby("customer_id")["order_date"].diff().dt.days

    # the first day the shop's data covers: last year's window before it is unobserved (null)
    first_data_date = orders["order_date"].min()

    populations = _populations(customer_snapshots)
    parts = []
    for as_of, cutoff, label_end in _snapshot_list(snapshots):
        candidates = _in_population(orders, populations, as_of)
        seen = candidates[candidates["ordered_at"] < cutoff]
        completed = seen[seen["is_completed"]].copy()
        days_ago = (as_of - completed["order_date"]).dt.days
        for days in WINDOWS:
            in_window = days_ago < days
            completed[f"order_count_{days}d"] = in_window
            completed[f"spend_amount_{days}d"] = completed["order_total"].where(in_window, 0.0)
        prior = (days_ago >= 90) & (days_ago < 180)
        completed["order_count_prior_90d"] = prior
        completed["spend_amount_prior_90d"] = completed["order_total"].where(prior, 0.0)
        last_year = (days_ago >= 365 - horizon_days) & (days_ago < 365)
        completed["order_count_same_window_last_year"] = last_year
        completed["spend_amount_same_window_last_year"] = completed["order_total"].where(last_year, 0.0)
        completed["is_discounted"] = (completed["discount_amount"] > 0) | completed["coupon_code"].notna()
        completed["discount_filled"] = completed["discount_amount"].fillna(0.0)

        windowed = [c for c in completed.columns if c.startswith(("order_count_", "spend_amount_"))]
        features = completed.groupby("customer_id").agg(
            order_count=("ordered_at", "size"),
            total_spend_amount=("order_total", "sum"),
            first_order_at=("ordered_at", "min"),
            last_order_at=("ordered_at", "max"),
            **{c: (c, "sum") for c in windowed},
            discounted_order_count=("is_discounted", "sum"),
            discount_amount_total=("discount_filled", "sum"),
        )
        any_status = seen.groupby("customer_id").agg(
            any_status_order_count=("ordered_at", "size"),
            cancelled_order_count=("is_cancelled", "sum"),
            returned_order_count=("is_returned", "sum"),
        )
        days = _in_population(purchase_days, populations, as_of)
        gaps = days[days["order_date"] <= as_of].groupby("customer_id").agg(
            purchase_day_count=("order_date", "size"),
            mean_purchase_gap_days=("gap_days", "mean"),
            stddev_purchase_gap_days=("gap_days", "std"),
        )
        if pd.isna(label_end):
            in_label = candidates.iloc[0:0]
        else:
            in_label = candidates[(candidates["ordered_at"] >= cutoff) & (candidates["ordered_at"] < label_end)
                                  & candidates["is_completed"]]
        label = in_label.groupby("customer_id").agg(
            label_window_order_count=("ordered_at", "size"),
            next_order_at=("ordered_at", "min"),
        )

        features = features.join(any_status).join(gaps).join(label)
        features["label_window_order_count"] = features["label_window_order_count"].fillna(0).astype("int64")
        if as_of - pd.Timedelta(days=365) < first_data_date:
            features["order_count_same_window_last_year"] = float("nan")
            features["spend_amount_same_window_last_year"] = float("nan")
        features["as_of_date"] = as_of
        parts.append(features.reset_index())

    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ORDER_FEATURE_COLUMNS)
    out["days_since_last_order"] = (out["as_of_date"] - out["last_order_at"].dt.normalize()).dt.days
    out["tenure_days"] = (out["as_of_date"] - out["first_order_at"].dt.normalize()).dt.days
    out["average_order_value"] = out["total_spend_amount"] / out["order_count"]
    out["order_count_trend_90d"] = out["order_count_90d"] - out["order_count_prior_90d"]
    out["spend_amount_trend_90d"] = out["spend_amount_90d"] - out["spend_amount_prior_90d"]
    out["cancellation_rate"] = out["cancelled_order_count"] / out["any_status_order_count"]
    out["return_rate"] = out["returned_order_count"] / out["any_status_order_count"]
    return out[ORDER_FEATURE_COLUMNS]


def compute_browsing_features(events: pd.DataFrame, snapshots: pd.DataFrame,
                              customer_snapshots: pd.DataFrame | None = None) -> pd.DataFrame:
    """``int_customer_browsing_features`` from staged events and the snapshot dates.

    Events become session-days (a session is ``session_id``, or the customer when it is
    missing; a session crossing midnight counts on both days), then daily visits per customer;
    each snapshot takes the visit days in ``(as_of_date - 365 days, as_of_date]`` (of the
    customers in ``customer_snapshots`` at that snapshot, when it is given).
    """
    events = events.copy()
    events["session_key"] = events["session_id"].fillna(events["customer_id"])
    events["visit_date"] = events["occurred_at"].dt.normalize()
    events["is_product_view"] = events["event_type"] == "product_view"
    events["is_cart_add"] = events["event_type"] == "add_to_cart"
    events["is_search"] = events["event_type"] == "search"
    events["is_checkout"] = events["event_type"] == "checkout"

    session_days = events.groupby(["customer_id", "session_key", "visit_date"]).agg(
        product_view_count=("is_product_view", "sum"),
        cart_add_count=("is_cart_add", "sum"),
        search_count=("is_search", "sum"),
        has_cart_add=("is_cart_add", "max"),
        has_checkout=("is_checkout", "max"),
    ).reset_index()
    session_days["is_abandoned_cart"] = session_days["has_cart_add"] & ~session_days["has_checkout"]
    daily = session_days.groupby(["customer_id", "visit_date"]).agg(
        session_count=("session_key", "size"),
        product_view_count=("product_view_count", "sum"),
        cart_add_count=("cart_add_count", "sum"),
        search_count=("search_count", "sum"),
        cart_session_count=("has_cart_add", "sum"),
        abandoned_cart_session_count=("is_abandoned_cart", "sum"),
    ).reset_index()

    populations = _populations(customer_snapshots)
    parts = []
    for as_of, _, _ in _snapshot_list(snapshots):
        visits = _in_population(daily, populations, as_of)
        visits = visits[(visits["visit_date"] <= as_of)
                        & (visits["visit_date"] > as_of - pd.Timedelta(days=365))].copy()
        days_ago = (as_of - visits["visit_date"]).dt.days
        last_30, prior_30, last_90 = days_ago < 30, (days_ago >= 30) & (days_ago < 60), days_ago < 90
        visits["days_ago"] = days_ago
        visits["session_count_30d"] = visits["session_count"].where(last_30, 0)
        visits["session_count_prior_30d"] = visits["session_count"].where(prior_30, 0)
        visits["active_day_90d"] = last_90
        for column in ["session_count", "product_view_count", "cart_add_count", "search_count",
                       "cart_session_count", "abandoned_cart_session_count"]:
            visits[f"{column}_90d"] = visits[column].where(last_90, 0)
        features = visits.groupby("customer_id").agg(
            days_since_last_visit=("days_ago", "min"),
            session_count_30d=("session_count_30d", "sum"),
            session_count_prior_30d=("session_count_prior_30d", "sum"),
            session_count_90d=("session_count_90d", "sum"),
            session_count_365d=("session_count", "sum"),
            active_day_count_90d=("active_day_90d", "sum"),
            product_view_count_90d=("product_view_count_90d", "sum"),
            cart_add_count_90d=("cart_add_count_90d", "sum"),
            search_count_90d=("search_count_90d", "sum"),
            cart_session_count_90d=("cart_session_count_90d", "sum"),
            abandoned_cart_session_count_90d=("abandoned_cart_session_count_90d", "sum"),
        )
        features["as_of_date"] = as_of
        parts.append(features.reset_index())

    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=BROWSING_FEATURE_COLUMNS)
    return out[BROWSING_FEATURE_COLUMNS]


@dataclass
class PandasRun:
    """The two feature tables and the seconds spent loading and computing them."""

    order_features: pd.DataFrame
    browsing_features: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    population: str = "every customer"

    def summary(self) -> dict:
        """Seconds and row counts, as printed by the command line."""
        return {
            "load_seconds": round(self.seconds["load"], 3),
            "order_features_seconds": round(self.seconds["order_features"], 3),
            "browsing_features_seconds": round(self.seconds["browsing_features"], 3),
            "compute_seconds": round(self.seconds["order_features"] + self.seconds["browsing_features"], 3),
            "total_seconds": round(sum(self.seconds.values()), 3),
            "order_feature_rows": len(self.order_features),
            "browsing_feature_rows": len(self.browsing_features),
            "population": self.population,
        }


def run(source: str | Path, horizon_days: int = DEFAULT_HORIZON_DAYS) -> PandasRun:
    """Load the staged inputs (a directory from :func:`export_staged`, or a warehouse file) and
    compute both tables, timing the load and each table."""
    started = time.perf_counter()
    staged = load_staged(source)
    loaded = time.perf_counter()
    population = staged[POPULATION[0]]
    order_features = compute_order_features(staged["orders"], staged["snapshot_dates"], horizon_days, population)
    ordered = time.perf_counter()
    browsing_features = compute_browsing_features(staged["events"], staged["snapshot_dates"], population)
    browsed = time.perf_counter()
    return PandasRun(order_features, browsing_features, {
        "load": loaded - started,
        "order_features": ordered - loaded,
        "browsing_features": browsed - ordered,
    }, "every customer" if population is None else POPULATION[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints one JSON line of seconds and row counts."""
    p = argparse.ArgumentParser(prog="python -m churnwarehouse.pandas_features",
                                description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--staged", help="directory written by export_staged: orders.parquet, events.parquet, "
                        "snapshot_dates.parquet (and customer_snapshots.parquet, if the warehouse has it)")
    source.add_argument("--warehouse", help="read the staged tables from this DuckDB file instead (read-only)")
    p.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS,
                   help="the churn_horizon_days dbt var the warehouse was built with")
    p.add_argument("--out", default=None,
                   help="also write order_features.parquet and browsing_features.parquet here (not timed)")
    a = p.parse_args(argv)
    result = run(a.staged or a.warehouse, a.horizon_days)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        result.order_features.to_parquet(out / "order_features.parquet", index=False)
        result.browsing_features.to_parquet(out / "browsing_features.parquet", index=False)
    print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
