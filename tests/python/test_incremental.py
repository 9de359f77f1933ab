"""Incremental daily runs give the same warehouse as a full refresh.

Day 0: a full build on the raw data up to the day before the last. Day 1: the raw data gains its
last day (new orders, events, reviews, tickets, and sends opened or redeemed since), and an
incremental ``dbt build`` runs on top of day 0. A ``--full-refresh`` build of day 1, starting
from the same model registry as the incremental run did, must hold identical tables.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from churnwarehouse.cut import cut_raw_directory
from conftest import dbt

# load-time columns: when the build ran, not what it computed
LOAD_TIME_COLUMNS = {"quarantined_at", "trained_at"}
INCREMENTAL_BASE_MODELS = ["orders", "order_items", "events", "reviews", "support_tickets", "marketing_sends"]


def _last_order_date(raw_dir: Path) -> dt.date:
    con = duckdb.connect()
    return con.execute(
        f"select max(ordered_at)::date from read_parquet('{raw_dir / 'orders.parquet'}') where ordered_at < now()"
    ).fetchall()[0][0]


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    return [r[0] for r in con.execute(
        "select table_name from information_schema.tables"
        " where table_catalog = ? and table_schema = 'main' and table_type = 'BASE TABLE' order by 1", [catalog]
    ).fetchall()]


def _comparable_select(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> str:
    columns = con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_catalog = ? and table_schema = 'main' and table_name = ? order by ordinal_position",
        [catalog, table],
    ).fetchall()
    select = []
    for name, data_type in columns:
        if name in LOAD_TIME_COLUMNS:
            continue
        if data_type in ("DOUBLE", "FLOAT"):
            # DuckDB's parallel float sums can differ in the last bits between any two builds
            select.append(f"round({name}, 9) as {name}")
        else:
            select.append(name)
    return f"select {', '.join(select)} from {catalog}.main.{table}"


@pytest.fixture(scope="module")
def daily_builds(sample_dirs, tmp_path_factory):
    raw_full, _ = sample_dirs
    root = tmp_path_factory.mktemp("incremental")
    last = _last_order_date(raw_full)
    day0, day1 = root / "raw_day0", root / "raw_day1"
    cut_raw_directory(raw_full, day0, dt.datetime.combine(last, dt.time()))
    cut_raw_directory(raw_full, day1, dt.datetime.combine(last + dt.timedelta(days=1), dt.time()))

    incremental = root / "incremental"
    registry = incremental / "model_registry"
    dbt_vars = {"model_registry_path": str(registry), "max_training_rows": 20000}
    dbt("build", incremental, incremental / "warehouse.duckdb", {**dbt_vars, "raw_path": str(day0)})
    # the full refresh starts from the registry as the daily run finds it, less the sentiment
    # cache (when the sample has enough reviews to fit a text model, the daily run reuses it and
    # its cached scores while the refresh fits again)
    refresh = root / "refresh"
    shutil.copytree(registry, refresh / "model_registry", ignore=shutil.ignore_patterns("review_sentiment"))
    # the daily job as the README gives it (unit tests belong to development and CI)
    daily = dbt("build", incremental, incremental / "warehouse.duckdb",
                {**dbt_vars, "raw_path": str(day1), "test_window_days": 3}, "--exclude-resource-type", "unit_test")
    dbt("build", refresh, refresh / "warehouse.duckdb",
        {**dbt_vars, "raw_path": str(day1), "model_registry_path": str(refresh / "model_registry")}, "--full-refresh")
    return incremental, refresh, daily, last


def test_daily_run_is_incremental_and_adds_the_new_day(daily_builds):
    incremental, _, daily, last = daily_builds
    for table in INCREMENTAL_BASE_MODELS:
        assert f"incremental model main.base_shop__{table}" in daily.stdout, table
        compiled = next((incremental / "target" / "run").rglob(f"base_shop__{table}.sql")).read_text()
        assert "delete from" in compiled.lower() or "new_rows" in compiled or "ordered_at >=" in compiled, table
    con = duckdb.connect(str(incremental / "warehouse.duckdb"), read_only=True)
    try:
        day_rows = con.execute(
            "select count(*) from stg_shop__orders where cast(ordered_at as date) = ?", [last]
        ).fetchall()[0][0]
        scored_on = con.execute("select max(as_of_date)::date from churn_scores").fetchall()[0][0]
    finally:
        con.close()
    assert day_rows > 0
    assert scored_on == last
    # the daily job's key tests on the large staging tables read the last days only
    compiled_test = next((incremental / "target" / "compiled").rglob("unique_stg_shop__events_event_id*.sql")).read_text()
    assert "max(occurred_at)" in compiled_test


def test_incremental_and_full_refresh_builds_hold_identical_tables(daily_builds):
    incremental, refresh, _, _ = daily_builds
    con = duckdb.connect()
    con.execute(f"attach '{incremental / 'warehouse.duckdb'}' as inc (read_only)")
    con.execute(f"attach '{refresh / 'warehouse.duckdb'}' as ref (read_only)")
    tables = _tables(con, "inc")
    assert tables == _tables(con, "ref")
    assert {"churn_scores", "ml_customer_features", "base_shop__events", "stg_shop__quarantine"} <= set(tables)
    differences = {}
    for table in tables:
        inc, ref = _comparable_select(con, "inc", table), _comparable_select(con, "ref", table)
        only_inc = con.execute(f"select count(*) from ({inc} except all {ref})").fetchall()[0][0]
        only_ref = con.execute(f"select count(*) from ({ref} except all {inc})").fetchall()[0][0]
        if only_inc or only_ref:
            differences[table] = (only_inc, only_ref)
    assert differences == {}
    rows = con.execute("select count(*) from inc.main.churn_scores").fetchall()[0][0]
    assert rows > 0
