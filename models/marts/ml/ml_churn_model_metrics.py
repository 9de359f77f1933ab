"""One row per registered model version: its out-of-time validation metrics (the metrics history)."""

from churnwarehouse.registry import metrics_frame


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("ml_churn_model_registry")  # runs after training
    return metrics_frame(dbt.config.get("model_registry_path"))
