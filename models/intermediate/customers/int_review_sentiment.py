"""One row per review written before the scoring cutoff: text sentiment from a model fitted on
reviews before the month of the earliest snapshot's cutoff, cached under the model registry
(see churnwarehouse.sentiment)."""

from pathlib import Path

from churnwarehouse.sentiment import score_reviews_for_snapshots
from churnwarehouse.transfer import to_frame


def model(dbt, session):
    dbt.config(materialized="table")
    # only the columns scoring reads (the ids of customers and products are half the transfer)
    reviews = to_frame(dbt.ref("stg_shop__reviews").select("review_id, rating, review_text, reviewed_at"))
    snapshots = to_frame(dbt.ref("int_snapshot_dates"))
    cache = Path(dbt.config.get("model_registry_path")) / "review_sentiment"
    return score_reviews_for_snapshots(reviews, snapshots, cache_folder=cache)
