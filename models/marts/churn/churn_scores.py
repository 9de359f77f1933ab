"""One row per customer of the scoring snapshot: calibrated churn probability, percentile and
the top three reasons, from the current registered model (churnwarehouse.scoring.build_scores)."""

from churnwarehouse.scoring import build_scores


def model(dbt, session):
    dbt.config(materialized="table")
    return build_scores(
        dbt.ref("ml_customer_features"), dbt.ref("ml_churn_model_registry"), dbt.config.get("model_registry_path")
    )
