"""The test split's figures from predictions: the same as scikit-learn's on the same predictions,
and read back from the files a results folder holds."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from tuner.results.confusion import Confusion, confusions, summary_figures, write_test_files
from tuner.trials import TRIAL_ID_DTYPE

CLASSES = ["walking", "upstairs", "downstairs", "sitting", "standing", "lying"]


def predictions(seed: int, windows: int = 300, right: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Labels of five of the six classes ("lying" never occurs), and predictions that are right
    about ``right`` of the time and otherwise any class, "lying" included."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, windows)
    return labels, np.where(rng.random(windows) < right, labels, rng.integers(0, 6, windows))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_figures_equal_scikit_learns_on_the_same_predictions(seed):
    labels, predicted = predictions(seed)
    scores = Confusion.of(labels, predicted, CLASSES)
    np.testing.assert_array_equal(scores.matrix, confusion_matrix(labels, predicted, labels=range(6)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=range(6), zero_division=0)
    table = scores.per_class()
    assert table["class"].tolist() == CLASSES
    np.testing.assert_allclose(table.precision, precision)
    np.testing.assert_allclose(table.recall, recall)
    np.testing.assert_allclose(table.f1, f1)
    np.testing.assert_array_equal(table.support, support)
    assert table.support.iloc[5] == 0 and table.precision.iloc[5] == 0, "lying: predicted, never true"
    assert scores.accuracy == pytest.approx(accuracy_score(labels, predicted))
    assert scores.macro_f1 == pytest.approx(f1_score(labels, predicted, average="macro"))


def test_a_class_neither_true_nor_predicted_stays_out_of_macro_f1_as_in_scikit_learn():
    labels, predicted = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 2])
    scores = Confusion.of(labels, predicted, ["a", "b", "c", "never"])
    assert scores.macro_f1 == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert scores.per_class().f1.iloc[3] == 0


def test_rates_are_each_true_class_row_divided_by_its_windows():
    scores = Confusion.of([0, 0, 0, 1], [0, 0, 1, 1], ["a", "b", "c"])
    rates = scores.rates()
    np.testing.assert_allclose(rates[:2], [[2 / 3, 1 / 3, 0], [0, 1, 0]])
    assert np.isnan(rates[2]).all(), "c has no windows"


def test_predictions_outside_the_classes_are_refused():
    with pytest.raises(ValueError, match="outside 0..1"):
        Confusion.of([0, 1], [0, 2], ["a", "b"])
    with pytest.raises(ValueError, match="one of each per window"):
        Confusion.of([0, 1], [0], ["a", "b"])


def test_the_files_hold_every_trials_figures_and_read_back(tmp_path):
    scores = {f"t{seed}": Confusion.of(*predictions(seed), CLASSES) for seed in (0, 1)}
    write_test_files(tmp_path, scores)
    metrics = pd.read_csv(tmp_path / "test_metrics.csv", dtype=TRIAL_ID_DTYPE)
    assert list(metrics.columns) == ["trial_id", "class", "precision", "recall", "f1", "support"]
    assert metrics.trial_id.tolist() == ["t0"] * 6 + ["t1"] * 6
    pd.testing.assert_frame_equal(
        metrics[metrics.trial_id == "t1"].drop(columns="trial_id").reset_index(drop=True), scores["t1"].per_class()
    )
    matrix = pd.read_csv(tmp_path / "confusion_matrix.csv", dtype=TRIAL_ID_DTYPE)
    assert list(matrix.columns) == ["trial_id", "true", *CLASSES]
    read = confusions(matrix)
    assert list(read) == ["t0", "t1"]
    for trial, expected in scores.items():
        assert read[trial].classes == CLASSES
        np.testing.assert_array_equal(read[trial].matrix, expected.matrix)


def test_the_summary_names_the_exported_trial_and_lists_each_seed():
    scores = {f"t{seed}": Confusion.of(*predictions(seed), CLASSES) for seed in (0, 1)}
    one = summary_figures({"t0": scores["t0"]}, "t0")
    assert one == {
        "trial_id": "t0", "accuracy": scores["t0"].accuracy, "macro_f1": scores["t0"].macro_f1,
        "windows": 300, "classes": CLASSES,
    }
    seeds = summary_figures(scores, "t1", {"t0": 7, "t1": 8})
    assert seeds["trial_id"] == "t1" and seeds["accuracy"] == scores["t1"].accuracy
    assert [(s["trial_id"], s["seed"], s["accuracy"]) for s in seeds["seeds"]] == [
        ("t0", 7, scores["t0"].accuracy), ("t1", 8, scores["t1"].accuracy)
    ]
