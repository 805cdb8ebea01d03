"""Drive one Ray Tune run from a RunSpec: connect to Ray, share the data, fit."""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import hydra
import pyarrow.fs
import ray
from ray import tune
from ray.train._internal.session import get_session
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from tuner import space as space_lib
from tuner.errors import ConfigError
from tuner.spec import SCORE, RunSpec
from tuner.wandb_logger import trial_callbacks

log = logging.getLogger(__name__)
# HyperBand can end a run with a trial PAUSED at its last rung: it is done, not waiting.
FINISHED_STATES = ("TERMINATED", "ERROR", "PAUSED")
NODES_FILE = "trial_nodes.csv"


@dataclass
class Outcome:
    """What Ray Tune left: its results, each trial's final state, and whether it was cut short."""

    grid: tune.ResultGrid
    states: dict[str, str]
    interrupted: bool


def run(
    spec: RunSpec, data: Any, searcher: Any, scheduler: Any, resume: bool = False
) -> Outcome:
    """Run the search (or resume it from its results folder); trial errors are recorded.

    The caller has built the searcher and scheduler (tuner.search), connected to Ray
    (connect) and checked resources (check_resources); a resumed run uses its saved ones.
    """
    # Keeping one checkpoint per trial makes Ray snapshot its state on each save, by design.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray's TensorBoard logger costs an import and a write per result; CSV and JSON stay.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    trainable = tune.with_resources(
        tune.with_parameters(trial_function(spec), data=data),
        {"cpu": spec.cpus, "gpu": spec.gpus},
    )
    if resume:
        tuner = tune.Tuner.restore(
            str(spec.results_dir), trainable, resume_unfinished=True, param_space=spec.param_space
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=spec.param_space,
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
                name=spec.results_dir.name,
                storage_path=str(spec.results_dir.parent),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=1,
                    checkpoint_score_attribute=spec.metric,
                    checkpoint_score_order=spec.mode,
                ),
                callbacks=[
                    ProgressLogger(),
                    ResultLogger(),  # params.json: the config each trial got
                    NodeRecorder(spec.results_dir / NODES_FILE),
                    *trial_callbacks(spec),
                ],
                verbose=1,
            ),
        )
    grid = tuner.fit()
    states = trial_states(spec.results_dir)
    unfinished = any(state not in FINISHED_STATES for state in states.values())
    return Outcome(grid, states, unfinished or len(states) < spec.expected_trials)


def trial_states(results_dir: Path) -> dict[str, str]:
    """Each trial's state as Ray Tune last saved it (TERMINATED, ERROR, RUNNING, PENDING, ...).

    Read from the saved experiment state: after an interrupt Ray stops the trials it held in
    memory and marks them terminated, but the state it saved first tells which were unfinished.
    """
    analysis = tune.ExperimentAnalysis(str(results_dir))
    return {trial.trial_id: trial.status for trial in analysis.trials}


class WholeFileRestore:
    """For Ray's per-trial file loggers: a resumed or retried trial's progress.csv or
    result.json goes on from the copy that holds every row.

    Ray restores the file by copying it from the results folder into the driver's staging
    folder, over what is there. But the results folder holds the copy: a background sync keeps
    uploading the staging folder over it, rewriting it in place. A restore that read it
    mid-rewrite, or a sync that caught the restore half-written, left a trial with its later
    epochs only (about one resume in ten after `ray job stop`, where the resumed driver runs on
    the same head and finds the staging folder of the one stopped). So a staged file is kept;
    without one (another head), the results folder's file, which no sync then rewrites, is
    copied aside and moved in whole.
    """

    def _restore_from_remote(self, file_name: str, trial: Any) -> None:
        staged = Path(trial.local_path, file_name)
        if not trial.checkpoint or staged.exists():
            return  # a first start, or the newest copy is here
        source = Path(trial.storage.trial_fs_path, file_name).as_posix()
        fd, aside = tempfile.mkstemp(dir=Path(trial.local_experiment_path).parent)
        os.close(fd)
        try:
            pyarrow.fs.copy_files(source, aside, source_filesystem=trial.storage.storage_filesystem)
        except FileNotFoundError:  # not synced to the results folder before the run ended
            os.unlink(aside)
            return
        os.replace(aside, staged)


class ProgressLogger(WholeFileRestore, CSVLoggerCallback):
    """Ray's progress.csv per trial, restored whole."""


class ResultLogger(WholeFileRestore, JsonLoggerCallback):
    """Ray's result.json and params.json per trial, restored whole."""


class NodeRecorder(tune.Callback):
    """Appends (trial id, node id) each time a trial starts, so moves between nodes show.

    A file, not memory: it survives the driver's death and is extended by a resumed run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        actor = trial.temporary_state.ray_actor
        node = ray._private.state.actors(actor._actor_id.hex())["Address"]["NodeID"]
        with self.path.open("a") as out:
            out.write(f"{trial.trial_id},{node}\n")


def read_nodes(results_dir: Path) -> dict[str, list[str]]:
    """The nodes each trial ran on, in order of its starts."""
    nodes: dict[str, list[str]] = {}
    path = results_dir / NODES_FILE
    for line in path.read_text().splitlines() if path.exists() else []:
        trial_id, node = line.split(",")
        if node not in nodes.setdefault(trial_id, []):
            nodes[trial_id].append(node)
    return nodes


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


def trial_function(spec: RunSpec) -> Callable[[dict[str, Any], Any], None]:
    """Wrap the trainable: drop inactive conditional parameters, nest dotted names, and add the
    weighted score to each report when the run ranks by one."""
    score = functools.partial(weighted_score, spec.objectives, spec.weights) if spec.weights else None
    return functools.update_wrapper(
        functools.partial(_run_trial, spec.trainable, spec.base_config, spec.params, score),
        spec.trainable,
    )


def _run_trial(
    trainable: Callable[[dict[str, Any], Any], None],
    base_config: dict[str, Any],
    params: list[space_lib.Param],
    score: Callable[[dict[str, Any]], float] | None,
    config: dict[str, Any],
    data: Any,
) -> None:
    trial_config = space_lib.apply(base_config, space_lib.active(params, config))
    if score is None:
        trainable(trial_config, data)
        return
    # Every report of the trainable (ray.tune.report) reaches this trial's session object:
    # scoring there leaves the trainable unchanged.
    session = get_session()
    report = session.report
    session.report = lambda metrics, checkpoint=None: report(
        {**metrics, SCORE: score(metrics)}, checkpoint=checkpoint
    )
    try:
        trainable(trial_config, data)
    finally:
        session.report = report


def weighted_score(
    objectives: list[dict[str, str]], weights: dict[str, float], metrics: dict[str, Any]
) -> float:
    """Sum of weight x value, minimised objectives subtracted: higher is better."""
    return sum(
        weights[o["metric"]] * float(metrics[o["metric"]]) * (1 if o["mode"] == "max" else -1)
        for o in objectives
    )
