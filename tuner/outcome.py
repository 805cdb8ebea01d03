"""What a Ray Tune run left, as tables: one row per trial and the history of every epoch.

Read from Ray's own records (its saved experiment state, each trial's progress.csv and best
checkpoint), in the results folder or in the bucket; tuner.results writes the tables out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS

from tuner import space as space_lib
from tuner import storage
from tuner.search import SCHEDULERS
from tuner.spec import RunSpec
from tuner.stopping import read_stops
from tuner.trials import NODE_KEY, STOPPED, UNFINISHED, better, ended_status, error_line

# HyperBand can end a run with a trial PAUSED at its last rung: it is done, not waiting.
FINISHED_STATES = ("TERMINATED", "ERROR", "PAUSED")
# The keys of a result that are bookkeeping (Ray's, and the node tuner adds), not metrics.
RAY_KEYS = set(AUTO_RESULT_KEYS) | {"done", "should_checkpoint", "experiment_tag", "trial_id", NODE_KEY}


@dataclass
class Outcome:
    """What Ray Tune left: its results, each trial's final state, and whether it was cut short."""

    grid: tune.ResultGrid
    states: dict[str, str]
    interrupted: bool


def trial_states(experiment: str) -> dict[str, str]:
    """Each trial's state as Ray Tune last saved it (TERMINATED, ERROR, RUNNING, PENDING, ...).

    Read from the saved experiment state: after an interrupt Ray stops the trials it held in
    memory and marks them terminated, but the state it saved first tells which were unfinished.
    """
    analysis = tune.ExperimentAnalysis(experiment)
    return {trial.trial_id: trial.status for trial in analysis.trials}


def collect_trials(spec: RunSpec, outcome: Outcome) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per trial (params, best/last metrics, epochs, status, error, time, nodes) and
    the long per-epoch history of all trials."""
    rows, histories = [], []
    best_column = f"best_{spec.metric}"
    stops = read_stops(spec.results_dir)
    for result in outcome.grid:
        trial_id = Path(result.path).name
        progress = _progress(result)
        frame = _epochs(progress)
        metrics = [c for c in frame.columns if c not in RAY_KEYS and not c.startswith("config/")]
        params = space_lib.active(spec.params, result.config or {})
        history = frame[metrics].copy()
        history.insert(0, "trial_id", trial_id)
        histories.append(history)
        epochs = _epochs_reached(frame)
        error = error_line(result.error)
        row = {"trial_id": trial_id, "status": _status(outcome.states.get(trial_id), error, epochs, spec.max_epochs)}
        row |= {name: params.get(name) for name in space_lib.sampled_names(spec.params)}
        row[best_column] = _best(frame, spec.metric, spec.mode)
        row |= {f"last_{m}": frame[m].iloc[-1] if epochs else None for m in metrics}
        row["epochs"] = epochs
        row["time_s"] = round(float(frame["time_total_s"].iloc[-1]), 2) if epochs else 0.0
        row["error"] = error
        row["stop_reason"] = _stop_reason(row["status"], stops, trial_id, spec)
        row["nodes"] = ";".join(_nodes(progress))
        row["checkpoint"] = _best_checkpoint(result, spec)
        rows.append(row)
    trials = pd.DataFrame(rows)
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    return trials, history


def _progress(result: tune.Result) -> pd.DataFrame | None:
    """Every result a trial reported. Read from its progress.csv (in the bucket, for a bucket
    run), which a retried trial extends, where Ray's result.json starts over when the trial
    resumes on another actor."""
    try:
        with result.filesystem.open_input_stream(f"{result.path}/progress.csv") as source:
            return pd.read_csv(source)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return result.metrics_dataframe


def _nodes(progress: pd.DataFrame | None) -> list[str]:
    """The nodes a trial reported from, in order: more than one when it moved after a loss."""
    if progress is None or NODE_KEY not in progress:
        return []
    return list(dict.fromkeys(progress[NODE_KEY].dropna()))


def _epochs(frame: pd.DataFrame | None) -> pd.DataFrame:
    """One row per training iteration: after a crash, the epochs redone from the last
    checkpoint replace the reports the crash left behind."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    step = "epoch" if "epoch" in frame else "training_iteration"
    return frame.drop_duplicates(step, keep="last").sort_values(step).reset_index(drop=True)


def _epochs_reached(frame: pd.DataFrame) -> int:
    """The training iteration a trial reached (Ray counts on from a restored checkpoint). Not its
    row count: a killed driver's last upload to a bucket can miss the rows before the checkpoint
    the trial resumed from."""
    if frame.empty:
        return 0
    return int(frame["training_iteration" if "training_iteration" in frame else "epoch"].iloc[-1])


def _status(state: str | None, error: str, epochs: int, max_epochs: int) -> str:
    if not error and state not in FINISHED_STATES:
        return UNFINISHED
    return ended_status(error, epochs, max_epochs)


def _stop_reason(status: str, stops: dict, trial_id: str, spec: RunSpec) -> str:
    """Why an early-stopped trial stopped: a stopping rule, the run's budget, or the scheduler."""
    if status != STOPPED:
        return ""
    return stops["trials"].get(trial_id) or stops["run"] or f"search.scheduler.type={spec.scheduler['type']}"


def _best(frame: pd.DataFrame, metric: str, mode: str) -> float | None:
    if metric not in frame or frame[metric].dropna().empty:
        return None
    return float(better(mode)(frame[metric].dropna()))


def _best_checkpoint(result: tune.Result, spec: RunSpec) -> str:
    """The trial's best checkpoint by the metric; under PBT and PB2 its last one: a trial that
    exploited another took that trial's config (its model too), and only the checkpoints after
    the last exploit were trained under the config trials.csv shows."""
    if SCHEDULERS[spec.scheduler["type"]].explores:
        return storage.location_of(result.checkpoint, spec.remote) if result.checkpoint else ""
    try:
        checkpoint = result.get_best_checkpoint(spec.metric, spec.mode)
    except (RuntimeError, ValueError):
        checkpoint = None
    return storage.location_of(checkpoint, spec.remote) if checkpoint else ""
