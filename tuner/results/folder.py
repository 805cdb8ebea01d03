"""Write the results folder of a tuning run and the leaderboard printed at its end.

The folder holds ``config.yaml`` (the resolved config), ``trials.csv`` (one row per trial),
``history.csv`` (every reported epoch of every trial), ``best_config.yaml`` (retrain it with
``python -m tuner.train``), ``summary.json`` and, with several objectives, ``pareto.csv`` (the
non-dominated trials), beside Ray Tune's own trial folders.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from omegaconf import OmegaConf
from ray import tune

from tuner import space as space_lib
from tuner import storage
from tuner.results.pareto import pareto_front
from tuner.run import FINISHED_STATES, Outcome
from tuner.spec import RunSpec
from tuner.trials import NODE_KEY, RAY_KEYS, UNFINISHED, ended_status, is_missing, last_line


def write_results(
    spec: RunSpec,
    trials: pd.DataFrame,
    history: pd.DataFrame,
    wall_time_s: float,
    interrupted: bool = False,
    started: datetime | None = None,
) -> dict[str, Any]:
    """Write every results file and return the summary."""
    folder = spec.results_dir
    folder.mkdir(parents=True, exist_ok=True)
    trials.to_csv(folder / "trials.csv", index=False)
    history.to_csv(folder / "history.csv", index=False)
    if len(spec.objectives) > 1:
        pareto_front(trials, spec.objectives).to_csv(folder / "pareto.csv", index=False)
    best = best_trial(spec, trials)
    if best is not None:
        OmegaConf.save(OmegaConf.create(best_config(spec, best)), folder / "best_config.yaml")
    summary = {
        "name": spec.name,
        "started": (started or datetime.now()).isoformat(timespec="seconds"),
        "search": spec.config["search"]["name"],
        "scheduler": spec.scheduler["type"],
        "metric": spec.metric,
        "mode": spec.mode,
        "objectives": spec.objectives,
        "weights": spec.weights,
        "num_trials": len(trials),
        "status_counts": trials["status"].value_counts().to_dict() if len(trials) else {},
        "interrupted": interrupted,
        "errors": {r.trial_id: r.error for r in trials.itertuples() if r.error} if len(trials) else {},
        "best_trial": _best_summary(spec, best),
        "wall_time_s": round(wall_time_s, 2),
        "results_dir": spec.remote or str(folder),
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def collect_trials(spec: RunSpec, outcome: Outcome) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per trial (params, best/last metrics, epochs, status, error, time, nodes) and
    the long per-epoch history of all trials."""
    rows, histories = [], []
    best_column = f"best_{spec.metric}"
    for result in outcome.grid:
        trial_id = Path(result.path).name
        progress = _progress(result)
        frame = _epochs(progress)
        metrics = [c for c in frame.columns if c not in RAY_KEYS and not c.startswith("config/")]
        params = space_lib.active(spec.params, result.config or {})
        history = frame[metrics].copy()
        history.insert(0, "trial_id", trial_id)
        histories.append(history)
        epochs = len(frame)
        status = _status(outcome.states.get(trial_id), result.error, epochs, spec.max_epochs)
        row = {"trial_id": trial_id, "status": status}
        row |= {name: params.get(name) for name in param_columns(spec)}
        row[best_column] = _best(frame, spec.metric, spec.mode)
        row |= {f"last_{m}": frame[m].iloc[-1] if epochs else None for m in metrics}
        row["epochs"] = epochs
        row["time_s"] = round(float(frame["time_total_s"].iloc[-1]), 2) if epochs else 0.0
        row["error"] = _error_line(result.error)
        row["nodes"] = ";".join(_nodes(progress))
        row["checkpoint"] = _best_checkpoint(result, spec)
        rows.append(row)
    trials = pd.DataFrame(rows)
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    return trials, history


def param_columns(spec: RunSpec) -> list[str]:
    """The sampled parameters: each is a column of trials.csv."""
    return [p.name for p in spec.params if p.type != space_lib.CONSTANT]


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


def _status(state: str | None, error: BaseException | None, epochs: int, max_epochs: int) -> str:
    if error is None and state not in FINISHED_STATES:
        return UNFINISHED
    return ended_status(_error_line(error), epochs, max_epochs)


def _best(frame: pd.DataFrame, metric: str, mode: str) -> float | None:
    if metric not in frame or frame[metric].dropna().empty:
        return None
    return float(frame[metric].max() if mode == "max" else frame[metric].min())


def _error_line(error: BaseException | None) -> str:
    """The last line of a trial's error: the exception message, not Ray's wrapping."""
    if error is None:
        return ""
    return last_line(str(error)) or type(error).__name__


def _best_checkpoint(result: tune.Result, spec: RunSpec) -> str:
    try:
        checkpoint = result.get_best_checkpoint(spec.metric, spec.mode)
    except (RuntimeError, ValueError):
        checkpoint = None
    return storage.location_of(checkpoint, spec.remote) if checkpoint else ""


def best_trial(spec: RunSpec, trials: pd.DataFrame) -> dict[str, Any] | None:
    """The row of the trial with the best value of the metric, errored trials included."""
    column = f"best_{spec.metric}"
    if trials.empty or trials[column].dropna().empty:
        return None
    index = trials[column].idxmax() if spec.mode == "max" else trials[column].idxmin()
    return trials.loc[index].to_dict()


def best_config(spec: RunSpec, best: dict[str, Any]) -> dict[str, Any]:
    """The resolved config with the best trial's parameters as a constant space: one trial."""
    return trial_config(spec.config, spec.params, best, f"{spec.name}-best")


def trial_config(
    config: dict[str, Any], params: list[space_lib.Param], values: Mapping[str, Any], name: str
) -> dict[str, Any]:
    """A config that trains one trial's values alone: the values as a constant space, one
    sample, one stage, no early stopping. ``values`` is a row of trials.csv (or ranking.csv);
    an empty cell is a parameter the trial did not have."""
    searched = [p for p in params if p.type != space_lib.CONSTANT]
    sampled = {p.name: _space_value(p, values.get(p.name)) for p in searched if not is_missing(values.get(p.name))}
    constants = {p.name: p.args["value"] for p in params if p.type == space_lib.CONSTANT}
    config = dict(config)
    config["space"] = constants | space_lib.active(searched, sampled)
    config["num_samples"] = 1
    config["name"] = name
    config["stages"] = {"kind": "single"}
    if not config.get("weights"):  # one trial has no trade-off to search
        config["objectives"] = None
    config["search"] = {"name": "fifo", "searcher": "basic", "scheduler": {"type": "fifo"}}
    return config


def _space_value(param: space_lib.Param, value: Any) -> Any:
    """A cell of a table as the space gives it: a choice as listed (2.0 read back from a CSV is
    the choice 2), an integer distribution's value as an int, numpy scalars as Python's."""
    value = plain(value)
    if param.type in ("choice", "grid"):
        return next((v for v in param.args["values"] if v == value or str(v) == str(value)), value)
    if param.type in ("randint", "qrandint"):
        return int(value)
    return value


def plain(value: Any) -> Any:
    """numpy scalars as plain Python numbers, so the YAML reads as numbers."""
    return value.item() if hasattr(value, "item") else value


def _best_summary(spec: RunSpec, best: dict[str, Any] | None) -> dict[str, Any] | None:
    if best is None:
        return None
    return {
        "trial_id": best["trial_id"],
        spec.metric: best[f"best_{spec.metric}"],
        "params": {n: plain(best[n]) for n in param_columns(spec) if not is_missing(best[n])},
        "epochs": int(best["epochs"]),
        "checkpoint": best["checkpoint"],
    }


def leaderboard(spec: RunSpec, trials: pd.DataFrame, top: int = 10) -> str:
    """The best trials as a text table: params, best metric, epochs run, status."""
    if trials.empty:
        return "no trials ran"
    return leaderboard_table(trials, param_columns(spec), f"best_{spec.metric}", spec.mode, top)


def leaderboard_table(trials: pd.DataFrame, params: list[str], column: str, mode: str, top: int) -> str:
    """The ``top`` trials best first on ``column``, as text: the params trials.csv has, the
    value, epochs run, status; what printed and read-back leaderboards share."""
    shown = trials.sort_values(column, ascending=mode == "min", na_position="last", kind="stable").head(top)
    params = [name for name in params if name in shown]
    table = shown[["trial_id", *params, column, "epochs", "status"]].copy()
    for name in params:
        table[name] = table[name].map(short)
    return table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def short(value: Any) -> str:
    """A param's value in a table cell: 3 significant digits, "-" when the trial had none."""
    if is_missing(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
