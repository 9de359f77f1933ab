"""One row per registered churn-model version; this build's version is reloaded (same data and
settings), reused under the retraining policy, or trained (churnwarehouse.scoring.build_model_registry)."""

from churnwarehouse.scoring import build_model_registry


def model(dbt, session):
    dbt.config(materialized="table")
    settings = {
        "horizon_days": dbt.config.get("horizon_days"),
        "validation_snapshot_count": dbt.config.get("validation_snapshot_count"),
        "max_training_rows": dbt.config.get("max_training_rows"),
        "retrain_max_age_days": dbt.config.get("retrain_max_age_days"),
        "retrain_max_psi": dbt.config.get("retrain_max_psi"),
    }
    return build_model_registry(dbt.ref("ml_customer_features"), dbt.config.get("model_registry_path"), settings)
