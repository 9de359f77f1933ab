"""Review sentiment: learns tone from star ratings, stays point in time, degrades to null."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnwarehouse.sentiment import score_reviews, score_reviews_for_snapshots

POSITIVE = ["love it", "great quality", "excellent and fast delivery", "really happy", "perfect gift"]
NEGATIVE = ["broken on arrival", "terrible quality", "very disappointed", "late and damaged", "waste of money"]


def make_reviews(n: int, start: str = "2024-01-01", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ratings = rng.integers(1, 6, size=n)
    texts = []
    for rating in ratings:
        words = POSITIVE if rating >= 4 else NEGATIVE if rating <= 2 else POSITIVE[:2] + NEGATIVE[:2]
        texts.append(" ".join(rng.choice(words, size=2)) + " item")
    return pd.DataFrame({
        "review_id": [f"R{i:05d}" for i in range(n)],
        "rating": ratings,
        "review_text": texts,
        "reviewed_at": pd.Timestamp(start) + pd.to_timedelta(np.arange(n), unit="h"),
    })


def test_sentiment_follows_rating_on_later_reviews():
    reviews = make_reviews(1200)
    fit_cutoff = reviews["reviewed_at"].iloc[800]
    out = score_reviews(reviews, fit_cutoff, pd.Timestamp("2100-01-01"))
    merged = out.merge(reviews, on="review_id")
    holdout = merged[~merged["is_fit_sample"]]
    assert len(holdout) == 400 and merged["is_fit_sample"].sum() == 800
    assert holdout["sentiment_score"].between(-1, 1).all()
    assert np.corrcoef(holdout["expected_rating"], holdout["rating"])[0, 1] > 0.6
    assert holdout.loc[holdout["rating"] >= 4, "sentiment_score"].mean() > 0.3
    assert holdout.loc[holdout["rating"] <= 2, "sentiment_score"].mean() < -0.3


def test_reviews_after_the_fit_cutoff_do_not_change_the_model():
    reviews = make_reviews(1200)
    fit_cutoff = reviews["reviewed_at"].iloc[800]
    full = score_reviews(reviews, fit_cutoff, pd.Timestamp("2100-01-01"))
    # rewrite every later review's rating: a model fitted on them would change
    tampered = reviews.copy()
    tampered.loc[800:, "rating"] = 6 - tampered.loc[800:, "rating"]
    again = score_reviews(tampered, fit_cutoff, pd.Timestamp("2100-01-01"))
    pd.testing.assert_frame_equal(full, again)


def test_reviews_after_the_score_cutoff_are_left_out():
    reviews = make_reviews(600)
    score_cutoff = reviews["reviewed_at"].iloc[500]
    out = score_reviews(reviews, reviews["reviewed_at"].iloc[400], score_cutoff)
    assert set(out["review_id"]) == set(reviews["review_id"].iloc[:500])


@pytest.mark.parametrize("n", [0, 50])
def test_too_few_reviews_give_null_sentiment_not_an_error(n):
    reviews = make_reviews(n)
    out = score_reviews(reviews, pd.Timestamp("2100-01-01"), pd.Timestamp("2100-01-01"))
    assert len(out) == n
    assert out["sentiment_score"].isna().all()
    assert list(out.columns) == ["review_id", "sentiment_score", "expected_rating", "is_fit_sample"]


def test_wiring_to_snapshots_fits_before_the_month_of_the_earliest_cutoff():
    reviews = make_reviews(1200)  # hourly from 2024-01-01
    snapshots = pd.DataFrame({
        "cutoff_at": [reviews["reviewed_at"].iloc[1000], reviews["reviewed_at"].iloc[1100]],  # Feb 11, Feb 15
        "is_scoring_snapshot": [False, True],
    })
    out = score_reviews_for_snapshots(reviews, snapshots)
    assert len(out) == 1100
    assert out["is_fit_sample"].sum() == 31 * 24  # the January reviews


def test_cached_scores_equal_fresh_ones_and_only_new_or_edited_texts_are_scored(tmp_path, monkeypatch):
    from churnwarehouse import sentiment

    scored_texts = []
    real_expected_rating = sentiment.expected_rating

    def counting(pipeline, texts):
        scored_texts.append(len(texts))
        return real_expected_rating(pipeline, texts)

    monkeypatch.setattr(sentiment, "expected_rating", counting)
    reviews = make_reviews(1000)
    fit_cutoff, open_end = reviews["reviewed_at"].iloc[600], pd.Timestamp("2100-01-01")
    day0 = reviews.iloc[:900]
    first = score_reviews(day0, fit_cutoff, open_end, cache_folder=tmp_path)
    pd.testing.assert_frame_equal(first, score_reviews(day0, fit_cutoff, open_end))
    assert scored_texts == [900, 900]

    # the next day: 100 new reviews, one later review edited
    day1 = reviews.copy()
    day1.loc[700, "review_text"] = "terrible quality very disappointed"
    scored_texts.clear()
    cached = score_reviews(day1, fit_cutoff, open_end, cache_folder=tmp_path)
    fresh = score_reviews(day1, fit_cutoff, open_end)
    pd.testing.assert_frame_equal(cached, fresh)
    assert scored_texts == [101, 1000]  # the cached run scored only the new and the edited ones
    assert len(list(tmp_path.iterdir())) == 1  # one fitted pipeline


def test_a_changed_fit_review_or_a_damaged_artifact_refits(tmp_path):
    reviews = make_reviews(900)
    fit_cutoff, open_end = reviews["reviewed_at"].iloc[600], pd.Timestamp("2100-01-01")
    score_reviews(reviews, fit_cutoff, open_end, cache_folder=tmp_path)
    edited = reviews.copy()
    edited.loc[10, "rating"] = 6 - edited.loc[10, "rating"]
    pd.testing.assert_frame_equal(score_reviews(edited, fit_cutoff, open_end, cache_folder=tmp_path),
                                  score_reviews(edited, fit_cutoff, open_end))
    assert len(list(tmp_path.iterdir())) == 2  # another fit set, another pipeline
    for artifact in tmp_path.glob("*/pipeline.joblib"):
        artifact.write_bytes(b"not a pipeline")
    pd.testing.assert_frame_equal(score_reviews(reviews, fit_cutoff, open_end, cache_folder=tmp_path),
                                  score_reviews(reviews, fit_cutoff, open_end))


def test_deterministic():
    reviews = make_reviews(900)
    cutoff = reviews["reviewed_at"].iloc[600]
    a = score_reviews(reviews, cutoff, pd.Timestamp("2100-01-01"))
    b = score_reviews(reviews.sample(frac=1, random_state=3), cutoff, pd.Timestamp("2100-01-01"))
    pd.testing.assert_frame_equal(a, b)


def test_repeated_texts_are_scored_once_with_the_same_numbers():
    from churnwarehouse import sentiment

    reviews = make_reviews(400)
    pipeline = sentiment.make_sentiment_pipeline()
    pipeline.fit(reviews["review_text"], reviews["rating"])
    texts = pd.concat([reviews["review_text"].iloc[:50], pd.Series([None, "", "love it item"])], ignore_index=True)
    texts = texts.sample(frac=3, replace=True, random_state=1).reset_index(drop=True)
    assert texts.nunique(dropna=False) < len(texts)
    classes = pipeline.named_steps["classifier"].classes_.astype(float)
    one_by_one = np.array([pipeline.predict_proba([t if isinstance(t, str) else ""])[0] @ classes for t in texts])
    np.testing.assert_array_equal(sentiment.expected_rating(pipeline, texts), one_by_one)


def _random_texts(rng: np.random.Generator, n: int, alphabet: str) -> list[str]:
    words = ["Great", "great", "GREAT", "item", "it's", "a", "b2b", "x_y", "__", "9", "42", "re-ordered",
             "well,made", "Ünïcode", "naïve", "İstanbul", "ß", "日本", "\x01", "\t", "...", "A.B", ""]
    texts = []
    for _ in range(n):
        picked = rng.choice(words, size=rng.integers(0, 12))
        noise = "".join(rng.choice(list(alphabet), size=rng.integers(0, 4)))
        texts.append(" ".join(picked) + noise)
    return texts


@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("ngram_range, binary", [((1, 2), False), ((1, 1), False), ((2, 2), True)])
def test_fast_word_counts_equal_scikit_learn(ascii_only, ngram_range, binary):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    from churnwarehouse.sentiment import word_counts

    rng = np.random.default_rng(7)
    alphabet = "aZ9_ .,!-'\n" if ascii_only else "aZ9_ .,!-'\néÉ日"
    texts = _random_texts(rng, 600, alphabet)
    if ascii_only:  # keep only ASCII texts without the separator byte, so the one-pass path runs
        texts = [t for t in texts if t.isascii() and "\x01" not in t]
    vectorizer = TfidfVectorizer(ngram_range=ngram_range, min_df=2, binary=binary, dtype=np.float32).fit(texts)
    later = _random_texts(np.random.default_rng(8), 400, alphabet) + ["", "Great GREAT great", "x_y x_y"]
    if ascii_only:
        later = [t for t in later if t.isascii() and "\x01" not in t]
    ours = word_counts(vectorizer, later)
    theirs = CountVectorizer.transform(vectorizer, later)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype and ours.nnz > 100
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_array_equal(ours.data, theirs.data)


def test_sentiment_probabilities_equal_the_pipeline_bit_for_bit():
    from churnwarehouse.sentiment import make_sentiment_pipeline, predict_proba_texts

    reviews = make_reviews(1500)
    pipeline = make_sentiment_pipeline().fit(reviews["review_text"].iloc[:1000], reviews["rating"].iloc[:1000])
    texts = list(reviews["review_text"].iloc[1000:]) + ["Love it. LOVE it!", "broken_on arrival", ""]
    np.testing.assert_array_equal(predict_proba_texts(pipeline, texts),
                                  pipeline.predict_proba(pd.Series(texts, dtype=object)))
