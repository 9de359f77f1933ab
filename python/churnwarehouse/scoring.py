"""Scoring, drift and the entry points the dbt Python models call (one function per model).

The dbt model files only read their refs and call one function here; every function takes the
DuckDB relations dbt hands over and returns a pandas frame.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnwarehouse import metrics, reasons, registry
from churnwarehouse.modeling import (
    ChurnModel,
    InsufficientHistoryError,
    TrainingConfig,
    prepare_features,
    sampling_modulus,
    train_churn_model,
)
from churnwarehouse.transfer import to_frame

SCORE_COLUMNS = [
    "customer_id", "as_of_date", "churn_probability", "churn_percentile", "is_above_threshold",
    "reason_1", "reason_2", "reason_3", "reason_1_impact", "reason_2_impact", "reason_3_impact",
    "model_version",
]
PSI_MODERATE, PSI_MAJOR = 0.10, 0.25


def training_config(settings: dict[str, Any]) -> TrainingConfig:
    """TrainingConfig from dbt model config values (None = the default)."""
    allowed = TrainingConfig.__dataclass_fields__
    return TrainingConfig(**{k: type(getattr(TrainingConfig(), k))(v) for k, v in settings.items()
                             if k in allowed and v is not None})


def load_rows(features, max_rows: int, snapshot_filter: str = "has_label") -> pd.DataFrame:
    """Rows of ml_customer_features (labelled ones by default), sampled by whole customers
    (hash buckets) above ``max_rows``."""
    rows = features.filter(snapshot_filter)
    keep = sampling_modulus(rows.aggregate("count(*)").fetchall()[0][0], max_rows)
    if keep is not None:
        rows = rows.filter(f"hash(customer_id) % 10000 < {keep}")
    return to_frame(rows)


def load_training_rows(features, max_rows: int) -> pd.DataFrame:
    """Labelled rows of ml_customer_features, sampled by whole customers above ``max_rows``."""
    return load_rows(features, max_rows, "has_label")


#: The model registry reads at most about this many scoring customers (whole hash buckets, as
#: the training sample) to measure drift for the retraining check and for the seasonal shift's
#: base-rate matching: PSI over ten bins moves by ~1e-4 from sampling at this size, far below
#: the 0.25 threshold, and the registry no longer loads and predicts every customer.
SCORING_SAMPLE_ROWS = 200_000


def load_scoring_sample(features, max_rows: int = SCORING_SAMPLE_ROWS) -> pd.DataFrame:
    """The scoring snapshot's rows the registry works on (a hash sample above ``max_rows``)."""
    return load_rows(features, max_rows, "is_scoring_snapshot")


def scoring_date(features) -> dt.date:
    value = features.filter("is_scoring_snapshot").aggregate("max(as_of_date)").fetchall()[0][0]
    if value is None:
        raise ValueError("ml_customer_features has no scoring snapshot: is there any completed order?")
    return pd.Timestamp(value).date()


# ---------------------------------------------------------------- dbt model entry points


@dataclass(frozen=True)
class RetrainingPolicy:
    """When a build reuses an earlier model instead of training one.

    A build whose training data and settings match a registered version reloads it (a rebuild).
    Otherwise, with ``max_age_days`` > 0, it reuses the latest registered version that has the
    same settings and library versions, was trained for an earlier scoring date at most
    ``max_age_days`` before this one, and whose largest population stability index between the
    scoring snapshot it was trained for and this one (each feature and the score, in its drift
    bins) is at most ``max_psi``. Anything else trains. Daily runs so score with a model retrained monthly, or
    sooner when the customers drift away from what it was trained on.
    """

    max_age_days: int = 30
    max_psi: float = PSI_MAJOR


def retraining_policy(settings: dict[str, Any]) -> RetrainingPolicy:
    defaults = RetrainingPolicy()
    age, psi = settings.get("retrain_max_age_days"), settings.get("retrain_max_psi")
    return RetrainingPolicy(int(age) if age is not None else defaults.max_age_days,
                            float(psi) if psi is not None else defaults.max_psi)


def reusable_version(registry_path: Path, scoring: dt.date, config: TrainingConfig,
                     policy: RetrainingPolicy) -> tuple[str | None, int | None]:
    """The latest registered version the policy allows at this scoring date, and its age in days."""
    if policy.max_age_days <= 0:
        return None, None
    wanted_config, wanted_libraries = json.loads(json.dumps(asdict(config))), registry.library_versions()
    best: tuple[dt.date, str] | None = None
    for metadata in registry.list_metadata(registry_path):
        trained_for = pd.Timestamp(metadata["scoring_date"]).date()
        age = (scoring - trained_for).days
        if not 0 < age <= policy.max_age_days:
            continue  # never a model trained for a later date (it has seen the future), nor a stale one
        if metadata.get("config") != wanted_config or metadata.get("library_versions") != wanted_libraries:
            continue
        if best is None or (trained_for, metadata["model_version"]) > best:
            best = (trained_for, metadata["model_version"])
    if best is None:
        return None, None
    return best[1], (scoring - best[0]).days


SCORING_DISTRIBUTION = "scoring_distribution.json"


def snapshot_distribution(model: ChurnModel, frame: pd.DataFrame, probability: np.ndarray,
                          features: pd.DataFrame | None = None) -> dict[str, Any]:
    """Shares of a snapshot in the model's drift bins: each numeric feature (missing + the
    training deciles), each category, and the score in ten bins. ``features``: ``frame`` already
    passed through ``prepare_features``, when the caller has it."""
    if features is None:
        features = prepare_features(frame, model.numeric_features, model.categorical_features)
    n = max(len(features), 1)
    numeric = {}
    for column, stats in model.drift_baseline["numeric"].items():
        values = features[column].to_numpy(dtype=float)
        missing = np.isnan(values)
        counts = np.bincount(np.searchsorted(np.asarray(stats["edges"], dtype=float), values[~missing], side="right"),
                             minlength=len(stats["edges"]) + 1)
        numeric[column] = [missing.sum() / n] + [c / n for c in counts]
    categorical = {column: features[column].fillna("(missing)").value_counts(normalize=True).to_dict()
                   for column in model.drift_baseline["categorical"]}
    score = np.histogram(probability, bins=np.linspace(0, 1, 11))[0].astype(float)
    return {"numeric": numeric, "categorical": categorical, "score": (score / max(score.sum(), 1)).tolist()}


def training_distribution(model: ChurnModel) -> dict[str, Any]:
    """The training data's shares, stored with the model, in the shape of snapshot_distribution."""
    baseline = model.drift_baseline
    return {"numeric": {column: stats["shares"] for column, stats in baseline["numeric"].items()},
            "categorical": baseline["categorical"], "score": baseline["score_shares"]}


def distribution_psi(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(kind, feature, PSI) for each numeric feature, each categorical feature and the score."""
    rows = []
    for column, shares in before["numeric"].items():
        if column in after["numeric"]:
            rows.append(("numeric", column, metrics.population_stability_index(shares, after["numeric"][column])))
    for column, shares in before["categorical"].items():
        later = after["categorical"].get(column, {})
        categories = sorted(set(shares) | set(later))
        rows.append(("categorical", column, metrics.population_stability_index(
            [shares.get(c, 0.0) for c in categories], [later.get(c, 0.0) for c in categories])))
    rows.append(("score", "churn_probability", metrics.population_stability_index(before["score"], after["score"])))
    return rows


def largest_shift(before: dict[str, Any], after: dict[str, Any]) -> float:
    """The largest PSI between two snapshot distributions, over features and the score."""
    return float(max(psi for _, _, psi in distribution_psi(before, after)))


def record_scoring_distribution(registry_path: Path, version: str, model: ChurnModel, frame: pd.DataFrame) -> None:
    """Keep the distribution of the scoring snapshot a version was trained for, beside it: later
    builds measure how far their customers moved since (a snapshot always differs from the
    training history, so drift against training data would retrain every day)."""
    target = registry_path / version / SCORING_DISTRIBUTION
    if not target.exists():
        target.write_text(json.dumps(snapshot_distribution(model, frame, model.predict_probability(frame)),
                                     default=float))


def choose_model(registry_path: Path, labelled: pd.DataFrame, scoring: dt.date, config: TrainingConfig,
                 policy: RetrainingPolicy, scoring_rows: pd.DataFrame) -> tuple[str, str]:
    """This build's model version and why: reloaded, reused under the policy, or trained.

    ``scoring_rows`` are the scoring snapshot's features (``load_scoring_sample``): they are
    part of the version (the seasonal shift may match base rates on them, see
    ``modeling.seasonal_offset``), drift since a candidate's own scoring snapshot is measured on
    them, and a version trained here keeps their distribution for later builds.
    """
    frame = scoring_rows.sort_values("customer_id", kind="stable").reset_index(drop=True)
    features_only = frame.drop(columns=["churned", "days_to_next_order"], errors="ignore")
    version = registry.model_version(labelled, scoring, config, features_only)
    if (registry_path / version / registry.METADATA).exists():
        if not (registry_path / version / SCORING_DISTRIBUTION).exists():
            record_scoring_distribution(registry_path, version, registry.load(registry_path, version)[0], frame)
        return version, "reloaded: same training data and settings"
    candidate, age = reusable_version(registry_path, scoring, config, policy)
    if candidate is None:
        reason = ("trained: retraining on every build (retrain_max_age_days = 0)" if policy.max_age_days <= 0
                  else f"trained: no model with these settings trained in the {policy.max_age_days} days before")
    elif not (registry_path / candidate / SCORING_DISTRIBUTION).exists():
        reason = f"trained: {candidate} has no record of its scoring snapshot to measure drift against"
    else:
        model, _ = registry.load(registry_path, candidate)
        before = json.loads((registry_path / candidate / SCORING_DISTRIBUTION).read_text())
        psi = largest_shift(before, snapshot_distribution(model, frame, model.predict_probability(frame)))
        if psi <= policy.max_psi:
            return candidate, f"reused: trained for {age} days earlier, largest PSI since {psi:.3f} <= {policy.max_psi}"
        reason = f"trained: largest PSI {psi:.3f} since {candidate} > {policy.max_psi}"
    model, reports = train_churn_model(labelled, scoring, config, features_only)
    registry.save(registry_path, version, model, reports)
    record_scoring_distribution(registry_path, version, model, frame)
    return version, reason


def build_model_registry(features, registry_path: str, settings: dict[str, Any]) -> pd.DataFrame:
    """ml_churn_model_registry: choose this build's model (reload, reuse or train); every registered version.

    With too little labelled history (a short or tiny data set) nothing is trained: the table
    lists earlier versions with no current one, churn_scores stays empty, and the dbt test
    ``assert_churn_model_is_current`` warns.
    """
    config = training_config(settings)
    policy = retraining_policy(settings)
    labelled = load_training_rows(features, config.max_training_rows)
    scoring = scoring_date(features)
    try:
        version, reason = choose_model(Path(registry_path), labelled, scoring, config, policy,
                                       load_scoring_sample(features))
    except InsufficientHistoryError:
        version, reason = None, None
    return registry.registry_frame(Path(registry_path), version, reason)


def current_version(registry_table) -> str | None:
    """This build's model version, or None when nothing could be trained."""
    rows = registry_table.filter("is_current").aggregate("max(model_version)").fetchall()
    return rows[0][0] if rows else None


def empty_scores() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": pd.Series(dtype="string"), "as_of_date": pd.Series(dtype="datetime64[us]"),
        "churn_probability": pd.Series(dtype="float64"), "churn_percentile": pd.Series(dtype="float64"),
        "is_above_threshold": pd.Series(dtype="bool"),
        **{f"reason_{i}": pd.Series(dtype="string") for i in (1, 2, 3)},
        **{f"reason_{i}_impact": pd.Series(dtype="float64") for i in (1, 2, 3)},
        "model_version": pd.Series(dtype="string"),
    })[SCORE_COLUMNS]


def score_customers(model: ChurnModel, version: str, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per customer of the scoring snapshot: calibrated probability, percentile, reasons."""
    if not frame["customer_id"].is_monotonic_increasing:  # build_scores loads them in this order already
        frame = frame.sort_values("customer_id", kind="stable")
    frame = frame.reset_index(drop=True)
    probability, contributions = reasons.probabilities_and_contributions(model, frame)
    top = reasons.top_reasons(frame, contributions)
    percentile = pd.Series(probability).rank(method="max", pct=True).to_numpy() * 100.0
    out = pd.DataFrame({
        "customer_id": frame["customer_id"].astype("string"),
        "as_of_date": pd.to_datetime(frame["as_of_date"]),
        "churn_probability": probability,
        "churn_percentile": percentile,
        "is_above_threshold": probability >= model.threshold,
    })
    out = pd.concat([out, top.reset_index(drop=True)], axis=1)
    out["model_version"] = version
    return out[SCORE_COLUMNS]


def build_scores(features, registry_table, registry_path: str) -> pd.DataFrame:
    """churn_scores: the current model version applied to the scoring snapshot."""
    version = current_version(registry_table)
    if version is None:
        return empty_scores()
    model, _ = registry.load(Path(registry_path), version)
    scoring_rows = to_frame(features.filter("is_scoring_snapshot").order("customer_id"))
    return score_customers(model, version, scoring_rows)


def empty_drift() -> pd.DataFrame:
    return pd.DataFrame({
        "model_version": pd.Series(dtype="string"), "as_of_date": pd.Series(dtype="datetime64[us]"),
        "feature_kind": pd.Series(dtype="string"), "feature": pd.Series(dtype="string"),
        "psi": pd.Series(dtype="float64"), "scoring_mean": pd.Series(dtype="float64"),
        "scoring_null_share": pd.Series(dtype="float64"), "drift_level": pd.Series(dtype="string"),
    })


def feature_drift(model: ChurnModel, version: str, frame: pd.DataFrame, probability: np.ndarray) -> pd.DataFrame:
    """PSI of each feature and of the churn probability: scoring snapshot vs training data."""
    features = prepare_features(frame, model.numeric_features, model.categorical_features)
    psi = distribution_psi(training_distribution(model), snapshot_distribution(model, frame, probability, features))
    out = pd.DataFrame(psi, columns=["feature_kind", "feature", "psi"])
    out["scoring_mean"] = [
        features[column].mean() if kind == "numeric"
        else (float(np.mean(probability)) if len(probability) else None) if kind == "score" else None
        for kind, column, _ in psi
    ]
    out["scoring_null_share"] = [features[column].isna().mean() if kind != "score" else 0.0 for kind, column, _ in psi]
    out["drift_level"] = np.where(out["psi"] >= PSI_MAJOR, "major", np.where(out["psi"] >= PSI_MODERATE, "moderate", "stable"))
    out.insert(0, "model_version", version)
    out.insert(1, "as_of_date", pd.to_datetime(frame["as_of_date"]).max() if len(frame) else pd.NaT)
    return out.sort_values(["psi", "feature"], ascending=[False, True]).reset_index(drop=True)


def build_drift(features, scores, registry_table, registry_path: str) -> pd.DataFrame:
    """ml_churn_drift: the scoring snapshot's feature and score distributions vs training (PSI)."""
    version = current_version(registry_table)
    if version is None:
        return empty_drift()
    model, _ = registry.load(Path(registry_path), version)
    # only the columns drift reads, each customer's features beside their score, in customer order
    columns = ", ".join(f'"{c}"' for c in ["customer_id", "as_of_date", *model.feature_columns]
                        if c in features.columns)
    frame = to_frame(features.filter("is_scoring_snapshot").select(columns).join(
        scores.select("customer_id, churn_probability"), "customer_id").order("customer_id"))
    return feature_drift(model, version, frame, frame["churn_probability"].to_numpy())
