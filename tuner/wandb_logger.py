"""Log a tuning run to Weights & Biases: one run per trial and one summary run (logger=wandb).

Each trial gets a W&B run: group = the tuning run (its results folder's name), job_type
"trial", a name made of the trial id and its short params, config = the trial's full config
under dotted keys, one history row per reported epoch (step = epoch), and a summary with the
best and last value of the metric, the epochs run and the status: completed, early_stopped (the
scheduler stopped it before max_epochs), errored or diverged (with the error's last line; the
W&B run is marked failed), as trials.csv says. Runs still open when Ray Tune returns (a trial
HyperBand left paused at its last rung, or unfinished after Ctrl-C) are closed with their
trials.csv status. After the results folder is written, a summary run (job_type "summary") holds
the leaderboard as a W&B Table, the best trial's checkpoint as a model artifact and, when the data
had a test split, the chosen model's test accuracy, macro F1 and confusion matrix (a Table).

A trial keeps one W&B run however often it stops and starts: a pause or a retry in the same
driver keeps the run open; a run resumed by a new driver (resume=) continues it (the same run id,
W&B's resume="allow"), logging only the epochs its W&B run does not hold yet. Offline, each
driver writes its own folder of the run, and `wandb sync` uploads them as one run in order.

Cost: Ray Tune's WandbLoggerCallback starts one logging process per trial. Here every W&B call
is made by one background thread of the driver (a ``Writer``), through W&B's one service
process per driver (several runs per process: ``reinit="create_new"``), so opening a trial's
run costs milliseconds and Ray's event loop never waits on W&B. A run is finished when W&B has
written its file (W&B's service writes it after ``run.finish()`` returns: see wandb_files).

Trouble never costs a trial: any W&B error (init timeout, unreachable server, full disk, a file
not written within logger.timeout) is one warning, W&B is off for the rest of the tuning run,
and the results folder is complete as ever. W&B's files go to ``<results folder>/wandb``; the
API key comes from ``wandb login`` (netrc) or WANDB_API_KEY and is never written by tuner.

Usage (tuner.run and tuner.pipeline do this)::

    tune.RunConfig(callbacks=trial_callbacks(spec), ...)    # [] when W&B is off
    log_tuning_run(spec, trials, summary)                   # after write_results
"""

from __future__ import annotations

import io
import json
import logging
import numbers
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import wandb
from ray import tune
from ray.tune.result import EXPR_PROGRESS_FILE

from tuner import space as space_lib
from tuner import storage, wandb_files
from tuner.outcome import RAY_KEYS
from tuner.results.confusion import CONFUSION_MATRIX
from tuner.results.pareto import pareto_front
from tuner.results.tables import cell
from tuner.spec import RunSpec
from tuner.trials import COMPLETED, STOPPED, TRIAL_ID_DTYPE, UNFINISHED, better, ended_status, error_line, is_missing

log = logging.getLogger(__name__)

_WRITERS: dict[Path, Writer] = {}


@dataclass(frozen=True)
class WandbSettings:
    """What the W&B runs of one tuning run need; small and picklable (Ray saves its callbacks)."""

    mode: str
    project: str
    entity: str | None
    tags: tuple[str, ...]
    notes: str | None
    timeout: float
    results_dir: Path
    remote: str | None  # the bucket URI the results folder is copied to (Ray's trial folders are there)
    metric: str
    metric_mode: str
    max_epochs: int
    base_config: dict[str, Any]
    params: tuple[space_lib.Param, ...]

    @classmethod
    def from_spec(cls, spec: RunSpec) -> WandbSettings:
        logger = spec.logger
        return cls(
            mode=logger["mode"],
            project=logger.get("project", ""),
            entity=logger.get("entity"),
            tags=tuple(logger.get("tags") or ()),
            notes=logger.get("notes"),
            timeout=float(logger.get("timeout", 60)),
            results_dir=spec.results_dir,
            remote=spec.remote,
            metric=spec.metric,
            metric_mode=spec.mode,
            max_epochs=spec.max_epochs,
            base_config=spec.base_config,
            params=tuple(spec.params),
        )

    @property
    def group(self) -> str:
        """The tuning run's name in W&B: its results folder's name, unique per run; a stage of a
        two-stage run (its folder inside the run's, beside the run's config.yaml) adds its own."""
        if (self.results_dir.parent / "config.yaml").is_file():
            return f"{self.results_dir.parent.name}-{self.results_dir.name}"
        return self.results_dir.name

    def init_args(
        self, run_id: str, job_type: str, name: str, config: dict[str, Any], light: bool
    ) -> dict[str, Any]:
        """wandb.init's arguments; ``light`` skips what a trial's run does not need (system
        metrics, machine and git metadata, console capture). A run id W&B already has is
        continued (resume="allow"), so a resumed tuning run keeps its runs."""
        settings = wandb.Settings(
            console="off",
            silent=True,
            init_timeout=self.timeout,
            x_disable_stats=True,
            x_disable_meta=light,
            x_save_requirements=not light,
            disable_git=light,
            save_code=False,
        )
        return dict(
            id=run_id,
            resume="allow",
            project=self.project,
            entity=self.entity,
            group=self.group,
            job_type=job_type,
            name=name[:128],
            tags=list(self.tags) or None,
            notes=self.notes,
            config=config,
            dir=str(self.results_dir),
            mode=self.mode,
            reinit="create_new",
            settings=settings,
        )


def trial_callbacks(spec: RunSpec) -> list[tune.Callback]:
    """The Ray Tune callbacks that log each trial to W&B: none when W&B is off."""
    if spec.logger.get("kind") != "wandb" or spec.logger["mode"] == "disabled":
        return []
    return [WandbCallback(WandbSettings.from_spec(spec))]


class Writer:
    """One thread that makes every W&B call of a tuning run, in the order they were asked for.

    A job that raises turns W&B off for the rest of the run with one warning; later jobs are
    skipped, so a broken W&B costs at most one init timeout, in this thread, not in a trial.
    """

    def __init__(self, settings: WandbSettings) -> None:
        self.settings = settings
        self.failed = False
        self.runs: dict[str, Any] = {}
        self.logged: dict[str, int] = {}  # the last step each trial's W&B run holds, by trial id
        self.summary_url: str | None = None  # online only
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="tuner-wandb", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        """Queue ``job(writer, *args)``; it runs in the writer's thread."""
        self._jobs.put((job, args))

    def close(self, wait: float) -> bool:
        """Run what is queued, then stop; False if that took longer than ``wait`` seconds."""
        self._jobs.put(None)
        self._thread.join(wait)
        return not self._thread.is_alive()

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, args = item
            if self.failed:
                continue
            try:
                job(self, *args)
            except Exception as err:  # W&B's trouble must never reach a trial
                self._give_up(err)

    def _give_up(self, err: Exception) -> None:
        self.failed = True
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        log.warning(
            "warning: W&B logging stopped (%s: %s); the trials go on and their metrics are in %s",
            type(err).__name__, reason, self.settings.results_dir,
        )
        for run in self.runs.values():
            try:
                run.finish(exit_code=1)
            except Exception:  # already broken: the warning above said so
                pass
        self.runs.clear()


def writer_for(settings: WandbSettings) -> Writer:
    """The writer of this tuning run, started on first use."""
    if settings.results_dir not in _WRITERS:
        _WRITERS[settings.results_dir] = Writer(settings)
    return _WRITERS[settings.results_dir]


@dataclass
class _TrialLog:
    """What the driver remembers of a trial: its last epoch, best and last metric."""

    step: int = 0
    best: float | None = None
    last: float | None = None


class WandbCallback(tune.Callback):
    """Ray Tune callback: one W&B run per trial, written by the tuning run's Writer.

    Example::

        tune.RunConfig(callbacks=[WandbCallback(WandbSettings.from_spec(spec))])
    """

    def __init__(self, settings: WandbSettings) -> None:
        self.settings = settings
        self._trials: dict[str, _TrialLog] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self._trials:  # started again after a pause or a retry: same run
            return
        self._trials[trial.trial_id] = _TrialLog()
        name, config = run_identity(self.settings, trial.trial_id, trial.config or {})
        writer_for(self.settings).submit(_start_run, trial.trial_id, name, config)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if trial.trial_id not in self._trials:
            self.on_trial_start(iteration, trials, trial)
        record = self._trials[trial.trial_id]
        step = result_step(result) or record.step + 1
        if step <= record.step:  # replayed after a restore from an older checkpoint
            return
        metrics = {k: v for k, v in result.items() if k not in RAY_KEYS and _is_number(v)}
        self._log(trial, record, [*self._catch_up(trial, record, step - 1), (step, metrics)])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, error="")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, error=trial_error(trial))

    def _catch_up(self, trial: Any, record: _TrialLog, upto: int) -> list[tuple[int, dict[str, Any]]]:
        """The epochs after ``record.step`` up to ``upto`` that the trial ran before this driver
        saw it: a trial resumed by a new driver continues from its checkpoint, past epochs whose
        W&B records may be lost (a killed driver takes the records W&B had not written)."""
        if upto <= record.step:
            return []
        staged = Path(trial.local_path, EXPR_PROGRESS_FILE)  # the driver's copy, when it has one
        rows = progress_rows(staged.read_text() if staged.is_file() else "", record.step, upto)
        stored = trial_file(self.settings, trial.trial_id, EXPR_PROGRESS_FILE)  # in the results folder or bucket
        return rows or progress_rows(stored or "", record.step, upto)

    def _log(self, trial: Any, record: _TrialLog, rows: list[tuple[int, dict[str, Any]]]) -> None:
        for step, metrics in rows:
            value = metrics.get(self.settings.metric)
            if value is not None:
                record.best = value if record.best is None else better(self.settings.metric_mode)(record.best, value)
                record.last = value
            record.step = step
        writer_for(self.settings).submit(_log_epochs, trial.trial_id, rows)

    def _finish(self, trial: Any, error: str) -> None:
        record = self._trials.get(trial.trial_id)
        if record is None:  # never started: nothing in W&B to finish
            return
        rows = self._catch_up(trial, record, result_step(trial.last_result))
        if rows:  # resumed at its last epoch: nothing left to report in this driver
            self._log(trial, record, rows)
        status = ended_status(error, record.step, self.settings.max_epochs)
        metric = self.settings.metric
        summary = {
            "trial_id": trial.trial_id,
            "status": status,
            "epochs": record.step,
            f"best_{metric}": record.best,
            f"last_{metric}": record.last,
        }
        if error:
            summary["error"] = error
        writer_for(self.settings).submit(_finish_run, trial.trial_id, summary, 1 if error else 0)


def result_step(result: dict[str, Any]) -> int:
    """A result's step: its epoch, else Ray's training iteration (0 when it has neither)."""
    return int(result.get("epoch") or result.get("training_iteration") or 0)


def trial_file(settings: WandbSettings, trial_id: str, name: str) -> str | None:
    """The text of a file in a trial's folder, in the results folder or the bucket (None: not there)."""
    if settings.remote:
        location = storage.join(settings.remote, trial_id, name)
        return storage.read_text(location) if storage.exists(location) else None
    path = settings.results_dir / trial_id / name
    return path.read_text() if path.is_file() else None


def progress_rows(progress: str, after: int, upto: int) -> list[tuple[int, dict[str, Any]]]:
    """The (step, metrics) of the results a trial's progress.csv holds for steps after ``after``
    up to ``upto``; a step reported twice (redone after a crash) counts as its last report."""
    if not progress.strip():
        return []
    frame = pd.read_csv(io.StringIO(progress))
    key = "epoch" if "epoch" in frame else "training_iteration"
    frame = frame.drop_duplicates(key, keep="last")
    frame = frame[(frame[key] > after) & (frame[key] <= upto)].sort_values(key)
    columns = [c for c in frame.columns if c not in RAY_KEYS and "/" not in c]  # a/b: nested
    return [
        (int(step), {k: v for k, v in row.items() if _is_number(v) and not is_missing(v)})
        for step, row in zip(frame[key], frame[columns].to_dict("records"))
    ]


def run_identity(settings: WandbSettings, trial_id: str, trial_config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A trial's W&B run name and config, from the config Ray Tune gave the trial."""
    params = space_lib.active(list(settings.params), trial_config)
    return run_name(trial_id, params, settings.params), space_lib.flatten(space_lib.apply(settings.base_config, params))


def trial_run_id(group: str, trial_id: str) -> str:
    """A trial's W&B run id: the same in every driver that runs the trial."""
    return _safe_name(f"{group}-{trial_id}")


def _start_run(writer: Writer, trial_id: str, name: str, config: dict[str, Any]) -> None:
    settings = writer.settings
    settings.results_dir.mkdir(parents=True, exist_ok=True)
    run_id = trial_run_id(settings.group, trial_id)
    logged, _ = _earlier_files(settings, run_id)
    run = wandb.init(**settings.init_args(run_id, "trial", name, config, light=True))
    writer.runs[trial_id] = run
    writer.logged[trial_id] = max(logged, run.step - 1)  # online, W&B knows its last step


def _log_epochs(writer: Writer, trial_id: str, rows: list[tuple[int, dict[str, Any]]]) -> None:
    """Log the rows past the last step the trial's W&B run holds (one row per step, ever)."""
    if trial_id not in writer.runs:
        return
    for step, metrics in rows:
        if step > writer.logged[trial_id]:
            writer.runs[trial_id].log(metrics, step=step)
            writer.logged[trial_id] = step


def _finish_run(writer: Writer, trial_id: str, summary: dict[str, Any], exit_code: int) -> None:
    run = writer.runs.pop(trial_id, None)
    if run is not None:
        run.summary.update(summary)
        _finish(run, exit_code, writer.settings.timeout)


def _finish(run: Any, exit_code: int, timeout: float) -> None:
    """Finish a run and wait until W&B has written its file, at most ``timeout`` seconds.

    run.finish() returns before W&B's service writes the run's records (see wandb_files); a
    results folder or an upload command read before then would find them missing.
    """
    path = Path(run.settings.sync_file)
    run.finish(exit_code=exit_code)
    deadline = time.monotonic() + timeout
    while not wandb_files.is_finished(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"W&B had not written {path} {timeout:g} s after the run finished")
        time.sleep(0.01)


def _earlier_files(settings: WandbSettings, run_id: str) -> tuple[int, bool]:
    """The last step earlier drivers logged to this run, and whether the last of them finished
    it, read from the run's offline files.

    A file without a single record (W&B's header only: its driver was killed before W&B wrote
    the run) is removed: it holds nothing, and `wandb sync` stops at a file it cannot read.
    """
    logged, finished = 0, False
    for path in _run_files(settings, run_id):
        records, problem = wandb_files.read_records(path)
        if not records:
            path.unlink()
            continue
        logged = max(logged, wandb_files.last_step(records))
        finished = wandb_files.ends_with_exit(records, problem)
    return logged, finished


def _run_files(settings: WandbSettings, run_id: str) -> list[Path]:
    """The offline files of one W&B run, oldest first (one per driver that logged to it)."""
    return sorted((settings.results_dir / "wandb").glob(f"offline-run-*/run-{run_id}.wandb"))


def log_tuning_run(spec: RunSpec, trials: pd.DataFrame, summary: dict[str, Any]) -> None:
    """Log the summary run, wait until W&B has written every run's file, and say where offline
    runs are."""
    if spec.logger.get("kind") != "wandb" or spec.logger["mode"] == "disabled":
        return
    settings = WandbSettings.from_spec(spec)
    writer = _WRITERS.pop(settings.results_dir, None) or Writer(settings)
    writer.submit(_summary_run, spec.config, trials.copy(), summary)
    if not writer.close(wait=2 * settings.timeout):
        log.warning(
            "warning: W&B is still busy after %.0f s; it carries on in the background", 2 * settings.timeout
        )
    elif not writer.failed and settings.mode == "offline" and settings.remote:
        folder = storage.join(settings.remote, "wandb")
        print(f"W&B: offline runs in {folder}; upload them from a local copy with: wandb sync <copy>")
    elif not writer.failed and settings.mode == "offline":
        folder = settings.results_dir / "wandb"
        print(f"W&B: offline runs in {folder}; upload them with: wandb sync {folder}")
    elif not writer.failed and writer.summary_url:
        print(f"W&B: {writer.summary_url} (the trials are in group {settings.group})")


def _summary_run(
    writer: Writer, config: dict[str, Any], trials: pd.DataFrame, summary: dict[str, Any]
) -> None:
    settings = writer.settings
    _close_trial_runs(writer, trials)
    run_id = _safe_name(f"{settings.group}-summary")
    logged, _ = _earlier_files(settings, run_id)
    name = f"{settings.group} summary"
    run = wandb.init(**settings.init_args(run_id, "summary", name, space_lib.flatten(config), light=False))
    writer.runs["summary"] = run
    if settings.mode == "online":
        writer.summary_url = run.url
    tables = {"leaderboard": wandb.Table(dataframe=leaderboard_rows(trials, settings))}
    objectives = summary.get("objectives") or []
    if len(objectives) > 1:
        front = pareto_front(trials, objectives)
        tables["pareto"] = wandb.Table(dataframe=front.astype(object).where(front.notna(), None))
    step = max(logged, run.step - 1) + 1  # a resumed run's tables come last
    run.log(tables, step=step)
    best = summary.get("best_trial") or {}
    run.summary.update(
        {
            "num_trials": summary.get("num_trials"),
            "status_counts": summary.get("status_counts"),
            "wall_time_s": summary.get("wall_time_s"),
            "best_trial": best.get("trial_id"),
            f"best_{settings.metric}": best.get(settings.metric),
        }
    )
    _log_test(run, settings.results_dir, summary.get("test") or {}, step)
    checkpoint = best.get("checkpoint") or ""
    if storage.is_uri(checkpoint) or (checkpoint and Path(checkpoint).is_dir()):
        artifact = wandb.Artifact(
            artifact_name(settings.group),
            type="model",
            description=f"best checkpoint of {settings.group} by {settings.metric}",
            metadata={
                "trial_id": best["trial_id"],
                settings.metric: best.get(settings.metric),
                "params": best.get("params"),
            },
        )
        # Referenced in place, not copied: the checkpoint stays in the results folder or bucket.
        if storage.is_uri(checkpoint):
            artifact.add_reference(checkpoint)
        else:  # file by file: add_dir prints a line of its own on the console
            for file in sorted(Path(checkpoint).rglob("*")):
                if file.is_file():
                    artifact.add_file(str(file), name=file.relative_to(checkpoint).as_posix(), policy="immutable")
        run.log_artifact(artifact, aliases=["best"])
    writer.runs.pop("summary")
    _finish(run, 0, settings.timeout)


def _log_test(run: Any, results_dir: Path, test: dict[str, Any], step: int) -> None:
    """The chosen model's figures on the test split and its confusion matrix (rows: true class,
    columns: predicted class), as confusion_matrix.csv holds them."""
    matrix_file = results_dir / CONFUSION_MATRIX
    if "accuracy" not in test or not matrix_file.is_file():
        return
    matrix = pd.read_csv(matrix_file, dtype=TRIAL_ID_DTYPE)
    chosen = matrix[matrix["trial_id"] == str(test["trial_id"])].drop(columns=["trial_id"])
    run.log({"test_confusion_matrix": wandb.Table(dataframe=chosen.reset_index(drop=True))}, step=step)
    run.summary.update({"test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"]})


def _close_trial_runs(writer: Writer, trials: pd.DataFrame) -> None:
    """Close the trial runs Ray Tune never reported as ended, with their trials.csv row; and
    write again, from the results folder, the run of a trial an earlier driver finished when
    W&B's files lack it (that driver was killed before W&B had written them)."""
    settings = writer.settings
    rows = {row["trial_id"]: row for row in trials.to_dict("records")} if "trial_id" in trials else {}
    for trial_id in list(writer.runs):
        row = rows.get(trial_id, {"trial_id": trial_id, "status": UNFINISHED})
        run = writer.runs.pop(trial_id)
        run.summary.update(_row_summary(row, settings.metric))
        _finish(run, _exit_code(row["status"]), settings.timeout)
    if settings.mode != "offline":
        return
    for trial_id, row in rows.items():
        if trial_id in writer.logged or not row.get("epochs"):  # logged here, or never ran
            continue
        logged, finished = _earlier_files(settings, trial_run_id(settings.group, trial_id))
        if not (finished and logged >= row["epochs"]):
            _write_again(writer, row)


def _write_again(writer: Writer, row: dict[str, Any]) -> None:
    """A trial's run from its results folder files: params.json, history.csv, its trials.csv row."""
    settings, trial_id = writer.settings, row["trial_id"]
    trial_config = json.loads(trial_file(settings, trial_id, "params.json") or "{}")
    _start_run(writer, trial_id, *run_identity(settings, trial_id, trial_config))
    history = pd.read_csv(settings.results_dir / "history.csv", dtype=TRIAL_ID_DTYPE)
    history = history[history.trial_id == trial_id].drop(columns="trial_id")
    steps = history.epoch if "epoch" in history else range(1, len(history) + 1)
    metrics = [{k: v for k, v in m.items() if _is_number(v) and not is_missing(v)} for m in history.to_dict("records")]
    _log_epochs(writer, trial_id, [(int(step), m) for step, m in zip(steps, metrics)])
    run = writer.runs.pop(trial_id)
    run.summary.update(_row_summary(row, settings.metric))
    _finish(run, _exit_code(row["status"]), settings.timeout)


def _exit_code(status: str) -> int:
    """W&B shows a run that did not end completed or early_stopped as failed."""
    return 0 if status in (COMPLETED, STOPPED) else 1


def _row_summary(row: dict[str, Any], metric: str) -> dict[str, Any]:
    """A trial run's summary from its trials.csv row (None where the cell is empty)."""
    keys = ["trial_id", "status", "epochs", f"best_{metric}", f"last_{metric}"]
    if not is_missing(row.get("error")) and row.get("error"):
        keys.append("error")
    return {key: None if is_missing(row.get(key)) else row.get(key) for key in keys}


def leaderboard_rows(trials: pd.DataFrame, settings: WandbSettings) -> pd.DataFrame:
    """The trials, best first, with missing values as None so W&B types each column once."""
    column = f"best_{settings.metric}"
    if column in trials:
        trials = trials.sort_values(column, ascending=settings.metric_mode == "min", na_position="last")
    return trials.astype(object).where(trials.notna(), None).reset_index(drop=True)


def run_name(trial_id: str, params: dict[str, Any], space: tuple[space_lib.Param, ...]) -> str:
    """The trial id and its sampled values, short: ``a1b2c_00003 lr=0.0031 batch_size=64``."""
    sampled = space_lib.sampled_names(list(space))
    shown = [f"{name}={cell(value)}" for name, value in params.items() if name in sampled]
    return " ".join([trial_id, *shown])


def artifact_name(group: str) -> str:
    """A valid W&B artifact name for the best model of a tuning run."""
    return _safe_name(f"{group}-best")


def _safe_name(text: str) -> str:
    """Text as a valid W&B run id or artifact name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)


def trial_error(trial: Any) -> str:
    """The last line of a trial's latest error, as trials.csv shows it.

    Ray writes the error next to the trial in the driver's staging folder first (error_file);
    the copy in the results folder (get_error) may not have been synced yet.
    """
    local = Path(trial.error_file) if trial.error_file else None
    error = local.read_text() if local and local.is_file() else trial.get_error()
    return error_line(str(error or "")) or "error"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)

