"""The HAR trainable with a crash injected, to show that retried trials resume, not restart."""

from pathlib import Path
from typing import Callable

from ray import tune

from trainables import har
from trainables.har import METRICS

__all__ = ["METRICS", "har_crashing_once"]


def har_crashing_once(config: dict, data, report: Callable[..., None] = tune.report) -> None:
    """The HAR trainable, killed by an exception right after its second epoch the first time.

    Ray Tune retries the trial (trial.max_failures) from its last checkpoint; the marker file
    makes the crash happen once only.
    """
    marker = Path(config["crash_marker"])

    def report_then_crash(metrics: dict, checkpoint=None) -> None:
        report(metrics, checkpoint=checkpoint)
        if metrics["epoch"] == 2 and not marker.exists():
            marker.touch()
            raise RuntimeError("simulated crash after epoch 2")

    har.train(config, data, report=report_then_crash)
