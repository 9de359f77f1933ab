"""Per-customer churn reasons in plain words, derived from the model by group perturbation.

Method (the same for every model family, documented in DECISIONS.md): features are grouped
into business themes (recency, order rhythm, spend, support ...). For each customer and group,
the group's features are set to the values of a typical *retained* customer (training medians
of non-churners, ``ChurnModel.reference_values``) and the model is asked again. The drop in
calibrated churn probability is the group's contribution: how much this customer's values in
that theme raise their risk above a typical loyal customer's. The three largest positive
contributions become the reasons, each written with the customer's own figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import expit

from churnwarehouse.modeling import BinnedTrees, prepare_features, shift_probability

REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "recency": ("days_since_last_order", "purchase_gap_overdue_ratio", "expected_purchases_next_horizon",
                "probability_alive"),
    "order_rhythm": (
        "order_count", "purchase_day_count", "order_count_30d", "order_count_90d", "order_count_180d",
        "order_count_365d", "order_count_prior_90d", "order_count_trend_90d", "mean_purchase_gap_days",
        "stddev_purchase_gap_days",
    ),
    "spend": (
        "total_spend_amount", "average_order_value", "spend_amount_30d", "spend_amount_90d", "spend_amount_180d",
        "spend_amount_365d", "spend_amount_prior_90d", "spend_amount_trend_90d",
    ),
    "seasonality": ("order_count_same_window_last_year", "spend_amount_same_window_last_year"),
    "tenure": ("tenure_days", "days_since_signup"),
    "returns": ("cancellation_rate", "return_rate"),
    "discounts": ("discounted_order_share", "discount_amount_share"),
    "assortment": ("distinct_product_count", "distinct_category_count", "favourite_category",
                   "favourite_category_spend_share"),
    "browsing": (
        "days_since_last_visit", "session_count_30d", "session_count_prior_30d", "session_count_90d",
        "session_count_365d", "active_day_count_90d", "product_view_count_90d", "search_count_90d",
        "session_count_trend_30d",
    ),
    "cart": ("cart_add_count_90d", "cart_abandonment_rate_90d"),
    "reviews": (
        "review_count", "review_count_90d", "negative_review_count", "average_rating", "average_rating_90d",
        "average_sentiment_score", "lowest_sentiment_score",
    ),
    "support": (
        "ticket_count", "ticket_count_90d", "unresolved_ticket_count", "average_satisfaction_score",
        "average_resolution_hours", "days_since_last_ticket",
    ),
    "marketing": (
        "send_count", "open_count", "click_count", "redemption_count", "send_count_90d", "open_count_90d",
        "click_count_90d", "redemption_count_90d", "open_rate_90d", "is_marketing_opted_in", "has_email",
    ),
    "profile": ("country", "preferred_channel"),
}


def _value(row, column: str):
    value = row.get(column)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _plural(n: float, word: str) -> str:
    n = int(round(n))
    return f"{n} {word}" + ("" if n == 1 else "s")


def _recency(row: dict) -> str:
    days = _value(row, "days_since_last_order")
    ratio = _value(row, "purchase_gap_overdue_ratio")
    if days is None:
        return "long time since the last order"
    text = f"no order for {int(days)} days"
    if ratio is not None and ratio >= 1.2:
        text += f", {ratio:.1f}x the usual gap"
    return text


def _order_rhythm(row: dict) -> str:
    recent, prior = _value(row, "order_count_90d"), _value(row, "order_count_prior_90d")
    if recent is not None and prior is not None and prior > recent:
        if recent == 0:
            return f"no order in the last 90 days vs {int(prior)} in the 90 before"
        return f"{_plural(recent, 'order')} in the last 90 days vs {int(prior)} in the 90 before"
    orders = _value(row, "order_count")
    if orders is not None and orders <= 2:
        return f"only {_plural(orders, 'order')} so far"
    gap = _value(row, "mean_purchase_gap_days")
    if gap is not None:
        return f"orders rarely: one every {gap:.0f} days on average"
    return f"{_plural(recent or 0, 'order')} in the last 90 days"


def _spend(row: dict) -> str:
    recent, prior = _value(row, "spend_amount_90d"), _value(row, "spend_amount_prior_90d")
    if recent is not None and prior is not None and prior > recent:
        if recent == 0:
            return f"no spend in the last 90 days vs {prior:,.0f} in the 90 before"
        return f"spent {recent:,.0f} in the last 90 days vs {prior:,.0f} in the 90 before"
    total = _value(row, "total_spend_amount")
    return f"low spend: {total:,.0f} in total" if total is not None else "low spend"


def _seasonality(row: dict) -> str:
    last_year = _value(row, "order_count_same_window_last_year")
    if last_year is None:
        return "no history yet for the coming season last year"
    if not last_year:
        return "no order in the coming season last year"
    return f"{_plural(last_year, 'order')} in the coming season last year"


def _tenure(row: dict) -> str:
    tenure = _value(row, "tenure_days")
    if tenure is None:
        return "new customer"
    return f"new customer: first order {int(tenure)} days ago" if tenure < 90 else f"first order {int(tenure)} days ago"


def _returns(row: dict) -> str:
    returned, cancelled = _value(row, "return_rate") or 0.0, _value(row, "cancellation_rate") or 0.0
    if returned >= cancelled:
        return f"{returned:.0%} of orders returned"
    return f"{cancelled:.0%} of orders cancelled"


def _discounts(row: dict) -> str:
    share = _value(row, "discounted_order_share")
    return f"{share:.0%} of orders used a discount" if share is not None else "discount-driven buying"


def _assortment(row: dict) -> str:
    products = _value(row, "distinct_product_count")
    return f"buys a narrow range: {_plural(products, 'product')}" if products is not None else "narrow range of products"


def _browsing(row: dict) -> str:
    days = _value(row, "days_since_last_visit")
    recent, prior = _value(row, "session_count_30d"), _value(row, "session_count_prior_30d")
    if days is not None and days >= 30:
        return "no visit in the last year" if days >= 365 else f"no visit for {int(days)} days"
    if recent is not None and prior is not None and prior > recent:
        return f"{_plural(recent, 'visit')} in the last 30 days vs {int(prior)} before"
    return f"{_plural(recent or 0, 'visit')} in the last 30 days"


def _cart(row: dict) -> str:
    rate = _value(row, "cart_abandonment_rate_90d")
    return f"abandoned {rate:.0%} of carts in the last 90 days" if rate is not None else "carts left unfinished"


def _reviews(row: dict) -> str:
    negative, rating = _value(row, "negative_review_count"), _value(row, "average_rating")
    if negative:
        text = f"{_plural(negative, 'negative review')}"
        return text + (f", average rating {rating:.1f}" if rating is not None else "")
    if rating is not None:
        return f"average rating {rating:.1f}"
    sentiment = _value(row, "average_sentiment_score")
    return "negative tone in reviews" if sentiment is not None and sentiment < 0 else "review history"


def _support(row: dict) -> str:
    unresolved = _value(row, "unresolved_ticket_count")
    if unresolved:
        return f"{_plural(unresolved, 'unresolved support ticket')}"
    satisfaction = _value(row, "average_satisfaction_score")
    if satisfaction is not None:
        return f"support satisfaction {satisfaction:.1f}/5"
    tickets = _value(row, "ticket_count_90d")
    return f"{_plural(tickets or 0, 'support ticket')} in the last 90 days"


def _marketing(row: dict) -> str:
    sends, opens = _value(row, "send_count_90d"), _value(row, "open_count_90d")
    if sends:
        return f"opened {int(opens or 0)} of {_plural(sends, 'email')} in the last 90 days"
    if _value(row, "is_marketing_opted_in") is False:
        return "not opted in to marketing"
    return "no marketing contact in the last 90 days"


def _profile(row: dict) -> str:
    parts = [str(v) for v in (_value(row, "country"), _value(row, "preferred_channel")) if v is not None]
    return "customer profile with higher churn" + (f" ({', '.join(parts)})" if parts else "")


TEMPLATES: dict[str, Callable[[dict], str]] = {
    "recency": _recency, "order_rhythm": _order_rhythm, "spend": _spend, "seasonality": _seasonality,
    "tenure": _tenure, "returns": _returns, "discounts": _discounts, "assortment": _assortment,
    "browsing": _browsing, "cart": _cart, "reviews": _reviews, "support": _support,
    "marketing": _marketing, "profile": _profile,
}


def group_contributions(model, frame: pd.DataFrame, probability: np.ndarray | None = None,
                        batch_size: int = 100_000) -> pd.DataFrame:
    """Contribution of each reason group to each row's calibrated churn probability.

    Returns a frame (rows aligned with ``frame``, one column per group the model uses) of
    ``probability - probability with the group set to retained-customer reference values``.
    ``probability`` is the model's probability for ``frame`` (computed when not given).
    """
    return probabilities_and_contributions(model, frame, probability, batch_size)[1]


def probabilities_and_contributions(model, frame: pd.DataFrame, probability: np.ndarray | None = None,
                                    batch_size: int = 100_000) -> tuple[np.ndarray, pd.DataFrame]:
    """The model's calibrated probability for each row and each reason group's contribution to it.

    For gradient boosting the perturbed predictions are exact but cheaper (``_BoostingPerturbations``):
    each tree is a lookup table over its splits, so a group's perturbation changes a row's score
    in a tree by an amount tabulated once per model, looked up by the row's code in that tree.
    For logistic regression the rows are transformed once and each group's perturbation moves
    the logit by its own columns' terms (``_LinearPerturbations``). The unperturbed
    probabilities come out of the same pass. Other families predict each perturbed frame in full.
    """
    features = set(model.feature_columns)
    groups = {group: [c for c in columns if c in features] for group, columns in REASON_GROUPS.items()}
    groups = {group: used for group, used in groups.items() if used}
    fast = _BoostingPerturbations.of(model, frame, groups) or _LinearPerturbations.of(model, frame, groups)
    base = np.empty(len(frame))
    perturbed_probabilities = {group: np.empty(len(frame)) for group in groups}
    for start in range(0, len(frame), batch_size):
        batch = frame.iloc[start:start + batch_size]
        rows = slice(start, start + len(batch))
        if fast is not None:
            base[rows], values = fast.probabilities(batch)
            for group in groups:
                perturbed_probabilities[group][rows] = values[group]
            continue
        base[rows] = probability[rows] if probability is not None else model.predict_probability(batch)
        for group, used in groups.items():
            perturbed = batch.copy()
            for column in used:
                perturbed[column] = model.reference_values.get(column)
            perturbed_probabilities[group][rows] = model.predict_probability(perturbed)
    contributions = {group: base - values for group, values in perturbed_probabilities.items()}
    return base, pd.DataFrame(contributions, index=frame.index)


def _reference_row(model, frame: pd.DataFrame) -> pd.DataFrame:
    """One prepared row holding every feature's retained-customer reference value (the row the
    perturbations move a group towards), typed like ``frame``'s prepared rows."""
    reference = prepare_features(frame.iloc[:1], model.numeric_features, model.categorical_features)
    for column in model.feature_columns:
        if column in model.reference_values:
            reference[column] = model.reference_values[column]
    return prepare_features(reference, model.numeric_features, model.categorical_features)


class _BoostingPerturbations:
    """Exact perturbed probabilities for a HistGradientBoosting pipeline, by table lookups.

    Setting a group's features to their reference values changes, in each tree, only the bits
    of the splits on the group's columns (``TreeTable``): every other split still sees the
    row's own, unchanged values. So for each tree that splits on the group, the change in the
    row's score is a function of its code alone, tabulated once per model
    (``TreeTable.perturbation_delta``), and a group's perturbed score is the row's score plus
    one lookup per such tree, added in tree order.
    """

    def __init__(self, model, trees: BinnedTrees, reference_bins: np.ndarray, groups: dict[str, list[str]]):
        self.model, self.trees = model, trees
        self.plan: dict[str, list[tuple[int, np.ndarray]]] = {}
        for group, used in groups.items():
            columns = sorted({trees.column(c) for c in used} - {None})
            deltas = [(i, table.perturbation_delta(columns, reference_bins)) for i, table in enumerate(trees.tables)]
            self.plan[group] = [(i, delta) for i, delta in deltas if delta is not None]

    @classmethod
    def of(cls, model, frame: pd.DataFrame, groups: dict[str, list[str]]) -> _BoostingPerturbations | None:
        trees = BinnedTrees.of(model.pipeline)
        if trees is None or frame.empty:
            return None
        reference_bins = trees.bin(_reference_row(model, frame))[0]
        return cls(model, trees, reference_bins, groups)

    def probabilities(self, batch: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The batch's probabilities, and per group with the group at its reference values."""
        model, trees = self.model, self.trees
        codes = trees.codes(trees.bin(prepare_features(batch, model.numeric_features, model.categorical_features)))
        raw = trees.raw_score(codes)
        out = {}
        for group, deltas in self.plan.items():
            group_raw = raw.copy()
            for i, delta in deltas:
                group_raw += delta.take(codes[i])
            out[group] = shift_probability(expit(group_raw), model.logit_offset)
        return shift_probability(expit(raw), model.logit_offset), out


class _LinearPerturbations:
    """Exact perturbed probabilities for the logistic-regression pipeline, without re-transforming.

    Every preprocessing step is column-wise (imputation with missing indicators, signed log,
    scaling, one-hot), so setting a group's inputs to their reference values replaces only the
    output columns derived from them, and the logit moves by ``(reference - row) @ coef`` over
    those columns. The rows are transformed once per batch instead of once per group.
    """

    def __init__(self, model, reference: np.ndarray, columns: dict[str, np.ndarray]):
        self.model, self.reference, self.columns = model, reference, columns

    @staticmethod
    def output_columns(preprocess, numeric: list[str], categorical: list[str]) -> dict[str, list[int]] | None:
        """Input feature -> the transformed columns derived from it, or None if the layout is unexpected."""
        owners: dict[str, list[int]] = {c: [] for c in numeric + categorical}
        slices = getattr(preprocess, "output_indices_", {})
        try:
            if numeric:
                impute = preprocess.named_transformers_["numeric"].named_steps["impute"]
                block = slices["numeric"]
                indicated = list(impute.indicator_.features_) if impute.add_indicator else []
                outputs = [numeric[i] for i in range(len(numeric))] + [numeric[i] for i in indicated]
                if block.stop - block.start != len(outputs):
                    return None
                for offset, name in enumerate(outputs):
                    owners[name].append(block.start + offset)
            if categorical:
                encoder = preprocess.named_transformers_["categorical"].named_steps["one_hot"]
                block = slices["categorical"]
                position = block.start
                infrequent = getattr(encoder, "infrequent_categories_", [None] * len(categorical))
                for name, categories, rare in zip(categorical, encoder.categories_, infrequent):
                    width = len(categories) - (len(rare) - 1 if rare is not None else 0)
                    owners[name].extend(range(position, position + width))
                    position += width
                if position != block.stop or encoder.drop is not None:
                    return None
        except (AttributeError, KeyError, TypeError):
            return None
        return owners

    @classmethod
    def of(cls, model, frame: pd.DataFrame, groups: dict[str, list[str]]) -> _LinearPerturbations | None:
        if model.family != "logistic_regression" or frame.empty:
            return None
        preprocess = model.pipeline[:-1][0] if len(model.pipeline) == 2 else None
        owners = cls.output_columns(preprocess, model.numeric_features, model.categorical_features) if preprocess else None
        if owners is None:
            return None
        transformed = np.asarray(model.pipeline[:-1].transform(_reference_row(model, frame)), dtype=float)[0]
        columns = {group: np.array(sorted({i for c in used for i in owners.get(c, [])}), dtype=int)
                   for group, used in groups.items()}
        return cls(model, transformed, columns)

    def probabilities(self, batch: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        model = self.model
        transformed = np.asarray(model.pipeline[:-1].transform(
            prepare_features(batch, model.numeric_features, model.categorical_features)), dtype=float)
        estimator = model.pipeline[-1]
        decision = estimator.decision_function(transformed)
        coef = np.ravel(estimator.coef_)
        out = {}
        for group, columns in self.columns.items():
            moved = decision + (self.reference[columns] - transformed[:, columns]) @ coef[columns]
            out[group] = shift_probability(expit(moved), model.logit_offset)
        # the unperturbed probabilities through the model's own path, so they are bitwise the scores
        return model.predict_probability(batch), out


class _RowView:
    """Row access for the templates without building a dict per row: a column is turned into a
    list the first time any template reads it (at a million rows, ``to_dict('records')`` cost more
    than formatting every reason)."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame
        self._columns: dict[str, list] = {}
        self._position = 0

    def at(self, position: int) -> _RowView:
        self._position = position
        return self

    def get(self, column: str, default=None):
        if column not in self._columns:
            if column not in self._frame.columns:
                return default
            self._columns[column] = self._frame[column].astype(object).tolist()
        return self._columns[column][self._position]


def top_reasons(frame: pd.DataFrame, contributions: pd.DataFrame, count: int = 3,
                min_contribution: float = 0.005) -> pd.DataFrame:
    """The ``count`` largest positive contributions per row, written in plain words.

    A row's reasons are its largest contributions at or above ``min_contribution``, largest
    first; the slots after them stay empty. The choice is made for all rows at once, then each
    group's template writes the rows that chose it.
    """
    groups = list(contributions.columns)
    values = contributions.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :count]
    impact = np.take_along_axis(values, order, axis=1)
    # sorted descending with NaN last, so the kept slots are each row's first ones
    keep = impact >= min_contribution
    texts: list[list[str | None]] = [[None] * len(frame) for _ in range(count)]
    view = _RowView(frame)  # only the columns a group's template reads are looked up
    for j, group in enumerate(groups):
        template = TEMPLATES[group]
        rows, slots = np.nonzero((order == j) & keep)
        for position, slot in zip(rows.tolist(), slots.tolist()):
            texts[slot][position] = template(view.at(position))
    impacts = np.full((len(frame), count), np.nan)  # fewer groups than count: the last slots stay empty
    impacts[:, :order.shape[1]] = np.where(keep, impact, np.nan)
    columns: dict[str, object] = {f"reason_{i + 1}": texts[i] for i in range(count)}
    columns.update({f"reason_{i + 1}_impact": impacts[:, i] for i in range(count)})
    return pd.DataFrame(columns, index=frame.index)
