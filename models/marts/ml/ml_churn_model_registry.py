"""One row per registered churn-model version; this build's version is trained, or reloaded when
the same data and settings were trained before (churnwarehouse.scoring.build_model_registry)."""

from churnwarehouse.scoring import build_model_registry


def model(dbt, session):
    dbt.config(materialized="table")
    settings = {
        "horizon_days": dbt.config.get("horizon_days"),
        "validation_snapshot_count": dbt.config.get("validation_snapshot_count"),
        "max_training_rows": dbt.config.get("max_training_rows"),
    }
    return build_model_registry(dbt.ref("ml_customer_features"), dbt.config.get("model_registry_path"), settings)
