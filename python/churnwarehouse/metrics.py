"""Classification, calibration and ranking metrics for churn probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

CALIBRATION_BINS = 10


def expected_calibration_error(y_true: np.ndarray, probability: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE: count-weighted mean |observed rate - mean probability| over equal-width probability bins."""
    table = calibration_table(y_true, probability, bins)
    if table.empty:
        return float("nan")
    weights = table["row_count"] / table["row_count"].sum()
    return float((weights * (table["observed_rate"] - table["mean_probability"]).abs()).sum())


def calibration_table(y_true: np.ndarray, probability: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Equal-width calibration bins: one row per non-empty bin."""
    y_true = np.asarray(y_true, dtype=float)
    probability = np.asarray(probability, dtype=float)
    index = np.clip((probability * bins).astype(int), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            rows.append({
                "bin_index": b,
                "bin_lower": b / bins,
                "bin_upper": (b + 1) / bins,
                "row_count": int(mask.sum()),
                "mean_probability": float(probability[mask].mean()),
                "observed_rate": float(y_true[mask].mean()),
            })
    return pd.DataFrame(rows, columns=["bin_index", "bin_lower", "bin_upper", "row_count", "mean_probability", "observed_rate"])


def top_share_metrics(y_true: np.ndarray, score: np.ndarray, share: float) -> tuple[float, float]:
    """Lift and capture of the top ``share`` of rows ranked by ``score`` (ties broken stably)."""
    y_true = np.asarray(y_true, dtype=float)
    n_top = max(1, int(round(len(y_true) * share)))
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n_top]
    base_rate = y_true.mean()
    positives = y_true.sum()
    top_rate = y_true[order].mean()
    lift = top_rate / base_rate if base_rate > 0 else float("nan")
    capture = y_true[order].sum() / positives if positives > 0 else float("nan")
    return float(lift), float(capture)


def best_f1_threshold(y_true: np.ndarray, probability: np.ndarray) -> float:
    """The probability threshold that maximizes F1 (the operating threshold)."""
    y_true = np.asarray(y_true, dtype=int)
    candidates = np.unique(np.round(probability, 3))
    best, best_f1 = 0.5, -1.0
    for threshold in candidates:
        predicted = probability >= threshold
        tp = np.sum(predicted & (y_true == 1))
        precision = tp / max(predicted.sum(), 1)
        recall = tp / max((y_true == 1).sum(), 1)
        f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best, best_f1 = float(threshold), f1
    return best


def classification_metrics(y_true: np.ndarray, probability: np.ndarray, threshold: float) -> dict[str, float]:
    """Every metric of the metrics history for one set of labelled predictions."""
    y_true = np.asarray(y_true, dtype=int)
    probability = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
    predicted = probability >= threshold
    tp = float(np.sum(predicted & (y_true == 1)))
    precision = tp / max(predicted.sum(), 1)
    recall = tp / max((y_true == 1).sum(), 1)
    two_classes = len(np.unique(y_true)) == 2
    lift_10, capture_10 = top_share_metrics(y_true, probability, 0.10)
    lift_20, capture_20 = top_share_metrics(y_true, probability, 0.20)
    return {
        "row_count": int(len(y_true)),
        "base_rate": float(y_true.mean()),
        "mean_probability": float(probability.mean()),
        "roc_auc": float(roc_auc_score(y_true, probability)) if two_classes else float("nan"),
        "pr_auc": float(average_precision_score(y_true, probability)) if two_classes else float("nan"),
        "brier_score": float(brier_score_loss(y_true, probability)),
        "log_loss": float(log_loss(y_true, probability, labels=[0, 1])),
        "expected_calibration_error": expected_calibration_error(y_true, probability),
        "threshold": float(threshold),
        "precision_at_threshold": float(precision),
        "recall_at_threshold": float(recall),
        "f1_at_threshold": float(0.0 if tp == 0 else 2 * precision * recall / (precision + recall)),
        "lift_top_10pct": lift_10,
        "capture_top_10pct": capture_10,
        "lift_top_20pct": lift_20,
        "capture_top_20pct": capture_20,
    }


def population_stability_index(expected_share: np.ndarray, actual_share: np.ndarray, floor: float = 1e-4) -> float:
    """PSI between two binned distributions (shares summing to 1)."""
    expected = np.maximum(np.asarray(expected_share, dtype=float), floor)
    actual = np.maximum(np.asarray(actual_share, dtype=float), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
