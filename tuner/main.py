"""The entry point: compose the Hydra config, validate it, run the search, write the results."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import hydra
from omegaconf import DictConfig, OmegaConf
from ray import tune

from tuner.errors import ConfigError
from tuner.results import collect_trials, leaderboard, write_results
from tuner.run import build_data, check_resources, connect, run
from tuner.search import make_scheduler, make_searcher
from tuner.spec import build_spec
from tuner.sweep import apply_sweep_file
from tuner.wandb_logger import log_tuning_run

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("search", "model", "data", "logger", "cluster")


def tune_from_config(cfg: DictConfig, results_dir: Path | None = None) -> dict[str, Any]:
    """config -> spec -> Ray Tune run -> results folder; returns the summary.

    With ``resume=<results folder>`` the run saved there continues instead: its own config,
    finished trials kept, unfinished ones continued from their checkpoints.
    """
    resume = cfg.get("resume")
    if resume:
        results_dir, cfg = saved_run(Path(str(resume)))
    cfg = apply_sweep_file(cfg)
    results_dir = results_dir or new_results_dir(cfg)
    spec = build_spec(cfg, results_dir)
    searcher, scheduler = make_searcher(spec), make_scheduler(spec)  # their checks run here
    data = build_data(spec.data)
    connect(spec.cluster)
    check_resources(spec)
    if not resume:  # valid and ready: now the results folder starts
        results_dir.mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(spec.config), results_dir / "config.yaml")
    started, clock = datetime.now(), time.monotonic()
    outcome = run(spec, data, searcher, scheduler, resume=bool(resume))
    trials, history = collect_trials(spec, outcome)
    summary = write_results(spec, trials, history, time.monotonic() - clock, outcome.interrupted, started)
    log_tuning_run(spec, trials, summary)
    print(f"\nLeaderboard ({spec.metric}, {spec.mode}):\n{leaderboard(spec, trials)}")
    print(f"\nstatus: {summary['status_counts']}  wall time: {summary['wall_time_s']} s")
    print(f"results: {results_dir}")
    if outcome.interrupted:
        print(f"interrupted: resume with  python -m tuner resume={results_dir}")
    return summary


def saved_run(results_dir: Path) -> tuple[Path, DictConfig]:
    """The folder and config of an earlier run that can be resumed."""
    results_dir = results_dir.expanduser().resolve()
    config = results_dir / "config.yaml"
    if not config.is_file() or not tune.Tuner.can_restore(str(results_dir)):
        raise ConfigError(
            "resume",
            f"no run to resume at {results_dir}",
            "give the results folder an interrupted run printed",
        )
    return results_dir, OmegaConf.load(config)


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
    except KeyboardInterrupt:  # a second Ctrl-C: Ray already saved its state at the first
        print("\nstopped at once; the state of the last snapshot can be resumed", file=sys.stderr)
        sys.exit(130)


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
