"""Stopping rules a user sets beside the scheduler: per trial, ``trial.patience`` (epochs without a
better ``metric``) and ``trial.max_time_s``; per run, ``budget.epochs`` (epochs trained by all
trials together) and ``budget.time_s`` (wall clock). A run that spends its budget ends like a
finished one, with a normal results folder.

``check_stopping`` runs without Ray (tuner.spec calls it); ``make_stopper`` builds one Ray Tune
Stopper (ray.tune.stopper, its public API) for tuner.run. The stopper writes why it stopped each
trial and the run to ``stops.yaml`` in the results folder; ``read_stops`` reads it back for trials.csv.
Ray Tune saves the stopper with its experiment state, so a resumed run goes on counting epochs
and each trial's best; the stopper carries its run time across too (not the pause between), and
writes where the run is resumed (``restoring_into``). Not a .json file: on restore Ray copies every
.json and .pkl file of the results folder aside and writes those copies back while the run goes
on, which would undo what the stopper writes.

Example::

    python -m tuner trial.patience=3 trial.max_time_s=600 budget.epochs=180 budget.time_s=3600
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tuner.errors import ConfigError, check_count, check_positive

if TYPE_CHECKING:
    from tuner.spec import RunSpec

STOPS_FILE = "stops.yaml"
BUDGET_KEYS = ("epochs", "time_s")
_restoring_into: Path | None = None  # the results folder of a run Ray's Tuner.restore is bringing back


def check_stopping(config: dict[str, Any]) -> None:
    """trial.patience and budget.epochs are whole numbers, the times positive; null is off."""
    trial = config["trial"]
    if trial.get("patience") is not None:
        check_count(trial["patience"], "trial.patience", fix="set trial.patience to the epochs a trial may go without improving, or null")
    if trial.get("max_time_s") is not None:
        check_positive(trial["max_time_s"], "trial.max_time_s", fix="set it to seconds per trial, or null")
    budget = config.get("budget") or {}
    if not isinstance(budget, dict):
        raise ConfigError("budget", f"must be a group of epochs and time_s, got {budget!r}", "set budget.epochs=180 or budget.time_s=3600")
    for key in budget:
        if key not in BUDGET_KEYS:
            raise ConfigError(f"budget.{key}", "is not a budget", f"use budget.{' or budget.'.join(BUDGET_KEYS)}")
    if budget.get("epochs") is not None:
        check_count(budget["epochs"], "budget.epochs", fix="set it to the epochs all trials may train together, or null")
    if budget.get("time_s") is not None:
        check_positive(budget["time_s"], "budget.time_s", fix="set it to the run's seconds, or null")


class StopRules:
    """The four rules, asked by Ray Tune after every result (``__call__``: does this trial stop?)
    and between results (``stop_all``: does the run stop?), as a ray.tune.stopper.Stopper is.
    Plain Python: make_stopper makes it a Stopper."""

    def __init__(self, rules: dict[str, Any], metric: str, mode: str, path: Path) -> None:
        self.patience, self.max_time_s = rules["patience"], rules["max_time_s"]
        self.budget_epochs, self.budget_time_s = rules["epochs"], rules["time_s"]
        self.metric, self.sign = metric, 1 if mode == "max" else -1
        self.path = path
        self.best: dict[str, tuple[float, int]] = {}  # trial -> (best value, signed to max; its epoch)
        self.epochs = 0  # trained by all trials together
        self.iterations: dict[str, int] = {}  # each trial's last
        self.earlier_s = 0.0  # run time before the run was interrupted and resumed
        self.started = time.monotonic()
        self.spent = ""  # why the budget is spent, once it is

    def __getstate__(self) -> dict[str, Any]:
        """What Ray Tune saves with its experiment state: the run time so far, not a clock reading
        (a resumed run's clock is another process's, maybe another machine's)."""
        return self.__dict__ | {"earlier_s": self.elapsed_s()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.started = time.monotonic()
        if _restoring_into is not None:  # a bucket run is resumed in a fresh local folder
            self.path = _restoring_into / STOPS_FILE

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        iteration = result.get("training_iteration", 0)
        if not (result.get("done") and iteration == self.iterations.get(trial_id)):  # Ray's repeat of the last
            self.epochs += 1
        self.iterations[trial_id] = iteration
        reason = self.trial_reason(trial_id, result)
        if reason:
            record_stop(self.path, trial_id, reason)
        return bool(reason) or self.stop_all()

    def elapsed_s(self) -> float:
        return self.earlier_s + time.monotonic() - self.started

    def stop_all(self) -> bool:
        if self.spent:
            return True
        self.spent = self.budget_reason()
        if self.spent:
            record_stop(self.path, None, self.spent)
        return bool(self.spent)

    def trial_reason(self, trial_id: str, result: dict[str, Any]) -> str:
        epoch = result.get("training_iteration", 0)
        if self.patience is not None and self.metric in result:
            value = self.sign * float(result[self.metric])
            best, at = self.best.get(trial_id, (float("-inf"), 0))
            if value > best:
                self.best[trial_id] = best, at = value, epoch
            if epoch - at >= self.patience:
                return f"trial.patience: no better {self.metric} for {epoch - at} epochs"
        if self.max_time_s is not None and result.get("time_total_s", 0) >= self.max_time_s:
            return f"trial.max_time_s: it took {result['time_total_s']:.1f} s >= {self.max_time_s:g} s"
        return ""

    def budget_reason(self) -> str:
        if self.budget_epochs is not None and self.epochs >= self.budget_epochs:
            return f"budget.epochs: the run trained {self.epochs} epochs >= {self.budget_epochs}"
        elapsed = self.elapsed_s()
        if self.budget_time_s is not None and elapsed >= self.budget_time_s:
            return f"budget.time_s: the run took {elapsed:.1f} s >= {self.budget_time_s:g} s"
        return ""


def make_stopper(spec: RunSpec) -> Any:
    """The run's Stopper, or None when no rule is set."""
    from ray.tune.stopper import Stopper

    trial, budget = spec.config["trial"], spec.config.get("budget") or {}
    rules = {
        "patience": trial.get("patience"), "max_time_s": trial.get("max_time_s"),
        "epochs": budget.get("epochs"), "time_s": budget.get("time_s"),
    }
    if all(rule is None for rule in rules.values()):
        return None

    class RulesStopper(StopRules, Stopper):
        """StopRules as Ray Tune takes a stopper: only a subclass of its Stopper has stop_all asked."""

    return RulesStopper(rules, spec.metric, spec.mode, spec.results_dir / STOPS_FILE)


@contextmanager
def restoring_into(results_dir: Path) -> Iterator[None]:
    """Around Ray Tune's restore and run of a resumed run: the stoppers it unpickles from its
    saved state write to ``results_dir``, which may not be where the run started."""
    global _restoring_into
    _restoring_into = Path(results_dir)
    try:
        yield
    finally:
        _restoring_into = None


def record_stop(path: Path, trial_id: str | None, reason: str) -> None:
    """Write down why a trial (None: the whole run) was stopped; the first reason stays."""
    stops = read_stops(path.parent)
    if trial_id is None:
        stops["run"] = stops["run"] or reason
    else:
        stops["trials"].setdefault(trial_id, reason)
    path.write_text(yaml.safe_dump(stops, sort_keys=False))


def read_stops(results_dir: Path) -> dict[str, Any]:
    """What the run's stopper stopped: {"run": why the run ended early or None, "trials": {trial
    id: why it stopped}}."""
    path = Path(results_dir) / STOPS_FILE
    return yaml.safe_load(path.read_text()) if path.is_file() else {"run": None, "trials": {}}
