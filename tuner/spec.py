"""Validate a composed config into a RunSpec: everything Ray Tune needs, checked before it starts.

Each trial's config is built by tuner.trial_config (the ``train:`` section plus ``model``,
``max_epochs``, ``seed`` and ``threads``); the names in ``space:`` address it (``lr``,
``model.channels``), and a trainable that declares its keys gets only those (tuner.trainable).
Nothing here imports Ray or W&B: a config is checked without starting either.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tuner import search as search_lib
from tuner import space as space_lib
from tuner import storage
from tuner.errors import ConfigError, check_count, check_positive, did_you_mean, first_line
from tuner.trainable import Trainable, import_function, load_trainable
from tuner.trial_config import check_names, check_values, trial_space
from tuner.stopping import check_stopping
from tuner.wandb_mode import MODES, resolve_mode

SCORE = "weighted_score"  # the metric a weighted multi-objective run reports and ranks by
OWN_SCORE = "score"  # the metric a run with score=<function> reports and ranks by
LOGGER_KEYS = {
    "none": ("kind",),
    "wandb": ("kind", "mode", "project", "entity", "tags", "notes", "timeout"),
}
PROGRESS_EVERY = 30  # seconds between status lines off a terminal, for configs saved before the key


@dataclass
class RunSpec:
    """A validated tuning run: what to train, on what space, with which search and resources."""

    name: str
    results_dir: Path  # where tuner writes its files, on the driver
    remote: str | None  # the bucket URI the results folder is copied to; None: results_dir is it
    trainable: Trainable
    data: dict[str, Any]
    base_config: dict[str, Any]
    params: list[space_lib.Param]
    searcher: str  # a name in tuner.search.SEARCHERS
    searcher_options: dict[str, Any]  # its own options (NSGA-II's population_size)
    scheduler: dict[str, Any]  # {"type": a name in tuner.search.SCHEDULERS, its options...}
    max_concurrent: int | None
    metric: str
    mode: str
    objectives: list[dict[str, str]]  # [{"metric", "mode"}]: the metric first, then any trade-offs
    weights: dict[str, float] | None  # objectives -> weights: the run ranks by SCORE instead
    num_samples: int
    expected_trials: int
    max_epochs: int
    seed: int
    cpus: float
    gpus: float
    max_failures: int
    cluster: dict[str, Any]
    logger: dict[str, Any]
    config: dict[str, Any]
    verbose: bool = False  # Ray Tune's own tables and logs instead of tuner's compact progress
    progress_every: float = PROGRESS_EVERY
    candidates: list[dict[str, Any]] = field(default_factory=list)  # stage two: the configs to train
    score: Callable[[dict[str, Any]], float] | None = None  # score=: ranks the run by OWN_SCORE


def build_spec(cfg: DictConfig, results_dir: Path, remote: str | None = None) -> RunSpec:
    """Check every user-facing key of ``cfg``, the space against the chosen searcher and the
    trainable included."""
    config = _resolve(cfg)
    check_count(config.get("num_samples"), "num_samples")
    check_count(config.get("max_epochs"), "max_epochs")
    check_count(config.get("seed"), "seed", minimum=0)
    if config["mode"] not in ("min", "max"):
        raise ConfigError("mode", f"must be min or max, got {config['mode']!r}", "set mode=max or mode=min")
    verbose = config.get("verbose", False)
    if not isinstance(verbose, bool):
        raise ConfigError("verbose", f"must be true or false, got {verbose!r}", "set verbose=true for Ray Tune's own tables")
    progress_every = check_positive(config.get("progress_every", PROGRESS_EVERY), "progress_every")
    check_cluster_storage(config["cluster"], str(config["storage"]))
    if remote is None:
        storage.check_folder(results_dir.parent)
    trial = config["trial"]
    check_positive(trial.get("cpus"), "trial.cpus")
    if trial["gpus"] < 0:
        raise ConfigError("trial.gpus", f"must be >= 0, got {trial['gpus']}", "set trial.gpus=0 or a fraction like 0.25")
    check_stopping(config)

    search = search_lib.check_search(config["search"], config["max_epochs"])
    objectives = check_objectives(config, search)
    weights = check_weights(config.get("weights"), objectives, search.searcher)

    trainable = load_trainable(config["trainable"])
    if weights and not trainable.takes_report:
        raise ConfigError(
            "weights",
            f"{config['trainable']} reports through ray.tune.report itself, so tuner cannot add {SCORE} to its reports",
            "give it a report argument (def train(config, data, report=tune.report)) and call report(...), or use search=nsga2",
        )
    for objective in objectives:
        key = "metric" if objective is objectives[0] else f"objectives.{objective['metric']}"
        check_reported(trainable, objective["metric"], key)
    score = check_score(config.get("score"), trainable, objectives, weights)
    if trainable.takes_data:
        target = config["data"].get("_target_") if isinstance(config["data"], dict) else None
        if not target:
            raise ConfigError("data._target_", "is missing", "name the function that builds the data")
        import_function(target, "data._target_", "fix the import path")

    base_config, params = trial_space(config)
    check_names(params, base_config, trainable)
    check_values(params, base_config, trainable)
    search_lib.check_space(params, search.searcher, search.scheduler, search.searcher_options)
    samples = search_lib.SEARCHERS[search.searcher].samples

    return RunSpec(
        name=config["name"],
        results_dir=results_dir,
        remote=remote,
        trainable=trainable,
        data=config["data"],
        base_config=base_config,
        params=params,
        searcher=search.searcher,
        searcher_options=search.searcher_options,
        scheduler=search.scheduler,
        max_concurrent=search.max_concurrent,
        metric=SCORE if weights else OWN_SCORE if score else config["metric"],
        mode="max" if weights else config["mode"],
        objectives=objectives,
        weights=weights,
        num_samples=config["num_samples"] if samples else 1,
        expected_trials=search_lib.trial_count(params, search.searcher, config["num_samples"]),
        max_epochs=config["max_epochs"],
        seed=config["seed"],
        cpus=trial["cpus"],
        gpus=trial["gpus"],
        max_failures=trial["max_failures"],
        cluster=config["cluster"],
        logger=check_logger(config["logger"]),
        config=config,
        verbose=verbose,
        progress_every=progress_every,
        score=score,
    )


def check_reported(trainable: Trainable, metric: str, key: str) -> None:
    """A metric the trainable reports, when it declares what it reports."""
    if trainable.metrics is None or metric in trainable.metrics:
        return
    reported = ", ".join(trainable.metrics)
    alias = trainable.aliases.get(metric)
    if alias in trainable.metrics:
        fix = f"use {alias} ({trainable.path}'s name for {metric})"
    else:
        hint = did_you_mean(metric, trainable.metrics)
        fix = f"{hint} (it reports: {reported})" if hint else f"use one of: {reported}"
    raise ConfigError(key, f"'{metric}' is never reported by {trainable.path}", fix)


def check_score(
    path: Any, trainable: Trainable, objectives: list[dict[str, str]], weights: dict[str, float] | None
) -> Callable[[dict[str, Any]], float] | None:
    """The function at ``score=<path>``, which turns a trial's reported metrics into the one
    value the run searches, stops and ranks by (in direction ``mode``); None when unset."""
    if path is None:
        return None
    fix = "set score=<package>.<module>.<function>, a function of the reported metrics dict returning a number"
    function, _ = import_function(path, "score", fix)
    try:
        inspect.signature(function).bind({})
    except (TypeError, ValueError):
        raise ConfigError("score", f"{path} cannot be called with one argument (the metrics dict)", fix) from None
    if weights or len(objectives) > 1:
        raise ConfigError("score", "ranks the run by one value, but objectives or weights are set too", "drop objectives and weights, or fold them into the score function")
    if not trainable.takes_report:
        raise ConfigError(
            "score",
            f"{trainable.path} reports through ray.tune.report itself, so tuner cannot add {OWN_SCORE} to its reports",
            "give it a report argument (def train(config, data, report=tune.report)) and call report(...)",
        )
    if trainable.metrics is not None and OWN_SCORE in trainable.metrics:
        raise ConfigError("score", f"{trainable.path} reports a metric named {OWN_SCORE} itself", f"rename that metric, or rank by it with metric={OWN_SCORE}")
    return function


def check_cluster_storage(cluster: dict[str, Any], location: str) -> None:
    """Storage every node can reach: a bucket (checked when the run prepares, as it takes the
    network), or with cluster=remote an absolute path (a relative one would land in a job's
    temporary folder); no Ray Client address."""
    if cluster.get("kind") == "remote" and not storage.is_uri(location) and not Path(location).expanduser().is_absolute():
        raise ConfigError(
            "storage",
            f"'{location}' is relative: on a cluster it would land in the job's temporary working folder",
            "give a bucket (storage=s3://<bucket>/<prefix>) or a folder mounted on every node (storage=/mnt/shared/tuner)",
        )
    address = str(cluster.get("address") or "")
    if address.startswith("ray://"):
        raise ConfigError(
            "cluster.address",
            f"'{address}' is a Ray Client address: the run would drive Ray Tune from the head, away from its results folder",
            "submit the run as a job (ray job submit --address http://<head>:8265 -- python -m tuner cluster=remote ...)",
        )


def check_objectives(config: dict[str, Any], search: search_lib.CheckedSearch) -> list[dict[str, str]]:
    """``metric`` and ``objectives`` as one list of {metric, mode}; a Pareto search needs several."""
    extra = config.get("objectives") or {}
    if not isinstance(extra, dict):
        raise ConfigError("objectives", f"must map metrics to min or max, got {extra!r}", "set objectives={num_params:min}")
    objectives = [{"metric": config["metric"], "mode": config["mode"]}]
    for metric, mode in extra.items():
        if mode not in ("min", "max"):
            raise ConfigError(f"objectives.{metric}", f"must be min or max, got {mode!r}", f"set objectives.{metric}=min")
        if metric == config["metric"]:
            raise ConfigError(f"objectives.{metric}", "is already the run's metric", "list only the other metrics")
        objectives.append({"metric": metric, "mode": mode})
    if search_lib.SEARCHERS[search.searcher].pareto:
        if len(objectives) < 2:
            raise ConfigError(
                "objectives", f"search={search.searcher} needs a metric to trade off against the run's metric",
                "set objectives={num_params:min} or objectives={latency_ms:min}",
            )
        scheduler = search.scheduler["type"]
        if search_lib.SCHEDULERS[scheduler].stops_early:
            raise ConfigError("search.scheduler.type", f"{scheduler} stops trials by one metric; {search.searcher} weighs several", "use search.scheduler.type=fifo")
    return objectives


def check_weights(
    weights: Any, objectives: list[dict[str, str]], searcher: str
) -> dict[str, float] | None:
    """The weights of a weighted score; a one-metric search with several objectives needs them."""
    names = [o["metric"] for o in objectives]
    pareto = search_lib.SEARCHERS[searcher].pareto
    if weights is None:
        if len(objectives) > 1 and not pareto:
            raise ConfigError(
                "weights",
                f"search.searcher={searcher} optimises one metric, but objectives are {', '.join(names)}",
                f"set weights={{{names[0]}:1,{names[1]}:0.001}} for a weighted score, or use search=nsga2",
            )
        return None
    if pareto:
        raise ConfigError("weights", f"search={searcher} searches the Pareto front itself", "drop weights")
    if not isinstance(weights, dict) or sorted(weights) != sorted(names):
        raise ConfigError("weights", f"needs one weight for each of {', '.join(names)}, got {weights!r}", "give each objective a weight")
    for metric, weight in weights.items():
        check_positive(weight, f"weights.{metric}", fix="the mode (min or max) sets the sign; the weight sets the scale")
    return {metric: float(weight) for metric, weight in weights.items()}


def check_logger(logger: dict[str, Any]) -> dict[str, Any]:
    """The logger settings, checked, with W&B's mode resolved to online, offline or disabled."""
    if not isinstance(logger, dict):
        raise ConfigError("logger", f"must be a group of settings, got {logger!r}", "use logger=wandb or logger=none")
    kind = logger.get("kind")
    if kind not in LOGGER_KEYS:
        raise ConfigError("logger.kind", f"unknown logger {kind!r}", f"use logger={' or logger='.join(LOGGER_KEYS)}")
    for key in logger:
        if key not in LOGGER_KEYS[kind]:
            raise ConfigError(f"logger.{key}", f"is not a setting of logger={kind}", f"use only: {', '.join(LOGGER_KEYS[kind])}")
    if kind == "none":
        return {"kind": kind, "mode": "disabled"}
    mode = logger.get("mode", "auto")
    if mode not in MODES:
        raise ConfigError("logger.mode", f"must be one of {', '.join(MODES)}, got {mode!r}", "set logger.mode=auto")
    if not isinstance(logger.get("project"), str) or not logger["project"]:
        raise ConfigError("logger.project", "needs a W&B project name", "set logger.project=<name>")
    for key in ("entity", "notes"):
        if logger.get(key) is not None and not isinstance(logger[key], str):
            raise ConfigError(f"logger.{key}", f"must be text, got {logger[key]!r}", f"quote it or set logger.{key}=null")
    tags = logger.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ConfigError("logger.tags", f"must be a list of words, got {tags!r}", "set logger.tags=[a,b]")
    check_positive(logger.get("timeout"), "logger.timeout")
    return {**logger, "tags": tags, "mode": resolve_mode(mode)}


def _resolve(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError("config", first_line(err), "fix the interpolation") from None
