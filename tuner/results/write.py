"""Write the results folder of a tuning run and the leaderboard printed at its end.

The folder holds ``config.yaml`` (the resolved config), ``trials.csv`` (one row per trial),
``history.csv`` (every reported epoch of every trial), ``best_config.yaml`` (retrain it with
``python -m tuner.retrain``), ``summary.json`` and, with several objectives, ``pareto.csv`` (the
non-dominated trials), beside Ray Tune's own trial folders. The tables come from
tuner.outcome; nothing here needs Ray.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from omegaconf import OmegaConf

from tuner import space as space_lib
from tuner.results.pareto import pareto_front
from tuner.results.tables import leaderboard_table, plain
from tuner.search import NO_SEARCH
from tuner.spec import RunSpec
from tuner.trials import best_label, is_missing


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
    summary = run_summary(
        spec,
        started=started or datetime.now(),
        num_trials=len(trials),
        status_counts=trials["status"].value_counts().to_dict() if len(trials) else {},
        interrupted=interrupted,
        errors={r.trial_id: r.error for r in trials.itertuples() if r.error} if len(trials) else {},
        best=_best_summary(spec, best),
        wall_time_s=wall_time_s,
    )
    write_summary(folder, summary)
    return summary


def run_summary(
    spec: RunSpec,
    *,
    started: datetime | str,
    num_trials: int,
    status_counts: dict[str, int],
    interrupted: bool,
    errors: dict[str, str],
    best: dict[str, Any] | None,
    wall_time_s: float,
) -> dict[str, Any]:
    """What summary.json holds, for one stage or a whole run: how it searched, how its trials
    ended, the best one, and where its results are (a bucket URI or a path)."""
    return {
        "name": spec.name,
        "started": started.isoformat(timespec="seconds") if isinstance(started, datetime) else started,
        "search": spec.config["search"]["name"],
        "scheduler": spec.scheduler["type"],
        "metric": spec.metric,
        "mode": spec.mode,
        "objectives": spec.objectives,
        "weights": spec.weights,
        "score": spec.config.get("score"),
        "num_trials": num_trials,
        "status_counts": status_counts,
        "interrupted": interrupted,
        "errors": errors,
        "best_trial": best,
        "wall_time_s": round(wall_time_s, 2),
        "results_dir": spec.remote or str(spec.results_dir),
    }


def write_summary(folder: Path, summary: dict[str, Any]) -> None:
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


def best_trial(spec: RunSpec, trials: pd.DataFrame) -> dict[str, Any] | None:
    """The row of the trial with the best value of the metric, errored trials included."""
    column = f"best_{spec.metric}"
    if trials.empty or trials[column].dropna().empty:
        return None
    return trials.loc[best_label(trials[column], spec.mode)].to_dict()


def best_config(spec: RunSpec, best: Mapping[str, Any]) -> dict[str, Any]:
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
    config["space"] = space_lib.active(params, constants | sampled)  # a constant of a model not drawn is left out
    config["num_samples"] = 1
    config["name"] = name
    config["stages"] = {"kind": "single"}
    if not config.get("weights"):  # one trial has no trade-off to search
        config["objectives"] = None
    config["search"] = dict(NO_SEARCH)
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


def _best_summary(spec: RunSpec, best: dict[str, Any] | None) -> dict[str, Any] | None:
    if best is None:
        return None
    return {
        "trial_id": best["trial_id"],
        spec.metric: best[f"best_{spec.metric}"],
        "params": {n: plain(best[n]) for n in space_lib.sampled_names(spec.params) if not is_missing(best[n])},
        "epochs": int(best["epochs"]),
        "checkpoint": best["checkpoint"],
    }


def leaderboard(spec: RunSpec, trials: pd.DataFrame, top: int = 10) -> str:
    """The best trials as a text table: params, best metric, epochs run, status."""
    if trials.empty:
        return "no trials ran"
    return leaderboard_table(trials, space_lib.sampled_names(spec.params), f"best_{spec.metric}", spec.mode, top)
