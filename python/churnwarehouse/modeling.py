"""Train, validate, calibrate and refit the churn model (used by the dbt Python models).

Policy (also in DECISIONS.md)
-----------------------------
1. **Out-of-time split with an embargo.** The latest ``validation_snapshot_count`` labelled
   snapshots validate. The training snapshots are the earlier ones whose label window ends on or
   before the first validation as-of date, so no training label overlaps a validation outcome.
2. **Model comparison.** Logistic regression, random forest and histogram gradient boosting,
   each with a small fixed grid, are fitted on the training snapshots and ranked by validation
   ROC-AUC (ranking is what tiers and offers use; probabilities are calibrated separately).
   Parsimony: a simpler family within ``parsimony_margin`` of the best AUC wins.
3. **Calibration, checked out of time.** Churn base rates are seasonal. When a labelled snapshot
   exists about one year before the date being scored, at least two horizons after the earliest
   labelled one, the model's logit is shifted by its mean residual on that snapshot (a
   prior-shift correction for the season); otherwise the scored rows are shifted to the latest
   labelled snapshot's churn rate. The validation metrics apply exactly this rule to the
   validation snapshots with the training-only model, so the reported calibration is out of time.
4. **Stacking with the BG/NBD baseline.** The chosen model's validation probabilities and the
   BG/NBD probability of no purchase in the horizon (fitted on each snapshot's own histories,
   never a feature of the candidates) are combined as a weighted mean of their logits, the
   weight fitted by maximum likelihood on the validation snapshot; kept only when the baseline
   adds information there (likelihood-ratio test at 5%). Calibration then shifts the stacked logit.
5. **Refit.** The chosen settings are refitted on every labelled snapshot (the stack weights stay
   those learned out of time), and the seasonal shift for the scoring date is estimated with
   that final model.
6. **Memory.** At most ``max_training_rows`` labelled rows are used for fitting (whole customers
   are sampled deterministically by the caller, see ``sampling_modulus``); scoring runs in batches.
7. **Threads.** Fitting uses ``training_threads()`` OpenMP threads (every core: the registry
   trains while no other model runs) and predictions ``prediction_threads()``; the package makes
   OpenMP wait passively (see ``churnwarehouse``), since spinning threads under oversubscription
   made fits 5-10x slower.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq, minimize
from scipy.special import expit, logit
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from churnwarehouse import metrics

#: Columns of ml_customer_features that are keys, flags or outcomes, never features.
NON_FEATURE_COLUMNS = frozenset({
    "customer_id", "as_of_date", "is_scoring_snapshot", "has_label", "churned", "days_to_next_order",
    "probability_no_purchase_next_horizon",  # the BG/NBD baseline: stacked, not a feature (BaselineStack)
})
#: The BG/NBD purchase model's probability of no purchase in the horizon, fitted on each snapshot's
#: own histories (int_customer_purchase_model): stacked with the chosen model (``BaselineStack``).
BASELINE_COLUMN = "probability_no_purchase_next_horizon"
CATEGORICAL_FEATURES = ("country", "preferred_channel", "favourite_category")
#: Simplest first: the parsimony rule prefers earlier families.
FAMILIES = ("logistic_regression", "gradient_boosting", "random_forest")
PARAMETER_GRID: dict[str, list[dict[str, Any]]] = {
    "logistic_regression": [{"C": 0.05}, {"C": 0.5}],
    "gradient_boosting": [
        {"learning_rate": 0.03, "max_leaf_nodes": 7, "min_samples_leaf": 100, "max_iter": 400},
        {"learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 50, "max_iter": 300},
    ],
    "random_forest": [
        {"n_estimators": 100, "min_samples_leaf": 20, "max_features": "sqrt"},
        {"n_estimators": 100, "min_samples_leaf": 50, "max_features": 0.5},
    ],
}
SEASON_TOLERANCE_DAYS = 16
#: Last year's same-season snapshot calibrates only when it lies this many horizons after the
#: earliest labelled snapshot (see ``seasonal_offset``).
SEASON_MIN_HISTORY_HORIZONS = 2


class InsufficientHistoryError(ValueError):
    """Too little labelled history to train and validate out of time."""


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run (all recorded in the model's metadata)."""

    horizon_days: int = 90
    validation_snapshot_count: int = 1
    max_training_rows: int = 100_000
    parsimony_margin: float = 0.002
    seasonal_calibration: bool = True
    permutation_rows: int = 10_000
    permutation_repeats: int = 3
    random_state: int = 0
    families: tuple[str, ...] = FAMILIES


#: The likelihood-ratio statistic (1 degree of freedom) the baseline must exceed to be stacked:
#: the 5% critical value of a chi-squared distribution.
STACK_MIN_LIKELIHOOD_RATIO = 3.84
#: Fewer validation rows with a baseline than this: no stack.
STACK_MIN_ROWS = 200


def clipped_logit(probability) -> np.ndarray:
    """The logit of probabilities clipped to [1e-6, 1 - 1e-6] (so 0 and 1 stay finite)."""
    return logit(np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6))


def baseline_values(frame: pd.DataFrame, column: str = BASELINE_COLUMN) -> np.ndarray:
    """The baseline column as floats rounded like the features (NaN where missing or absent)."""
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float).round(FEATURE_DECIMALS)


@dataclass
class BaselineStack:
    """The chosen model's logit and the BG/NBD baseline's, combined by weights learned out of time.

    ``probability = expit(ml_weight * logit(model) + baseline_weight * logit(baseline) + intercept)``,
    the weights (summing to one) fitted to the validation snapshot's outcomes (stacking, with the
    out-of-time validation snapshot as the hold-out; see ``fit_baseline_stack``). The trees learn
    how yesterday's customers behaved; the BG/NBD model is fitted on each snapshot's own
    histories, so it carries the current population's purchase rate into the score. A customer
    without a baseline value gets ``fill_logit`` (the validation rows' median).
    """

    column: str
    ml_weight: float
    baseline_weight: float
    intercept: float
    fill_logit: float
    likelihood_ratio: float

    def baseline_logit(self, frame: pd.DataFrame) -> np.ndarray:
        values = baseline_values(frame, self.column)
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(values), clipped_logit(values), self.fill_logit)

    def probability(self, pipeline_probability: np.ndarray, baseline_logit: np.ndarray | float) -> np.ndarray:
        return expit(self.ml_weight * clipped_logit(pipeline_probability) + self.baseline_weight * baseline_logit
                     + self.intercept)


def fit_baseline_stack(pipeline_probability: np.ndarray, rows: pd.DataFrame, labels: np.ndarray,
                       column: str = BASELINE_COLUMN) -> BaselineStack | None:
    """The stack of the model's out-of-time probabilities with the baseline, or None.

    A weighted mean of the two logits, ``(1 - w) * logit(model) + w * logit(baseline) + c``, with
    ``w`` in [0, 1] and ``c`` fitted by maximum likelihood on the validation rows that have a
    baseline value. The weights sum to one, so the score keeps the model's own logit scale
    (which the seasonal shift then calibrates, as without a stack): the validation month
    decides how much the baseline counts, not how confident the refitted model may be.
    Kept only when the baseline adds information there: the likelihood-ratio statistic against
    ``w = 0`` exceeds ``STACK_MIN_LIKELIHOOD_RATIO`` (5%, one degree of freedom). Otherwise the
    model scores alone, as without a baseline (a shop without enough order history for BG/NBD,
    or one where the trees already know all it knows).
    """
    values = baseline_values(rows, column)
    present = np.isfinite(values)
    labels = np.asarray(labels, dtype=float)[present]
    if present.sum() < STACK_MIN_ROWS or len(np.unique(labels)) < 2:
        return None
    model_logit = clipped_logit(np.asarray(pipeline_probability, dtype=float)[present])
    baseline_logit = clipped_logit(values[present])
    gap = baseline_logit - model_logit

    def negative_log_likelihood(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        weight, intercept = parameters
        z = model_logit + weight * gap + intercept
        residual = expit(z) - labels
        return float(np.sum(np.logaddexp(0.0, z) - labels * z)), np.array([residual @ gap, residual.sum()])

    def fitted(weight_bounds: tuple[float, float]) -> tuple[np.ndarray, float]:
        result = minimize(negative_log_likelihood, np.array([0.0, 0.0]), jac=True, method="L-BFGS-B",
                          bounds=[weight_bounds, (None, None)])
        return result.x, float(result.fun)

    _, alone = fitted((0.0, 0.0))
    (weight, intercept), stacked = fitted((0.0, 1.0))
    ratio = 2.0 * (alone - stacked)
    if ratio <= STACK_MIN_LIKELIHOOD_RATIO or weight <= 0:
        return None
    return BaselineStack(column=column, ml_weight=float(1.0 - weight), baseline_weight=float(weight),
                         intercept=float(intercept), fill_logit=float(np.median(baseline_logit)),
                         likelihood_ratio=float(ratio))


@dataclass
class ChurnModel:
    """The fitted artifact: what scoring needs, and nothing fitted after the training cut-off."""

    pipeline: Pipeline
    numeric_features: list[str]
    categorical_features: list[str]
    family: str
    parameters: dict[str, Any]
    logit_offset: float
    offset_reference_date: str | None
    threshold: float
    reference_values: dict[str, Any]
    drift_baseline: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The BG/NBD baseline stacked with the pipeline, or None (also for artifacts saved before it).
    stack: BaselineStack | None = None

    @property
    def feature_columns(self) -> list[str]:
        return self.numeric_features + self.categorical_features

    @property
    def input_columns(self) -> list[str]:
        """The feature columns and, when stacked, the baseline column: what a score depends on."""
        return self.feature_columns + ([self.stack.column] if self.stack is not None else [])

    def raw_probability(self, frame: pd.DataFrame) -> np.ndarray:
        features = prepare_features(frame, self.numeric_features, self.categorical_features)
        with threadpool_limits(limits=prediction_threads(), user_api="openmp"):
            trees = BinnedTrees.of(self.pipeline)
            probability = trees.probability(features) if trees is not None else self.pipeline.predict_proba(features)[:, 1]
        return probability if self.stack is None else self.stack.probability(probability, self.stack.baseline_logit(frame))

    def calibrated(self, pipeline_probability: np.ndarray, baseline_logit: np.ndarray | float | None) -> np.ndarray:
        """The calibrated probability from the pipeline's own probability and, when stacked, the
        baseline's logit (``BaselineStack.baseline_logit``): what ``predict_probability`` gives."""
        if self.stack is not None:
            pipeline_probability = self.stack.probability(pipeline_probability, baseline_logit)
        return shift_probability(pipeline_probability, self.logit_offset)

    def predict_probability(self, frame: pd.DataFrame, batch_size: int = 200_000) -> np.ndarray:
        """Calibrated churn probability, computed in batches."""
        parts = [
            shift_probability(self.raw_probability(frame.iloc[start:start + batch_size]), self.logit_offset)
            for start in range(0, len(frame), batch_size)
        ]
        return np.concatenate(parts) if parts else np.array([], dtype=float)


class TreeTable:
    """One fitted tree as a lookup table over its splits.

    Each split of the tree is a bit of a row's *code*: set when the row's bin goes left there
    (scikit-learn's own rule: the missing bin follows ``missing_go_to_left``, a categorical split
    reads its bitset, a numeric one compares with ``bin_threshold``), computed for every split
    whether or not the row's path reaches it. ``values[code]`` is the leaf the path of those
    sides ends in, so a row's score is ``values[code]``: the same number scikit-learn's
    predictor returns. Setting some columns to other bins changes only those columns' bits,
    which is what makes perturbations cheap (``perturbation_delta``).
    """

    #: Trees with more splits than this are not tabulated (2**splits entries).
    MAX_SPLITS = 14

    def __init__(self, predictor, missing_bin: int):
        nodes = predictor.nodes
        is_leaf = nodes["is_leaf"].astype(bool)
        splits = np.flatnonzero(~is_leaf)
        if len(splits) > self.MAX_SPLITS:
            raise ValueError(f"a tree with {len(splits)} splits is too large to tabulate")
        self.dtype = np.uint8 if len(splits) <= 8 else np.uint16
        self.features = nodes["feature_idx"][splits].astype(np.intp)
        bins = np.arange(256)
        self.bits = np.zeros((len(splits), 256), dtype=self.dtype)  # bit k of the code, by bin
        for k, node in enumerate(splits):
            record = nodes[node]
            if record["is_categorical"]:
                bitset = predictor.binned_left_cat_bitsets[record["bitset_idx"]].astype(np.int64)
                left = ((bitset[bins // 32] >> (bins % 32)) & 1).astype(bool)
            else:
                left = bins <= int(record["bin_threshold"])
            left[missing_bin] = bool(record["missing_go_to_left"])
            self.bits[k] = left.astype(self.dtype) << k
        # bit k of a code is axis s-1-k of the table seen as an s-dimensional array (C order):
        # each leaf owns the block of codes whose bits on its path point to it, so the table is
        # filled with one assignment per leaf
        self.table = np.empty((2,) * len(splits), dtype=np.float64)
        axis = np.full(len(nodes), -1)
        axis[splits] = len(splits) - 1 - np.arange(len(splits))
        stack = [(0, (slice(None),) * len(splits))]
        while stack:
            node, block = stack.pop()
            if is_leaf[node]:
                self.table[block] = nodes["value"][node]
                continue
            a = axis[node]
            stack.append((int(nodes["left"][node]), block[:a] + (1,) + block[a + 1:]))
            stack.append((int(nodes["right"][node]), block[:a] + (0,) + block[a + 1:]))
        self.values = self.table.reshape(-1)

    def code(self, binned: np.ndarray) -> np.ndarray:
        """Each row's code (``binned`` in column-major order is fastest)."""
        code = np.zeros(len(binned), dtype=self.dtype)
        for bits, feature in zip(self.bits, self.features):
            code |= bits.take(binned[:, feature])  # take: about 2.5x faster than fancy indexing
        return code

    def perturbation_delta(self, is_column: np.ndarray, reference_bins: np.ndarray) -> np.ndarray | None:
        """By code: the change in the row's score when the binned columns flagged in
        ``is_column`` take ``reference_bins`` (their bits become the reference's, the others
        stay), or None when it is always 0."""
        touched = np.flatnonzero(is_column[self.features])
        if not len(touched):
            return None
        # the touched bits' axes fixed at the reference's side, broadcast over the other axes
        block = [slice(None)] * self.table.ndim
        for k in touched:
            side = int(self.bits[k][reference_bins[self.features[k]]] != 0)
            block[self.table.ndim - 1 - k] = slice(side, side + 1)
        delta = (self.table[tuple(block)] - self.table).reshape(-1)
        return delta if delta.any() else None


class BinnedTrees:
    """The trees of a fitted HistGradientBoosting pipeline, applied to the binned rows they were
    grown on: a row's bin lies on the same side of every split as its value, so the numbers are
    scikit-learn's own. Each tree is a lookup table over its splits (``TreeTable``): a row's
    code per tree is a few byte lookups, and its score is summed in tree order as scikit-learn
    sums it, so the probabilities are the same. Reasons reuse the codes of each batch.

    ``BinnedTrees.of(pipeline)`` is None for other estimators, for trees too large to tabulate,
    or for a scikit-learn whose tree internals differ (callers then use ``predict_proba``).
    """

    def __init__(self, pipeline: Pipeline, positions: list[int]):
        self.preprocess, self.estimator = pipeline[:-1], pipeline[-1]
        self.predictors = [trees[0] for trees in self.estimator._predictors]
        self.baseline = float(np.ravel(self.estimator._baseline_prediction)[0])
        self.missing_bin = int(self.estimator._bin_mapper.missing_values_bin_idx_)
        # the fitted mapper keeps the thread count of the fit (pinned to one); a copy with none
        # set maps with the threads OpenMP allows here (a row's bins do not depend on them)
        self.mapper = copy.copy(self.estimator._bin_mapper)
        self.mapper.n_threads = None
        self.tables = [TreeTable(predictor, self.missing_bin) for predictor in self.predictors]
        self.names = list(self.preprocess.get_feature_names_out())
        self.positions = positions  # input column -> column of the binned matrix
        self.direct: tuple[list[str], Any, list[str], Any] | None = None  # see _direct_steps

    @classmethod
    def of(cls, pipeline: Pipeline) -> BinnedTrees | None:
        estimator = pipeline[-1]
        predictors = getattr(estimator, "_predictors", None)
        if not isinstance(estimator, HistGradientBoostingClassifier) or not predictors or len(predictors[0]) != 1:
            return None
        try:
            trees = cls(pipeline, [])
            trees.positions = _binned_positions(estimator, len(trees.names))
            trees.direct = _direct_steps(trees.preprocess, estimator, trees.names)
            return trees if trees.positions is not None else None
        except (AttributeError, TypeError, ValueError, IndexError):
            return None

    def bin(self, features: pd.DataFrame) -> np.ndarray:
        """Prepared features as the uint8 matrix the trees split on (column-major).

        The pipeline's column transformer passes the numeric columns through and encodes the
        categorical ones; gradient boosting's own then re-encodes the categories and moves them
        first; each stacks its columns into a new row-major matrix. ``_direct_steps`` recognises
        that layout, and the columns are then written once, each straight to where the trees
        read it, by the same fitted encoders: the same numbers, about 2.7x faster at a million
        rows (tested against the transformers). Any other layout goes through the transformers.
        """
        internal = self._direct_internal(features) if self.direct is not None else None
        if internal is None:
            internal = np.asarray(self.estimator._preprocess_X(self.preprocess.transform(features), reset=False),
                                  dtype=np.float64)
        return np.asfortranarray(self.mapper.transform(internal))

    def _direct_internal(self, features: pd.DataFrame) -> np.ndarray | None:
        """The float matrix ``estimator._preprocess_X(preprocess.transform(features))`` (column-major),
        or None when the frame is not what the layout assumes (then the transformers run)."""
        numeric, categorical_steps, categorical, encoder = self.direct
        if not len(features) or any(features[column].dtype != np.float64 for column in numeric):
            return None  # the column transformer would convert these: let it
        internal = np.empty((len(features), len(self.positions)), dtype=np.float64, order="F")
        for j, column in enumerate(numeric):
            internal[:, self.positions[j]] = features[column].to_numpy()
        if categorical:
            encoded = categorical_steps.transform(features[categorical])
            if encoder is not None:
                encoded = encoder.transform(np.asarray(encoded, dtype=np.float64))
            for i in range(len(categorical)):
                internal[:, self.positions[len(numeric) + i]] = encoded[:, i]
        return internal

    def codes(self, binned: np.ndarray) -> list[np.ndarray]:
        """Each row's code in each tree (trees on ``prediction_threads()`` threads)."""
        return parallel_map(lambda table: table.code(binned), self.tables)

    def raw_score(self, codes: list[np.ndarray]) -> np.ndarray:
        """The raw (logit) score: the baseline plus each tree's leaf value, summed in tree order."""
        raw = np.full(len(codes[0]) if codes else 0, self.baseline)
        for table, code in zip(self.tables, codes):
            raw += table.values.take(code)
        return raw

    def column(self, feature: str) -> int | None:
        return self.positions[self.names.index(feature)] if feature in self.names else None

    def probability(self, features: pd.DataFrame) -> np.ndarray:
        return expit(self.raw_score(self.codes(self.bin(features))))

    def permutation_importance(self, features: pd.DataFrame, y: np.ndarray, n_repeats: int,
                               random_state: int) -> tuple[np.ndarray, np.ndarray]:
        """scikit-learn's ``permutation_importance(scoring="roc_auc")`` of this model, on the binned rows.

        Every step before the trees is column-wise, so shuffling an input column shuffles its
        binned column, and only the trees that split on it get new codes. The shuffles are
        scikit-learn's own (one seed drawn from ``random_state``, a fresh generator from it for
        each column, the row order reshuffled in place at each repeat and applied to the already
        shuffled column), and the ROC-AUC is taken on the same raw scores its scorer reads, so
        the (mean, std) importances per column of ``features`` are the same numbers (tested).
        """
        binned = self.bin(features)
        codes = self.codes(binned)
        baseline = roc_auc_score(y, self.raw_score(codes))
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max + 1)
        scores = np.full((features.shape[1], n_repeats), baseline)
        for i, name in enumerate(features.columns):
            column = self.column(name)
            touched = [] if column is None else [t for t, table in enumerate(self.tables) if column in table.features]
            if not touched:
                continue  # no tree reads it: shuffling leaves every score as it was
            rng = check_random_state(seed)
            order = np.arange(len(binned))
            shuffled = binned.copy(order="F")
            for repeat in range(n_repeats):
                rng.shuffle(order)
                shuffled[:, column] = shuffled[order, column]
                shuffled_codes = list(codes)
                for t in touched:
                    shuffled_codes[t] = self.tables[t].code(shuffled)
                scores[i, repeat] = roc_auc_score(y, self.raw_score(shuffled_codes))
        importances = baseline - scores
        return importances.mean(axis=1), importances.std(axis=1)


def _direct_steps(preprocess: Pipeline, estimator, names: list[str]) -> tuple[list[str], Any, list[str], Any] | None:
    """(numeric columns, categorical steps, categorical columns, gradient boosting's category
    encoder or None) when the preprocessing is the layout ``make_pipeline`` builds for gradient
    boosting: one column transformer that passes the numeric columns through unchanged and
    encodes the categorical ones, its output numeric first; and, with categories, gradient
    boosting's own transformer, an ordinal encoder on exactly those columns plus an unchanged
    numeric part. None for anything else (``BinnedTrees.bin`` then runs the transformers)."""
    if len(preprocess) != 1 or not isinstance(preprocess[0], ColumnTransformer):
        return None
    steps = [(step, list(columns)) for name, step, columns in preprocess[0].transformers_
             if not (isinstance(step, str) and step == "drop")]
    if not steps or not all(isinstance(column, str) for _, columns in steps for column in columns):
        return None
    (passthrough, numeric), rest = steps[0], steps[1:]
    if not (isinstance(passthrough, FunctionTransformer) and passthrough.func is None) or len(rest) > 1:
        return None  # the numeric columns must reach the trees as they are
    categorical_steps, categorical = rest[0] if rest else (None, [])
    if isinstance(categorical_steps, str) or names != numeric + categorical:
        return None
    transformer = getattr(estimator, "_preprocessor", None)
    if transformer is None:
        return (numeric, None, [], None) if not categorical else None
    parts = {name: (step, columns) for name, step, columns in transformer.transformers_}
    encoder, encoded = parts.get("encoder", (None, None))
    number_check, checked = parts.get("numerical", (None, None))
    remainder = parts.get("remainder", ("drop", None))[0]
    is_categorical = np.arange(len(names)) >= len(numeric)
    if (not categorical or set(parts) - {"encoder", "numerical", "remainder"}
            or not (isinstance(remainder, str) and remainder == "drop")
            or not isinstance(encoder, OrdinalEncoder) or not isinstance(number_check, FunctionTransformer)
            or not np.array_equal(np.asarray(encoded), is_categorical)
            or not np.array_equal(np.asarray(checked), ~is_categorical)):
        return None
    return numeric, categorical_steps, categorical, encoder


def _binned_positions(estimator, n_features: int) -> list[int] | None:
    """Where each input column sits in the matrix the trees split on: gradient boosting with
    categorical features reorders its input (its own column transformer puts them first)."""
    transformer = getattr(estimator, "_preprocessor", None)
    if transformer is None:
        return list(range(n_features))
    order: list[int] = []
    for _, step, columns in transformer.transformers_:
        if isinstance(step, str) and step == "drop":
            continue
        mask = np.asarray(columns)
        order.extend(np.flatnonzero(mask).tolist() if mask.dtype == bool else mask.tolist())
    if sorted(order) != list(range(n_features)):
        return None
    position = [0] * n_features
    for internal, original in enumerate(order):
        position[original] = internal
    return position


def prediction_threads() -> int:
    """OpenMP threads for predictions (env CHURN_PREDICT_THREADS, default every core).

    Predicting a million customers is embarrassingly parallel and gains from every core. A
    tree's prediction for a row does not depend on the thread count, so neither do scores.
    """
    return _threads_from_environment("CHURN_PREDICT_THREADS")


def training_threads() -> int:
    """OpenMP threads for fitting (env CHURN_TRAIN_THREADS, default every core).

    The model registry trains alone in a build (every other model waits for it or is done), and
    OpenMP threads wait passively (``OMP_WAIT_POLICY``, set on import), so gradient boosting fits
    on every core: 1.6x faster on two. Its trees come out the same at any thread count (each
    histogram is summed by one thread); the registry records the version either way.
    """
    return _threads_from_environment("CHURN_TRAIN_THREADS")


def _threads_from_environment(variable: str) -> int:
    return max(1, int(os.environ.get(variable, os.cpu_count() or 1)))


def parallel_map(function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """``[function(item) for item in items]`` on ``prediction_threads()`` Python threads, in order.

    For numpy work on large arrays (``take``, in-place sums), which runs without the GIL: each
    item's result is computed exactly as in the loop, only items run side by side.
    """
    items = list(items)
    threads = min(prediction_threads(), len(items))
    if threads <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(function, items))


#: A forest's trees are summed in this many fixed blocks (see ``OrderedRandomForestClassifier``).
FOREST_PROBABILITY_BLOCKS = 8


class OrderedRandomForestClassifier(RandomForestClassifier):
    """A random forest whose probabilities do not depend on thread timing.

    scikit-learn's ``predict_proba`` with ``n_jobs > 1`` adds each tree's probabilities into one
    array as its threads finish, so the order of the additions, and with it the last bits of
    the mean, changes from call to call (up to 3e-16 on the same rows and model). Scores must be
    identical on rebuild, so here the trees are summed in ``FOREST_PROBABILITY_BLOCKS`` fixed
    blocks, each in tree order, on ``prediction_threads()`` threads (a tree's prediction
    releases the GIL), and the block sums are added in block order: the same numbers at any
    thread count. Fitting is scikit-learn's own (each tree's randomness comes from its own seed).
    """

    def predict_proba(self, X):
        check_is_fitted(self)
        X = self._validate_X_predict(X)
        blocks = np.array_split(np.arange(len(self.estimators_)), min(FOREST_PROBABILITY_BLOCKS, len(self.estimators_)))

        def block_sum(trees: np.ndarray) -> np.ndarray:
            total = np.zeros((X.shape[0], self.n_classes_), dtype=np.float64)
            for tree in trees:
                total += self.estimators_[tree].predict_proba(X, check_input=False)
            return total

        sums = parallel_map(block_sum, blocks)
        probability = sums[0]
        for block in sums[1:]:
            probability += block
        return probability / len(self.estimators_)


# --------------------------------------------------------------------------------------------
# features and pipelines


def select_features(labelled: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric and categorical feature columns with information in the given (training) rows.

    A column that is entirely null (an absent optional source) or constant is left out; the
    list that remains is recorded with the model and shared by training and scoring.
    """
    numeric, categorical = [], []
    for column in labelled.columns:
        if column in NON_FEATURE_COLUMNS:
            continue
        values = labelled[column]
        if values.notna().sum() == 0 or values.nunique(dropna=True) <= 1 and values.notna().all():
            continue
        (categorical if column in CATEGORICAL_FEATURES else numeric).append(column)
    return numeric, categorical


#: Numeric inputs are rounded to this many decimals: DuckDB's parallel float aggregation is not
#: bit-reproducible between runs, and rounding keeps model versions and scores identical.
FEATURE_DECIMALS = 9


def prepare_features(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Feature frame with stable dtypes: rounded floats for numeric, strings (or None) for categorical."""
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        if column in frame:
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64").round(FEATURE_DECIMALS)
        else:
            out[column] = np.nan
    for column in categorical:
        values = frame[column] if column in frame else pd.Series(None, index=frame.index)
        out[column] = values.astype("object").where(values.notna(), None)
    return out


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def make_pipeline(family: str, parameters: dict[str, Any], numeric: list[str], categorical: list[str],
                  random_state: int = 0) -> Pipeline:
    """Preprocessing + estimator for one family."""
    if family == "logistic_regression":
        numeric_steps = Pipeline([
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("signed_log", FunctionTransformer(_signed_log, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
        ])
        categorical_steps = Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="(missing)", keep_empty_features=True)),
            ("one_hot", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.01, sparse_output=False)),
        ])
        estimator = LogisticRegression(max_iter=3_000, random_state=random_state, **parameters)
    elif family == "gradient_boosting":
        numeric_steps = "passthrough"
        categorical_steps = Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="(missing)", keep_empty_features=True)),
            ("ordinal", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                       min_frequency=0.01, encoded_missing_value=-1)),
        ])
        estimator = HistGradientBoostingClassifier(
            random_state=random_state, early_stopping=False, l2_regularization=1.0,
            categorical_features=list(range(len(numeric), len(numeric) + len(categorical))) or None,
            **parameters,
        )
    elif family == "random_forest":
        numeric_steps = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        categorical_steps = Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="(missing)", keep_empty_features=True)),
            ("one_hot", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.01, sparse_output=False)),
        ])
        estimator = OrderedRandomForestClassifier(random_state=random_state, n_jobs=2, max_samples=0.3, **parameters)
    else:
        raise ValueError(f"unknown model family {family!r}")
    transformers = [("numeric", numeric_steps, numeric)]
    if categorical:
        transformers.append(("categorical", categorical_steps, categorical))
    return Pipeline([
        ("preprocess", ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)),
        ("model", estimator),
    ])


# --------------------------------------------------------------------------------------------
# calibration


def shift_probability(probability: np.ndarray, offset: float) -> np.ndarray:
    return expit(clipped_logit(probability) + offset)


def fit_logit_offset(probability: np.ndarray, observed_rate: float) -> float:
    """The constant logit shift that makes the mean probability equal the observed rate."""
    observed_rate = float(np.clip(observed_rate, 1e-4, 1 - 1e-4))
    return float(brentq(lambda d: shift_probability(probability, d).mean() - observed_rate, -20, 20))


def same_season_snapshot(labelled_dates: list[dt.date], target: dt.date) -> dt.date | None:
    """The labelled snapshot closest to one year before ``target`` (within a tolerance), if any."""
    year_before = target - dt.timedelta(days=365)
    close = [d for d in labelled_dates if abs((d - year_before).days) <= SEASON_TOLERANCE_DAYS]
    return min(close, key=lambda d: abs((d - year_before).days)) if close else None


def unobserved_on_reference(reference_rows: pd.DataFrame, target_rows: pd.DataFrame | None,
                            columns: list[str]) -> list[str]:
    """Feature columns entirely null on the reference snapshot but with values on the target rows."""
    if target_rows is None:
        return []
    return [c for c in columns if reference_rows[c].isna().all() and target_rows[c].notna().any()]


def recent_rate_offset(pipeline: Pipeline, labelled: pd.DataFrame, numeric: list[str], categorical: list[str],
                       target_rows: pd.DataFrame | None, stack: BaselineStack | None = None,
                       ) -> tuple[float, dt.date | None]:
    """Logit shift that gives the target rows the churn rate of the latest labelled snapshot
    (a prior shift to the most recent base rate), or none without target rows."""
    if target_rows is None or target_rows.empty:
        return 0.0, None
    latest = max(labelled["as_of_date"].unique())
    rate = labelled.loc[labelled["as_of_date"] == latest, "churned"].astype(float).mean()
    return rate_matching_offset(pipeline, target_rows, numeric, categorical, rate, stack), latest


def stacked_probability(pipeline, rows: pd.DataFrame, numeric: list[str], categorical: list[str],
                        stack: BaselineStack | None = None) -> np.ndarray:
    """``pipeline``'s probability on ``rows``, stacked with their baseline when there is a stack
    (uncalibrated: before the logit shift)."""
    probability = pipeline.predict_proba(prepare_features(rows, numeric, categorical))[:, 1]
    return probability if stack is None else stack.probability(probability, stack.baseline_logit(rows))


def rate_matching_offset(pipeline, rows: pd.DataFrame, numeric: list[str], categorical: list[str],
                         rate: float, stack: BaselineStack | None = None) -> float:
    """The logit shift after which the (stacked) mean probability on ``rows`` is ``rate``."""
    return fit_logit_offset(stacked_probability(pipeline, rows, numeric, categorical, stack), rate)


def seasonal_offset(pipeline: Pipeline, labelled: pd.DataFrame, numeric: list[str], categorical: list[str],
                    target: dt.date, enabled: bool = True, target_rows: pd.DataFrame | None = None,
                    refit=None, min_history_days: int = 180, stack: BaselineStack | None = None,
                    ) -> tuple[float, dt.date | None]:
    """Logit shift for scoring ``target``, and the snapshot it was estimated on.

    The model's mean residual on last year's same-season snapshot, when that snapshot lies at
    least ``min_history_days`` after the earliest labelled one. A reference nearer the start of
    the data sees every customer as recent (no one can have been away longer than the data is
    old), so its churn rate says more about the data's start than about the season: the target
    rows are then shifted to the latest labelled snapshot's churn rate (``recent_rate_offset``),
    as they are when there is no reference at all.

    When the reference snapshot lacks features that the target rows have (a window that reached
    back before the data began), the model's residual there describes its missing-value branch,
    not the target. Then the season's churn rate for the target rows is estimated by a model
    refitted (``refit(numeric, categorical)``) on the features the reference does have, shifted
    on the reference, and the model's logit is shifted so its mean on the target rows matches it.
    With a ``stack`` every shift is of the stacked logit; the reduced model only estimates a rate.
    """
    if not enabled:
        return 0.0, None
    dates = sorted(labelled["as_of_date"].unique())
    reference = same_season_snapshot(dates, target)
    if reference is None or (reference - dates[0]).days < min_history_days:
        return recent_rate_offset(pipeline, labelled, numeric, categorical, target_rows, stack)
    rows = labelled[labelled["as_of_date"] == reference]
    observed_rate = rows["churned"].astype(float).mean()
    unobserved = unobserved_on_reference(rows, target_rows, numeric + categorical) if refit else []
    if not unobserved:
        return rate_matching_offset(pipeline, rows, numeric, categorical, observed_rate, stack), reference
    reduced_numeric = [c for c in numeric if c not in unobserved]
    reduced_categorical = [c for c in categorical if c not in unobserved]
    reduced = refit(reduced_numeric, reduced_categorical)
    reduced_offset = rate_matching_offset(reduced, rows, reduced_numeric, reduced_categorical, observed_rate)
    target_rate = shift_probability(
        reduced.predict_proba(prepare_features(target_rows, reduced_numeric, reduced_categorical))[:, 1],
        reduced_offset).mean()
    return rate_matching_offset(pipeline, target_rows, numeric, categorical, target_rate, stack), reference


# --------------------------------------------------------------------------------------------
# training


def split_out_of_time(labelled: pd.DataFrame, config: TrainingConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and validation rows: latest snapshots validate; earlier ones, embargoed, train."""
    dates = sorted(labelled["as_of_date"].unique())
    if len(dates) < config.validation_snapshot_count + 1:
        raise InsufficientHistoryError(
            f"need at least {config.validation_snapshot_count + 1} labelled snapshots to train and validate, "
            f"found {len(dates)}: lower validation_snapshot_count or provide more history"
        )
    validation_dates = dates[-config.validation_snapshot_count:]
    embargo = validation_dates[0] - dt.timedelta(days=config.horizon_days)
    train_dates = [d for d in dates[:-config.validation_snapshot_count] if d <= embargo]
    if not train_dates:
        raise InsufficientHistoryError("no labelled snapshot ends its label window before the validation snapshots")
    return labelled[labelled["as_of_date"].isin(train_dates)], labelled[labelled["as_of_date"].isin(validation_dates)]


def _labels(frame: pd.DataFrame) -> np.ndarray:
    return frame["churned"].astype(bool).astype(int).to_numpy()


def _fit(family: str, parameters: dict, frame: pd.DataFrame, numeric: list[str], categorical: list[str],
         config: TrainingConfig) -> Pipeline:
    pipeline = make_pipeline(family, parameters, numeric, categorical, config.random_state)
    pipeline.fit(prepare_features(frame, numeric, categorical), _labels(frame))
    return pipeline


def _seasonally_calibrated(pipeline, train, frame, numeric, categorical, config, refit=None, stack=None,
                           ) -> tuple[np.ndarray, list[dict]]:
    """Validation probabilities with the seasonal shift estimated on training snapshots only."""
    probability = np.empty(len(frame))
    offsets = []
    for as_of_date, rows in frame.groupby("as_of_date", sort=True):
        offset, reference = seasonal_offset(pipeline, train, numeric, categorical, as_of_date,
                                            config.seasonal_calibration, target_rows=rows, refit=refit,
                                            min_history_days=SEASON_MIN_HISTORY_HORIZONS * config.horizon_days,
                                            stack=stack)
        raw = stacked_probability(pipeline, rows, numeric, categorical, stack)
        probability[frame.index.get_indexer(rows.index)] = shift_probability(raw, offset)
        offsets.append({"as_of_date": str(as_of_date), "logit_offset": offset,
                        "reference_date": str(reference) if reference else None})
    return probability, offsets


def _reference_values(labelled: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    """Typical values of retained customers: the baseline that per-customer reasons compare against."""
    retained = labelled[~labelled["churned"].astype(bool)]
    if retained.empty:
        retained = labelled
    values: dict[str, Any] = {}
    for column in numeric:
        median = pd.to_numeric(retained[column], errors="coerce").median()
        values[column] = None if pd.isna(median) else float(median)
    for column in categorical:
        mode = retained[column].dropna().mode()
        values[column] = None if mode.empty else str(mode.iloc[0])
    return values


def _drift_baseline(pipeline, labelled, numeric, categorical, offset, stack=None) -> dict[str, Any]:
    """Training distributions: decile edges and shares per numeric feature, category shares, score shares."""
    features = prepare_features(labelled, numeric, categorical)
    baseline: dict[str, Any] = {"numeric": {}, "categorical": {}}
    for column in numeric:
        values = features[column]
        present = values.dropna()
        edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9))) if len(present) else np.array([])
        shares = _binned_shares(values, edges)
        baseline["numeric"][column] = {"edges": edges.tolist(), "shares": shares}
    for column in categorical:
        counts = features[column].fillna("(missing)").value_counts(normalize=True)
        baseline["categorical"][column] = counts.to_dict()
    probability = shift_probability(stacked_probability(pipeline, labelled, numeric, categorical, stack), offset)
    baseline["score_shares"] = np.histogram(probability, bins=np.linspace(0, 1, 11))[0].astype(float).tolist()
    total = sum(baseline["score_shares"]) or 1.0
    baseline["score_shares"] = [s / total for s in baseline["score_shares"]]
    return baseline


def _binned_shares(values: pd.Series, edges: np.ndarray) -> list[float]:
    """Shares of: missing, then each bin defined by ``edges`` (len(edges) + 1 bins)."""
    n = max(len(values), 1)
    missing = values.isna().to_numpy()
    bins = np.searchsorted(edges, values.to_numpy()[~missing], side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return [float(missing.sum()) / n] + [float(c) / n for c in counts]


def training_fingerprint(labelled: pd.DataFrame, config: TrainingConfig, library_versions: dict[str, str]) -> str:
    """Deterministic id of (training data, settings, library versions): same inputs, same version."""
    ordered = labelled.sort_values(["as_of_date", "customer_id"]).reset_index(drop=True)
    floats = ordered.select_dtypes(include="float").columns
    ordered[floats] = ordered[floats].round(FEATURE_DECIMALS)
    data_hash = hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes()).hexdigest()
    payload = json.dumps({"data": data_hash, "config": asdict(config), "libraries": library_versions}, sort_keys=True)
    return "churn-" + hashlib.sha256(payload.encode()).hexdigest()[:12]


def library_versions() -> dict[str, str]:
    import duckdb
    import sklearn

    import churnwarehouse

    return {
        "churnwarehouse": churnwarehouse.__version__,
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
    }


def train_churn_model(labelled: pd.DataFrame, scoring_date: dt.date, config: TrainingConfig | None = None,
                      scoring_rows: pd.DataFrame | None = None) -> tuple[ChurnModel, dict[str, pd.DataFrame]]:
    """Select, validate, calibrate and refit the churn model.

    Parameters
    ----------
    labelled : DataFrame
        Labelled rows of ``ml_customer_features`` (``has_label``), possibly a customer sample.
    scoring_date : date
        The scoring snapshot's as-of date (for the seasonal calibration of the final model).
    config : TrainingConfig
    scoring_rows : DataFrame, optional
        Feature rows of the scoring snapshot (no labels). Used only by the calibration shift: when
        last year's reference snapshot lacks features these rows have, or when the rows are
        shifted to the latest churn rate (see ``seasonal_offset``).

    Returns
    -------
    model : ChurnModel
        The refitted, calibrated model with its metadata (including validation metrics).
    reports : dict of DataFrame
        ``comparison`` (every candidate's validation metrics), ``calibration`` (bins),
        ``importance`` (permutation importance on the validation snapshots).
    """
    config = config or TrainingConfig()
    with threadpool_limits(limits=training_threads(), user_api="openmp"):
        return _train_churn_model(labelled, scoring_date, config, scoring_rows)


def _train_churn_model(labelled: pd.DataFrame, scoring_date: dt.date, config: TrainingConfig,
                       scoring_rows: pd.DataFrame | None = None) -> tuple[ChurnModel, dict[str, pd.DataFrame]]:
    labelled = labelled.copy()
    labelled["as_of_date"] = pd.to_datetime(labelled["as_of_date"]).dt.date
    labelled = labelled.sort_values(["as_of_date", "customer_id"]).reset_index(drop=True)
    if labelled.empty:
        raise InsufficientHistoryError("no labelled snapshot: the data is shorter than one churn horizon")
    train, validation = split_out_of_time(labelled, config)
    # the features the candidates can learn from: a column with no information in the training
    # snapshots (say last year's window, which a short history only observes on the latest
    # snapshots) is left out of the refits too, so validation judges the model that is refitted
    numeric, categorical = select_features(train)
    if not numeric:
        raise InsufficientHistoryError("no usable feature columns in the training snapshots")
    y_validation = _labels(validation)
    if len(np.unique(_labels(train))) < 2 or len(np.unique(y_validation)) < 2:
        raise InsufficientHistoryError("training and validation snapshots must each contain churned and retained customers")

    comparison = []
    validation_probabilities = {}  # (family, parameters) -> the candidate's validation probabilities
    best = None
    for family in config.families:
        for parameters in PARAMETER_GRID[family]:
            pipeline = _fit(family, parameters, train, numeric, categorical, config)
            raw = pipeline.predict_proba(prepare_features(validation, numeric, categorical))[:, 1]
            row = {"family": family, "parameters": json.dumps(parameters, sort_keys=True),
                   **metrics.classification_metrics(y_validation, raw, 0.5)}
            comparison.append(row)
            validation_probabilities[family, row["parameters"]] = raw
            if best is None or row["roc_auc"] > best[0]["roc_auc"]:
                best = (row, family, parameters, pipeline)
    comparison_frame = pd.DataFrame(comparison)
    # parsimony: the first (simplest) family whose best AUC is within the margin of the overall best
    chosen_row, family, parameters, pipeline = best
    for candidate_family in config.families:
        rows = [r for r in comparison if r["family"] == candidate_family]
        top = max(rows, key=lambda r: r["roc_auc"])
        if top["roc_auc"] >= chosen_row["roc_auc"] - config.parsimony_margin:
            if candidate_family != family:
                family, parameters = candidate_family, json.loads(top["parameters"])
                pipeline = _fit(family, parameters, train, numeric, categorical, config)
                chosen_row = top
            break
    # the BG/NBD baseline: stacked with the chosen model when it adds information out of time
    # (the chosen candidate's validation probabilities: fitting is deterministic, so a refit's are the same)
    stack = fit_baseline_stack(validation_probabilities[family, chosen_row["parameters"]], validation, y_validation)
    baseline = baseline_values(validation)
    if np.isfinite(baseline).all():  # on the comparison's own footing: every validation row scored
        comparison_frame = pd.concat([comparison_frame, pd.DataFrame([{
            "family": "bgnbd_baseline", "parameters": "{}",
            **metrics.classification_metrics(y_validation, baseline, 0.5)}])], ignore_index=True)
    comparison_frame["is_chosen"] = (comparison_frame["family"] == family) & (
        comparison_frame["parameters"] == json.dumps(parameters, sort_keys=True))

    # out-of-time calibration check with the training-only model
    calibrated, validation_offsets = _seasonally_calibrated(
        pipeline, train, validation, numeric, categorical, config,
        refit=lambda n, c: _fit(family, parameters, train, n, c, config), stack=stack)
    threshold = metrics.best_f1_threshold(y_validation, calibrated)
    validation_metrics = metrics.classification_metrics(y_validation, calibrated, threshold)
    calibration = metrics.calibration_table(y_validation, calibrated)
    importance = _permutation_importance(pipeline, validation, numeric, categorical, config)

    # refit on all labelled snapshots, seasonal shift for the scoring date
    final = _fit(family, parameters, labelled, numeric, categorical, config)
    offset, reference = seasonal_offset(
        final, labelled, numeric, categorical, scoring_date, config.seasonal_calibration, target_rows=scoring_rows,
        refit=lambda n, c: _fit(family, parameters, labelled, n, c, config),
        min_history_days=SEASON_MIN_HISTORY_HORIZONS * config.horizon_days, stack=stack)
    reference_columns = numeric + ([stack.column] if stack is not None else [])
    model = ChurnModel(
        pipeline=final,
        numeric_features=numeric,
        categorical_features=categorical,
        family=family,
        parameters=parameters,
        logit_offset=offset,
        offset_reference_date=str(reference) if reference else None,
        threshold=threshold,
        reference_values=_reference_values(labelled, reference_columns, categorical),
        drift_baseline=_drift_baseline(final, labelled, numeric, categorical, offset, stack),
        stack=stack,
    )
    model.metadata = {
        "family": family,
        "parameters": parameters,
        "selection_criterion": f"validation ROC-AUC; simpler family within {config.parsimony_margin} wins",
        "feature_columns": model.feature_columns,
        "training_window_start": str(min(labelled["as_of_date"])),
        "training_window_end": str(max(labelled["as_of_date"])),
        "train_snapshots": [str(d) for d in sorted(train["as_of_date"].unique())],
        "validation_snapshots": [str(d) for d in sorted(validation["as_of_date"].unique())],
        "scoring_date": str(scoring_date),
        "training_row_count": int(len(labelled)),
        "training_churn_rate": float(_labels(labelled).mean()),
        "validation_offsets": validation_offsets,
        "logit_offset": offset,
        "offset_reference_date": model.offset_reference_date,
        "threshold": threshold,
        "validation_metrics": validation_metrics,
        "baseline_stack": asdict(stack) if stack is not None else None,
        "config": asdict(config),
    }
    return model, {"comparison": comparison_frame, "calibration": calibration, "importance": importance}


def _permutation_importance(pipeline, validation, numeric, categorical, config) -> pd.DataFrame:
    rows = validation
    if len(rows) > config.permutation_rows:
        rows = rows.sample(n=config.permutation_rows, random_state=config.random_state)
    features = prepare_features(rows, numeric, categorical)
    trees = BinnedTrees.of(pipeline)
    if trees is not None:  # the same numbers, without predicting every shuffled frame in full
        means, stds = trees.permutation_importance(features, _labels(rows), config.permutation_repeats,
                                                   config.random_state)
    else:
        result = permutation_importance(
            pipeline, features, _labels(rows), scoring="roc_auc",
            n_repeats=config.permutation_repeats, random_state=config.random_state, n_jobs=1,
        )
        means, stds = result.importances_mean, result.importances_std
    frame = pd.DataFrame({"feature": features.columns, "importance_mean": means, "importance_std": stds})
    frame = frame.sort_values(["importance_mean", "feature"], ascending=[False, True]).reset_index(drop=True)
    frame["importance_rank"] = np.arange(1, len(frame) + 1)
    return frame


def sampling_modulus(row_count: int, max_rows: int, modulus: int = 10_000) -> int | None:
    """How many of ``modulus`` hash buckets of customers to keep so that about ``max_rows`` remain.

    None when no sampling is needed. Sampling whole customers (all their snapshots) keeps each
    customer's history together and is deterministic (a hash of the customer id).
    """
    if row_count <= max_rows:
        return None
    return max(1, int(modulus * max_rows / row_count))
