"""A model's figures on the held-out test split, from its predictions alone: the confusion matrix,
per-class precision, recall and F1, accuracy and macro F1, computed as scikit-learn does (without
its second of import time), and the two files that hold them in a results folder.

``test_metrics.csv`` has one row per evaluated trial and class (precision, recall, f1, support);
``confusion_matrix.csv`` one row per evaluated trial and true class, with the count of windows
predicted as each class in a column named after it. A two-stage run evaluates each seed of its
winner, so both files say which trial each row is of.

Example:
    >>> Confusion.of([0, 1, 1], [0, 1, 0], ["sit", "walk"]).matrix.tolist()
    [[1, 0], [1, 1]]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

TEST_METRICS, CONFUSION_MATRIX = "test_metrics.csv", "confusion_matrix.csv"
PER_CLASS = ("precision", "recall", "f1", "support")


@dataclass(frozen=True)
class Confusion:
    """Window counts by true class (rows) and predicted class (columns)."""

    classes: list[str]
    matrix: np.ndarray  # int [classes, classes]

    @classmethod
    def of(cls, labels: Sequence[int], predictions: Sequence[int], classes: Sequence[str]) -> Confusion:
        """Count each (true, predicted) pair of class indices."""
        labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
        k = len(classes)
        if labels.shape != predictions.shape or labels.ndim != 1:
            raise ValueError(f"{len(labels)} labels and {len(predictions)} predictions: one of each per window")
        outside = (labels < 0) | (labels >= k) | (predictions < 0) | (predictions >= k)
        if outside.any():
            raise ValueError(f"a label or prediction is outside 0..{k - 1} ({k} classes)")
        return cls(list(classes), np.bincount(labels * k + predictions, minlength=k * k).reshape(k, k))

    @property
    def windows(self) -> int:
        return int(self.matrix.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.matrix) / self.matrix.sum())

    @property
    def macro_f1(self) -> float:
        """The unweighted mean of F1 over the classes that occur as a label or a prediction (as
        scikit-learn's f1_score(average="macro") and the trainable's val_f1)."""
        present = (self.matrix.sum(axis=0) + self.matrix.sum(axis=1)) > 0
        return float(self.per_class()["f1"].to_numpy()[present].mean())

    def per_class(self) -> pd.DataFrame:
        """Precision, recall, F1 and support of each class; 0 where a ratio has nothing to divide
        by (a class never predicted, or absent from the test split), as scikit-learn reports."""
        hits = np.diag(self.matrix).astype(float)
        predicted, support = self.matrix.sum(axis=0), self.matrix.sum(axis=1)
        precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
        recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
        both = precision + recall
        f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
        return pd.DataFrame({"class": self.classes, "precision": precision, "recall": recall, "f1": f1, "support": support})

    def rates(self) -> np.ndarray:
        """Each row divided by its total: the share of a true class's windows predicted as each
        class (NaN for a class with no windows)."""
        totals = self.matrix.sum(axis=1, keepdims=True).astype(float)
        return np.divide(self.matrix, totals, out=np.full(self.matrix.shape, np.nan), where=totals > 0)


def write_test_files(folder: Path, scores: dict[str, Confusion]) -> None:
    """test_metrics.csv and confusion_matrix.csv of the evaluated trials, by trial id."""
    metrics = [c.per_class().assign(trial_id=t) for t, c in scores.items()]
    matrices = [
        pd.DataFrame(c.matrix, columns=c.classes).assign(true=c.classes, trial_id=t) for t, c in scores.items()
    ]
    pd.concat(metrics)[["trial_id", "class", *PER_CLASS]].to_csv(folder / TEST_METRICS, index=False)
    matrix = pd.concat(matrices)
    matrix[["trial_id", "true", *next(iter(scores.values())).classes]].to_csv(folder / CONFUSION_MATRIX, index=False)


def confusions(matrix: pd.DataFrame) -> dict[str, Confusion]:
    """confusion_matrix.csv read back, by trial id."""
    return {
        str(trial_id): Confusion(rows["true"].astype(str).tolist(), rows.drop(columns=["trial_id", "true"]).to_numpy())
        for trial_id, rows in matrix.groupby("trial_id", sort=False)
    }


def summary_figures(scores: dict[str, Confusion], chosen: str, seeds: dict[str, int] | None = None) -> dict:
    """summary.json's "test": the chosen (exported) trial's accuracy and macro F1, the windows and
    classes, and with several trials (a two-stage winner's seeds) each one's figures."""
    shown = scores[chosen]
    figures = {
        "trial_id": chosen,
        "accuracy": shown.accuracy,
        "macro_f1": shown.macro_f1,
        "windows": shown.windows,
        "classes": shown.classes,
    }
    if len(scores) > 1:
        figures["seeds"] = [
            {"trial_id": t, "seed": (seeds or {}).get(t), "accuracy": c.accuracy, "macro_f1": c.macro_f1}
            for t, c in scores.items()
        ]
    return figures
