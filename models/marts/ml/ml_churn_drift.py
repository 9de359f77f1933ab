"""One row per feature (and one for the churn probability) of the current model: population
stability index of the scoring snapshot against the training data (churnwarehouse.scoring.build_drift)."""

from churnwarehouse.scoring import build_drift


def model(dbt, session):
    dbt.config(materialized="table")
    return build_drift(
        dbt.ref("ml_customer_features"),
        dbt.ref("churn_scores"),
        dbt.ref("ml_churn_model_registry"),
        dbt.config.get("model_registry_path"),
    )
