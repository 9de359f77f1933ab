"""Churn model package: training policy, calibration, registry, reasons, drift, determinism.

Fixture: synthetic snapshots where churn depends on recency and unresolved tickets, with a
seasonal shift of the base rate, so every claim below can be checked against a known truth.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnwarehouse import metrics, reasons, registry
from churnwarehouse.modeling import (
    TrainingConfig,
    fit_logit_offset,
    make_pipeline,
    parallel_map,
    prepare_features,
    same_season_snapshot,
    seasonal_offset,
    select_features,
    shift_probability,
    split_out_of_time,
    train_churn_model,
)
from churnwarehouse.scoring import feature_drift, score_customers

FAST = TrainingConfig(families=("logistic_regression", "gradient_boosting"), permutation_rows=2_000,
                      permutation_repeats=2)


def make_snapshots(n_customers: int = 1500, months: int = 16, seed: int = 0, baseline: str | None = None,
                   ) -> pd.DataFrame:
    """Monthly labelled snapshots. ``baseline``: None, or a BG/NBD-like probability of no
    purchase that knows something the features do not ("informative": the customer's current
    activity, which also drives churn) or nothing at all ("noise")."""
    rng = np.random.default_rng(seed)
    frames = []
    start = dt.date(2023, 1, 15)
    for m in range(months):
        as_of = (pd.Timestamp(start) + pd.DateOffset(months=m)).date()
        recency = rng.gamma(2.0, 40.0, n_customers)
        tickets = rng.poisson(0.3, n_customers)
        seasonal = 0.8 if as_of.month in (9, 10) else 0.0  # autumn: people come back
        activity = rng.normal(size=n_customers) if baseline == "informative" else np.zeros(n_customers)
        logit_p = -1.0 + 0.025 * recency + 0.9 * tickets - seasonal - 1.2 * activity
        churned = rng.random(n_customers) < 1 / (1 + np.exp(-logit_p))
        extra = {}
        if baseline == "informative":
            extra["probability_no_purchase_next_horizon"] = 1 / (1 + np.exp(1.2 * activity + rng.normal(0, 0.5, n_customers)))
        elif baseline == "noise":
            extra["probability_no_purchase_next_horizon"] = rng.uniform(0.05, 0.95, n_customers)
        frames.append(pd.DataFrame({
            "customer_id": [f"C{i:05d}" for i in range(n_customers)],
            "as_of_date": as_of,
            "is_scoring_snapshot": False,
            "has_label": True,
            "churned": churned,
            "days_to_next_order": np.where(churned, np.nan, 30.0),
            "days_since_last_order": recency.round(),
            "unresolved_ticket_count": tickets.astype(float),
            "order_count": rng.integers(1, 20, n_customers).astype(float),
            "noise": rng.normal(size=n_customers),
            "session_count_30d": np.nan,  # an absent optional source: dropped from the features
            "country": rng.choice(["GB", "FR", "DE"], n_customers),
            **extra,
        }))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def snapshots() -> pd.DataFrame:
    return make_snapshots()


@pytest.fixture(scope="module")
def stacked_snapshots() -> pd.DataFrame:
    return make_snapshots(baseline="informative")


@pytest.fixture(scope="module")
def trained(snapshots):
    scoring_date = (pd.Timestamp(snapshots["as_of_date"].max()) + pd.DateOffset(months=3)).date()
    return train_churn_model(snapshots, scoring_date, FAST), scoring_date


def test_features_exclude_keys_outcomes_and_empty_sources(snapshots):
    numeric, categorical = select_features(snapshots)
    assert "churned" not in numeric and "days_to_next_order" not in numeric
    assert "session_count_30d" not in numeric
    assert set(numeric) == {"days_since_last_order", "unresolved_ticket_count", "order_count", "noise"}
    assert categorical == ["country"]


def test_a_feature_unobserved_before_the_validation_snapshot_is_left_out(snapshots):
    """A short history observes last year's window only on its latest snapshots: the column has
    values on the validation snapshot and none on the training snapshots. Training leaves it
    out (gradient boosting cannot bin a column with no value) and trains on the rest."""
    frame = snapshots.copy()
    frame["order_count_same_window_last_year"] = np.where(
        frame["as_of_date"] == frame["as_of_date"].max(), frame["order_count"], np.nan)
    scoring_date = (pd.Timestamp(frame["as_of_date"].max()) + pd.DateOffset(months=3)).date()
    model, _ = train_churn_model(frame, scoring_date, FAST)
    assert "order_count_same_window_last_year" not in model.feature_columns
    assert set(model.numeric_features) == {"days_since_last_order", "unresolved_ticket_count", "order_count", "noise"}


def test_split_is_out_of_time_with_an_embargo(snapshots):
    frame = snapshots.copy()
    train, validation = split_out_of_time(frame, TrainingConfig(horizon_days=90, validation_snapshot_count=2))
    first_validation = min(validation["as_of_date"])
    assert sorted(validation["as_of_date"].unique()) == sorted(frame["as_of_date"].unique())[-2:]
    # every training label window (as_of, as_of + 90] ends on or before the first validation date
    assert all(d + dt.timedelta(days=90) <= first_validation for d in train["as_of_date"].unique())


def test_model_ranks_and_records_its_comparison(trained):
    (model, reports), _ = trained
    comparison = reports["comparison"]
    assert set(comparison["family"]) == {"logistic_regression", "gradient_boosting"}
    assert comparison["is_chosen"].sum() == 1
    assert model.metadata["validation_metrics"]["roc_auc"] > 0.75
    importance = reports["importance"].set_index("feature")["importance_mean"]
    assert importance["days_since_last_order"] > importance["noise"]
    assert importance.idxmax() in {"days_since_last_order", "unresolved_ticket_count"}


def test_seasonal_offset_uses_last_years_snapshot_and_calibrates():
    dates = [dt.date(2023, m, 15) for m in range(1, 13)]
    assert same_season_snapshot(dates, dt.date(2024, 9, 20)) == dt.date(2023, 9, 15)
    assert same_season_snapshot(dates[:6], dt.date(2024, 9, 20)) is None
    probability = np.full(1000, 0.6)
    offset = fit_logit_offset(probability, 0.4)
    assert offset < 0
    assert shift_probability(probability, offset).mean() == pytest.approx(0.4, abs=1e-6)


def test_a_reference_near_the_start_of_the_data_gives_way_to_the_latest_rate(trained, snapshots):
    """Last year's snapshot calibrates only two horizons or more after the earliest labelled one;
    nearer the start, and without any reference, the target rows get the latest labelled
    snapshot's churn rate."""
    (model, _), _ = trained
    numeric, categorical = model.numeric_features, model.categorical_features
    dates = sorted(snapshots["as_of_date"].unique())
    latest = dates[-1]
    target_rows = snapshots[snapshots["as_of_date"] == latest].drop(columns=["churned"])
    latest_rate = snapshots.loc[snapshots["as_of_date"] == latest, "churned"].mean()

    def mean_after(offset):
        raw = model.pipeline.predict_proba(prepare_features(target_rows, numeric, categorical))[:, 1]
        return shift_probability(raw, offset).mean()

    # a year after the third snapshot: its reference lies two months after the earliest snapshot
    early = dates[2] + dt.timedelta(days=365)
    offset, reference = seasonal_offset(model.pipeline, snapshots, numeric, categorical, early,
                                        target_rows=target_rows, min_history_days=180)
    assert reference == latest and mean_after(offset) == pytest.approx(latest_rate, abs=1e-6)
    # the same reference counts once the rule asks for less history than it has
    offset, reference = seasonal_offset(model.pipeline, snapshots, numeric, categorical, early,
                                        target_rows=target_rows, min_history_days=30)
    assert reference == dates[2]
    # no reference at all: the latest rate again; without target rows, no shift
    offset, reference = seasonal_offset(model.pipeline, snapshots, numeric, categorical, dates[0],
                                        target_rows=target_rows)
    assert reference == latest and mean_after(offset) == pytest.approx(latest_rate, abs=1e-6)
    assert seasonal_offset(model.pipeline, snapshots, numeric, categorical, dates[0]) == (0.0, None)


def test_calibration_out_of_time_beats_the_unshifted_model():
    # score an autumn month: the training snapshot a year earlier carries the seasonal dip
    data = make_snapshots(months=22, seed=1)
    dates = sorted(data["as_of_date"].unique())
    autumn = [d for d in dates if d.month == 9][-1]
    train_rows = data[data["as_of_date"] <= autumn - dt.timedelta(days=90)]
    test_rows = data[data["as_of_date"] == autumn]
    model, _ = train_churn_model(train_rows, autumn, FAST)
    assert model.offset_reference_date is not None
    y = test_rows["churned"].astype(int).to_numpy()
    calibrated = model.predict_probability(test_rows)
    unshifted = model.raw_probability(test_rows)
    assert metrics.expected_calibration_error(y, calibrated) < metrics.expected_calibration_error(y, unshifted)
    assert abs(calibrated.mean() - y.mean()) < 0.04


def test_seasonal_offset_matches_the_seasons_rate_when_the_reference_lacks_a_feature():
    # last_year_orders is observed only from month 12 on (before, its window reached back before
    # the data began); the autumn reference snapshot a year earlier has it null everywhere
    data = make_snapshots(months=22, seed=1)
    rng = np.random.default_rng(3)
    dates = sorted(data["as_of_date"].unique())
    data["last_year_orders"] = rng.poisson(np.where(data["churned"], 0.3, 1.5)).astype(float)
    data.loc[data["as_of_date"] < dates[12], "last_year_orders"] = np.nan
    autumn = [d for d in dates if d.month == 9][-1]
    train_rows = data[data["as_of_date"] <= autumn - dt.timedelta(days=90)].reset_index(drop=True)
    test_rows = data[data["as_of_date"] == autumn]
    scoring_rows = test_rows.drop(columns=["churned", "days_to_next_order"])

    model, _ = train_churn_model(train_rows, autumn, FAST, scoring_rows=scoring_rows)
    assert "last_year_orders" in model.numeric_features
    assert model.offset_reference_date == str(dt.date(autumn.year - 1, 9, 15))
    y = test_rows["churned"].astype(int).to_numpy()
    assert abs(model.predict_probability(test_rows).mean() - y.mean()) < 0.04

    # the shift is fitted so that the model's mean on the target rows is the reduced model's estimate
    numeric, categorical = model.numeric_features, model.categorical_features
    calls = []

    def refit(n, c):
        calls.append((n, c))
        pipeline = make_pipeline("logistic_regression", {"C": 0.5}, n, c)
        return pipeline.fit(prepare_features(train_rows, n, c), train_rows["churned"].astype(int))

    offset, reference = seasonal_offset(model.pipeline, train_rows, numeric, categorical, autumn,
                                        target_rows=scoring_rows, refit=refit)
    assert calls and "last_year_orders" not in calls[0][0]
    assert reference == dt.date(autumn.year - 1, 9, 15)
    n, c = calls[0]
    reduced = refit(n, c)
    reference_rows = train_rows[train_rows["as_of_date"] == reference]
    reduced_offset = fit_logit_offset(reduced.predict_proba(prepare_features(reference_rows, n, c))[:, 1],
                                      reference_rows["churned"].astype(float).mean())
    season_rate = shift_probability(reduced.predict_proba(prepare_features(scoring_rows, n, c))[:, 1],
                                    reduced_offset).mean()
    full = model.pipeline.predict_proba(prepare_features(scoring_rows, numeric, categorical))[:, 1]
    assert shift_probability(full, offset).mean() == pytest.approx(season_rate, abs=1e-6)
    calls.clear()
    # without target rows (or nothing missing on the reference) the plain residual shift is used
    plain, _ = seasonal_offset(model.pipeline, train_rows, numeric, categorical, autumn, refit=refit)
    assert not calls and plain != offset


def test_registry_round_trip_and_rebuild_gives_identical_scores(snapshots, tmp_path):
    scoring_date = dt.date(2024, 7, 15)
    version, model, metadata = registry.train_or_load(tmp_path, snapshots, scoring_date, FAST)
    assert metadata["model_version"] == version and version.startswith("churn-")
    for key in ("trained_at", "training_window_start", "feature_columns", "parameters", "training_churn_rate",
                "library_versions", "artifact_sha256"):
        assert key in metadata
    # same data and seed: same version, loaded (not retrained), identical scores
    version_again, model_again, _ = registry.train_or_load(tmp_path, snapshots.sample(frac=1, random_state=5),
                                                           scoring_date, FAST)
    assert version_again == version
    rows = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()]
    np.testing.assert_array_equal(model.predict_probability(rows), model_again.predict_probability(rows))
    # retraining from scratch into another registry reproduces the same probabilities
    _, retrained, _ = registry.train_or_load(tmp_path / "other", snapshots, scoring_date, FAST)
    np.testing.assert_allclose(model.predict_probability(rows), retrained.predict_probability(rows), rtol=0, atol=1e-12)
    # other data: another version
    other_version, _, _ = registry.train_or_load(tmp_path, snapshots.iloc[:-10], scoring_date, FAST)
    assert other_version != version
    assert len(registry.list_metadata(tmp_path)) == 2
    assert set(registry.registry_frame(tmp_path, version).query("is_current")["model_version"]) == {version}


def test_tampered_artifact_is_refused(snapshots, tmp_path):
    version, _, _ = registry.train_or_load(tmp_path, snapshots, dt.date(2024, 7, 15), FAST)
    artifact = tmp_path / version / registry.ARTIFACT
    artifact.write_bytes(artifact.read_bytes() + b"x")
    with pytest.raises(registry.RegistryError):
        registry.load(tmp_path, version)


def test_reasons_name_the_themes_that_drive_each_customer(trained, snapshots):
    (model, _), _ = trained
    rows = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()].head(400).reset_index(drop=True)
    scores = score_customers(model, "v-test", rows)
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["churn_percentile"].between(0, 100).all()
    by_id = rows.set_index("customer_id")
    # a customer with several unresolved tickets and a recent order: support is the top reason
    support_heavy = by_id[(by_id["unresolved_ticket_count"] >= 2) & (by_id["days_since_last_order"] < 40)].index
    assert len(support_heavy) > 0
    top = scores.set_index("customer_id").loc[support_heavy, "reason_1"]
    assert top.str.contains("unresolved support ticket").mean() > 0.8
    # a long-lapsed customer without tickets: recency first, with their own figure
    lapsed = by_id[(by_id["days_since_last_order"] > 200) & (by_id["unresolved_ticket_count"] == 0)].index[0]
    first = scores.set_index("customer_id").loc[lapsed, "reason_1"]
    assert first.startswith(f"no order for {int(by_id.loc[lapsed, 'days_since_last_order'])} days")
    # impacts are ordered and positive
    impacts = scores[["reason_1_impact", "reason_2_impact"]].dropna()
    assert (impacts["reason_1_impact"] >= impacts["reason_2_impact"]).all()


def test_reason_contributions_follow_the_model(trained, snapshots):
    (model, _), _ = trained
    rows = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()].head(300).reset_index(drop=True)
    probability = model.predict_probability(rows)
    contributions = reasons.group_contributions(model, rows, probability)
    assert "browsing" not in contributions  # session_count_30d was never a feature
    correlation = np.corrcoef(contributions["support"], rows["unresolved_ticket_count"])[0, 1]
    assert correlation > 0.7


def test_drift_flags_a_shifted_feature_only(trained, snapshots):
    (model, _), _ = trained
    rows = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()].reset_index(drop=True)
    stable = feature_drift(model, "v", rows, model.predict_probability(rows)).set_index("feature")
    assert (stable["drift_level"] == "stable").all()
    shifted_rows = rows.assign(days_since_last_order=rows["days_since_last_order"] * 3)
    shifted = feature_drift(model, "v", shifted_rows, model.predict_probability(shifted_rows)).set_index("feature")
    assert shifted.loc["days_since_last_order", "drift_level"] == "major"
    assert shifted.loc["noise", "drift_level"] == "stable"
    assert shifted.loc["churn_probability", "psi"] > stable.loc["churn_probability", "psi"]


def test_metrics_match_definitions():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.9, 0.4, 0.6, 0.3, 0.35, 0.95])
    result = metrics.classification_metrics(y, p, 0.5)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert result["precision_at_threshold"] == pytest.approx(5 / 5)
    assert result["recall_at_threshold"] == pytest.approx(5 / 6)
    lift, capture = metrics.top_share_metrics(y, p, 0.2)
    assert capture == pytest.approx(2 / 6) and lift == pytest.approx(1.0 / 0.6)
    table = metrics.calibration_table(y, p)
    assert table["row_count"].sum() == len(y)
    assert metrics.expected_calibration_error(y, np.where(y == 1, 1.0, 0.0)) == pytest.approx(0.0)


def test_last_bit_float_noise_changes_neither_version_nor_scores(snapshots, tmp_path):
    """DuckDB's parallel float sums can differ in the last bits between builds of the same data."""
    scoring_date = dt.date(2024, 7, 15)
    noisy = snapshots.copy()
    noisy["days_since_last_order"] = noisy["days_since_last_order"] * (1 + 1e-15)
    noisy["noise"] = np.nextafter(noisy["noise"].to_numpy(), np.inf)
    assert not noisy["noise"].equals(snapshots["noise"])
    version, model, _ = registry.train_or_load(tmp_path / "a", snapshots, scoring_date, FAST)
    noisy_version, noisy_model, _ = registry.train_or_load(tmp_path / "b", noisy, scoring_date, FAST)
    assert noisy_version == version
    rows = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()]
    noisy_rows = noisy[noisy["as_of_date"] == noisy["as_of_date"].max()]
    np.testing.assert_array_equal(model.predict_probability(rows), noisy_model.predict_probability(noisy_rows))


def _sklearn_probability(model, frame):
    """The calibrated probability through scikit-learn's own predict_proba (no shortcut), the
    stacked baseline (if any) combined by its formula."""
    from scipy.special import expit, logit

    from churnwarehouse.modeling import prepare_features, shift_probability
    raw = model.pipeline.predict_proba(prepare_features(frame, model.numeric_features, model.categorical_features))[:, 1]
    if model.stack is not None:
        stack = model.stack
        baseline = pd.to_numeric(frame[stack.column]).to_numpy(dtype=float).round(9)  # as features are rounded
        raw = expit(stack.ml_weight * logit(np.clip(raw, 1e-6, 1 - 1e-6))
                    + stack.baseline_weight * logit(np.clip(baseline, 1e-6, 1 - 1e-6)) + stack.intercept)
    return shift_probability(raw, model.logit_offset)


def _assert_equal_to_full_perturbation(model, rows, probability, fast, groups) -> None:
    """Each group's fast contribution equals the drop when scikit-learn predicts the whole
    perturbed frame."""
    for group in fast.columns:
        perturbed = rows.copy()
        for column in groups[group]:
            perturbed[column] = model.reference_values.get(column)
        full = probability - _sklearn_probability(model, perturbed)
        np.testing.assert_allclose(fast[group].to_numpy(), full, rtol=0, atol=1e-12)


def _one_family_model(snapshots, family):
    """A model of one family, 500 rows of the latest snapshot, their probabilities, and the
    reason groups restricted to the model's features."""
    config = TrainingConfig(families=(family,), permutation_rows=2_000, permutation_repeats=2)
    scoring_date = (pd.Timestamp(snapshots["as_of_date"].max()) + pd.DateOffset(months=3)).date()
    model, _ = train_churn_model(snapshots, scoring_date, config)
    assert model.family == family
    rows = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()].head(500).reset_index(drop=True)
    groups = {g: [c for c in cols if c in model.input_columns] for g, cols in reasons.REASON_GROUPS.items()}
    return model, rows, model.predict_probability(rows), groups


def test_tree_tables_reproduce_scikit_learns_trees(snapshots):
    """Each tree's lookup table gives scikit-learn's own leaf value for any binned row: every
    bin of every column, the missing bin, categorical splits included."""
    from churnwarehouse.modeling import BinnedTrees
    model, _, _, _ = _one_family_model(snapshots, "gradient_boosting")
    trees = BinnedTrees.of(model.pipeline)
    assert trees is not None and model.categorical_features
    assert any(node["is_categorical"] for p in trees.predictors for node in p.nodes if not node["is_leaf"])
    rng = np.random.default_rng(0)
    binned = rng.integers(0, 256, size=(5_000, len(trees.positions)), dtype=np.uint8)
    binned[rng.random(binned.shape) < 0.1] = trees.missing_bin
    binned = np.asfortranarray(binned)
    for table, predictor, code in zip(trees.tables, trees.predictors, trees.codes(binned)):
        expected = predictor.predict_binned(np.ascontiguousarray(binned), trees.missing_bin, 1)
        np.testing.assert_array_equal(table.values[code], expected)


def _transformers_binned(trees, features):
    """The binned rows through the pipeline's and gradient boosting's own transformers."""
    internal = trees.estimator._preprocess_X(trees.preprocess.transform(features), reset=False)
    return np.asfortranarray(trees.mapper.transform(np.asarray(internal, dtype=np.float64)))


@pytest.mark.parametrize("with_categories", [True, False])
def test_direct_binning_equals_the_transformers(snapshots, with_categories):
    """BinnedTrees.bin writes each column where the trees read it, skipping the column
    transformers: the same bins for missing numbers, missing, unseen and known categories."""
    from churnwarehouse.modeling import BinnedTrees, prepare_features
    data = snapshots.copy() if with_categories else snapshots.drop(columns="country")
    if with_categories:  # a missing country in training as well (imputed as its own category)
        data.loc[::11, "country"] = None
    model, rows, _, _ = _one_family_model(data, "gradient_boosting")
    assert bool(model.categorical_features) == with_categories
    trees = BinnedTrees.of(model.pipeline)
    assert trees is not None and trees.direct is not None
    rows = rows.copy()
    rows.loc[::7, "days_since_last_order"] = np.nan
    if with_categories:
        rows.loc[::5, "country"] = None
        rows.loc[1::5, "country"] = "never seen"
    features = prepare_features(rows, model.numeric_features, model.categorical_features)
    expected = _transformers_binned(trees, features)
    binned = trees.bin(features)
    assert binned.dtype == expected.dtype and binned.flags["F_CONTIGUOUS"]
    np.testing.assert_array_equal(binned, expected)
    # a numeric column the transformers would have to convert takes their path, with their result
    features["order_count"] = features["order_count"].astype("float32")
    assert trees._direct_internal(features) is None
    np.testing.assert_array_equal(trees.bin(features), _transformers_binned(trees, features))


@pytest.mark.parametrize("stacked", [False, True])
def test_boosting_reasons_equal_full_perturbation(snapshots, stacked_snapshots, stacked):
    """The lookup-table shortcut for gradient boosting gives the same contributions as
    scikit-learn predicting every perturbed frame in full (with a stacked baseline too, which
    moves with the recency group)."""
    model, rows, probability, groups = _one_family_model(stacked_snapshots if stacked else snapshots,
                                                         "gradient_boosting")
    assert (model.stack is not None) == stacked
    assert ("probability_no_purchase_next_horizon" in groups["recency"]) == stacked
    # the binned prediction path gives scikit-learn's own probabilities
    from churnwarehouse.modeling import prepare_features
    sklearn_probability = model.pipeline.predict_proba(
        prepare_features(rows, model.numeric_features, model.categorical_features))[:, 1]
    if not stacked:
        np.testing.assert_allclose(model.raw_probability(rows), sklearn_probability, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probability, _sklearn_probability(model, rows), rtol=0, atol=1e-12)
    fast_probability, fast = reasons.probabilities_and_contributions(model, rows, batch_size=200)
    np.testing.assert_array_equal(fast_probability, probability)
    assert reasons._BoostingPerturbations.of(model, rows, {g: c for g, c in groups.items() if c}) is not None
    _assert_equal_to_full_perturbation(model, rows, probability, fast, groups)


def test_boosting_reasons_do_not_depend_on_the_thread_count(snapshots, monkeypatch):
    """Trees' codes and the groups' perturbations run side by side; the numbers stay bitwise the same."""
    model, rows, _, _ = _one_family_model(snapshots, "gradient_boosting")
    results = []
    for threads in ("1", "3"):
        monkeypatch.setenv("CHURN_PREDICT_THREADS", threads)
        results.append(reasons.probabilities_and_contributions(model, rows, batch_size=150))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    pd.testing.assert_frame_equal(results[0][1], results[1][1], check_exact=True)


def test_parallel_map_keeps_the_order_and_uses_the_threads(monkeypatch):
    seen = set()

    def square(value):
        seen.add(threading.get_ident())
        time.sleep(0.01)
        return value * value

    monkeypatch.setenv("CHURN_PREDICT_THREADS", "4")
    assert parallel_map(square, range(12)) == [value * value for value in range(12)]
    assert len(seen) > 1
    seen.clear()
    monkeypatch.setenv("CHURN_PREDICT_THREADS", "1")
    assert parallel_map(square, iter(range(5))) == [0, 1, 4, 9, 16]
    assert seen == {threading.get_ident()}


def test_training_fits_on_the_configured_threads_and_gives_the_same_model(snapshots, monkeypatch):
    """Training fits with CHURN_TRAIN_THREADS OpenMP threads (every core by default), and the
    model it gives does not depend on that count."""
    from threadpoolctl import threadpool_info

    import churnwarehouse.modeling as modeling

    seen: list[int] = []
    fit = modeling._fit

    def recording_fit(*args, **kwargs):
        seen.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp")
        return fit(*args, **kwargs)

    monkeypatch.setattr(modeling, "_fit", recording_fit)
    scoring_date = (pd.Timestamp(snapshots["as_of_date"].max()) + pd.DateOffset(months=3)).date()
    rows = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()]
    probabilities = []
    for threads in ("1", "2"):
        monkeypatch.setenv("CHURN_TRAIN_THREADS", threads)
        seen.clear()
        model, _ = train_churn_model(snapshots, scoring_date, FAST)
        assert seen and set(seen) == {int(threads)}
        probabilities.append(model.predict_probability(rows))
    np.testing.assert_array_equal(probabilities[0], probabilities[1])
    monkeypatch.delenv("CHURN_TRAIN_THREADS")
    assert modeling.training_threads() == (os.cpu_count() or 1)


def test_a_baseline_that_knows_more_than_the_features_is_stacked_out_of_time(stacked_snapshots, tmp_path):
    """The BG/NBD-like baseline carries the customers' current activity, which drives churn and
    which no feature has: it is stacked with positive weights learned on the validation snapshot,
    the stacked score ranks a later snapshot better than the model alone, the registry keeps it,
    and scores come back identical after a reload."""
    from sklearn.metrics import roc_auc_score

    from churnwarehouse.modeling import shift_probability
    scoring_date = (pd.Timestamp(stacked_snapshots["as_of_date"].max()) + pd.DateOffset(months=3)).date()
    model, reports = train_churn_model(stacked_snapshots, scoring_date, FAST)
    assert model.stack is not None
    assert model.stack.baseline_weight > 0 and model.stack.ml_weight > 0 and model.stack.likelihood_ratio > 3.84
    assert "probability_no_purchase_next_horizon" not in model.feature_columns
    assert model.metadata["baseline_stack"]["baseline_weight"] == model.stack.baseline_weight
    assert "bgnbd_baseline" in set(reports["comparison"]["family"])
    assert reports["comparison"]["is_chosen"].sum() == 1
    later = make_snapshots(months=1, seed=7, baseline="informative")
    churned = later["churned"].astype(int)
    alone = shift_probability(model.pipeline.predict_proba(
        prepare_features(later, model.numeric_features, model.categorical_features))[:, 1], model.logit_offset)
    stacked = model.predict_probability(later)
    assert roc_auc_score(churned, stacked) > roc_auc_score(churned, alone) + 0.02
    # a missing baseline value takes the validation median, not a crash or a NaN score
    gaps = later.copy()
    gaps.loc[gaps.index[:10], "probability_no_purchase_next_horizon"] = np.nan
    assert np.isfinite(model.predict_probability(gaps)).all()
    version = "churn-stacked"
    registry.save(tmp_path, version, model, reports)
    reloaded, _ = registry.load(tmp_path, version)
    np.testing.assert_array_equal(reloaded.predict_probability(later), stacked)


def test_a_baseline_of_noise_is_not_stacked(monkeypatch):
    """A baseline that knows nothing is left out: by the likelihood-ratio test when chance gives
    it a positive weight (without the test some of these seeds would be stacked)."""
    import churnwarehouse.modeling as modeling

    snapshots = make_snapshots(baseline="noise")
    scoring_date = (pd.Timestamp(snapshots["as_of_date"].max()) + pd.DateOffset(months=3)).date()
    model, _ = train_churn_model(snapshots, scoring_date, FAST)
    assert model.stack is None
    assert model.metadata["baseline_stack"] is None

    def stacks(seed: int) -> bool:
        rng = np.random.default_rng(seed)
        model_probability = rng.uniform(0.05, 0.95, 3_000)
        churned = (rng.random(3_000) < model_probability).astype(int)
        rows = pd.DataFrame({"probability_no_purchase_next_horizon": rng.uniform(0.05, 0.95, 3_000)})
        return modeling.fit_baseline_stack(model_probability, rows, churned) is not None

    assert not any(stacks(seed) for seed in range(20))
    monkeypatch.setattr(modeling, "STACK_MIN_LIKELIHOOD_RATIO", float("-inf"))
    assert any(stacks(seed) for seed in range(20))


def test_forest_probabilities_are_identical_on_every_call_and_thread_count(monkeypatch):
    """scikit-learn's forest adds its trees' probabilities in the order its threads finish, so
    repeated predictions of the same rows differ in the last bits; the project's forest sums
    them in a fixed order: bitwise the same on every call and at any thread count, and equal to
    scikit-learn's mean up to rounding."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    features = rng.normal(size=(20_000, 12))
    labels = (features[:, 0] + rng.normal(size=len(features)) > 0).astype(int)
    pipeline = make_pipeline("random_forest", {"n_estimators": 120, "min_samples_leaf": 20, "max_features": "sqrt"},
                             [f"x{i}" for i in range(12)], [])
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(12)])
    pipeline.fit(frame, labels)
    results = []
    for threads in ("2", "2", "2", "2", "2", "1", "3"):
        monkeypatch.setenv("CHURN_PREDICT_THREADS", threads)
        results.append(pipeline.predict_proba(frame)[:, 1])
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    forest = pipeline.named_steps["model"]
    assert isinstance(forest, RandomForestClassifier)
    sklearn_mean = RandomForestClassifier.predict_proba(forest, pipeline[:-1].transform(frame))[:, 1]
    np.testing.assert_allclose(results[0], sklearn_mean, rtol=0, atol=1e-12)


@pytest.mark.parametrize("stacked", [False, True])
def test_linear_reasons_equal_full_perturbation(snapshots, stacked_snapshots, stacked):
    """The logistic-regression shortcut (transform once, move the logit by the group's columns)
    gives the same contributions as predicting every perturbed frame in full."""
    model, rows, probability, groups = _one_family_model(stacked_snapshots if stacked else snapshots,
                                                         "logistic_regression")
    assert (model.stack is not None) == stacked
    assert reasons._LinearPerturbations.of(model, rows, {g: c for g, c in groups.items() if c}) is not None
    fast_probability, fast = reasons.probabilities_and_contributions(model, rows, batch_size=200)
    np.testing.assert_array_equal(fast_probability, probability)
    assert (fast.abs() > 1e-6).any().all()  # every group moves someone
    _assert_equal_to_full_perturbation(model, rows, probability, fast, groups)


def test_retraining_policy_reuses_a_recent_model_and_retrains_an_old_or_drifted_one(snapshots, tmp_path):
    from churnwarehouse.scoring import RetrainingPolicy, choose_model

    trained_for = dt.date(2024, 7, 15)
    latest = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()].reset_index(drop=True)
    # the scoring snapshot's features are part of the version (the seasonal shift may use them)
    version, model, _ = registry.train_or_load(tmp_path, snapshots, trained_for, FAST,
                                               latest.drop(columns=["churned", "days_to_next_order"], errors="ignore"))
    newer = snapshots.iloc[:-25]  # other training data, as a later day's build has
    policy = RetrainingPolicy(max_age_days=30, max_psi=0.25)

    # the same data again: reloaded
    assert choose_model(tmp_path, snapshots, trained_for, FAST, policy, latest)[0] == version
    # five days later, no drift: reused, with its age and drift in the reason
    chosen, reason = choose_model(tmp_path, newer, trained_for + dt.timedelta(days=5), FAST, policy, latest)
    assert chosen == version and reason.startswith("reused") and "5 days" in reason
    # five days later but the customers drifted: retrained
    drifted = latest.assign(days_since_last_order=latest["days_since_last_order"] * 3)
    chosen, reason = choose_model(tmp_path, newer, trained_for + dt.timedelta(days=5), FAST, policy, drifted)
    assert chosen != version and reason.startswith("trained") and "PSI" in reason
    # 45 days later: too old, retrained
    chosen, reason = choose_model(tmp_path, newer.iloc[:-5], trained_for + dt.timedelta(days=45), FAST, policy,
                                  latest)
    assert chosen != version and reason.startswith("trained")
    # never a model trained for a later scoring date (it has seen that date's data)
    chosen, _ = choose_model(tmp_path, newer.iloc[:-9], trained_for - dt.timedelta(days=3), FAST, policy,
                             latest)
    assert chosen != version
    # max_age_days = 0: every new scoring date trains
    chosen, reason = choose_model(tmp_path, newer.iloc[:-13], trained_for + dt.timedelta(days=5), FAST,
                                  RetrainingPolicy(0, 0.25), latest)
    assert chosen != version and reason.startswith("trained: retraining on every build")


def test_top_reasons_keep_the_largest_contributions_above_the_floor_in_order():
    frame = pd.DataFrame({
        "days_since_last_order": [140.0, 10.0, 5.0],
        "purchase_gap_overdue_ratio": [3.0, np.nan, np.nan],
        "unresolved_ticket_count": [2.0, 0.0, 1.0],
    })
    # two groups for three slots; one contribution below the floor, one missing
    contributions = pd.DataFrame({"recency": [0.2, 0.001, np.nan], "support": [0.3, 0.01, 0.02]})
    top = reasons.top_reasons(frame, contributions)
    assert list(top.columns) == [f"reason_{i}" for i in (1, 2, 3)] + [f"reason_{i}_impact" for i in (1, 2, 3)]
    assert top.loc[0, "reason_1"] == "2 unresolved support tickets"
    assert top.loc[0, "reason_2"] == "no order for 140 days, 3.0x the usual gap"
    assert top.loc[1, "reason_1"] == "0 support tickets in the last 90 days"
    assert top.loc[2, "reason_1"] == "1 unresolved support ticket"
    assert top[["reason_2", "reason_3"]].iloc[1:].isna().all().all() and pd.isna(top.loc[0, "reason_3"])
    np.testing.assert_array_equal(top["reason_1_impact"], [0.3, 0.01, 0.02])
    np.testing.assert_array_equal(top["reason_2_impact"], [0.2, np.nan, np.nan])
    assert top["reason_3_impact"].isna().all()


def test_binned_permutation_importance_equals_scikit_learns(snapshots):
    """The boosting shortcut gives scikit-learn's permutation importances, number for number."""
    from sklearn.inspection import permutation_importance

    from churnwarehouse.modeling import BinnedTrees, prepare_features
    model, rows, _, _ = _one_family_model(snapshots, "gradient_boosting")
    features = prepare_features(rows, model.numeric_features, model.categorical_features)
    y = rows["churned"].astype(int).to_numpy()
    expected = permutation_importance(model.pipeline, features, y, scoring="roc_auc", n_repeats=3,
                                      random_state=7, n_jobs=1)
    means, stds = BinnedTrees.of(model.pipeline).permutation_importance(features, y, 3, 7)
    assert (expected.importances_mean != 0).sum() >= 3  # several features matter, or this proves little
    np.testing.assert_array_equal(means, expected.importances_mean)
    np.testing.assert_array_equal(stds, expected.importances_std)
