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

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import expit

from churnwarehouse.modeling import BinnedTrees, parallel_map, prepare_features

REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "recency": ("days_since_last_order", "purchase_gap_overdue_ratio", "expected_purchases_next_horizon",
                "probability_alive", "probability_no_purchase_next_horizon"),
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


class _Rows:
    """The rows that chose a reason group, column by column: numbers as float arrays (NaN when
    missing or when the frame lacks the column), other values as object arrays (None when
    missing)."""

    def __init__(self, frame: pd.DataFrame, positions: np.ndarray):
        self._frame, self._positions = frame, positions

    def __len__(self) -> int:
        return len(self._positions)

    def number(self, column: str) -> np.ndarray:
        if column not in self._frame.columns:
            return np.full(len(self), np.nan)
        return self._frame[column].to_numpy(dtype="float64", na_value=np.nan)[self._positions]

    def value(self, column: str) -> np.ndarray:
        if column not in self._frame.columns:
            return np.full(len(self), None, dtype=object)
        values = self._frame[column].iloc[self._positions].astype(object)
        return np.array(values.where(values.notna(), None).tolist(), dtype=object)


def _text(values: np.ndarray, write: Callable[[float], str]) -> np.ndarray:
    """``write`` applied to each value (as a Python number, so the text is exactly what an
    f-string gives), once per distinct value."""
    if len(values) == 0:
        return np.empty(0, dtype=object)
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([write(value) for value in distinct.tolist()], dtype=object)[inverse]


def _known(values: np.ndarray) -> np.ndarray:
    return ~np.isnan(values)


def _or_zero(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), 0.0, values)


def _plural(n: float, word: str) -> str:
    n = int(round(n))
    return f"{n} {word}" + ("" if n == 1 else "s")


def _falling(recent: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Both known and the prior period higher."""
    return _known(recent) & _known(prior) & (prior > recent)


def _figure(values: np.ndarray, write: Callable[[float], str], missing: str) -> np.ndarray:
    """One figure's sentence per row, or ``missing`` where the figure is."""
    out = np.full(len(values), missing, dtype=object)
    known = _known(values)
    out[known] = _text(values[known], write)
    return out


def _recency(rows: _Rows) -> np.ndarray:
    days, ratio = rows.number("days_since_last_order"), rows.number("purchase_gap_overdue_ratio")
    out = _figure(days, lambda v: f"no order for {int(v)} days", "long time since the last order")
    overdue = _known(days) & (ratio >= 1.2)
    out[overdue] += _text(ratio[overdue], lambda v: f", {v:.1f}x the usual gap")
    return out


def _order_rhythm(rows: _Rows) -> np.ndarray:
    recent, prior = rows.number("order_count_90d"), rows.number("order_count_prior_90d")
    orders, gap = rows.number("order_count"), rows.number("mean_purchase_gap_days")
    falling = _falling(recent, prior)
    few = ~falling & _known(orders) & (orders <= 2)
    rare = ~falling & ~few & _known(gap)
    rest = ~(falling | few | rare)
    out = np.empty(len(rows), dtype=object)
    none_since = falling & (recent == 0)
    out[none_since] = _text(prior[none_since], lambda v: f"no order in the last 90 days vs {int(v)} in the 90 before")
    fewer = falling & (recent != 0)
    out[fewer] = (_text(recent[fewer], lambda v: _plural(v, "order"))
                  + _text(prior[fewer], lambda v: f" in the last 90 days vs {int(v)} in the 90 before"))
    out[few] = _text(orders[few], lambda v: f"only {_plural(v, 'order')} so far")
    out[rare] = _text(gap[rare], lambda v: f"orders rarely: one every {v:.0f} days on average")
    out[rest] = _text(_or_zero(recent[rest]), lambda v: f"{_plural(v, 'order')} in the last 90 days")
    return out


def _spend(rows: _Rows) -> np.ndarray:
    recent, prior = rows.number("spend_amount_90d"), rows.number("spend_amount_prior_90d")
    total = rows.number("total_spend_amount")
    falling = _falling(recent, prior)
    out = np.full(len(rows), "low spend", dtype=object)
    nothing = falling & (recent == 0)
    out[nothing] = _text(prior[nothing], lambda v: f"no spend in the last 90 days vs {v:,.0f} in the 90 before")
    less = falling & (recent != 0)
    out[less] = (_text(recent[less], lambda v: f"spent {v:,.0f} in the last 90 days")
                 + _text(prior[less], lambda v: f" vs {v:,.0f} in the 90 before"))
    totals = ~falling & _known(total)
    out[totals] = _text(total[totals], lambda v: f"low spend: {v:,.0f} in total")
    return out


def _seasonality(rows: _Rows) -> np.ndarray:
    last_year = rows.number("order_count_same_window_last_year")
    out = np.full(len(rows), "no history yet for the coming season last year", dtype=object)
    out[last_year == 0] = "no order in the coming season last year"
    some = _known(last_year) & (last_year != 0)
    out[some] = _text(last_year[some], lambda v: f"{_plural(v, 'order')} in the coming season last year")
    return out


def _tenure(rows: _Rows) -> np.ndarray:
    return _figure(rows.number("tenure_days"), lambda v: f"new customer: first order {int(v)} days ago" if v < 90
                   else f"first order {int(v)} days ago", "new customer")


def _returns(rows: _Rows) -> np.ndarray:
    returned, cancelled = _or_zero(rows.number("return_rate")), _or_zero(rows.number("cancellation_rate"))
    out = np.empty(len(rows), dtype=object)
    mostly_returned = returned >= cancelled
    out[mostly_returned] = _text(returned[mostly_returned], lambda v: f"{v:.0%} of orders returned")
    out[~mostly_returned] = _text(cancelled[~mostly_returned], lambda v: f"{v:.0%} of orders cancelled")
    return out


def _discounts(rows: _Rows) -> np.ndarray:
    return _figure(rows.number("discounted_order_share"), lambda v: f"{v:.0%} of orders used a discount",
                   "discount-driven buying")


def _assortment(rows: _Rows) -> np.ndarray:
    return _figure(rows.number("distinct_product_count"), lambda v: f"buys a narrow range: {_plural(v, 'product')}",
                   "narrow range of products")


def _browsing(rows: _Rows) -> np.ndarray:
    days = rows.number("days_since_last_visit")
    recent, prior = rows.number("session_count_30d"), rows.number("session_count_prior_30d")
    away = _known(days) & (days >= 30)
    falling = ~away & _falling(recent, prior)
    rest = ~(away | falling)
    out = np.empty(len(rows), dtype=object)
    out[away] = _text(days[away], lambda v: "no visit in the last year" if v >= 365 else f"no visit for {int(v)} days")
    out[falling] = (_text(recent[falling], lambda v: _plural(v, "visit"))
                    + _text(prior[falling], lambda v: f" in the last 30 days vs {int(v)} before"))
    out[rest] = _text(_or_zero(recent[rest]), lambda v: f"{_plural(v, 'visit')} in the last 30 days")
    return out


def _cart(rows: _Rows) -> np.ndarray:
    return _figure(rows.number("cart_abandonment_rate_90d"),
                   lambda v: f"abandoned {v:.0%} of carts in the last 90 days", "carts left unfinished")


def _reviews(rows: _Rows) -> np.ndarray:
    negative, rating = rows.number("negative_review_count"), rows.number("average_rating")
    sentiment = rows.number("average_sentiment_score")
    has_negative = _known(negative) & (negative != 0)
    rated = _known(rating)
    out = np.full(len(rows), "review history", dtype=object)
    out[~has_negative & ~rated & (sentiment < 0)] = "negative tone in reviews"
    out[has_negative] = _text(negative[has_negative], lambda v: _plural(v, "negative review"))
    both = has_negative & rated
    out[both] += _text(rating[both], lambda v: f", average rating {v:.1f}")
    only_rating = ~has_negative & rated
    out[only_rating] = _text(rating[only_rating], lambda v: f"average rating {v:.1f}")
    return out


def _support(rows: _Rows) -> np.ndarray:
    unresolved = rows.number("unresolved_ticket_count")
    satisfaction, tickets = rows.number("average_satisfaction_score"), rows.number("ticket_count_90d")
    open_tickets = _known(unresolved) & (unresolved != 0)
    rated = ~open_tickets & _known(satisfaction)
    rest = ~(open_tickets | rated)
    out = np.empty(len(rows), dtype=object)
    out[open_tickets] = _text(unresolved[open_tickets], lambda v: _plural(v, "unresolved support ticket"))
    out[rated] = _text(satisfaction[rated], lambda v: f"support satisfaction {v:.1f}/5")
    out[rest] = _text(_or_zero(tickets[rest]), lambda v: f"{_plural(v, 'support ticket')} in the last 90 days")
    return out


def _marketing(rows: _Rows) -> np.ndarray:
    sends, opens = rows.number("send_count_90d"), _or_zero(rows.number("open_count_90d"))
    emailed = _known(sends) & (sends != 0)
    opted_out = ~emailed & np.array([value is False for value in rows.value("is_marketing_opted_in")], dtype=bool)
    out = np.full(len(rows), "no marketing contact in the last 90 days", dtype=object)
    out[opted_out] = "not opted in to marketing"
    out[emailed] = (_text(opens[emailed], lambda v: f"opened {int(v)} of ")
                    + _text(sends[emailed], lambda v: f"{_plural(v, 'email')} in the last 90 days"))
    return out


def _profile(rows: _Rows) -> np.ndarray:
    written: dict[tuple, str] = {}
    out = np.empty(len(rows), dtype=object)
    for i, pair in enumerate(zip(rows.value("country").tolist(), rows.value("preferred_channel").tolist())):
        if pair not in written:
            parts = [str(v) for v in pair if v is not None]
            written[pair] = "customer profile with higher churn" + (f" ({', '.join(parts)})" if parts else "")
        out[i] = written[pair]
    return out


#: One writer per reason group: the sentences of the rows that chose the group, with their own figures.
TEMPLATES: dict[str, Callable[[_Rows], np.ndarray]] = {
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
    features = set(model.input_columns)  # with the stacked BG/NBD baseline, which moves with recency
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


class _BaselineLogits:
    """The stacked baseline's logit for a batch: the rows' own, or for a group that holds the
    baseline column, its retained-customer reference value (None without a stack)."""

    def __init__(self, model, groups: dict[str, list[str]]):
        self.stack = model.stack
        self.moved = {group for group, used in groups.items() if self.stack is not None and self.stack.column in used}
        self.reference = None
        if self.stack is not None:
            value = model.reference_values.get(self.stack.column)
            self.reference = self.stack.baseline_logit(pd.DataFrame({self.stack.column: [value]}))[0]

    def rows(self, batch: pd.DataFrame) -> np.ndarray | None:
        return self.stack.baseline_logit(batch) if self.stack is not None else None

    def group(self, group: str, own: np.ndarray | None) -> np.ndarray | float | None:
        return self.reference if group in self.moved else own


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
        self.model, self.trees, self.baseline = model, trees, _BaselineLogits(model, groups)
        self.plan: dict[str, list[tuple[int, np.ndarray]]] = {}
        for group, used in groups.items():
            is_column = np.zeros(len(trees.positions), dtype=bool)
            is_column[sorted({trees.column(c) for c in used} - {None})] = True
            deltas = [(i, table.perturbation_delta(is_column, reference_bins)) for i, table in enumerate(trees.tables)]
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
        own = self.baseline.rows(batch)

        def perturbed(item: tuple[str, list[tuple[int, np.ndarray]]]) -> np.ndarray:
            group, deltas = item
            group_raw = raw.copy()
            for i, delta in deltas:
                group_raw += delta.take(codes[i])
            return model.calibrated(expit(group_raw), self.baseline.group(group, own))

        # groups side by side (each still adds its trees in order, so the numbers are the same)
        out = dict(zip(self.plan, parallel_map(perturbed, self.plan.items())))
        return model.calibrated(expit(raw), own), out


class _LinearPerturbations:
    """Exact perturbed probabilities for the logistic-regression pipeline, without re-transforming.

    Every preprocessing step is column-wise (imputation with missing indicators, signed log,
    scaling, one-hot), so setting a group's inputs to their reference values replaces only the
    output columns derived from them, and the logit moves by ``(reference - row) @ coef`` over
    those columns. The rows are transformed once per batch instead of once per group.
    """

    def __init__(self, model, reference: np.ndarray, columns: dict[str, np.ndarray], groups: dict[str, list[str]]):
        self.model, self.reference, self.columns = model, reference, columns
        self.baseline = _BaselineLogits(model, groups)

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
        return cls(model, transformed, columns, groups)

    def probabilities(self, batch: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        model = self.model
        transformed = np.asarray(model.pipeline[:-1].transform(
            prepare_features(batch, model.numeric_features, model.categorical_features)), dtype=float)
        estimator = model.pipeline[-1]
        decision = estimator.decision_function(transformed)
        coef = np.ravel(estimator.coef_)
        own = self.baseline.rows(batch)
        out = {}
        for group, columns in self.columns.items():
            moved = decision + (self.reference[columns] - transformed[:, columns]) @ coef[columns]
            out[group] = model.calibrated(expit(moved), self.baseline.group(group, own))
        # the unperturbed probabilities through the model's own path, so they are bitwise the scores
        return model.predict_probability(batch), out


def top_reasons(frame: pd.DataFrame, contributions: pd.DataFrame, count: int = 3,
                min_contribution: float = 0.005) -> pd.DataFrame:
    """The ``count`` largest positive contributions per row, written in plain words.

    A row's reasons are its largest contributions at or above ``min_contribution``, largest
    first; the slots after them stay empty. The choice is made for all rows at once, then each
    group's template writes the rows that chose it, column-wise (each distinct figure is
    formatted once).
    """
    groups = list(contributions.columns)
    values = contributions.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :count]
    impact = np.take_along_axis(values, order, axis=1)
    # sorted descending with NaN last, so the kept slots are each row's first ones
    keep = impact >= min_contribution
    texts = [np.full(len(frame), None, dtype=object) for _ in range(count)]
    with np.errstate(invalid="ignore"):  # comparisons with missing figures are simply false
        for j, group in enumerate(groups):
            rows, slots = np.nonzero((order == j) & keep)
            if len(rows):
                written = TEMPLATES[group](_Rows(frame, rows))
                for slot in range(count):
                    texts[slot][rows[slots == slot]] = written[slots == slot]
    impacts = np.full((len(frame), count), np.nan)  # fewer groups than count: the last slots stay empty
    impacts[:, :order.shape[1]] = np.where(keep, impact, np.nan)
    columns: dict[str, object] = {f"reason_{i + 1}": texts[i].tolist() for i in range(count)}
    columns.update({f"reason_{i + 1}_impact": impacts[:, i] for i in range(count)})
    return pd.DataFrame(columns, index=frame.index)
