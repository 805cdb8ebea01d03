"""The entry point: compose the Hydra config, validate it, run the search, write the results."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import hydra
from omegaconf import DictConfig

from tuner.errors import ConfigError
from tuner.results import collect_trials, leaderboard, write_results
from tuner.run import run
from tuner.spec import build_spec

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("search", "model", "data", "logger", "cluster")


def tune_from_config(cfg: DictConfig, results_dir: Path | None = None) -> dict[str, Any]:
    """config -> spec -> Ray Tune run -> results folder; returns the summary."""
    results_dir = results_dir or new_results_dir(cfg)
    spec = build_spec(cfg, results_dir)
    started = time.monotonic()
    grid = run(spec)
    trials, history = collect_trials(spec, grid)
    summary = write_results(spec, trials, history, time.monotonic() - started)
    print(f"\nLeaderboard ({spec.metric}, {spec.mode}):\n{leaderboard(spec, trials)}")
    print(f"\nstatus: {summary['status_counts']}  wall time: {summary['wall_time_s']} s")
    print(f"results: {results_dir}")
    return summary


def new_results_dir(cfg: DictConfig) -> Path:
    """A fresh folder under ``storage`` named after the run and the time it started."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(str(cfg.storage)).expanduser().resolve() / f"{cfg.name}-{stamp}"


def check_group_options(overrides: Sequence[str]) -> None:
    """Reject `group=option` overrides naming a file that does not exist, before Hydra runs."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or "(" in value:
            continue
        known = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
        for option in value.split(","):
            if option not in known:
                raise ConfigError(key, f"unknown option '{option}'", f"choose one of: {', '.join(known)}")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    try:
        tune_from_config(cfg)
    except ConfigError as err:
        exit_with(err)


def exit_with(err: ConfigError) -> None:
    """A user's mistake: one line on stderr, exit code 2, no stack trace."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    try:
        check_group_options(sys.argv[1:])
    except ConfigError as err:
        exit_with(err)
    hydra_main()
