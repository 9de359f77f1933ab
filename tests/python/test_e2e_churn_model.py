"""End to end: the churn model inside dbt on the generated sample (scores, registry, metrics,
drift), rebuild determinism, and a backtest judged against what actually happened."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from churnwarehouse.backtest import BacktestError, format_summary, run_backtests
from conftest import build

pytestmark = pytest.mark.e2e


def test_scores_cover_the_scoring_snapshot_with_reasons(sample_warehouse):
    scoring_customers = sample_warehouse.scalar("select count(*) from ml_customer_features where is_scoring_snapshot")
    assert sample_warehouse.scalar("select count(*) from churn_scores") == scoring_customers > 0
    current = sample_warehouse.query("select model_version from ml_churn_model_registry where is_current")
    assert len(current) == 1
    assert sample_warehouse.query("select distinct model_version from churn_scores") == current
    with_reasons = sample_warehouse.scalar(
        "select avg(case when reason_1 is not null then 1.0 else 0 end) from churn_scores where churn_probability > 0.5"
    )
    assert with_reasons > 0.9
    # the generated shop has support, reviews and browsing: reasons draw on them, not only on orders
    themes = sample_warehouse.query(
        "select count(*) from churn_scores where reason_1 like '%support ticket%' or reason_2 like '%support ticket%'"
        " or reason_1 like '%visit%' or reason_2 like '%visit%' or reason_1 like '%review%' or reason_2 like '%review%'"
    )[0][0]
    assert themes > 0


def test_metrics_history_and_reports_are_there(sample_warehouse):
    version = sample_warehouse.scalar("select model_version from ml_churn_model_registry where is_current")
    metrics = sample_warehouse.query(
        "select roc_auc, expected_calibration_error, lift_top_10pct from ml_churn_model_metrics where model_version = ?",
        [version],
    )
    (roc_auc, ece, lift), = metrics
    assert roc_auc > 0.75 and ece < 0.1 and lift > 1.2
    assert sample_warehouse.scalar("select count(*) from ml_churn_model_comparison where model_version = ?", [version]) >= 6
    assert sample_warehouse.scalar("select count(*) from ml_churn_calibration_curve where model_version = ?", [version]) >= 5
    top = sample_warehouse.query(
        "select feature from ml_churn_feature_importance where model_version = ? order by importance_rank limit 5", [version]
    )
    assert top
    drift = sample_warehouse.query("select feature, psi, drift_level from ml_churn_drift")
    assert any(feature == "churn_probability" for feature, _, _ in drift)


def test_rebuild_gives_identical_scores(sample_warehouse, tmp_path):
    """A second build on the same data, into a fresh warehouse and registry, retrains to the same scores."""
    rebuilt = build(sample_warehouse.raw_dir, tmp_path)
    query = "select customer_id, churn_probability, reason_1, model_version from churn_scores order by customer_id"
    assert rebuilt.query(query) == sample_warehouse.query(query)


def test_backtests_beat_recency_on_the_sample_at_two_dates(sample_dirs, tmp_path):
    raw_dir, _ = sample_dirs
    last = duckdb.sql(
        f"select max(ordered_at) from read_parquet('{raw_dir / 'orders.parquet'}') where ordered_at < now()"
    ).fetchall()[0][0]
    cutoff = (last - dt.timedelta(days=95)).date()
    earlier = cutoff - dt.timedelta(days=42)
    workdir = tmp_path / "backtests"
    reported = []
    results = run_backtests(raw_dir, [cutoff, earlier, cutoff], 90, workdir, {"max_training_rows": 20000},
                            on_result=reported.append)
    assert [r["cutoff"] for r in results] == [earlier.isoformat(), cutoff.isoformat()]
    assert reported == results  # each one as it was ready, in date order
    for result in results:
        assert result["customers"] > 1000
        model, recency = result["model"], result["recency_only"]
        assert model["roc_auc"] > recency["roc_auc"] + 0.02
        assert model["expected_calibration_error"] < 0.08
        # the BG/NBD baseline is there and ranks better than chance, but below the model
        assert 0.6 < result["bgnbd"]["roc_auc"] < model["roc_auc"]
        assert (workdir / result["cutoff"] / "backtest.json").exists()
    # two builds on different data: two models
    assert results[0]["model_version"] != results[1]["model_version"]
    assert json.loads((workdir / "backtests.json").read_text()) == results
    summary = format_summary(results).splitlines()
    mean_auc = (results[0]["model"]["roc_auc"] + results[1]["model"]["roc_auc"]) / 2
    assert summary[-1].startswith("mean") and f"{mean_auc:.4f}" in summary[-1]


def test_backtests_check_every_outcome_window_before_building(sample_dirs, tmp_path):
    raw_dir, _ = sample_dirs
    last = duckdb.sql(
        f"select max(ordered_at) from read_parquet('{raw_dir / 'orders.parquet'}') where ordered_at < now()"
    ).fetchall()[0][0].date()
    with pytest.raises(BacktestError, match="outcome window"):
        run_backtests(raw_dir, [last - dt.timedelta(days=200), last - dt.timedelta(days=30)], 90, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_backtest_summary_averages_each_column_over_the_dates_that_have_it():
    def result(cutoff, auc, bgnbd):
        model = {"roc_auc": auc, "pr_auc": 0.8, "brier_score": 0.2, "expected_calibration_error": 0.01,
                 "lift_top_10pct": 1.5, "base_rate": 0.5}
        return {"cutoff": cutoff, "customers": 1000, "horizon_days": 90, "model": model,
                "recency_only": {"roc_auc": 0.7}, **({"bgnbd": {"roc_auc": bgnbd}} if bgnbd else {})}

    lines = format_summary([result("2011-03-09", 0.80, 0.78), result("2011-06-09", 0.84, None)]).splitlines()
    assert lines[2].split()[:4] == ["2011-03-09", "1,000", "0.500", "0.8000"]
    assert "0.7800" in lines[2] and "0.7800" not in lines[3]
    mean = lines[-1].split()
    assert mean[0] == "mean" and mean[1:4] == ["0.8200", "0.7000", "0.7800"]
