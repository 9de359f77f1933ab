"""One row per model version per candidate (family x hyperparameters): validation metrics of the model comparison."""

from churnwarehouse.registry import report_frame


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("ml_churn_model_registry")  # runs after training
    return report_frame(dbt.config.get("model_registry_path"), "comparison")
