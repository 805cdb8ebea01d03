"""Validate a composed config into a RunSpec: everything Ray Tune needs, checked before it starts.

Each trial's config is the ``train:`` section plus ``model``, ``max_epochs``, ``seed`` and
``threads``; the names in ``space:`` address it (``lr``, ``model.channels``).
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tuner import space as space_lib
from tuner import storage, wandb_logger
from tuner.errors import ConfigError

SCHEDULERS = ("fifo", "asha", "hyperband")
SCORE = "weighted_score"  # the metric a weighted multi-objective run reports and ranks by
LOGGER_KEYS = {
    "none": ("kind",),
    "wandb": ("kind", "mode", "project", "entity", "tags", "notes", "timeout"),
}


@dataclass
class RunSpec:
    """A validated tuning run: what to train, on what space, with which search and resources."""

    name: str
    results_dir: Path  # where tuner writes its files, on the driver
    remote: str | None  # the bucket URI the results folder is copied to; None: results_dir is it
    trainable: Callable[..., None]
    data: dict[str, Any]
    base_config: dict[str, Any]
    params: list[space_lib.Param]
    param_space: dict[str, Any]
    optuna_space: space_lib.OptunaSpace | None
    searcher: str
    scheduler: dict[str, Any]
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


def build_spec(cfg: DictConfig, results_dir: Path, remote: str | None = None) -> RunSpec:
    """Check every user-facing key of ``cfg`` and compile the space for the chosen searcher."""
    config = _resolve(cfg)
    _check_positive(config, "num_samples", integer=True)
    _check_positive(config, "max_epochs", integer=True)
    if config["mode"] not in ("min", "max"):
        raise ConfigError("mode", f"must be min or max, got {config['mode']!r}", "set mode=max or mode=min")
    check_cluster_storage(config["cluster"], str(config["storage"]))
    trial = config["trial"]
    _check_positive(trial, "cpus", key="trial.cpus")
    if trial["gpus"] < 0:
        raise ConfigError("trial.gpus", f"must be >= 0, got {trial['gpus']}", "set trial.gpus=0 or a fraction like 0.25")

    search = config["search"]
    searcher = search["searcher"]
    if searcher not in space_lib.SEARCHERS:
        raise ConfigError("search.searcher", f"unknown searcher '{searcher}'", f"use one of: {', '.join(space_lib.SEARCHERS)}")
    scheduler = dict(search["scheduler"])
    if scheduler.get("type") not in SCHEDULERS:
        raise ConfigError("search.scheduler.type", f"unknown scheduler {scheduler.get('type')!r}", f"use one of: {', '.join(SCHEDULERS)}")
    objectives = check_objectives(config, searcher, scheduler["type"])
    weights = check_weights(config.get("weights"), objectives, searcher)

    trainable, module = import_trainable(config["trainable"])
    if weights and not takes_report(trainable):
        raise ConfigError(
            "weights",
            f"{config['trainable']} reports through ray.tune.report itself, so tuner cannot add {SCORE} to its reports",
            "give it a report argument (def train(config, data, report=tune.report)) and call report(...), or use search=nsga2",
        )
    reported = getattr(module, "METRICS", None)
    for objective in objectives:
        key = "metric" if objective is objectives[0] else f"objectives.{objective['metric']}"
        if reported is not None and objective["metric"] not in reported:
            raise ConfigError(
                key,
                f"'{objective['metric']}' is never reported by {config['trainable']}",
                f"use one of: {', '.join(reported)}",
            )
    _check_target(config["data"], "data._target_")

    base_config = trial_base_config(config)
    params = space_lib.parse_space(config["space"] or {})
    _check_names(params, base_config)
    optuna_space = space_lib.to_optuna(params) if searcher in space_lib.OPTUNA_SEARCHERS else None
    param_space = {} if optuna_space else space_lib.to_ray(params, searcher)

    return RunSpec(
        name=config["name"],
        results_dir=results_dir,
        remote=remote,
        trainable=trainable,
        data=config["data"],
        base_config=base_config,
        params=params,
        param_space=param_space,
        optuna_space=optuna_space,
        searcher=searcher,
        scheduler=scheduler,
        max_concurrent=search.get("max_concurrent"),
        metric=SCORE if weights else config["metric"],
        mode="max" if weights else config["mode"],
        objectives=objectives,
        weights=weights,
        num_samples=1 if searcher == "grid" else config["num_samples"],
        expected_trials=space_lib.trial_count(params, searcher, config["num_samples"]),
        max_epochs=config["max_epochs"],
        seed=config["seed"],
        cpus=trial["cpus"],
        gpus=trial["gpus"],
        max_failures=trial["max_failures"],
        cluster=config["cluster"],
        logger=check_logger(config["logger"]),
        config=config,
    )


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


def takes_report(trainable: Callable[..., None]) -> bool:
    """Whether the trainable reports through a ``report`` argument that tuner hands it (and so
    can get the weighted score and its node added), rather than calling ray.tune.report."""
    return "report" in inspect.signature(trainable).parameters


def check_objectives(config: dict[str, Any], searcher: str, scheduler: str) -> list[dict[str, str]]:
    """``metric`` and ``objectives`` as one list of {metric, mode}; NSGA-II needs several."""
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
    if searcher == "nsga2" and len(objectives) < 2:
        raise ConfigError("objectives", "search=nsga2 needs a metric to trade off against the run's metric", "set objectives={num_params:min} or objectives={latency_ms:min}")
    if searcher == "nsga2" and scheduler != "fifo":
        raise ConfigError("search.scheduler.type", f"{scheduler} stops trials by one metric; NSGA-II weighs several", "use search.scheduler.type=fifo")
    return objectives


def check_weights(
    weights: Any, objectives: list[dict[str, str]], searcher: str
) -> dict[str, float] | None:
    """The weights of a weighted score; a one-metric search with several objectives needs them."""
    names = [o["metric"] for o in objectives]
    if weights is None:
        if len(objectives) > 1 and searcher != "nsga2":
            raise ConfigError(
                "weights",
                f"search.searcher={searcher} optimises one metric, but objectives are {', '.join(names)}",
                f"set weights={{{names[0]}:1,{names[1]}:0.001}} for a weighted score, or use search=nsga2",
            )
        return None
    if searcher == "nsga2":
        raise ConfigError("weights", "search=nsga2 searches the Pareto front itself", "drop weights")
    if not isinstance(weights, dict) or sorted(weights) != sorted(names):
        raise ConfigError("weights", f"needs one weight for each of {', '.join(names)}, got {weights!r}", "give each objective a weight")
    for metric, weight in weights.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
            raise ConfigError(f"weights.{metric}", f"must be a positive number, got {weight!r}", "the mode (min or max) sets the sign; the weight sets the scale")
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
    if mode not in wandb_logger.MODES:
        raise ConfigError("logger.mode", f"must be one of {', '.join(wandb_logger.MODES)}, got {mode!r}", "set logger.mode=auto")
    if not isinstance(logger.get("project"), str) or not logger["project"]:
        raise ConfigError("logger.project", "needs a W&B project name", "set logger.project=<name>")
    for key in ("entity", "notes"):
        if logger.get(key) is not None and not isinstance(logger[key], str):
            raise ConfigError(f"logger.{key}", f"must be text, got {logger[key]!r}", f"quote it or set logger.{key}=null")
    tags = logger.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ConfigError("logger.tags", f"must be a list of words, got {tags!r}", "set logger.tags=[a,b]")
    _check_positive(logger, "timeout", key="logger.timeout")
    return {**logger, "tags": tags, "mode": wandb_logger.resolve_mode(mode)}


def trial_base_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config every trial starts from, before its sampled parameters are applied."""
    return {
        **config["train"],
        "model": dict(config["model"]),
        "max_epochs": config["max_epochs"],
        "seed": config["seed"],
        "threads": max(1, math.floor(config["trial"]["cpus"])),
    }


def import_trainable(path: str) -> tuple[Callable[..., None], Any]:
    """The trainable function at a dotted import path, and the module that holds it."""
    module_name, _, attr = str(path).rpartition(".")
    fix = "set trainable=<package>.<module>.<function>, e.g. trainables.har.train"
    if not module_name:
        raise ConfigError("trainable", f"'{path}' is not a dotted import path", fix)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError("trainable", f"cannot import '{module_name}' ({err})", fix) from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError("trainable", f"'{module_name}' has no function '{attr}'", fix)
    return function, module


def _check_target(node: dict[str, Any], key: str) -> None:
    target = node.get("_target_") if isinstance(node, dict) else None
    if not target:
        raise ConfigError(key, "is missing", "name the function that builds the data")
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(key, f"cannot import '{module_name}' ({err})", "fix the import path") from None
    if not callable(getattr(module, attr, None)):
        raise ConfigError(key, f"'{module_name}' has no function '{attr}'", "fix the import path")


def _check_names(params: list[space_lib.Param], base_config: dict[str, Any]) -> None:
    """Every space name must reach a key the trainable gets; conditionals may add new keys."""
    known = sorted(_dotted_keys(base_config))
    for param in params:
        parent = param.name.rpartition(".")[0]
        reachable = param.name in known or (param.when and (not parent or parent in known))
        if not reachable:
            raise ConfigError(
                f"space.{param.name}",
                "is not a key of the trial config",
                f"use one of: {', '.join(known)}",
            )


def _dotted_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        keys.add(f"{prefix}{key}")
        if isinstance(value, dict):
            keys |= _dotted_keys(value, f"{prefix}{key}.")
    return keys


def _check_positive(node: dict[str, Any], name: str, integer: bool = False, key: str | None = None) -> None:
    value = node.get(name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if ok and integer:
        ok = float(value).is_integer()
    if not ok:
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(key or name, f"must be {kind}, got {value!r}", f"set {key or name} to {kind}")


def _resolve(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError("config", str(err).splitlines()[0], "fix the interpolation") from None
