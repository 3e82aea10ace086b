"""Training curves and ROC plots (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from semmatch.fileio import atomic_open  # noqa: E402


def _save(figure, path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)


def plot_training_history(history: list[dict], path: Path) -> None:
    """AUC and loss per epoch, training and validation side by side."""
    epochs = [row["epoch"] for row in history]
    figure, (auc_axis, loss_axis) = plt.subplots(1, 2, figsize=(11, 4))
    auc_axis.plot(epochs, [row["auc"] for row in history], marker="o", label="training")
    auc_axis.plot(epochs, [row["val_auc"] for row in history], marker="o", label="validation")
    auc_axis.set(title="AUC", xlabel="epoch", ylabel="ROC AUC")
    loss_axis.plot(epochs, [row["loss"] for row in history], marker="o", label="training")
    loss_axis.plot(epochs, [row["val_loss"] for row in history], marker="o", label="validation")
    loss_axis.set(title="Binary cross-entropy", xlabel="epoch", ylabel="loss")
    for axis in (auc_axis, loss_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    _save(figure, path)


def plot_validation_auc(history: list[dict], best_epoch: int, path: Path) -> None:
    """Validation AUC per epoch with the best epoch marked."""
    epochs = [row["epoch"] for row in history]
    values = [row["val_auc"] for row in history]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(epochs, values, marker="o", label="validation AUC")
    best_value = values[epochs.index(best_epoch)]
    axis.scatter([best_epoch], [best_value], s=120, color="red", zorder=3,
                 label=f"best: {best_value:.4f} (epoch {best_epoch})")
    axis.set(title="Validation AUC", xlabel="epoch", ylabel="ROC AUC")
    axis.grid(alpha=0.3)
    axis.legend()
    _save(figure, path)


def plot_roc(labels: np.ndarray, probabilities: np.ndarray, auc: float, path: Path) -> None:
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, probabilities)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot(false_positive_rate, true_positive_rate, label=f"AUC {auc:.4f}")
    axis.plot([0, 1], [0, 1], linestyle="--", color="gray")
    axis.set(title="ROC curve", xlabel="false positive rate", ylabel="true positive rate")
    axis.legend(loc="lower right")
    _save(figure, path)
