"""Equal work: the pandas baseline (churnwarehouse.pandas_features) computes exactly the rows and
values of int_customer_order_features and int_customer_browsing_features, so timing one against
the other compares the same job."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from churnwarehouse.pandas_features import (
    BROWSING_FEATURE_COLUMNS,
    ORDER_FEATURE_COLUMNS,
    compute_browsing_features,
    compute_order_features,
    export_staged,
    run,
)
from conftest import Warehouse, run_module

KEYS = ["customer_id", "as_of_date"]


def assert_same_table(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    """Same columns in the same order, same (customer_id, as_of_date) keys, every value equal:
    integers exactly, floats within 1e-9 relative, nulls in the same places, timestamps equal."""
    assert list(actual.columns) == list(expected.columns)
    expected, actual = expected.copy(), actual.copy()
    for frame in (expected, actual):
        frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).astype("datetime64[us]")
    assert not expected.duplicated(KEYS).any()
    assert not actual.duplicated(KEYS).any()
    expected = expected.sort_values(KEYS).reset_index(drop=True)
    actual = actual.sort_values(KEYS).reset_index(drop=True)
    assert len(actual) == len(expected)
    pd.testing.assert_frame_equal(actual[KEYS], expected[KEYS])
    for column in expected.columns.drop(KEYS):
        want, got = expected[column], actual[column]
        assert (want.isna() == got.isna()).all(), column
        present = want.notna()
        want, got = want[present], got[present]
        if pd.api.types.is_datetime64_any_dtype(want):
            assert (got.astype("datetime64[us]") == want.astype("datetime64[us]")).all(), column
        elif pd.api.types.is_integer_dtype(got):
            # counts and day differences, exactly (the warehouse's HUGEINT sums arrive as float64)
            assert (got.to_numpy(float) == want.to_numpy(float)).all(), column
        else:
            np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-9, atol=0, err_msg=column)


def warehouse_table(warehouse: Warehouse, table: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse.db_path), read_only=True) as con:
        return con.execute(f"select * from {table}").df()


@pytest.fixture(scope="module")
def staged_dir(sample_warehouse, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pandas_staged")
    export_staged(sample_warehouse.db_path, out)
    return out


@pytest.fixture(scope="module")
def pandas_run(staged_dir):
    return run(staged_dir)


@pytest.mark.e2e
def test_order_features_equal_the_dbt_model(sample_warehouse, pandas_run):
    expected = warehouse_table(sample_warehouse, "int_customer_order_features")
    assert list(expected.columns) == ORDER_FEATURE_COLUMNS
    assert len(expected) > 1000
    assert expected["label_window_order_count"].gt(0).any() and expected["stddev_purchase_gap_days"].isna().any()
    assert_same_table(expected, pandas_run.order_features)


@pytest.mark.e2e
def test_browsing_features_equal_the_dbt_model(sample_warehouse, pandas_run):
    expected = warehouse_table(sample_warehouse, "int_customer_browsing_features")
    assert list(expected.columns) == BROWSING_FEATURE_COLUMNS
    assert len(expected) > 1000
    assert_same_table(expected, pandas_run.browsing_features)


@pytest.mark.e2e
def test_every_snapshot_is_computed(sample_warehouse, pandas_run):
    snapshots = {d for (d,) in sample_warehouse.query("select as_of_date from int_snapshot_dates")}
    assert len(snapshots) > 1
    assert set(pandas_run.order_features["as_of_date"].dt.date) == snapshots
    assert set(pandas_run.browsing_features["as_of_date"].dt.date) == snapshots


@pytest.mark.e2e
def test_reading_the_warehouse_file_gives_the_same_tables(sample_warehouse, pandas_run):
    direct = run(sample_warehouse.db_path)
    assert_same_table(pandas_run.order_features, direct.order_features)
    assert_same_table(pandas_run.browsing_features, direct.browsing_features)


@pytest.mark.e2e
def test_command_line_prints_seconds_and_row_counts(sample_warehouse, staged_dir):
    proc = run_module("pandas_features", "--staged", str(staged_dir))
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["order_feature_rows"] == sample_warehouse.scalar("select count(*) from int_customer_order_features")
    assert summary["browsing_feature_rows"] == sample_warehouse.scalar(
        "select count(*) from int_customer_browsing_features")
    assert {"load_seconds", "order_features_seconds", "browsing_features_seconds"} <= summary.keys()


# --- hand-built cases with answers worked out by hand ----------------------------------------------

AS_OF = dt.date(2025, 6, 30)


def snapshot(as_of: dt.date = AS_OF, horizon: int | None = 90) -> pd.DataFrame:
    """One snapshot row shaped like int_snapshot_dates (no label window when horizon is None)."""
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    end = pd.NaT if horizon is None else pd.Timestamp(as_of) + pd.Timedelta(days=horizon + 1)
    return pd.DataFrame({"as_of_date": [as_of], "cutoff_at": [cutoff], "label_window_end_at": [end]})


def orders_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "order_total", "status",
                                        "discount_amount", "coupon_code"])
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], format="ISO8601").astype("datetime64[us]")
    frame["order_total"] = frame["order_total"].astype("float32")
    frame["discount_amount"] = frame["discount_amount"].astype("float32")
    return frame


def test_order_features_by_hand():
    orders = orders_frame([
        # a: completed orders 30 days before (outside 30d), on the as_of_date, and one microsecond
        # before the cutoff; a cancelled one; the first order at the cutoff is in the label window
        ("a", "2025-05-31 10:00:00", 10.0, "completed", 0.0, None),
        ("a", "2025-06-30 00:00:00", 20.0, "completed", 5.0, None),
        ("a", "2025-06-30 23:59:59.999999", 30.0, "completed", 0.0, "WELCOME"),
        ("a", "2025-06-15 12:00:00", 99.0, "cancelled", 0.0, None),
        ("a", "2025-07-01 00:00:00", 40.0, "completed", 0.0, None),
        ("a", "2025-09-28 23:59:59", 50.0, "completed", 0.0, None),   # as_of + 90 days: last label day
        ("a", "2025-09-29 00:00:00", 60.0, "completed", 0.0, None),   # label_window_end_at: outside
        # a, a year earlier: as_of - 300 and - 275 days are in the same window last year, - 365 is not
        ("a", "2024-09-03 08:00:00", 7.0, "completed", None, None),
        ("a", "2024-09-28 08:00:00", 5.0, "completed", 0.0, None),
        ("a", "2024-06-30 08:00:00", 3.0, "completed", 0.0, None),
        # b: only a cancelled order before the cutoff -> no row; c: only a future order -> no row
        ("b", "2025-06-01 00:00:00", 15.0, "cancelled", 0.0, None),
        ("c", "2025-07-01 00:00:00", 15.0, "completed", 0.0, None),
    ])
    out = compute_order_features(orders, snapshot())
    assert list(out.columns) == ORDER_FEATURE_COLUMNS
    assert out["customer_id"].tolist() == ["a"]
    a = out.iloc[0]
    assert a["order_count"] == 6
    assert a["total_spend_amount"] == 75.0
    assert a["order_count_30d"] == 2 and a["spend_amount_30d"] == 50.0      # 2025-05-31 is 30 days ago
    assert a["order_count_90d"] == 3 and a["spend_amount_90d"] == 60.0
    assert a["order_count_365d"] == 5 and a["spend_amount_365d"] == 72.0    # 2024-06-30 is 365 days ago
    assert a["order_count_prior_90d"] == 0 and a["order_count_trend_90d"] == 3
    assert a["order_count_same_window_last_year"] == 2 and a["spend_amount_same_window_last_year"] == 12.0
    assert a["days_since_last_order"] == 0 and a["tenure_days"] == 365
    assert a["last_order_at"] == pd.Timestamp("2025-06-30 23:59:59.999999")
    assert a["average_order_value"] == 12.5
    assert a["cancelled_order_count"] == 1 and a["returned_order_count"] == 0
    assert a["cancellation_rate"] == pytest.approx(1 / 7) and a["return_rate"] == 0.0
    assert a["discounted_order_count"] == 2 and a["discount_amount_total"] == 5.0   # null discount counts 0
    assert a["purchase_day_count"] == 5                                      # two orders on 2025-06-30
    assert a["mean_purchase_gap_days"] == pytest.approx(365 / 4)            # 65, 25, 245, 30
    assert a["stddev_purchase_gap_days"] == pytest.approx(np.std([65, 25, 245, 30], ddof=1))
    assert a["label_window_order_count"] == 2
    assert a["next_order_at"] == pd.Timestamp("2025-07-01")

    scoring = compute_order_features(orders, snapshot(horizon=None)).iloc[0]
    assert scoring["label_window_order_count"] == 0 and pd.isna(scoring["next_order_at"])
    assert scoring["order_count"] == 6


def test_single_purchase_day_has_no_gap_statistics():
    orders = orders_frame([("a", "2025-06-01 09:00:00", 10.0, "completed", 0.0, None),
                           ("a", "2025-06-01 18:00:00", 12.0, "completed", 0.0, None)])
    a = compute_order_features(orders, snapshot()).iloc[0]
    assert a["purchase_day_count"] == 1 and a["order_count"] == 2
    assert pd.isna(a["mean_purchase_gap_days"]) and pd.isna(a["stddev_purchase_gap_days"])


def test_browsing_features_by_hand():
    rows = [
        # s1 on the as_of_date: cart add without checkout -> abandoned
        ("a", "s1", "product_view", "2025-06-30 10:00:00"),
        ("a", "s1", "add_to_cart", "2025-06-30 10:01:00"),
        # s2 crosses midnight: two session-days; the second has a cart add and a checkout
        ("a", "s2", "search", "2025-06-28 23:59:00"),
        ("a", "s2", "add_to_cart", "2025-06-29 00:01:00"),
        ("a", "s2", "checkout", "2025-06-29 00:02:00"),
        # no session id: the customer's session-less events of a day are one session
        ("a", None, "page_view", "2025-05-31 08:00:00"),      # 30 days ago
        ("a", None, "page_view", "2025-05-31 20:00:00"),
        ("a", "s3", "product_view", "2024-07-01 00:00:00"),   # 364 days ago: in the 365-day window
        ("a", "s4", "product_view", "2024-06-30 23:00:00"),   # 365 days ago: outside
        ("a", "s5", "product_view", "2025-07-01 00:00:00"),   # after the as_of_date
        ("b", "s6", "page_view", "2024-06-30 12:00:00"),      # only 365 days ago -> no row
    ]
    events = pd.DataFrame(rows, columns=["customer_id", "session_id", "event_type", "occurred_at"])
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], format="ISO8601").astype("datetime64[us]")
    out = compute_browsing_features(events, snapshot())
    assert list(out.columns) == BROWSING_FEATURE_COLUMNS
    assert out["customer_id"].tolist() == ["a"]
    a = out.iloc[0]
    assert a["days_since_last_visit"] == 0
    assert a["session_count_30d"] == 3          # s1, and s2 twice
    assert a["session_count_prior_30d"] == 1    # the session-less day
    assert a["session_count_90d"] == 4 and a["session_count_365d"] == 5
    assert a["active_day_count_90d"] == 4
    assert a["product_view_count_90d"] == 1 and a["cart_add_count_90d"] == 2 and a["search_count_90d"] == 1
    assert a["cart_session_count_90d"] == 2 and a["abandoned_cart_session_count_90d"] == 1


def test_population_restricts_both_tables_to_its_customer_snapshots():
    """With int_customer_snapshots, only its (customer, snapshot) pairs get rows (the training sample)."""
    orders = orders_frame([("a", "2025-06-01 09:00:00", 10.0, "completed", 0.0, None),
                           ("b", "2025-06-02 09:00:00", 12.0, "completed", 0.0, None),
                           ("b", "2025-07-02 09:00:00", 12.0, "completed", 0.0, None)])
    visited = pd.to_datetime(["2025-06-01 08:00", "2025-06-02 08:00"]).astype("datetime64[us]")
    events = pd.DataFrame({"customer_id": ["a", "b"], "session_id": ["s1", "s2"],
                           "event_type": ["page_view", "page_view"], "occurred_at": visited})
    population = pd.DataFrame({"customer_id": ["b"], "as_of_date": [AS_OF]})
    order_rows = compute_order_features(orders, snapshot(), customer_snapshots=population)
    assert order_rows["customer_id"].tolist() == ["b"]
    assert order_rows["order_count"].tolist() == [1] and order_rows["label_window_order_count"].tolist() == [1]
    assert compute_browsing_features(events, snapshot(), customer_snapshots=population)["customer_id"].tolist() == ["b"]
    assert compute_order_features(orders, snapshot())["customer_id"].tolist() == ["a", "b"]
    assert compute_browsing_features(events, snapshot())["customer_id"].tolist() == ["a", "b"]
    empty = population.iloc[0:0]
    assert compute_order_features(orders, snapshot(), customer_snapshots=empty).empty
