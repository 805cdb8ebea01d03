"""config -> validated spec -> Ray Tune run(s) -> results folder, for one run or two stages.

``tune_from_config`` is what ``python -m tuner`` (tuner.main), retraining (tuner.retrain) and the
tests call: it validates (tuner.spec), makes the last checks with Ray up (``prepare``), runs each
stage (tuner.run), reads what Ray left (tuner.outcome), writes the results folder
(tuner.results.write), scores the chosen model on the test split and exports it (tuner.evaluation),
logs to W&B and writes the report. A run in a bucket writes its files in a local folder and copies
them beside Ray's (tuner.storage).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from omegaconf import DictConfig, OmegaConf
from ray import tune

from tuner import evaluation, stages, storage
from tuner.errors import ConfigError
from tuner.outcome import collect_trials
from tuner.results.read import OWN_FOLDERS, STAGES
from tuner.results.report import write_report
from tuner.results.tables import model_text, scores_text
from tuner.results.write import leaderboard, write_results
from tuner.run import build_data, can_resume, check_resources, check_shared_folder, connect, run
from tuner.spec import RunSpec, build_spec
from tuner.sweep import apply_sweep_file
from tuner.trials import TRIAL_ID_DTYPE
from tuner.wandb_logger import log_tuning_run

WANDB_FOLDERS = ("wandb", *(f"{stage}/wandb" for stage in STAGES))  # each stage logs to W&B in its folder


def tune_from_config(cfg: DictConfig, results_dir: Path | None = None) -> dict[str, Any]:
    """config -> spec -> Ray Tune run(s) -> results folder; returns the summary.

    With ``resume=<results folder or its URI>`` the run saved there continues instead: its own
    config, finished trials kept, unfinished ones continued from their checkpoints. A given
    ``results_dir`` is the results folder itself, whatever ``storage`` says.
    """
    resume = cfg.get("resume")
    remote = None
    connects = not ray.is_initialized()  # a command line's run, not a test session's or a caller's
    if resume:
        results_dir, remote, cfg = saved_run(str(resume))
    cfg = apply_sweep_file(cfg)
    if results_dir is None:
        results_dir, remote = new_results_dir(cfg)
    try:
        if stages.check_stages(cfg) == "screen_then_train":
            summary = tune_two_stages(cfg, results_dir, remote, bool(resume))
        else:
            spec = build_spec(cfg, results_dir, remote)
            data = prepare(spec)
            summary = tune_stage(spec, data, bool(resume), create=not resume, take_away=True)
        write_report_or_warn(results_dir, remote)
    finally:
        if remote and results_dir.exists():  # however the run ended: its files join Ray's
            publish(results_dir, remote)
    if summary["interrupted"]:
        if connects:  # Ray prints the trials' log lines it held back when it disconnects: first
            ray.shutdown()  # that, so this is the last line (of `ray job logs` after `ray job stop`)
        print(f"interrupted: resume with  python -m tuner resume={remote or results_dir}")
    return summary


def publish(results_dir: Path, remote: str) -> None:
    """Copy a bucket run's own files beside Ray's in the bucket, then drop the local copy; if the
    copy fails, the local one stays and the warning says where."""
    try:
        storage.upload(results_dir, remote)
    except OSError as err:
        print(f"warning: results not copied to {remote} ({err}); they are in {results_dir}", file=sys.stderr)
        return
    shutil.rmtree(results_dir)
    with contextlib.suppress(OSError):  # the staging folder made for it, when now empty
        results_dir.parent.rmdir()


def write_report_or_warn(results_dir: Path, remote: str | None) -> None:
    """report.html at the end of every run; the results are written already, so a report that
    fails costs a warning, not the run."""
    try:
        page = write_report(results_dir, importance=False)  # `tuner.results report` adds it
    except Exception as err:  # a bug in the report must not hide the results printed above
        print(
            f"warning: report.html not written ({type(err).__name__}: {err}); "
            f"rebuild it with  python -m tuner.results report {remote or results_dir}",
            file=sys.stderr,
        )
        return
    print(f"report: {storage.join(remote, page.name) if remote else page}")


def prepare(spec: RunSpec) -> Any:
    """The last checks before anything is written: the storage is there for every node, the data
    builds (for a trainable that takes it), and Ray can host a trial. Returns the data."""
    if spec.remote:
        storage.check_bucket(str(spec.config["storage"]))
    data = build_data(spec.data) if spec.trainable.takes_data else None
    connect(spec.cluster)
    if spec.cluster["kind"] == "remote" and not spec.remote:
        check_shared_folder(Path(str(spec.config["storage"])).expanduser())
    check_resources(spec)
    return data


def tune_stage(spec: RunSpec, data: Any, resume: bool, create: bool, take_away: bool = False) -> dict[str, Any]:
    """One search into one results folder (a whole run, or one stage of a two-stage run); a whole
    run (``take_away``) ends with its best trial on the test split and exported."""
    results_dir = spec.results_dir
    if create:  # valid and ready: now the results folder starts
        results_dir.mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(spec.config), results_dir / "config.yaml")
        sync(results_dir, spec.remote)  # a driver killed from here on leaves a run to resume
    started, clock = datetime.now(), time.monotonic()
    outcome = run(spec, data, resume=resume)
    trials, history = collect_trials(spec, outcome)
    summary = write_results(spec, trials, history, time.monotonic() - clock, outcome.interrupted, started)
    if take_away:  # the search has chosen: only now is the test split looked at
        summary = evaluation.evaluate_best(spec, data, trials, summary)
    log_tuning_run(spec, trials, summary)
    sync(results_dir, spec.remote)
    print(f"\nLeaderboard of {spec.name} ({spec.metric}, {spec.mode}):\n{leaderboard(spec, trials)}")
    print(f"\nstatus: {summary['status_counts']}  wall time: {summary['wall_time_s']} s")
    if take_away:
        print_take_away(summary, spec.remote or str(results_dir))
    print(f"results: {spec.remote or results_dir}")
    return summary


def print_take_away(summary: dict[str, Any], where: str) -> None:
    print(f"test: {scores_text(summary.get('test'))}")
    print(f"model: {model_text(summary.get('model'), where)}")


def sync(results_dir: Path, remote: str | None) -> None:
    """A bucket run's files as they stand, copied to the bucket."""
    if remote:
        storage.upload(results_dir, remote)


def tune_two_stages(cfg: DictConfig, results_dir: Path, remote: str | None, resume: bool) -> dict[str, Any]:
    """stages=screen_then_train: screen/ with the short budget, then train/ with the top-k
    configs and several seeds each; the ranking and the winner at the top of the folder."""
    screen_cfg, train_cfg = stages.screen_config(cfg), stages.train_config(cfg)
    screen_dir, train_dir = results_dir / stages.SCREEN, results_dir / stages.TRAIN
    screen_spec = build_spec(screen_cfg, screen_dir, remote and storage.join(remote, stages.SCREEN))
    train_spec = build_spec(train_cfg, train_dir, remote and storage.join(remote, stages.TRAIN))
    data = prepare(screen_spec)  # stage two asks for the same resources per trial
    if not resume:
        results_dir.mkdir(parents=True)
        OmegaConf.save(cfg, results_dir / "config.yaml", resolve=True)
        sync(results_dir, remote)
    clock = time.monotonic()
    summaries = {stages.SCREEN: _stage(screen_spec, data)}
    ranking = train_trials = None
    spec = train_spec  # without its candidates until stage one has finished
    if not summaries[stages.SCREEN]["interrupted"]:
        screen_trials = pd.read_csv(screen_dir / "trials.csv", dtype=TRIAL_ID_DTYPE)
        top = stages.top_candidates(screen_spec, screen_trials, cfg.stages.top_k)
        candidates = stages.candidate_values(top, screen_spec)
        print(f"\nstage two: the top {len(candidates)} configs x {cfg.stages.seeds} seeds, {cfg.max_epochs} epochs each")
        spec = stages.train_spec(train_spec, candidates, stages.seeds(cfg))
        summaries[stages.TRAIN] = _stage(spec, data)
        train_trials = stages.label_candidates(train_dir, top, screen_spec)
        ranking = stages.rank(screen_spec, top, train_trials)
        shown = ranking.drop(columns=["candidate"]).to_string(index=False, float_format=lambda v: f"{v:.4g}")
        print(f"\nRanking of stage two (mean and std over seeds of best {screen_spec.metric}):\n{shown}")
    summary = stages.write_top(
        results_dir, remote or str(results_dir), cfg.name, {stages.SCREEN: screen_spec, stages.TRAIN: spec},
        summaries, ranking, train_trials, time.monotonic() - clock,
    )
    summary = evaluation.evaluate_winner(spec, data, train_trials, summary, results_dir)
    print_take_away(summary, remote or str(results_dir))
    print(f"results: {remote or results_dir}")
    return summary


def _stage(spec: RunSpec, data: Any) -> dict[str, Any]:
    """A stage's summary: read back when it finished earlier, else run or resume it."""
    summary_file = spec.results_dir / "summary.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        if not summary["interrupted"]:
            return summary
    return tune_stage(spec, data, can_resume(spec), create=not spec.results_dir.exists())


def saved_run(location: str) -> tuple[Path, str | None, DictConfig]:
    """The local folder, bucket URI (None for a folder) and config of an earlier run that can
    be resumed; a bucket run's own files and W&B's are fetched into a fresh local folder."""
    fix = "give the results folder (or its URI) that an interrupted run printed"
    if storage.is_uri(location):
        remote = location.rstrip("/")
        storage.check_bucket(remote, key="resume")
        two_stage = storage.exists(storage.join(remote, stages.SCREEN))
        if not storage.exists(storage.join(remote, "config.yaml")) or not (two_stage or tune.Tuner.can_restore(remote)):
            raise ConfigError("resume", f"no run to resume at {remote}", fix)
        results_dir = storage.download(remote, storage.staging_folder(storage.name(remote)), OWN_FOLDERS)
        for folder in WANDB_FOLDERS:  # the resumed run continues the W&B runs logged so far
            storage.download_tree(storage.join(remote, folder), results_dir / folder)
        return results_dir, remote, OmegaConf.load(results_dir / "config.yaml")
    results_dir = Path(location).expanduser().resolve()
    config = results_dir / "config.yaml"
    two_stage = (results_dir / stages.SCREEN).is_dir()
    if not config.is_file() or not (two_stage or tune.Tuner.can_restore(str(results_dir))):
        raise ConfigError("resume", f"no run to resume at {results_dir}", fix)
    return results_dir, None, OmegaConf.load(config)


def new_results_dir(cfg: DictConfig) -> tuple[Path, str | None]:
    """A fresh results folder named after the run and the time it started, under ``storage``;
    for a bucket, a local folder to write in and the URI it is copied to."""
    run_name = f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if storage.is_uri(cfg.storage):
        return storage.staging_folder(run_name), storage.join(str(cfg.storage), run_name)
    return Path(str(cfg.storage)).expanduser().resolve() / run_name, None
