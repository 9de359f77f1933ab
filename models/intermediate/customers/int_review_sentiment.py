"""One row per review written before the scoring cutoff: text sentiment from a model fitted on
reviews before the month of the earliest snapshot's cutoff, cached under the model registry
(see churnwarehouse.sentiment)."""

from pathlib import Path

from churnwarehouse.sentiment import score_reviews_for_snapshots


def model(dbt, session):
    dbt.config(materialized="table")
    # only the columns scoring reads (the ids of customers and products are half the transfer)
    reviews = dbt.ref("stg_shop__reviews").select("review_id, rating, review_text, reviewed_at").df()
    snapshots = dbt.ref("int_snapshot_dates").df()
    cache = Path(dbt.config.get("model_registry_path")) / "review_sentiment"
    return score_reviews_for_snapshots(reviews, snapshots, cache_folder=cache)
