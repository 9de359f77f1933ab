"""Incremental daily runs give the same warehouse as a full refresh.

Day 0: a full build on the raw data up to the day before the last, less some rows dated in the
week before it (they arrive late). Day 1: the raw data gains its last day (new orders, events,
reviews, tickets, and sends opened or redeemed since), the late rows, old event ids sent again
and review times corrected to the new day (both days also hold events and order lines without a
key), and an incremental ``dbt build`` runs on top of day 0. A ``--full-refresh`` build of day 1, starting from the same
model registry as the incremental run did, must hold identical tables.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from churnwarehouse.cut import cut_raw_directory
from conftest import dbt

# load-time columns: when the build ran, not what it computed
LOAD_TIME_COLUMNS = {"quarantined_at", "trained_at", "staged_at"}
INCREMENTAL_BASE_MODELS = ["orders", "order_items", "events", "reviews", "support_tickets", "marketing_sends"]
#: table -> (time column, key column) of the tables whose rows can arrive late
LATE_TABLES = {
    "orders": ("ordered_at", "order_id"),
    "events": ("occurred_at", "event_id"),
    "reviews": ("reviewed_at", "review_id"),
    "support_tickets": ("opened_at", "ticket_id"),
    "marketing_sends": ("sent_at", "send_id"),
}


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


def _rewrite(con: duckdb.DuckDBPyConnection, path: Path, select: str) -> None:
    """Replace a Parquet file by the rows of ``select`` (which may read the file itself)."""
    con.execute(f"copy ({select}) to '{path}.tmp' (format parquet)")
    Path(f"{path}.tmp").replace(path)


def _hold_back_late_rows(day0: Path, day1: Path, last: dt.date) -> dict[str, set[str]]:
    """Make some rows and updates of the six days before day 0's last day arrive late.

    Day 0 loses one in seven rows dated then, so they first appear in day 1, dated before the
    watermark. Half of the held-back orders keep their lines in day 0 (lines that came before
    their order); the others' lines arrive with them. Of the sends opened and the tickets
    resolved in those days, one in five shows no open (resolution) in day 0, as if the update
    reached the export only on day 1. Some customers' rows reach it only on day 1 too.
    Returns the held-back keys per table, the late updates under "<table>.<column>"."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    first = last - dt.timedelta(days=6)

    def is_late(time_column: str, key_column: str, one_in: int = 7) -> str:
        return (f"{time_column} >= date '{first}' and {time_column} < date '{last}'"
                f" and hash({key_column}) % {one_in} = 0")

    held: dict[str, set[str]] = {}
    for table, (time_column, key_column) in LATE_TABLES.items():
        path = day0 / f"{table}.parquet"
        held[table] = {r[0] for r in con.execute(
            f"select {key_column} from '{path}' where {is_late(time_column, key_column)}").fetchall()}
        _rewrite(con, path, f"select * from '{path}' where not ({is_late(time_column, key_column)})")
    # customers whose customer row reaches the export only on day 1, all of whose orders are
    # older than the days above (so only the release of their quarantined rows restages them):
    # their day-0 orders are quarantined as unknown_customer, and day 1 releases them
    path = day0 / "customers.parquet"
    missing = (f"hash(customer_id) % 40 = 0 and customer_id in (select customer_id"
               f" from '{day0 / 'orders.parquet'}' group by 1 having max(ordered_at) < date '{first}')")
    held["customers"] = {r[0] for r in con.execute(f"select customer_id from '{path}' where {missing}").fetchall()}
    _rewrite(con, path, f"select * from '{path}' where not ({missing})")
    path = day0 / "order_items.parquet"
    _rewrite(con, path, f"""select * from '{path}' where order_id not in (
        select order_id from '{day1 / "orders.parquet"}'
        where {is_late("ordered_at", "order_id")} and hash(order_id) % 2 = 1)""")
    for table, key_column, column, cleared in [
        ("marketing_sends", "send_id", "opened_at", ["opened_at"]),
        ("support_tickets", "ticket_id", "resolved_at", ["resolved_at", "satisfaction_score"]),
    ]:
        path = day0 / f"{table}.parquet"
        late = is_late(column, key_column, 5)
        held[f"{table}.{column}"] = {r[0] for r in con.execute(f"select {key_column} from '{path}' where {late}").fetchall()}
        replaced = ", ".join(f"case when {late} then null else {c} end as {c}" for c in cleared)
        _rewrite(con, path, f"select * replace ({replaced}) from '{path}'")
    return held


def _change_old_rows(day1: Path, last: dt.date) -> dict[str, set[str]]:
    """Make day 1 bring new versions of rows staged long before: events sent again with the
    new day's time (a second copy of an old key; the full refresh keeps the older copy and
    quarantines the new one as a duplicate) and reviews whose time was corrected to the new
    day (the staged row of the old time must go). Returns the changed keys per table."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    old = f"< date '{last - dt.timedelta(days=14)}'"
    new_time = f"timestamp '{last} 12:00:00'"
    changed = {}
    path = day1 / "events.parquet"
    again = f"occurred_at {old} and hash(event_id) % 400 = 0"
    changed["events"] = {r[0] for r in con.execute(f"select event_id from '{path}' where {again}").fetchall()}
    _rewrite(con, path, f"""select * from '{path}' union all select * replace ({new_time} as occurred_at)
        from '{path}' where {again}""")
    path = day1 / "reviews.parquet"
    moved = f"reviewed_at {old} and hash(review_id) % 20 = 0"
    changed["reviews"] = {r[0] for r in con.execute(f"select review_id from '{path}' where {moved}").fetchall()}
    _rewrite(con, path, f"""select * replace (case when {moved} then {new_time} else reviewed_at end as reviewed_at)
        from '{path}'""")
    return changed


def _add_rows_without_keys(*raw_dirs: Path) -> None:
    """Give events and order lines rows without a key (null, empty, blank), the same in every day's
    files, as an export keeps them: each daily run deletes the staged ones and stages them again."""
    con = duckdb.connect()
    for raw_dir in raw_dirs:
        for table, key_column in [("events", "event_id"), ("order_items", "order_id")]:
            path = raw_dir / f"{table}.parquet"
            keyless = " union all ".join(
                f"(select * replace ({value} as {key_column}) from '{path}' order by all limit 1 offset {i})"
                for i, value in enumerate(["null", "''", "'   '"]))
            _rewrite(con, path, f"select * from '{path}' union all {keyless}")


@pytest.fixture(scope="module")
def daily_builds(sample_dirs, tmp_path_factory):
    raw_full, _ = sample_dirs
    root = tmp_path_factory.mktemp("incremental")
    last = _last_order_date(raw_full)
    day0, day1 = root / "raw_day0", root / "raw_day1"
    cut_raw_directory(raw_full, day0, dt.datetime.combine(last, dt.time()))
    cut_raw_directory(raw_full, day1, dt.datetime.combine(last + dt.timedelta(days=1), dt.time()))
    held = _hold_back_late_rows(day0, day1, last)
    changed = _change_old_rows(day1, last)
    _add_rows_without_keys(day0, day1)

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
    return incremental, refresh, daily, last, held, changed


def test_daily_run_is_incremental_and_adds_the_new_day(daily_builds):
    incremental, _, daily, last, _, _ = daily_builds
    for table in INCREMENTAL_BASE_MODELS:
        assert f"incremental model main.base_shop__{table}" in daily.stdout, table
        compiled = next((incremental / "target" / "run").rglob(f"base_shop__{table}.sql")).read_text()
        assert "delete from" in compiled.lower() or "new_rows" in compiled or "ordered_at >=" in compiled, table
        if table != "order_items":  # the delete reads only the rows from the batch's earliest copy on
            assert re.search(r"\)\s+and \(\w+ >= cast\('[^']+' as timestamp\) or \w+ is null\)", compiled), table
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


def test_daily_run_stages_rows_that_arrived_late(daily_builds):
    incremental, _, _, _, held, _ = daily_builds
    held = dict(held)
    late_customers = sorted(held.pop("customers"))
    con = duckdb.connect(str(incremental / "warehouse.duckdb"), read_only=True)
    try:
        for table, keys in held.items():
            assert len(keys) >= 3, table  # the sample has late rows of every kind to test with
            if "." in table:  # late updates: the staged rows carry them
                table, column = table.split(".")
                key_column = LATE_TABLES[table][1]
                staged = {r[0] for r in con.execute(
                    f"select {key_column} from base_shop__{table} where {column} is not null").fetchall()}
            else:
                key_column = LATE_TABLES[table][1]
                staged = {r[0] for r in con.execute(f"select {key_column} from base_shop__{table}").fetchall()}
            assert keys <= staged, (table, sorted(keys - staged)[:5])
        # the lines of late orders: staged with their order, none left as lines of an unknown order
        unknown = con.execute(
            "select count(*) from base_shop__order_items where quarantine_reason = 'unknown_order'"
            " and order_id in (select order_id from stg_shop__orders)"
        ).fetchall()[0][0]
        late_lines = con.execute(
            "select count(*) from stg_shop__order_items where order_id in (select unnest(?))", [sorted(held["orders"])]
        ).fetchall()[0][0]
        # the rows of customers whose customer row came late: released, none still quarantined
        released = con.execute(
            "select count(*) from stg_shop__orders where customer_id in (select unnest(?))", [late_customers]
        ).fetchall()[0][0]
        still_unknown = con.execute(
            "select count(*) from stg_shop__quarantine where table_name = 'orders'"
            " and quarantine_reason = 'unknown_customer' and record_key in (select order_id from base_shop__orders where customer_id in (select unnest(?)))",
            [late_customers],
        ).fetchall()[0][0]
    finally:
        con.close()
    assert unknown == 0
    assert late_lines > 0
    assert len(late_customers) >= 2
    assert released > 0
    assert still_unknown == 0


def test_incremental_and_full_refresh_builds_hold_identical_tables(daily_builds):
    incremental, refresh, _, last, _, changed = daily_builds
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
    # old keys sent again on day 1: both copies staged, the new one as a duplicate; reviews whose
    # time moved to day 1: one row each, at the new time
    assert len(changed["events"]) >= 3 and len(changed["reviews"]) >= 3
    duplicates = con.execute(
        "select count(distinct event_id) from inc.main.base_shop__events"
        " where quarantine_reason = 'duplicate' and event_id in (select unnest(?))", [sorted(changed["events"])]
    ).fetchall()[0][0]
    moved = con.execute(
        "select count(*), count(distinct review_id), min(reviewed_at) from inc.main.base_shop__reviews"
        " where review_id in (select unnest(?))", [sorted(changed["reviews"])]
    ).fetchall()[0]
    assert duplicates == len(changed["events"])
    assert moved[0] == moved[1] == len(changed["reviews"])
    assert moved[2] == dt.datetime.combine(last, dt.time(12))
    # rows without a key: staged again by the daily run, once each
    for table, reason in [("events", "missing_event_id"), ("order_items", "missing_order_id")]:
        keyless = con.execute(
            f"select count(*) from inc.main.base_shop__{table} where quarantine_reason = '{reason}'").fetchall()[0][0]
        assert keyless >= 3, table
