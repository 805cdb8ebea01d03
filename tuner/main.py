"""The entry point: compose the Hydra config, validate it, run the search, write the results."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import hydra
import pandas as pd
import ray
from omegaconf import DictConfig, OmegaConf
from ray import tune

from tuner import stages
from tuner.errors import ConfigError
from tuner.results import collect_trials, leaderboard, write_results
from tuner.results.report import write_report
from tuner.run import build_data, check_resources, connect, run
from tuner.search import make_scheduler, make_searcher
from tuner.spec import RunSpec, build_spec
from tuner.sweep import apply_sweep_file
from tuner.wandb_logger import log_tuning_run

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("search", "model", "data", "logger", "cluster", "stages")


def tune_from_config(cfg: DictConfig, results_dir: Path | None = None) -> dict[str, Any]:
    """config -> spec -> Ray Tune run(s) -> results folder; returns the summary.

    With ``resume=<results folder>`` the run saved there continues instead: its own config,
    finished trials kept, unfinished ones continued from their checkpoints.
    """
    resume = cfg.get("resume")
    if resume:
        results_dir, cfg = saved_run(Path(str(resume)))
    cfg = apply_sweep_file(cfg)
    results_dir = results_dir or new_results_dir(cfg)
    if stages.check_stages(cfg) == "screen_then_train":
        summary = tune_two_stages(cfg, results_dir, bool(resume))
    else:
        spec = build_spec(cfg, results_dir)
        searcher, scheduler = make_searcher(spec), make_scheduler(spec)  # their checks run here
        data = prepare(spec)
        summary = tune_stage(spec, searcher, scheduler, data, bool(resume), create=not resume)
    write_report_or_warn(results_dir)
    return summary


def write_report_or_warn(results_dir: Path) -> None:
    """report.html at the end of every run; the results are written already, so a report that
    fails costs a warning, not the run."""
    try:
        print(f"report: {write_report(results_dir)}")
    except Exception as err:  # a bug in the report must not hide the results printed above
        print(
            f"warning: report.html not written ({type(err).__name__}: {err}); "
            f"rebuild it with  python -m tuner.results report {results_dir}",
            file=sys.stderr,
        )


def prepare(spec: RunSpec) -> Any:
    """The last checks before anything is written: the data builds, and Ray can host a trial.
    Returns the data."""
    data = build_data(spec.data)
    connect(spec.cluster)
    check_resources(spec)
    return data


def tune_stage(
    spec: RunSpec, searcher: Any, scheduler: Any, data: Any, resume: bool, create: bool
) -> dict[str, Any]:
    """One search into one results folder (a whole run, or one stage of a two-stage run)."""
    results_dir = spec.results_dir
    if create:  # valid and ready: now the results folder starts
        results_dir.mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(spec.config), results_dir / "config.yaml")
    started, clock = datetime.now(), time.monotonic()
    outcome = run(spec, data, searcher, scheduler, resume=resume)
    trials, history = collect_trials(spec, outcome)
    summary = write_results(spec, trials, history, time.monotonic() - clock, outcome.interrupted, started)
    log_tuning_run(spec, trials, summary)
    print(f"\nLeaderboard of {spec.name} ({spec.metric}, {spec.mode}):\n{leaderboard(spec, trials)}")
    print(f"\nstatus: {summary['status_counts']}  wall time: {summary['wall_time_s']} s")
    print(f"results: {results_dir}")
    return summary


def tune_two_stages(cfg: DictConfig, results_dir: Path, resume: bool) -> dict[str, Any]:
    """stages=screen_then_train: screen/ with the short budget, then train/ with the top-k
    configs and several seeds each; the ranking and the winner at the top of the folder."""
    screen_cfg, train_cfg = stages.screen_config(cfg), stages.train_config(cfg)
    screen_dir, train_dir = results_dir / stages.SCREEN, results_dir / stages.TRAIN
    screen_spec, train_spec = build_spec(screen_cfg, screen_dir), build_spec(train_cfg, train_dir)
    searcher, scheduler = make_searcher(screen_spec), make_scheduler(screen_spec)  # their checks
    data = prepare(screen_spec)  # stage two asks for the same resources per trial
    if not resume:
        results_dir.mkdir(parents=True)
        OmegaConf.save(cfg, results_dir / "config.yaml", resolve=True)
    clock = time.monotonic()
    summaries = {stages.SCREEN: _stage(screen_spec, searcher, scheduler, data)}
    ranking = train_trials = None
    if not summaries[stages.SCREEN]["interrupted"]:
        screen_trials = pd.read_csv(screen_dir / "trials.csv")
        top = stages.top_candidates(screen_spec, screen_trials, cfg.stages.top_k)
        candidates = stages.candidate_values(top, screen_spec)
        print(f"\nstage two: the top {len(candidates)} configs x {cfg.stages.seeds} seeds, {cfg.max_epochs} epochs each")
        spec = stages.train_spec(train_spec, candidates, stages.seeds(cfg))
        summaries[stages.TRAIN] = _stage(spec, make_searcher(spec), make_scheduler(spec), data)
        train_trials = stages.label_candidates(train_dir, top, screen_spec)
        ranking = stages.rank(screen_spec, top, train_trials)
        shown = ranking.drop(columns=["candidate"]).to_string(index=False, float_format=lambda v: f"{v:.4g}")
        print(f"\nRanking of stage two (mean and std over seeds of best {screen_spec.metric}):\n{shown}")
    summary = stages.write_top(
        results_dir, cfg.name, train_spec, summaries, ranking, train_trials,
        time.monotonic() - clock,
    )
    print(f"results: {results_dir}")
    return summary


def _stage(spec: RunSpec, searcher: Any, scheduler: Any, data: Any) -> dict[str, Any]:
    """A stage's summary: read back when it finished earlier, else run or resume it."""
    summary_file = spec.results_dir / "summary.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        if not summary["interrupted"]:
            return summary
    resume = tune.Tuner.can_restore(str(spec.results_dir))
    return tune_stage(spec, searcher, scheduler, data, resume, create=not spec.results_dir.exists())


def saved_run(results_dir: Path) -> tuple[Path, DictConfig]:
    """The folder and config of an earlier run that can be resumed."""
    results_dir = results_dir.expanduser().resolve()
    config = results_dir / "config.yaml"
    two_stage = (results_dir / stages.SCREEN).is_dir()
    if not config.is_file() or not (two_stage or tune.Tuner.can_restore(str(results_dir))):
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
        summary = tune_from_config(cfg)
    except ConfigError as err:
        exit_with(err)
    except KeyboardInterrupt:  # a second Ctrl-C: Ray already saved its state at the first
        print("\nstopped at once; the state of the last snapshot can be resumed", file=sys.stderr)
        sys.exit(130)
    if summary["interrupted"]:
        # Ray prints the trials' log lines it held back (deduplicated) when it disconnects: that
        # first, so the resume command is the last line (of `ray job logs` after `ray job stop`).
        ray.shutdown()
        print(f"interrupted: resume with  python -m tuner resume={summary['results_dir']}")


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
