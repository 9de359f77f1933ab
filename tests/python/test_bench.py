"""The benchmark's own measuring: process-tree memory, and splitting dbt's run results by layer."""

from __future__ import annotations

import json
import os
import sys

from churnwarehouse import bench


def test_peak_memory_counts_the_whole_process_tree():
    # a parent that starts a child holding ~300 MB: the parent alone stays small
    child = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    run = bench.measure([sys.executable, "-c", parent], dict(os.environ))
    assert run.returncode == 0
    assert run.peak_rss_mb > 300
    assert run.wall_s > 1.4


def test_results_are_split_into_layers_and_equal_work(tmp_path):
    (tmp_path / "target").mkdir()
    nodes = {
        "model.p.base_shop__orders": "models/staging/shop/base/base_shop__orders.sql",
        "model.p.int_customer_order_features": "models/intermediate/customers/int_customer_order_features.sql",
        "model.p.int_customer_browsing_features": "models/intermediate/customers/int_customer_browsing_features.sql",
        "model.p.int_review_sentiment": "models/intermediate/customers/int_review_sentiment.py",
        "model.p.ml_customer_features": "models/marts/ml/ml_customer_features.sql",
        "model.p.churn_scores": "models/marts/churn/churn_scores.py",
        "test.p.unique_x": "models/x.yml",
    }
    manifest = {"nodes": {uid: {"original_file_path": path} for uid, path in nodes.items()}}
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest))
    times = [3.0, 5.0, 7.0, 11.0, 13.0, 17.0, 19.0]
    results = [{"unique_id": uid, "execution_time": t} for uid, t in zip(nodes, times)]
    out = bench.summarize_results(results, tmp_path)
    assert out["staging_s"] == 3.0
    assert out["features_s"] == 5.0 + 7.0 + 11.0 + 13.0
    assert out["features_sql_s"] == 5.0 + 7.0 + 13.0
    assert out["ours_equal_s"] == 5.0 + 7.0
    assert out["python_models_s"] == 11.0 + 17.0
    assert out["tests_s"] == 19.0
    assert out["slowest_models"].startswith("churn_scores 17.0")


def test_the_floor_is_the_fastest_of_its_repeated_scans(tmp_path, monkeypatch):
    import duckdb

    con = duckdb.connect()
    con.execute(f"copy (select 'c' || (i % 7) as customer_id, 1.5 as order_total, timestamp '2024-01-01' as ordered_at"
                f" from range(100) t(i)) to '{tmp_path / 'orders.parquet'}'")
    con.execute(f"copy (select 'c' || (i % 7) as customer_id, 's' || (i % 13) as session_id,"
                f" timestamp '2024-01-01' as occurred_at from range(100) t(i)) to '{tmp_path / 'events.parquet'}'")
    # each scan reads the clock twice: scans of 5, 2 and 7 seconds
    clock = iter([0.0, 5.0, 10.0, 12.0, 20.0, 27.0])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    assert bench.floor_seconds(tmp_path, "1GB", repeats=3) == 2.0


def test_the_scoring_chain_runs_from_the_features_mart_to_the_last_model():
    def result(uid, start, end):
        return {"unique_id": uid, "execution_time": end - start, "timing": [
            {"name": "compile", "started_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-01T00:00:00Z"},
            {"name": "execute", "started_at": f"2026-01-01T00:00:{start:02d}Z",
             "completed_at": f"2026-01-01T00:00:{end:02d}Z"}]}

    results = [
        result("model.p.int_customer_order_features", 1, 9),
        result("model.p.ml_customer_features", 10, 12),
        result("model.p.churn_scores", 13, 20),
        result("model.p.ml_churn_drift", 21, 25),
        result("test.p.not_null_ml_churn_drift_psi", 26, 40),  # tests after the last model are not rescoring
    ]
    assert bench.scoring_chain_seconds(results) == 15.0
    assert bench.scoring_chain_seconds(results[:1]) is None  # no features mart: no chain
