"""Read results folders back: what the HTML report and ``python -m tuner.results`` show.

A results folder of one stage holds ``config.yaml``, ``summary.json``, ``trials.csv`` and
``history.csv`` (and ``pareto.csv`` when the run had several objectives). A two-stage run
(``stages=screen_then_train``) holds ``config.yaml``, ``summary.json``, ``ranking.csv`` and
``best_config.yaml`` at its top, and each stage as a one-stage folder: ``screen/`` and ``train/``.
A run killed before it could summarize has ``config.yaml`` and Ray's state but no
``summary.json``: it loads as incomplete, with no trials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tuner.errors import ConfigError

STAGES = ("screen", "train")


@dataclass
class Run:
    """One results folder, read back."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None  # None: the run was killed before it wrote its summary
    trials: pd.DataFrame
    history: pd.DataFrame
    pareto: pd.DataFrame | None = None  # the non-dominated trials, when there are several objectives
    ranking: pd.DataFrame | None = None  # two-stage: stage two's configs by mean metric
    stages: dict[str, Run] = field(default_factory=dict)  # two-stage: "screen" and "train"

    @property
    def name(self) -> str:
        return self.path.name

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


def is_run(path: Path) -> bool:
    """A folder tuner wrote: it has the resolved config.yaml of a run."""
    return (path / "config.yaml").is_file() and (
        (path / "summary.json").is_file() or (path / "trials.csv").is_file() or any(path.glob("experiment_state-*.json"))
        or (path / "screen").is_dir()
    )


def find_runs(root: Path) -> list[Path]:
    """The results folders directly under ``root`` (stages of a two-stage run excluded)."""
    if not root.is_dir():
        raise ConfigError("storage", f"no folder at {root}", "give the folder that holds the results folders")
    return sorted(p for p in root.iterdir() if p.is_dir() and is_run(p))


def load_run(path: Path) -> Run:
    """Read a results folder; a damaged or foreign one raises ConfigError naming the file."""
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(str(path), "no such results folder", "give a folder that `python -m tuner` printed")
    config = _read_yaml(path / "config.yaml")
    summary = _read_summary(path / "summary.json")
    if (path / "screen").is_dir():
        stages = {name: load_run(path / name) for name in STAGES if (path / name).is_dir()}
        ranking = _read_csv(path / "ranking.csv") if (path / "ranking.csv").exists() else None
        screen = stages["screen"]
        return Run(path, config, summary, screen.trials, screen.history, screen.pareto, ranking, stages)
    if summary is None:
        return Run(path, config, None, pd.DataFrame(), pd.DataFrame())
    trials = _read_csv(path / "trials.csv")
    history = _read_csv(path / "history.csv", allow_empty=True)
    pareto = _read_csv(path / "pareto.csv") if (path / "pareto.csv").exists() else None
    return Run(path, config, summary, trials, history, pareto)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text())
    except OSError:
        raise ConfigError(str(path), "is missing", "give a results folder that `python -m tuner` wrote") from None
    except yaml.YAMLError as err:
        raise ConfigError(str(path), f"is not valid YAML ({str(err).splitlines()[0]})", "restore it") from None
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


def _read_csv(path: Path, allow_empty: bool = False) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        if allow_empty:
            return pd.DataFrame()
        raise ConfigError(str(path), "is empty", "restore it, or rerun the search") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), f"cannot be read ({str(err).splitlines()[0]})", "restore it, or rerun the search") from None
