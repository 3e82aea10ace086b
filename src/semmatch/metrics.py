"""Evaluation metrics for match probabilities (scikit-learn implementations)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_curve, roc_auc_score


def safe_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC, or NaN when only one class is present (AUC is undefined then)."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, probabilities))


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """AUC, log loss, and accuracy/F1 at 0.5 and at the threshold that maximizes F1."""
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = probabilities >= 0.5
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    f1_scores = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1_scores[:-1])) if len(thresholds) else 0
    best_threshold = float(thresholds[best]) if len(thresholds) else 0.5
    best_predicted = probabilities >= best_threshold
    return {
        "pairs": int(len(labels)),
        "positives": int(labels.sum()),
        "auc": safe_auc(labels, probabilities),
        "log_loss": float(log_loss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "best_f1_threshold": best_threshold,
        "accuracy_at_best_f1": float(accuracy_score(labels, best_predicted)),
        "best_f1": float(f1_score(labels, best_predicted, zero_division=0)),
    }
