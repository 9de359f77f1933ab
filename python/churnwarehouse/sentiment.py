"""Review-text sentiment learned from the reviews' own star ratings.

Nothing is downloaded: a TF-IDF + multinomial logistic regression model is fitted on
(review_text, rating) pairs of the shop's own reviews, and a review's sentiment is its
expected rating under the model, rescaled to [-1, 1] ((E[rating] - 3) / 2).

Point in time: the model is fitted only on reviews written before the first day of the month
of the *earliest* snapshot's cutoff, so no snapshot's features use a model that has seen text
from its own future. Reviews after the scoring cutoff are not scored at all. Reviews written
between the fit cutoff and the scoring cutoff are the out-of-time hold-out on which agreement
with ratings is reported (``ml_review_sentiment_evaluation``).

Daily runs: the fit cutoff moves once a month, so the fitted pipeline and each review's
expected rating are kept in a cache folder (``<model registry>/review_sentiment/``) keyed by
a fingerprint of the fit reviews, the settings and the library versions; a review is scored
again only when its text changed. Cached or not, the numbers are the same (a review's score
depends only on its own text and the fitted pipeline).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

#: Fewer fit reviews than this (or fewer than two distinct ratings): no model, sentiment is null.
MIN_FIT_REVIEWS = 200

OUTPUT_COLUMNS = ["review_id", "sentiment_score", "expected_rating", "is_fit_sample"]
#: Cache folders (one per fitted pipeline) kept; older ones are removed.
CACHE_KEEP = 3


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


#: scikit-learn's default token pattern: the fast ASCII tokenizer below reproduces exactly it.
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
#: ASCII bytes -> lower-case word characters kept, every other byte a space, \x01 kept (it
#: separates documents, see _tokens).
_ASCII_WORDS = bytes(
    byte + 32 if 65 <= byte <= 90
    else byte if (97 <= byte <= 122 or 48 <= byte <= 57 or byte in (95, 1))
    else 32
    for byte in range(256)
)


def _tokens(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    r"""Every document's tokens in order, as codes into a universe of distinct tokens, with the
    document each token belongs to: the tokens ``vectorizer.build_analyzer()`` starts from.

    With the default settings (lower case, the default token pattern, no accent stripping)
    and ASCII texts, a token is a maximal run of two or more of ``[a-z0-9_]`` after lower-casing,
    which is what ``\b\w\w+\b`` matches on ASCII. All texts are then tokenized in one pass
    of bytes: joined with a separator byte, translated (upper to lower case, non-word bytes to
    spaces) and split; about twice as fast as the regular expression per text. Otherwise the
    vectorizer's own preprocessor and tokenizer run per text.
    """
    fast = (vectorizer.lowercase and vectorizer.preprocessor is None and vectorizer.strip_accents is None
            and vectorizer.token_pattern == DEFAULT_TOKEN_PATTERN and vectorizer.input == "content")
    if fast:
        joined = " \x01 ".join(texts)
        fast = joined.isascii() and joined.count("\x01") == max(len(texts) - 1, 0)
    if fast:
        pieces = np.array(joined.encode("ascii").translate(_ASCII_WORDS).split(), dtype=object)
        codes, distinct = pd.factorize(pieces)
        distinct = np.asarray(distinct, dtype=object)
        is_separator = (distinct == b"\x01")[codes]
        keep = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))[codes] >= 2
        doc_of = np.cumsum(is_separator)[keep]
        codes = codes[keep]
        universe = pd.Index([token.decode("ascii") for token in distinct], dtype=object)
        return codes.astype(np.int64), universe, doc_of.astype(np.int64)
    preprocess, tokenize, decode = vectorizer.build_preprocessor(), vectorizer.build_tokenizer(), vectorizer.decode
    tokens = [tokenize(preprocess(decode(text))) for text in texts]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    flat = np.fromiter(chain.from_iterable(tokens), dtype=object, count=int(lengths.sum()))
    codes, distinct = pd.factorize(flat)
    return codes.astype(np.int64), pd.Index(distinct, dtype=object), np.repeat(np.arange(len(tokens)), lengths)


def word_counts(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_array | None:
    """The fitted vectorizer's term-count matrix of ``texts``, equal to scikit-learn's own.

    scikit-learn counts each document's n-grams in a Python loop (``_count_vocab``): about 17
    microseconds a review, 3.9 s for the 235k distinct texts of the 1M-customer benchmark. Here
    the texts are tokenized as the vectorizer does (``_tokens``), and the n-grams are matched
    to the vocabulary as integer pairs and counted with numpy. The matrix has the same values, indices,
    order and dtype as ``CountVectorizer.transform`` (a pytest compares them), so the TF-IDF
    weights and probabilities computed from it are the same bit for bit.

    Returns None for settings this does not cover (character analyzers, a custom tokenizer,
    analyzer or token pattern, stop words, n-grams longer than two words): the caller then uses
    scikit-learn.
    """
    min_n, max_n = vectorizer.ngram_range
    if (vectorizer.analyzer != "word" or vectorizer.tokenizer is not None or vectorizer.stop_words is not None
            or vectorizer.token_pattern != DEFAULT_TOKEN_PATTERN or not 1 <= min_n <= max_n <= 2):
        return None  # (another pattern could match spaces, and a bigram is two tokens joined by one)
    codes, universe, doc_of = _tokens(vectorizer, texts)
    n_tokens = len(codes)

    # vocabulary terms as tuples of token codes (a token never holds a space: it is \w+)
    terms = np.array(list(vectorizer.vocabulary_), dtype=object)
    term_index = np.fromiter(vectorizer.vocabulary_.values(), dtype=np.int64, count=len(terms))
    words = pd.Series(terms).str.split(" ", n=1, expand=False)
    is_bigram = words.str.len().to_numpy() == 2
    rows, cols = [], []
    if min_n == 1:
        unigram_column = np.full(len(universe), -1, dtype=np.int64)
        at = universe.get_indexer(terms[~is_bigram])
        unigram_column[at[at >= 0]] = term_index[~is_bigram][at >= 0]
        matched = unigram_column[codes]
        keep = matched >= 0
        rows.append(doc_of[keep])
        cols.append(matched[keep])
    if max_n == 2 and n_tokens > 1 and is_bigram.any():
        pairs = words[is_bigram]
        first = universe.get_indexer(pairs.str[0].to_numpy(dtype=object))
        second = universe.get_indexer(pairs.str[1].to_numpy(dtype=object))
        known = (first >= 0) & (second >= 0)
        size = np.int64(len(universe))
        bigram_keys = pd.Index(first[known] * size + second[known])
        bigram_column = term_index[is_bigram][known]
        same_doc = doc_of[:-1] == doc_of[1:]
        at = bigram_keys.get_indexer(codes[:-1][same_doc] * size + codes[1:][same_doc])
        rows.append(doc_of[:-1][same_doc][at >= 0])
        cols.append(bigram_column[at[at >= 0]])
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    counts = sp.csr_array((np.ones(len(row), dtype=vectorizer.dtype), (row, col)),
                          shape=(len(texts), len(vectorizer.vocabulary_)), dtype=vectorizer.dtype)
    counts.sum_duplicates()
    counts.sort_indices()  # as _count_vocab does
    counts.indices, counts.indptr = counts.indices.astype(np.int32), counts.indptr.astype(np.int32)
    if vectorizer.binary:
        counts.data.fill(1)
    return counts


def predict_proba_texts(pipeline: Pipeline, texts: Sequence[str]) -> np.ndarray:
    """``pipeline.predict_proba(texts)`` for the sentiment pipeline, with the fast term counts."""
    vectorizer, classifier = pipeline.named_steps["tfidf"], pipeline.named_steps["classifier"]
    counts = word_counts(vectorizer, texts)
    if counts is None:
        return pipeline.predict_proba(pd.Series(texts, dtype=object))
    return classifier.predict_proba(vectorizer._tfidf.transform(counts, copy=False))


def expected_rating(pipeline: Pipeline, texts: pd.Series) -> np.ndarray:
    """Expected star rating under the fitted pipeline's class probabilities.

    Each distinct text is scored once (short reviews such as "Great product" repeat): a row's
    TF-IDF vector and probabilities depend only on its own text, so the numbers are the same.
    """
    codes, distinct = pd.factorize(texts.fillna("").astype(str))
    # (a list of Python strings: iterating an Arrow-backed index yields them one call at a time)
    probabilities = predict_proba_texts(pipeline, distinct.to_numpy(dtype=object).tolist())
    classes = pipeline.named_steps["classifier"].classes_.astype(float)
    return (probabilities @ classes)[codes]


def _text_hash(texts: pd.Series) -> np.ndarray:
    return pd.util.hash_pandas_object(texts.astype(str), index=False).to_numpy()


def fit_fingerprint(fit_rows: pd.DataFrame, random_state: int) -> str:
    """Identifies a fitted pipeline: the fit reviews (id, rating, text), the settings, the libraries."""
    from churnwarehouse.modeling import library_versions  # not at import: keeps this module light

    digest = hashlib.sha256()
    ordered = fit_rows.sort_values("review_id", kind="stable")
    digest.update(pd.util.hash_pandas_object(
        ordered[["review_id", "rating", "review_text"]].astype(str), index=False).to_numpy().tobytes())
    digest.update(json.dumps({"pipeline": repr(make_sentiment_pipeline(random_state).get_params(deep=True)),
                              "libraries": library_versions()}, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


class SentimentCache:
    """A fitted sentiment pipeline and the expected ratings it gave, in ``<folder>/<fingerprint>/``.

    ``pipeline.joblib`` (checked against its recorded sha256 before loading) and
    ``scores.parquet`` (review_id, text hash, expected rating). Only the newest ``CACHE_KEEP``
    fingerprints are kept.
    """

    def __init__(self, folder: Path, fingerprint: str):
        self.root, self.folder = Path(folder), Path(folder) / fingerprint
        self.artifact, self.digest, self.scores_path = (
            self.folder / "pipeline.joblib", self.folder / "pipeline.sha256", self.folder / "scores.parquet")

    def load_pipeline(self) -> Pipeline | None:
        if not (self.artifact.exists() and self.digest.exists()):
            return None
        if hashlib.sha256(self.artifact.read_bytes()).hexdigest() != self.digest.read_text().strip():
            return None  # damaged or tampered: refit
        return joblib.load(self.artifact)

    def save_pipeline(self, pipeline: Pipeline) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(pipeline, self.artifact)
        self.digest.write_text(hashlib.sha256(self.artifact.read_bytes()).hexdigest())
        folders = sorted((p for p in self.root.iterdir() if p.is_dir() and p != self.folder),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in folders[CACHE_KEEP - 1:]:
            shutil.rmtree(old, ignore_errors=True)

    def load_scores(self) -> pd.DataFrame:
        if self.scores_path.exists():
            return pd.read_parquet(self.scores_path)
        return pd.DataFrame({"review_id": pd.Series(dtype="string"), "text_hash": pd.Series(dtype="uint64"),
                             "expected_rating": pd.Series(dtype="float64")})

    def save_scores(self, scores: pd.DataFrame) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        scores.to_parquet(self.scores_path, index=False)


def score_reviews(
    reviews: pd.DataFrame,
    fit_cutoff: pd.Timestamp,
    score_cutoff: pd.Timestamp,
    min_fit_reviews: int = MIN_FIT_REVIEWS,
    random_state: int = 0,
    cache_folder: str | Path | None = None,
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
    cache_folder : path, optional
        Where fitted pipelines and scores are cached (see ``SentimentCache``); None: no cache.

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
        cache = SentimentCache(Path(cache_folder), fit_fingerprint(fit_rows, random_state)) if cache_folder else None
        pipeline = cache.load_pipeline() if cache else None
        if pipeline is None:
            pipeline = make_sentiment_pipeline(random_state)
            pipeline.fit(fit_rows["review_text"].astype(str), fit_rows["rating"].astype(int))
            if cache:
                cache.save_pipeline(pipeline)
        texts = scored.loc[has_text, ["review_id", "review_text"]]
        if cache is None:
            expected[has_text.to_numpy()] = expected_rating(pipeline, texts["review_text"])
        else:
            keyed = pd.DataFrame({"review_id": texts["review_id"].astype("string").to_numpy(),
                                  "text_hash": _text_hash(texts["review_text"])})
            known = keyed.merge(cache.load_scores(), on=["review_id", "text_hash"], how="left")
            missing = known["expected_rating"].isna().to_numpy()
            if missing.any():
                known.loc[missing, "expected_rating"] = expected_rating(pipeline, texts["review_text"].iloc[missing])
                cache.save_scores(known)
            expected[has_text.to_numpy()] = known["expected_rating"].to_numpy()

    return pd.DataFrame(
        {
            "review_id": scored["review_id"].astype("string"),
            "sentiment_score": (expected - 3.0) / 2.0,
            "expected_rating": expected,
            "is_fit_sample": is_fit.astype(bool),
        },
        columns=OUTPUT_COLUMNS,
    )


def fit_cutoff_for(earliest_cutoff: pd.Timestamp) -> pd.Timestamp:
    """The first day of the month of the earliest snapshot's cutoff: on or before every
    snapshot's cutoff, and the same for a month of daily runs (so the fit can be reused)."""
    return pd.Timestamp(earliest_cutoff).normalize().replace(day=1)


def score_reviews_for_snapshots(reviews: pd.DataFrame, snapshots: pd.DataFrame,
                                cache_folder: str | Path | None = None) -> pd.DataFrame:
    """Wire ``score_reviews`` to the snapshot calendar (``int_snapshot_dates``).

    The fit cutoff is the first day of the month of the earliest snapshot's cutoff
    (``fit_cutoff_for``); the score cutoff is the scoring snapshot's cutoff.
    """
    if snapshots.empty:
        return score_reviews(reviews.iloc[0:0], pd.Timestamp.min, pd.Timestamp.min)
    cutoffs = pd.to_datetime(snapshots["cutoff_at"])
    fit_cutoff = fit_cutoff_for(cutoffs.min())
    score_cutoff = cutoffs[snapshots["is_scoring_snapshot"].astype(bool)].max()
    return score_reviews(reviews, fit_cutoff, score_cutoff, cache_folder=cache_folder)
