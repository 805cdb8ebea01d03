"""Read results folders back: what the HTML report and ``python -m tuner.results`` show.

A results folder of one stage holds ``config.yaml``, ``summary.json``, ``trials.csv`` and
``history.csv`` (and ``pareto.csv`` when the run had several objectives). A two-stage run
(``stages=screen_then_train``) holds ``config.yaml``, ``summary.json``, ``ranking.csv`` and
``best_config.yaml`` at its top, and each stage as a one-stage folder: ``screen/`` and ``train/``.
A whole run (one-stage or two-stage) whose data had a test split also holds ``test_metrics.csv``
and ``confusion_matrix.csv`` (tuner.results.confusion). A run killed before it could summarize
has ``config.yaml`` and Ray's state but no ``summary.json``: it loads as incomplete, with no
trials. ``trial_config`` rebuilds, for any trial, the config that retrains it, as
``best_config.yaml`` does for the best.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from tuner import space as space_lib
from tuner.errors import ConfigError, first_line
from tuner.results import write
from tuner.results.confusion import CONFUSION_MATRIX, TEST_METRICS
from tuner.trials import TRIAL_ID_DTYPE

STAGES = ("screen", "train")  # the stages of a two-stage run, each a one-stage folder
OWN_FOLDERS = (*STAGES, "retrain")  # what of a results folder is tuner's, beside Ray's trial folders


@dataclass
class SavedRun:
    """One results folder, read back."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None  # None: the run was killed before it wrote its summary
    trials: pd.DataFrame
    history: pd.DataFrame
    pareto: pd.DataFrame | None = None  # the non-dominated trials, when there are several objectives
    ranking: pd.DataFrame | None = None  # two-stage: stage two's configs by mean metric
    stages: dict[str, SavedRun] = field(default_factory=dict)  # two-stage: "screen" and "train"
    location: str = ""  # where the run is, when ``path`` is a local copy of it (a bucket URI)
    test_metrics: pd.DataFrame | None = None  # per class (and trial) on the test split
    confusion: pd.DataFrame | None = None  # confusion_matrix.csv

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def where(self) -> str:
        """The run's folder as a user gives it back (``resume=``, ``show``): its URI or path."""
        return self.location or str(self.path)

    @property
    def metric(self) -> str:
        return (self.summary or {}).get("metric") or self.config["metric"]

    @property
    def mode(self) -> str:
        return (self.summary or {}).get("mode") or self.config["mode"]

    @property
    def objectives(self) -> list[dict[str, str]]:
        """[{"metric": ..., "mode": ...}, ...]: the run's metric first."""
        return (self.summary or {}).get("objectives") or [{"metric": self.metric, "mode": self.mode}]

    @property
    def search(self) -> str:
        return str(self.config.get("search", {}).get("name", "?"))

    @property
    def scheduler(self) -> str:
        search = self.config.get("search") or {}
        return str((self.summary or {}).get("scheduler") or (search.get("scheduler") or {}).get("type", "?"))

    @property
    def complete(self) -> bool:
        return self.summary is not None and not self.summary.get("interrupted", False)

    @property
    def started(self) -> datetime:
        stamp = (self.summary or {}).get("started")
        if stamp:
            return datetime.fromisoformat(stamp)
        return datetime.fromtimestamp((self.path / "config.yaml").stat().st_mtime)

    @property
    def best(self) -> dict[str, Any] | None:
        """summary.json's best trial (two-stage: the winner of stage two, with its mean)."""
        return (self.summary or {}).get("best_trial")

    @property
    def test(self) -> dict[str, Any] | None:
        """summary.json's figures on the test split, or {"skipped": why}; None before tuner
        evaluated test splits."""
        return (self.summary or {}).get("test")

    @property
    def model(self) -> dict[str, Any] | None:
        """summary.json's exported model: its file name and what it holds, or {"skipped": why}."""
        return (self.summary or {}).get("model")


def is_run(path: Path) -> bool:
    """A folder tuner wrote: its config.yaml beside Ray's state, or results files (whose
    config.yaml may be gone: such a folder loads as damaged rather than being skipped)."""
    results = (path / "summary.json").is_file() or (path / "trials.csv").is_file()
    state = any(path.glob("experiment_state-*.json")) or (path / "screen").is_dir()
    return results or ((path / "config.yaml").is_file() and state)


def find_runs(root: Path) -> list[Path]:
    """The results folders directly under ``root`` (stages of a two-stage run excluded)."""
    if not root.is_dir():
        raise ConfigError("storage", f"no folder at {root}", "give the folder that holds the results folders")
    return sorted(p for p in root.iterdir() if p.is_dir() and is_run(p))


def load_run(path: Path) -> SavedRun:
    """Read a results folder; a damaged or foreign one raises ConfigError naming the file."""
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(str(path), "no such results folder", "give a folder that `python -m tuner` printed")
    config = _read_yaml(path / "config.yaml")
    summary = _read_summary(path / "summary.json")
    test = {"test_metrics": _optional_csv(path / TEST_METRICS), "confusion": _optional_csv(path / CONFUSION_MATRIX)}
    if (path / "screen").is_dir():
        stages = {name: load_run(path / name) for name in STAGES if (path / name).is_dir()}
        ranking = _optional_csv(path / "ranking.csv")
        screen = stages["screen"]
        return SavedRun(path, config, summary, screen.trials, screen.history, screen.pareto, ranking, stages, **test)
    if summary is None:
        return SavedRun(path, config, None, pd.DataFrame(), pd.DataFrame())
    trials = _read_trials(path / "trials.csv", summary["num_trials"])
    history = _read_csv(path / "history.csv", allow_empty=True)
    return SavedRun(path, config, summary, trials, history, _optional_csv(path / "pareto.csv"), **test)


def space_params(run: SavedRun) -> list[space_lib.Param]:
    """The run's search space as tuner parsed it (two-stage: the space stage one searched)."""
    config = run.stages["screen"].config if run.stages else run.config
    return space_lib.parse_space(config.get("space") or {})


def param_names(run: SavedRun) -> list[str]:
    """The searched parameters: the trials.csv columns that hold each trial's sampled values."""
    return space_lib.sampled_names(space_params(run))


def metric_column(run: SavedRun, metric: str) -> str:
    """The trials.csv column that scores trials on ``metric``: the best value over epochs for
    the run's own metric, the last epoch's value for any other."""
    for column in (f"best_{metric}", f"last_{metric}"):
        if column in run.trials:
            return column
    reported = sorted(c.removeprefix("last_") for c in run.trials.columns if c.startswith("last_"))
    raise ConfigError("metric", f"'{metric}' is not in {run.path / 'trials.csv'}", f"use one of: {', '.join(reported)}")


def ranked(run: SavedRun, metric: str, mode: str) -> pd.DataFrame:
    """The trials best first on ``metric`` (ties in trial order, trials without it last)."""
    return run.trials.sort_values(metric_column(run, metric), ascending=mode == "min", na_position="last", kind="stable")


def read_best_config(run: SavedRun) -> dict[str, Any]:
    """best_config.yaml: the config that retrains the run's best trial."""
    path = run.path / "best_config.yaml"
    if not path.is_file():
        raise ConfigError(str(path), f"is missing (no trial reported {run.metric})", "rerun the search")
    return _read_yaml(path)


def trial_config(run: SavedRun, values: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A config that trains one trial's params alone, as best_config.yaml does the best one's;
    ``values`` is a row of trials.csv or ranking.csv."""
    return write.trial_config(run.config, space_params(run), values, name)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text())
    except OSError:
        raise ConfigError(str(path), "is missing", "give a results folder that `python -m tuner` wrote") from None
    except yaml.YAMLError as err:
        raise ConfigError(str(path), f"is not valid YAML ({first_line(err)})", "restore it") from None
    if not isinstance(config, dict):
        raise ConfigError(str(path), "is not a tuner config", "restore it")
    return config


def _read_summary(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(str(path), f"cannot be read ({err})", "restore it, or rerun the search") from None
    if not isinstance(summary, dict) or "num_trials" not in summary:
        raise ConfigError(str(path), "is not a tuner summary", "restore it, or rerun the search")
    return summary


def _read_trials(path: Path, num_trials: int) -> pd.DataFrame:
    """trials.csv, checked against the summary: a file cut short still parses (fewer rows, empty
    cells), so count its rows and look for the newline that every complete file ends with."""
    fix = "restore it, or rerun the search"
    trials = _read_csv(path, allow_empty=num_trials == 0)
    if len(trials) != num_trials:
        raise ConfigError(str(path), f"holds {len(trials)} trials where summary.json counts {num_trials}", fix)
    if not path.read_bytes().endswith(b"\n"):
        raise ConfigError(str(path), "is cut short (its last line is incomplete)", fix)
    missing = [c for c in ("trial_id", "status", "epochs") if c not in trials]
    if num_trials and missing:
        raise ConfigError(str(path), f"is not a tuner trials table (no {', '.join(missing)} column)", fix)
    return trials


def _optional_csv(path: Path) -> pd.DataFrame | None:
    return _read_csv(path) if path.exists() else None


def _read_csv(path: Path, allow_empty: bool = False) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=TRIAL_ID_DTYPE)
    except pd.errors.EmptyDataError:
        if allow_empty:
            return pd.DataFrame()
        raise ConfigError(str(path), "is empty", "restore it, or rerun the search") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), f"cannot be read ({first_line(err)})", "restore it, or rerun the search") from None
