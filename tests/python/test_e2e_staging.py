"""End to end: dbt builds real warehouses and staging reconciles with quarantine.

Every count here is computed independently (raw files read with DuckDB, the generator's
ground truth), never read back from something the warehouse wrote about itself.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from churnwarehouse.contract import TABLES
from conftest import build, dbt

pytestmark = pytest.mark.e2e


def raw_count(raw_dir: Path, table: str) -> int:
    path = raw_dir / f"{table}.parquet"
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


def test_every_table_reconciles_raw_equals_staged_plus_rejected(sample_warehouse):
    for table in TABLES:
        raw = raw_count(sample_warehouse.raw_dir, table)
        staged = sample_warehouse.scalar(f"select count(*) from stg_shop__{table}")
        rejected = sample_warehouse.scalar(
            "select count(*) from stg_shop__quarantine where table_name = ? and quarantine_action = 'rejected'",
            [table],
        )
        assert raw > 0, table
        assert raw == staged + rejected, (table, raw, staged, rejected)


def test_each_planted_dirty_row_is_in_quarantine_with_its_reason(sample_warehouse, sample_dirs):
    _, truth_dir = sample_dirs
    planted = duckdb.sql(
        f"select table_name, reason, row_key from read_parquet('{truth_dir / 'dirty_rows.parquet'}')"
    ).fetchall()
    assert {reason for _, reason, _ in planted} >= {
        "duplicate", "missing_order_id", "missing_customer_id", "negative_amount",
        "future_timestamp", "unknown_customer", "malformed_email",
    }
    found = sample_warehouse.query("select table_name, quarantine_reason, record_key from stg_shop__quarantine")
    # Same number of rows per (table, reason): nothing planted is missed, and clean rows trip no check.
    assert Counter((t, r) for t, r, _ in found) == Counter((t, r) for t, r, _ in planted)
    # And the very rows: every planted row that has a key is quarantined under that key and reason.
    found_keys = Counter((t, r, k) for t, r, k in found if k is not None)
    planted_keys = Counter((t, r, k) for t, r, k in planted if k is not None)
    assert not planted_keys - found_keys


def test_malformed_emails_are_repaired_not_dropped(sample_warehouse):
    repaired = sample_warehouse.query(
        "select record_key from stg_shop__quarantine where quarantine_reason = 'malformed_email'"
    )
    assert repaired
    keys = [k for (k,) in repaired]
    staged = sample_warehouse.query(
        f"select count(*), count(email) from stg_shop__customers where customer_id in ({', '.join('?' * len(keys))})",
        keys,
    )[0]
    assert staged == (len(keys), 0)


def test_build_from_a_directory_holding_only_orders(sample_dirs, tmp_path):
    raw_dir, _ = sample_dirs
    only = tmp_path / "raw"
    only.mkdir()
    duckdb.sql(
        f"copy (select order_id, customer_id, ordered_at, order_total from read_parquet('{raw_dir / 'orders.parquet'}'))"
        f" to '{only / 'orders.parquet'}' (format parquet)"
    )
    warehouse = build(only, tmp_path)
    assert "absent (empty)" in warehouse.build_output
    staged = warehouse.scalar("select count(*) from stg_shop__orders")
    rejected = warehouse.scalar("select count(*) from stg_shop__quarantine where quarantine_action = 'rejected'")
    assert staged + rejected == raw_count(only, "orders")
    # Without a customers table no order is an unknown customer, and missing columns are null, not invented.
    assert warehouse.scalar("select count(*) from stg_shop__quarantine where quarantine_reason = 'unknown_customer'") == 0
    assert warehouse.query("select distinct status from stg_shop__orders") == [("completed",)]
    assert warehouse.scalar("select count(discount_amount) + count(channel) from stg_shop__orders") == 0
    for table in TABLES:
        if table != "orders":
            assert warehouse.scalar(f"select count(*) from stg_shop__{table}") == 0


def test_missing_required_column_is_a_clear_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    duckdb.sql(f"copy (select 'O1' as order_id, 'C1' as customer_id, 10.0 as order_total) to '{raw / 'orders.parquet'}'")
    proc = dbt("build", tmp_path, tmp_path / "w.duckdb", {"raw_path": str(raw)}, check=False)
    assert proc.returncode != 0
    assert "lacks required column(s): ordered_at" in proc.stdout


def test_missing_orders_file_is_a_clear_error(tmp_path):
    proc = dbt("build", tmp_path, tmp_path / "w.duckdb", {"raw_path": str(tmp_path / "nowhere")}, check=False)
    assert proc.returncode != 0
    assert "Raw table 'orders' is required" in proc.stdout


def test_csv_input_bad_values_and_time_zones(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,order_total,status\n"
        "O1,C1,2024-07-01 10:00:00,10.5,completed\n"
        "O2,C1,not a date,3.0,completed\n"
        "O3,C2,2024-01-15 10:00:00,abc,completed\n"
        "O4,C2,2024-01-16 10:00:00,4.0,CANCELLED\n"
    )
    # a zone-aware Parquet table: converted from its own zone, whatever source_timezone says
    duckdb.sql(
        "copy (select 'E1' as event_id, 'C1' as customer_id, 'page_view' as event_type,"
        " timestamptz '2024-07-01 12:00:00+02' as occurred_at)"
        f" to '{raw / 'events.parquet'}'"
    )
    warehouse = build(raw, tmp_path, source_timezone="Europe/London")
    orders = dict(warehouse.query("select order_id, ordered_at::varchar from stg_shop__orders"))
    assert orders == {"O1": "2024-07-01 09:00:00", "O4": "2024-01-16 10:00:00"}  # BST -> UTC; GMT = UTC
    assert warehouse.scalar("select status from stg_shop__orders where order_id = 'O4'") == "cancelled"
    reasons = dict(warehouse.query("select record_key, quarantine_reason from stg_shop__quarantine"))
    assert reasons == {"O2": "invalid_timestamp", "O3": "invalid_number"}
    assert warehouse.scalar("select occurred_at::varchar from stg_shop__events") == "2024-07-01 10:00:00"
    # far too little history to train: the build still succeeds, scores are empty, and dbt warns
    assert warehouse.scalar("select count(*) from churn_scores") == 0
    assert warehouse.scalar("select count(*) from ml_churn_model_registry where is_current") == 0
    assert "WARN 1 assert_churn_model_is_current" in warehouse.build_output


@pytest.mark.real_data
def test_uci_logs_load_and_build(uci_warehouse, uci_raw_dir):
    from conftest import UCI_FILES

    for table in TABLES:
        raw = raw_count(uci_raw_dir, table)
        staged = uci_warehouse.scalar(f"select count(*) from stg_shop__{table}")
        rejected = uci_warehouse.scalar(
            "select count(*) from stg_shop__quarantine where table_name = ? and quarantine_action = 'rejected'", [table]
        )
        assert raw == staged + rejected, table
    # Orders: every customer invoice of either release once (overlap de-duplicated), counted from the source files.
    files = ", ".join(f"'{f}'" for f in UCI_FILES)
    invoices = duckdb.sql(
        f"select count(distinct coalesce(Invoice, InvoiceNo)::varchar) from read_parquet([{files}], union_by_name = true)"
        " where not starts_with(coalesce(Invoice, InvoiceNo)::varchar, 'A')"
    ).fetchall()[0][0]
    assert raw_count(uci_raw_dir, "orders") == invoices
    reasons = dict(uci_warehouse.query(
        "select quarantine_reason, count(*) from stg_shop__quarantine group by 1"
    ))
    assert reasons["missing_customer_id"] > 1000  # the logs' anonymous invoices
    assert reasons["duplicate"] > 1000  # repeated lines within an invoice
    statuses = dict(uci_warehouse.query("select status, count(*) from stg_shop__orders group by 1"))
    assert set(statuses) == {"completed", "cancelled", "returned"}
    assert uci_warehouse.scalar("select count(*) from stg_shop__products") > 3000
    assert uci_warehouse.scalar("select count(*) from stg_shop__products where product_id in ('POST', 'DOT', 'M', 'BANK CHARGES')") == 0
