"""What a run shows while it runs, in place of Ray Tune's tables: one status line (trials done,
stopped early, errored, running and pending; the best value so far and its trial; the time
elapsed and an estimate of the time left) and one short line per trial that ends.

On a terminal the status line is a tqdm line redrawn in place, the trials' lines written above it;
anywhere else (a log file, a pipe, ``ray job logs``) it is a plain line every ``progress_every``
seconds, and nothing prints a control character. ``verbose=true`` brings Ray Tune's own tables
back instead. It is a Ray Tune callback, so a resumed run, which Ray restores with its callbacks,
shows the same.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ray import tune
from tqdm import tqdm

from tuner.trials import STOPPED, ended_status
from tuner.wandb_logger import trial_error

ENDED = ("TERMINATED", "ERROR")
WAITING = ("PENDING", "PAUSED")  # a paused trial (HyperBand) waits for its turn like a new one
REDRAW_S = 1.0  # the terminal line's refresh period


class Progress(tune.Callback):
    """Ray Tune callback printing the status line and a line per ended trial.

    Example::

        tune.RunConfig(callbacks=[Progress("val_acc", "max", max_epochs=10, trials=16, every=30)], verbose=0)
    """

    def __init__(self, metric: str, mode: str, max_epochs: int, trials: int, every: float) -> None:
        self.metric, self.mode, self.max_epochs = metric, mode, max_epochs
        self.planned, self.every = trials, every
        self._line: tqdm | None = None  # the terminal's status line; None off a terminal
        self._start = self._shown = 0.0
        self._results = 0  # results reported since this process started the run: the pace
        self._trials: list[Any] = []

    def setup(self, **info: Any) -> None:
        self._start = self._shown = time.monotonic()
        if sys.stdout.isatty():
            self._line = tqdm(file=sys.stdout, bar_format="{desc}", dynamic_ncols=True, leave=True)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._trials = trials
        now = time.monotonic()
        if now - self._shown >= (REDRAW_S if self._line is not None else self.every):
            self._shown = now
            self._show(self._status(trials, now, self._left(trials, now)))

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any) -> None:
        self._results += 1

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._write(self._ended_line(trial, ""))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._write(self._ended_line(trial, trial_error(trial)))

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._write(f"trial {trial.trial_id} failed ({trial_error(trial)}); retrying from its last checkpoint")

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """The last status line stays; what the run prints next comes below it."""
        trials = trials or self._trials
        line = self._status(trials, time.monotonic(), None)
        if self._line is None:
            print(line, flush=True)
            return
        self._line.set_description_str(line)
        self._line.close()
        self._line = None

    def _show(self, line: str) -> None:
        if self._line is None:
            print(line, flush=True)
        else:
            self._line.set_description_str(line)

    def _write(self, line: str) -> None:
        if self._line is None:
            print(line, flush=True)
        else:
            self._line.write(line, file=sys.stdout)

    def _ended_line(self, trial: Any, error: str) -> str:
        epochs = _epochs(trial)
        status = ended_status(error, epochs, self.max_epochs)
        said = f"trial {trial.trial_id} {status} after {epochs} epoch{'' if epochs == 1 else 's'}"
        if error:
            return f"{said}: {error}"
        best = _best_value(trial, self.metric, self.mode)
        return f"{said}: best {self.metric} {best:.4g}" if best is not None else said

    def _status(self, trials: list[Any], now: float, left: float | None) -> str:
        return status_line(self._counts(trials), self.metric, self._best(trials), now - self._start, left)

    def _counts(self, trials: list[Any]) -> dict[str, int]:
        ended = [t for t in trials if t.status in ENDED]
        stopped = sum(t.status == "TERMINATED" and ended_status("", _epochs(t), self.max_epochs) == STOPPED for t in ended)
        return {
            "done": len(ended),
            "planned": max(self.planned, len(trials)),
            "stopped": stopped,
            "errored": sum(t.status == "ERROR" for t in ended),
            "running": sum(t.status == "RUNNING" for t in trials),
            "pending": sum(t.status in WAITING for t in trials) + max(self.planned - len(trials), 0),
        }

    def _best(self, trials: list[Any]) -> tuple[float, str] | None:
        values = [(value, t.trial_id) for t in trials if (value := _best_value(t, self.metric, self.mode)) is not None]
        if not values:
            return None
        return max(values) if self.mode == "max" else min(values)

    def _left(self, trials: list[Any], now: float) -> float | None:
        """Seconds left, from the epochs an ended trial ran on average and the pace of results so
        far; None until a trial has ended."""
        ended = [_epochs(t) for t in trials if t.status in ENDED]
        if not ended or not self._results:
            return None
        per_trial = sum(ended) / len(ended)
        waiting = sum(t.status in WAITING for t in trials) + max(self.planned - len(trials), 0)
        running = [_epochs(t) for t in trials if t.status == "RUNNING"]
        epochs_left = waiting * per_trial + sum(max(per_trial - epochs, 0) for epochs in running)
        return epochs_left * (now - self._start) / self._results


def status_line(
    counts: dict[str, int], metric: str, best: tuple[float, str] | None, elapsed: float, left: float | None
) -> str:
    """The status line, time first so that a narrow terminal cuts the least needed part:
    ``01:12, ~00:41 left | 5/16 trials done (3 stopped early, 1 errored), 2 running, 9 pending |
    best val_acc 0.8717 (74548_00000)``."""
    clock = tqdm.format_interval(elapsed) + (f", ~{tqdm.format_interval(left)} left" if left is not None else "")
    trials = (
        f"{counts['done']}/{counts['planned']} trials done ({counts['stopped']} stopped early, "
        f"{counts['errored']} errored), {counts['running']} running, {counts['pending']} pending"
    )
    best_so_far = f"best {metric} {best[0]:.4g} ({best[1]})" if best else f"best {metric} -"
    return f"{clock} | {trials} | {best_so_far}"


def _epochs(trial: Any) -> int:
    """The epochs (reports) a trial has made, as Ray Tune keeps count."""
    return int(trial.metric_analysis.get("training_iteration", {}).get("max", 0))


def _best_value(trial: Any, metric: str, mode: str) -> float | None:
    return trial.metric_analysis.get(metric, {}).get(mode)
