"""Drive one Ray Tune run from a RunSpec: connect to Ray, check what a trial needs, share the
data, fit. What the run left is read by tuner.outcome."""

from __future__ import annotations

import contextlib
import csv
import functools
import logging
import os
import re
import sys
import tempfile
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable

import hydra
import pyarrow.fs
import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback, LoggerCallback
from ray.tune.utils import flatten_dict
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tuner import space as space_lib
from tuner import storage
from tuner.errors import ConfigError
from tuner.outcome import FINISHED_STATES, Outcome, trial_states
from tuner.progress import Progress
from tuner.search import checkpoints_to_keep, make_search
from tuner.spec import OWN_SCORE, SCORE, RunSpec
from tuner.stopping import make_stopper, read_stops, restoring_into
from tuner.trials import NODE_KEY
from tuner.wandb_logger import trial_callbacks

log = logging.getLogger(__name__)
PROGRESS_FILE = "progress.csv"  # the file Ray's readers (ExperimentAnalysis) look for
# Ray's atomic saves (searcher, search generator, callbacks) write `.<uuid>-tmp-<name>`, then rename it.
RAY_TEMP_FILE_GONE = re.compile(r"FileNotFoundError: .*/\.[0-9a-f-]{36}-tmp-")
# Where Ray reports a failed upload of the run's state: when it is forced (the ERROR), or periodic.
STATE_UPLOAD_LOGGERS = ("ray.tune.execution.experiment_state", "ray.train._internal.syncer")


def run(spec: RunSpec, data: Any, resume: bool = False) -> Outcome:
    """Run the search (or resume it from where Ray Tune saved it); trial errors are recorded.

    The caller has connected to Ray (connect) and checked resources (check_resources); a
    resumed run uses its saved searcher and scheduler.
    """
    # Keeping one checkpoint per trial makes Ray snapshot its state on each save, by design.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray's TensorBoard logger costs an import and a write per result; CSV and JSON stay.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    quiet_ray_output(spec.verbose)
    function = trial_function(spec)
    if spec.trainable.takes_data:
        function = tune.with_parameters(function, data=data)
    trainable = tune.with_resources(function, {"cpu": spec.cpus, "gpu": spec.gpus})
    searcher, scheduler, param_space = make_search(spec)
    experiment = experiment_path(spec)
    if resume:
        tuner = tune.Tuner.restore(experiment, trainable, resume_unfinished=True, param_space=param_space)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=spec.metric,
                mode=spec.mode,
                num_samples=spec.num_samples,
                search_alg=searcher,
                scheduler=scheduler,
                trial_dirname_creator=lambda trial: trial.trial_id,
                reuse_actors=True,  # a new trial reuses a finished one's process
            ),
            run_config=tune.RunConfig(
                name=storage.name(experiment),
                storage_path=storage.parent(experiment),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                stop=make_stopper(spec),  # trial.patience, trial.max_time_s, budget.*
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=checkpoints_to_keep(spec),
                    checkpoint_score_attribute=spec.metric,
                    checkpoint_score_order=spec.mode,
                ),
                callbacks=[
                    ProgressLogger(),
                    JsonLoggerCallback(),  # params.json: the config each trial got
                    *trial_callbacks(spec),
                    *([] if spec.verbose else [Progress(spec.metric, spec.mode, spec.max_epochs, spec.expected_trials, spec.progress_every)]),
                ],
                verbose=1 if spec.verbose else 0,
            ),
        )
    with restoring_into(spec.results_dir) if resume else contextlib.nullcontext():  # Ray brings back its stopper
        grid = tuner.fit()
    states = trial_states(experiment)
    unfinished = any(state not in FINISHED_STATES for state in states.values())
    budget_spent = bool(read_stops(spec.results_dir)["run"])  # trials it never started are not missing
    return Outcome(grid, states, unfinished or (len(states) < spec.expected_trials and not budget_spent))


class ProgressLogger(LoggerCallback):
    """Each trial's progress.csv (one row per result, ever), continued whole when a trial resumes.

    Ray's own CSV logger restores a resumed trial's file by copying the results folder's copy
    over the staged one on the driver. But a background sync keeps uploading the staged folder
    over the results folder, rewriting that copy in place: a restore that read it mid-rewrite
    left a trial with its later epochs only (about one resume in ten after `ray job stop`, where
    the resumed driver runs on the same head and finds the stopped one's staging folder). So a
    staged file is kept; without one (another head), the stored copy, which no sync then
    rewrites, is copied aside and moved in whole. Ray restores none for a trial without a
    checkpoint (it starts over), which lost the rows of a trial interrupted before Ray
    registered its first checkpoint; here they stay, and the epochs trained again follow them,
    as when a trial that crashed retries in the same driver.
    """

    def __init__(self) -> None:
        self._files: dict[Any, Any] = {}
        self._writers: dict[Any, csv.DictWriter] = {}

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        if trial not in self._files:
            self._open(trial)
        row = flatten_dict({k: v for k, v in result.items() if k != "config"}, delimiter="/")
        if trial not in self._writers:
            self._writers[trial] = csv.DictWriter(self._files[trial], list(row), extrasaction="ignore")
            self._writers[trial].writeheader()
        self._writers[trial].writerow(row)
        self._files[trial].flush()

    def _open(self, trial: Any) -> None:
        """Open the trial's file for its first result since it (re)started."""
        trial.init_local_path()
        staged = Path(trial.local_path, PROGRESS_FILE)
        if not staged.exists():
            restore_whole(trial, staged)
        self._files[trial] = staged.open("a", newline="")
        if staged.stat().st_size:  # go on under the file's own columns
            with staged.open(newline="") as saved:
                columns = next(csv.reader(saved))
            self._writers[trial] = csv.DictWriter(self._files[trial], columns, extrasaction="ignore")

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self._writers.pop(trial, None)
        if trial in self._files:
            self._files.pop(trial).close()


def restore_whole(trial: Any, staged: Path) -> None:
    """Copy a trial's stored progress.csv to its staged path in one move (none: nothing to do)."""
    source = Path(trial.storage.trial_fs_path, PROGRESS_FILE).as_posix()
    fd, aside = tempfile.mkstemp(dir=Path(trial.local_experiment_path).parent)  # outside the sync
    os.close(fd)
    try:
        pyarrow.fs.copy_files(source, aside, source_filesystem=trial.storage.storage_filesystem)
    except FileNotFoundError:  # never copied to the results folder before the run stopped
        os.unlink(aside)
        return
    os.replace(aside, staged)


def quiet_ray_output(verbose: bool) -> None:
    """Ray Tune's boxes, tables and trial tracebacks off, unless ``verbose``: tuner.progress shows
    the run instead (each error as one line; the traceback is in the trial's error.txt). Ray's
    newer reporter prints its boxes at any verbosity, so the classic one runs, silenced by
    verbose=0. Off a terminal, forwarded worker lines carry no colour codes."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "1" if verbose else "0"
    os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] = "1" if verbose else "0"
    # A trial restored from a checkpoint (a PBT exploit, a resume) before its result.json reached
    # the results folder: Ray's JSON logger warns once per file and starts a new one.
    logging.getLogger("ray.tune.logger.logger").setLevel(logging.NOTSET if verbose else logging.ERROR)
    tune_log = logging.getLogger("ray.tune.tune")
    (tune_log.removeFilter if verbose else tune_log.addFilter)(interrupt_in_tuners_words)
    for name in STATE_UPLOAD_LOGGERS:
        upload_log = logging.getLogger(name)
        (upload_log.removeFilter if verbose else upload_log.addFilter)(not_a_temp_file_race)
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        os.environ["RAY_COLOR_PREFIX"] = "0"


def interrupt_in_tuners_words(record: logging.LogRecord) -> bool:
    """Ray Tune's lines at a Ctrl-C, in tuner's words: its "Resume experiment with:
    Tuner.restore(...)" is not how a tuner run resumes (the run ends with its `resume=` command),
    and trials.csv marks the trials it did not complete."""
    message = str(record.msg)
    if message.startswith("Stop signal received"):
        print("Ctrl-C: stopping; the run's state is saved to resume it (Ctrl-C again stops at once)", file=sys.stderr, flush=True)
        return False
    return not message.startswith(("Trials did not complete", "Experiment has been interrupted"))


def not_a_temp_file_race(record: logging.LogRecord) -> bool:
    """False for Ray's traceback of an upload of the run's state that failed on one of Ray's own
    temporary files. Ray copies its staging folder to the results folder (or bucket) in the
    background while it saves the next state there, writing each file under a temporary name
    and renaming it: a copy that listed the temporary file then fails to open it, now and then
    on a busy machine, every few hundred snapshots when the folder is large. Nothing is lost:
    the next upload copies the folder again, and the run's end waits for a whole one."""
    error = record.exc_info[1] if record.exc_info else None
    text = str(record.msg) + ("".join(traceback.format_exception_only(error)) if error else "")
    return not RAY_TEMP_FILE_GONE.search(text)


def silent_exit_in_finalizers(unraisable: Any) -> None:
    """A trial's process ends with Ray's SIGTERM, raised as SystemExit wherever the process is.
    In a finalizer (a weakref callback, a __del__) Python can only print it, "Exception ignored
    in ..." and a traceback, on the console now and then at a Ctrl-C; other errors there print
    as before."""
    if not isinstance(unraisable.exc_value, SystemExit):
        sys.__unraisablehook__(unraisable)


def experiment_path(spec: RunSpec) -> str:
    """Where Ray Tune keeps this run's state, trials and checkpoints: the bucket when there is
    one, else the results folder itself."""
    return spec.remote or str(spec.results_dir)


def can_resume(spec: RunSpec) -> bool:
    """Whether Ray Tune saved a state of this run that it can continue."""
    return tune.Tuner.can_restore(experiment_path(spec))


def check_resources(spec: RunSpec) -> None:
    """Refuse a trial no node can host, unless the cluster autoscales; say what fits."""
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    fits = [n for n in nodes if n.get("CPU", 0) >= spec.cpus and n.get("GPU", 0) >= spec.gpus]
    if not fits and not spec.cluster.get("autoscaling"):
        cpus = max(n.get("CPU", 0) for n in nodes)
        gpus = max(n.get("GPU", 0) for n in nodes)
        key = "trial.gpus" if spec.gpus > gpus else "trial.cpus"
        raise ConfigError(
            key,
            f"a trial asks for {spec.cpus:g} CPUs and {spec.gpus:g} GPUs, "
            f"but the largest node has {cpus:g} CPUs and {gpus:g} GPUs",
            "lower trial.cpus / trial.gpus, or set cluster.autoscaling=true if nodes are added",
        )
    per_node = [
        min(n.get("CPU", 0) // spec.cpus, n.get("GPU", 0) // spec.gpus if spec.gpus else 1e9)
        for n in nodes
    ]
    total_cpus = sum(n.get("CPU", 0) for n in nodes)
    total_gpus = sum(n.get("GPU", 0) for n in nodes)
    print(
        f"cluster: {len(nodes)} node(s), {total_cpus:g} CPUs, {total_gpus:g} GPUs: "
        f"up to {int(sum(per_node))} trials at once"
    )


def build_data(data_config: dict[str, Any]) -> Any:
    """Make or load the data once, in the driver; Ray's object store shares it with trials.

    A data function reports a bad setting by raising ValueError or OSError with a message that
    starts with the key (``data.path: no folder at ...; download it from ...``): that message
    becomes the one error line, before Ray starts.
    """
    try:
        return hydra.utils.instantiate(data_config, _convert_="all")
    except Exception as err:  # hydra wraps what the user's data function raised
        cause = err.__cause__ or err
        key, sep, problem = str(cause).partition(": ")
        if sep and key.startswith("data.") and isinstance(cause, (ValueError, OSError)):
            raise ConfigError(key, problem) from None
        raise ConfigError("data", f"building the data failed: {cause}", "fix the data.* keys") from None


def check_shared_folder(root: Path) -> list[str]:
    """cluster=remote with a folder as storage: every alive node must see the driver's folder at
    the same path. A marker written there is read back by one tiny task on each node, and
    removed whatever they answer. Returns the ids of the nodes checked."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        marker = root / f".tuner-visible-{uuid.uuid4().hex}"
        token = uuid.uuid4().hex
        marker.write_text(token)
    except OSError as err:
        raise ConfigError("storage", f"cannot write in {root} ({err.strerror or err})", "give a folder you can write to") from None
    try:
        nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
        read = ray.remote(num_cpus=0)(_read_marker)
        on_each_node = [
            read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(str(marker))
            for node in nodes
        ]
        answers = ray.get(on_each_node, timeout=120)
    finally:
        marker.unlink(missing_ok=True)
    blind = [node for node, answer in zip(nodes, answers) if answer != token]
    if blind:
        raise ConfigError(
            "storage",
            f"{root} is not the same folder on {len(blind)} of {len(nodes)} nodes (node {blind[0][:12]} cannot read it)",
            "mount it at the same path on every node (NFS, EFS), or use a bucket: storage=s3://<bucket>/<prefix>",
        )
    return nodes


def _read_marker(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def connect(cluster: dict[str, Any]) -> None:
    """Start an embedded Ray (cluster=local) or join a running one (cluster=remote).

    A process that already has Ray (a test session, a Ray job's driver) keeps it.
    """
    if ray.is_initialized():
        return
    if cluster["kind"] == "remote":
        ray.init(
            address=cluster["address"],
            runtime_env=cluster.get("runtime_env") or None,
            logging_level=logging.WARNING,
        )
        return
    ray.init(
        address="local",  # never a cluster that `ray start` left running on this machine
        num_cpus=cluster.get("num_cpus"),
        num_gpus=cluster.get("num_gpus"),
        include_dashboard=False,
        configure_logging=True,
        logging_level=logging.WARNING,
    )


def trial_function(spec: RunSpec) -> Callable[..., None]:
    """Wrap the trainable: drop inactive conditional parameters, nest dotted names, call it in
    its own form (Ray Tune's ``train(config)``, or ``train(config, data)``), and hand a trainable
    that takes ``report`` tuner's own, which adds the node the trial runs on and, when the run
    ranks by one, the weighted score or the score= function's value to each of its reports."""
    trainable = spec.trainable
    scores: dict[str, Callable[[dict[str, Any]], float]] = {}
    if spec.weights:
        scores[SCORE] = functools.partial(weighted_score, spec.objectives, spec.weights)
    if spec.score:
        scores[OWN_SCORE] = spec.score
    return functools.update_wrapper(
        functools.partial(
            _run_trial, trainable.function, trainable.takes_data, trainable.takes_report,
            not spec.verbose, spec.base_config, spec.params, scores,
        ),
        trainable.function,
    )


def _run_trial(
    function: Callable[..., None],
    takes_data: bool,
    takes_report: bool,
    quiet: bool,
    base_config: dict[str, Any],
    params: list[space_lib.Param],
    scores: dict[str, Callable[[dict[str, Any]], float]],
    config: dict[str, Any],
    data: Any = None,
) -> None:
    if quiet:  # Ray's INFO lines from the worker ("Checkpoint successfully created ...") stay in its log
        logging.getLogger("ray").setLevel(logging.WARNING)
        sys.unraisablehook = silent_exit_in_finalizers
    trial_config = space_lib.apply(base_config, space_lib.active(params, config))
    arguments = (trial_config, data) if takes_data else (trial_config,)
    if not takes_report:
        function(*arguments)
        return
    node = ray.get_runtime_context().get_node_id()

    def report(metrics: dict[str, Any], checkpoint: tune.Checkpoint | None = None) -> None:
        extra = {NODE_KEY: node} | {key: float(score(metrics)) for key, score in scores.items()}
        tune.report({**metrics, **extra}, checkpoint=checkpoint)

    function(*arguments, report=report)


def weighted_score(
    objectives: list[dict[str, str]], weights: dict[str, float], metrics: dict[str, Any]
) -> float:
    """Sum of weight x value, minimised objectives subtracted: higher is better."""
    return sum(
        weights[o["metric"]] * float(metrics[o["metric"]]) * (1 if o["mode"] == "max" else -1)
        for o in objectives
    )
