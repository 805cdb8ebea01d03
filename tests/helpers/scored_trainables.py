"""A trainable that reports through tuner's ``report`` and a score of its metrics, for score=."""

from typing import Callable

from ray import tune

METRICS = ("train_acc", "val_acc")


def overfits(config: dict, data: None, report: Callable[..., None] = tune.report) -> None:
    """val_acc rises 0.05 an epoch, a little higher the more the trial memorizes; train_acc
    pulls away from it by 2 x memorize an epoch."""
    for epoch in range(1, config["max_epochs"] + 1):
        val_acc = 0.5 + 0.05 * epoch + config["memorize"]
        report({"train_acc": val_acc + 2 * config["memorize"] * epoch, "val_acc": val_acc, "epoch": epoch})


def generalization(metrics: dict) -> float:
    """val_acc minus the generalization gap beyond 0.03 (the train_acc above val_acc)."""
    return metrics["val_acc"] - max(0.0, metrics["train_acc"] - metrics["val_acc"] - 0.03)


NOT_A_FUNCTION = 0.5


def two_arguments(metrics: dict, extra: float) -> float:
    """Not a score: it needs more than the metrics."""
    return metrics["val_acc"] + extra
