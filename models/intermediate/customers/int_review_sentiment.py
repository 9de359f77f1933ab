"""One row per review written before the scoring cutoff: text sentiment from a model fitted on
reviews before the earliest snapshot's cutoff (see churnwarehouse.sentiment)."""

from churnwarehouse.sentiment import score_reviews_for_snapshots


def model(dbt, session):
    dbt.config(materialized="table")
    reviews = dbt.ref("stg_shop__reviews").df()
    snapshots = dbt.ref("int_snapshot_dates").df()
    return score_reviews_for_snapshots(reviews, snapshots)
