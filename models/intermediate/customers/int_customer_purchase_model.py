"""One row per customer per as_of_date (as in int_customer_order_features): BG/NBD expected
purchase days in the next churn horizon and probability alive, fitted per snapshot on that
snapshot's own history (churnwarehouse.bgnbd)."""

from churnwarehouse.bgnbd import purchase_model_features
from churnwarehouse.transfer import to_frame


def model(dbt, session):
    dbt.config(materialized="table")
    history = dbt.ref("int_customer_order_features").select(
        "customer_id, as_of_date, purchase_day_count, tenure_days, days_since_last_order"
    )
    return purchase_model_features(to_frame(history), int(dbt.config.get("horizon_days")))
