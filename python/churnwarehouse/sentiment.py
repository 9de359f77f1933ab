"""Review-text sentiment learned from the reviews' own star ratings.

Nothing is downloaded: a TF-IDF + multinomial logistic regression model is fitted on
(review_text, rating) pairs of the shop's own reviews, and a review's sentiment is its
expected rating under the model, rescaled to [-1, 1] ((E[rating] - 3) / 2).

Point in time: the model is fitted only on reviews written before the *earliest* snapshot's
cutoff, so no snapshot's features use a model that has seen text from its own future. Reviews
after the scoring cutoff are not scored at all. Reviews written between the fit cutoff and the
scoring cutoff are the out-of-time hold-out on which agreement with ratings is reported
(``ml_review_sentiment_evaluation``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

#: Fewer fit reviews than this (or fewer than two distinct ratings): no model, sentiment is null.
MIN_FIT_REVIEWS = 200

OUTPUT_COLUMNS = ["review_id", "sentiment_score", "expected_rating", "is_fit_sample"]


def make_sentiment_pipeline(random_state: int = 0) -> Pipeline:
    """TF-IDF on words and word pairs, then a multinomial logistic regression over the stars."""
    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    lowercase=True,
                    ngram_range=(1, 2),
                    min_df=2,
                    max_features=50_000,
                    sublinear_tf=True,
                    dtype=np.float32,
                ),
            ),
            ("classifier", LogisticRegression(C=4.0, max_iter=2_000, random_state=random_state)),
        ]
    )


def expected_rating(pipeline: Pipeline, texts: pd.Series) -> np.ndarray:
    """Expected star rating under the fitted pipeline's class probabilities."""
    probabilities = pipeline.predict_proba(texts.fillna("").astype(str))
    classes = pipeline.named_steps["classifier"].classes_.astype(float)
    return probabilities @ classes


def score_reviews(
    reviews: pd.DataFrame,
    fit_cutoff: pd.Timestamp,
    score_cutoff: pd.Timestamp,
    min_fit_reviews: int = MIN_FIT_REVIEWS,
    random_state: int = 0,
) -> pd.DataFrame:
    """Fit on reviews before ``fit_cutoff`` and score every review before ``score_cutoff``.

    Parameters
    ----------
    reviews : DataFrame
        Columns ``review_id``, ``rating``, ``review_text``, ``reviewed_at``.
    fit_cutoff : Timestamp
        Only reviews with ``reviewed_at < fit_cutoff`` (and a text) are used for fitting.
    score_cutoff : Timestamp
        Reviews at or after it are left out of the output.
    min_fit_reviews : int
        Below this many fit reviews no model is fitted and every score is null.

    Returns
    -------
    DataFrame
        One row per scored review: ``review_id``, ``sentiment_score`` in [-1, 1] (null without a
        model or a text), ``expected_rating`` in [1, 5], ``is_fit_sample``.
    """
    scored = reviews.loc[reviews["reviewed_at"] < score_cutoff, ["review_id", "rating", "review_text", "reviewed_at"]]
    scored = scored.sort_values("review_id", kind="stable").reset_index(drop=True)
    has_text = scored["review_text"].notna() & (scored["review_text"].astype(str).str.strip() != "")
    is_fit = (scored["reviewed_at"] < fit_cutoff) & has_text & scored["rating"].notna()

    expected = np.full(len(scored), np.nan)
    fit_rows = scored.loc[is_fit]
    if len(fit_rows) >= min_fit_reviews and fit_rows["rating"].nunique() >= 2:
        pipeline = make_sentiment_pipeline(random_state)
        pipeline.fit(fit_rows["review_text"].astype(str), fit_rows["rating"].astype(int))
        if has_text.any():
            expected[has_text.to_numpy()] = expected_rating(pipeline, scored.loc[has_text, "review_text"])

    return pd.DataFrame(
        {
            "review_id": scored["review_id"].astype("string"),
            "sentiment_score": (expected - 3.0) / 2.0,
            "expected_rating": expected,
            "is_fit_sample": is_fit.astype(bool),
        },
        columns=OUTPUT_COLUMNS,
    )


def score_reviews_for_snapshots(reviews: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Wire ``score_reviews`` to the snapshot calendar (``int_snapshot_dates``).

    The fit cutoff is the earliest snapshot's cutoff; the score cutoff the scoring snapshot's.
    """
    if snapshots.empty:
        return score_reviews(reviews.iloc[0:0], pd.Timestamp.min, pd.Timestamp.min)
    cutoffs = pd.to_datetime(snapshots["cutoff_at"])
    fit_cutoff = cutoffs.min()
    score_cutoff = cutoffs[snapshots["is_scoring_snapshot"].astype(bool)].max()
    return score_reviews(reviews, fit_cutoff, score_cutoff)
