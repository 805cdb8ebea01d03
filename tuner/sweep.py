"""Import a W&B sweep file: ``python -m tuner sweep_file=conf/sweeps/har_sweep.yaml``.

The sweep file replaces the config's space and search; everything else (model, data, trial
resources, ``max_epochs`` unless ``early_terminate.max_iter`` sets it) comes from the config and
the command line as usual. W&B -> tuner:

    method: grid | random | bayes       search.searcher grid | random | optuna (TPE)
    metric: {name, goal}                metric, mode (goal defaults to minimize, as in W&B)
    run_cap                             num_samples
    early_terminate: {type: hyperband}  ASHA: min_iter -> grace_period, eta -> reduction_factor,
                                        max_iter -> max_epochs; with s: grace = max_iter / eta^s
    name, description                   name, logger.notes
    project, entity                     logger.project, logger.entity
    parameters (nested `parameters:`)   space, under dotted names (model.channels)
      value, distribution: constant     a constant
      values, distribution: categorical choice (grid under method: grid)
      uniform                           uniform
      int_uniform                       randint (both ends included, as in W&B)
      q_uniform                         quniform; qrandint when min, max and q are integers
      log_uniform_values                loguniform
      log_uniform                       loguniform(e^min, e^max): W&B's bounds are exponents
      inv_log_uniform_values            loguniform(min, max): log(1/X) uniform is log(X) uniform
      inv_log_uniform                   loguniform(e^-max, e^-min)
      q_log_uniform_values              qloguniform
      q_log_uniform                     qloguniform(e^min, e^max, q)
      normal                            normal(mu, sigma)

Under ``method: grid`` int_uniform and q_uniform become their values, as W&B enumerates them.
An integer q_uniform draws each multiple of q evenly, where W&B's rounding gives the two end
values half the weight.

A sweep file from another project runs unchanged: a parameter or metric named by an alias the
trainable declares (the HAR trainable: epochs -> max_epochs, learning_rate -> lr, val/accuracy ->
val_acc) takes the trainable's name, a parameter that names a config section by its options
(``model: {values: [cnn_tcn, cnn_bilstm]}``) chooses the section's name key (``model.name``), and
a constant ``epochs`` sets ``max_epochs``; each mapping is printed once as a note. A name the
trainable does not read, when it declares its keys, is a ConfigError with a did-you-mean. Keys tuner cannot honour (weighted ``probabilities``, q_normal,
log_normal, q_log_normal, beta, q_beta, ``metric.target``, ``method: custom``, ...) are a
ConfigError naming them. ``program``, ``command`` and the other keys that tell ``wandb agent``
how to start a script are not used (tuner calls ``trainable`` itself) and are listed in a note.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from tuner.errors import ConfigError
from tuner.groups import GROUPS, options
from tuner.spec import check_reported
from tuner.trainable import Trainable, load_trainable
from tuner.trial_config import never_read, trainable_reads

METHODS = {"grid": "grid", "random": "random", "bayes": "optuna"}
GOALS = {"maximize": "max", "minimize": "min"}
# Keys that tell the W&B agent how to start a training script; tuner runs `trainable` itself.
AGENT_KEYS = ("program", "command", "controller", "job", "image_uri", "apiVersion", "kind")
TOP_LEVEL = (
    "method", "parameters", "metric", "early_terminate", "run_cap", "name", "description",
    "project", "entity", *AGENT_KEYS,
)
# Each W&B distribution tuner honours, and its keys beside `distribution`.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values",),
    "uniform": ("min", "max"),
    "int_uniform": ("min", "max"),
    "q_uniform": ("min", "max", "q"),
    "log_uniform_values": ("min", "max"),
    "log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"),
    "inv_log_uniform": ("min", "max"),
    "q_log_uniform_values": ("min", "max", "q"),
    "q_log_uniform": ("min", "max", "q"),
    "normal": ("mu", "sigma"),
}
UNSUPPORTED = ("q_normal", "log_normal", "q_log_normal", "beta", "q_beta", "categorical_w_probabilities")
HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")
LOGGER_KEYS = {"project": "logger.project", "entity": "logger.entity", "description": "logger.notes"}
KEY = "sweep_file"


def apply_sweep_file(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the space and search of the W&B sweep file ``cfg.sweep_file`` (if any).

    The returned config has ``sweep_file: null``: its space is the converted sweep, so the saved
    ``config.yaml`` and ``best_config.yaml`` rerun without the file.
    """
    path = cfg.get("sweep_file")
    if not path:
        return cfg
    sweep = load_sweep(Path(str(path)))
    settings, unused, notes = convert(sweep, cfg)
    check_command_line(settings, command_line_overrides())
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for key, (value, _) in settings.items():
            OmegaConf.update(cfg, key, value, merge=False)
        cfg.sweep_file = None
    print(
        f"sweep file {path}: method {sweep['method']} -> searcher {cfg.search.searcher}, "
        f"scheduler {cfg.search.scheduler.type}, {len(cfg.space)} parameters"
    )
    for note in notes:
        print(f"note: {note}")
    if unused:
        print(f"note: {KEY} keys not used: {', '.join(unused)}")
    return cfg


def load_sweep(path: Path) -> dict[str, Any]:
    """The sweep file as a mapping; a missing or unreadable file is a ConfigError."""
    fix = "give the path of a W&B sweep YAML, e.g. conf/sweeps/har_sweep.yaml"
    if not path.is_file():
        raise ConfigError(KEY, f"no file at {path}", fix)
    try:
        sweep = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        problem = f"{path} is not valid YAML ({str(err).splitlines()[0]})"
        raise ConfigError(KEY, problem, "fix the file") from None
    if not isinstance(sweep, dict):
        raise ConfigError(KEY, f"{path} does not hold a mapping of sweep keys", fix)
    return sweep


def convert(sweep: Mapping[str, Any], cfg: DictConfig) -> tuple[dict[str, tuple[Any, str]], list[str], list[str]]:
    """The config values a sweep sets, each with the sweep key it came from; the sweep keys left
    unused, each with the reason; and a note for each name taken as the trainable's own."""
    for key in ("metrics", "scheduler"):
        if key in sweep:
            problem = "custom engines and multi-objective sweeps are not supported"
            raise ConfigError(f"{KEY}.{key}", problem, "remove it")
    for key in sweep:
        if key not in TOP_LEVEL:
            fix = f"remove it; known: {', '.join(TOP_LEVEL)}"
            raise ConfigError(f"{KEY}.{key}", "is not a key tuner can honour", fix)
    method = sweep.get("method")
    if method not in METHODS:
        problem = f"must be grid, random or bayes, got {method!r}"
        raise ConfigError(f"{KEY}.method", problem, "set method: bayes")
    parameters = sweep.get("parameters")
    if not isinstance(parameters, Mapping) or not parameters:
        raise ConfigError(f"{KEY}.parameters", "is missing or empty", "give the parameters to search")

    trainable = load_trainable(str(cfg.trainable))
    space, notes = own_names(convert_parameters(parameters, method), trainable, cfg)
    epochs = space.pop("max_epochs", None) if not isinstance(space.get("max_epochs"), Mapping) else None
    settings: dict[str, tuple[Any, str]] = {"space": (space, "parameters")}
    metric, metric_notes = _metric(sweep, method, trainable)
    settings |= metric
    notes += metric_notes
    scheduler, max_epochs = _early_terminate(sweep.get("early_terminate"))
    settings["search.name"] = (f"wandb-{method}", "method")
    settings["search.searcher"] = (METHODS[method], "method")
    settings["search.scheduler"] = (scheduler, "early_terminate")
    if epochs is not None and max_epochs is not None and epochs != max_epochs:
        problem = f"sets {epochs} epochs where early_terminate.max_iter sets {max_epochs}"
        raise ConfigError(f"{KEY}.parameters", problem, "keep one of the two")
    if epochs is not None:
        settings["max_epochs"] = (_integer(epochs, f"{KEY}.parameters.max_epochs", low=1), "parameters")
    if max_epochs is not None:
        settings["max_epochs"] = (max_epochs, "early_terminate.max_iter")
    if "run_cap" in sweep:
        settings["num_samples"] = (_integer(sweep["run_cap"], f"{KEY}.run_cap", low=1), "run_cap")
    if "name" in sweep:
        settings["name"] = (str(sweep["name"]), "name")
    unused = [f"{key} (tuner runs {cfg.trainable} itself)" for key in AGENT_KEYS if key in sweep]
    for key, target in LOGGER_KEYS.items():
        if key not in sweep:
            continue
        if cfg.logger.get("kind") == "wandb":
            settings[target] = (str(sweep[key]), key)
        else:
            unused.append(f"{key} (needs logger=wandb)")
    return settings, unused, notes


def own_names(space: dict[str, Any], trainable: Trainable, cfg: DictConfig) -> tuple[dict[str, Any], list[str]]:
    """The space under the trainable's names: its aliases, a section's name key for a parameter
    that chooses between the section's options; a name it does not read is refused."""
    renamed: dict[str, Any] = {}
    notes = []
    for name, entry in space.items():
        key = f"{KEY}.parameters.{name}"
        own = trainable.aliases.get(name) or (f"{name}.name" if _chooses_option(name, entry, cfg) else None)
        if own:
            why = f"{trainable.path}'s name for it" if own != f"{name}.name" else f"each {name}'s own settings go with it"
            notes.append(f"{key} is {own}: {why}")
        own = own or name
        if own in renamed:
            raise ConfigError(key, f"is {own}, which another parameter of the sweep file sets too", "keep one of the two")
        if not trainable_reads(trainable, own):
            raise never_read(trainable, own, key)
        renamed[own] = entry
    return renamed, notes


def _chooses_option(name: str, entry: Any, cfg: DictConfig) -> bool:
    """Whether a parameter names a config section (``model``) and its values are the section's
    options (``cnn_tcn``, ``cnn_bilstm``): it chooses the section's ``name``."""
    section = cfg.get(name)
    if name not in GROUPS or not isinstance(section, DictConfig) or "name" not in section:
        return False
    values = entry.get("values", []) if isinstance(entry, Mapping) else [entry]
    return bool(values) and all(isinstance(value, str) and value in options(name) for value in values)


def convert_parameters(
    parameters: Mapping[str, Any], method: str, prefix: str = "", key: str = f"{KEY}.parameters"
) -> dict[str, Any]:
    """A W&B ``parameters:`` block as tuner's space, nested parameters under dotted names."""
    space: dict[str, Any] = {}
    for name, node in parameters.items():
        here = f"{key}.{name}"
        if not isinstance(node, Mapping):
            fix = "give value, values, or a distribution"
            raise ConfigError(here, f"must be a mapping, got {node!r}", fix)
        if "parameters" in node:
            if len(node) > 1 or not isinstance(node["parameters"], Mapping):
                raise ConfigError(here, "nested parameters stand alone", "keep only `parameters:` under it")
            space |= convert_parameters(node["parameters"], method, f"{prefix}{name}.", f"{here}.parameters")
        else:
            space[f"{prefix}{name}"] = convert_parameter(node, method, here)
    return space


def convert_parameter(node: Mapping[str, Any], method: str, key: str) -> Any:
    """One W&B parameter as a tuner space entry (or a constant)."""
    kind = node.get("distribution") or _inferred(node, key)
    if "probabilities" in node:
        fix = "remove it: values are drawn evenly"
        raise ConfigError(f"{key}.probabilities", "weighted values are not supported", fix)
    if kind in UNSUPPORTED:
        raise ConfigError(
            f"{key}.distribution",
            f"{kind} has no equivalent in tuner's space",
            "use values, uniform, log_uniform_values, q_uniform, int_uniform or normal",
        )
    if kind not in DISTRIBUTIONS:
        fix = f"use one of: {', '.join(DISTRIBUTIONS)}"
        raise ConfigError(f"{key}.distribution", f"unknown distribution {kind!r}", fix)
    for extra in node:
        if extra != "distribution" and extra not in DISTRIBUTIONS[kind]:
            fix = f"use only: {', '.join(DISTRIBUTIONS[kind])}"
            raise ConfigError(f"{key}.{extra}", f"is not a key of a {kind} parameter", fix)
    if kind == "constant":
        if "value" not in node:
            raise ConfigError(key, "a constant needs 'value'", f"add {key}.value")
        return node["value"]
    if kind == "categorical":
        values = node.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{key}.values", "needs a non-empty list", "give values: [a, b]")
        return {"type": "grid" if method == "grid" else "choice", "values": values}
    if kind == "normal":
        sigma = _number(node.get("sigma", 1.0), f"{key}.sigma")
        if sigma <= 0:
            raise ConfigError(f"{key}.sigma", f"must be > 0, got {sigma}", "give a positive sigma")
        entry = {"type": "normal", "mean": _number(node.get("mu", 0.0), f"{key}.mu"), "sd": sigma}
        return _grid_only_discrete(entry, kind, method, key)
    return _bounded(node, kind, method, key)


def _inferred(node: Mapping[str, Any], key: str) -> str:
    """W&B's distribution for a parameter without one: from value, values or min/max."""
    if "value" in node:
        return "constant"
    if "values" in node:
        return "categorical"
    if "min" in node and "max" in node:
        integers = _is_int(node["min"]) and _is_int(node["max"])
        return "int_uniform" if integers else "uniform"
    raise ConfigError(key, "has no value, values, min/max or distribution", "give one of them")


def _bounded(node: Mapping[str, Any], kind: str, method: str, key: str) -> dict[str, Any]:
    for bound in ("min", "max"):
        if bound not in node:
            raise ConfigError(key, f"a {kind} parameter needs '{bound}'", f"add {key}.{bound}")
    low, high = _number(node["min"], f"{key}.min"), _number(node["max"], f"{key}.max")
    if low >= high:
        raise ConfigError(key, f"min ({low}) must be below max ({high})", f"set {key}.min < {key}.max")
    q = _number(node.get("q", 1.0), f"{key}.q")
    if q <= 0:
        raise ConfigError(f"{key}.q", f"must be > 0, got {q}", "give a positive q")
    if kind.endswith("log_uniform_values") and low <= 0:
        raise ConfigError(f"{key}.min", f"log bounds must be > 0, got {low}", "use a positive min or uniform")
    if kind == "int_uniform":
        if not (_is_integer(low) and _is_integer(high)):
            raise ConfigError(key, "int_uniform bounds must be integers", "use whole numbers or uniform")
        if method == "grid":
            return {"type": "grid", "values": list(range(int(low), int(high) + 1))}
        return {"type": "randint", "low": int(low), "high": int(high)}
    if kind == "q_uniform":
        integers = all(_is_int(v) for v in (node["min"], node["max"], node.get("q", 1.0)))
        if method == "grid":  # numpy.arange(min, max, q), as W&B enumerates it
            values = [low + i * q for i in range(math.ceil((high - low) / q))]
            return {"type": "grid", "values": [int(v) for v in values] if integers else values}
        if integers:
            return {"type": "qrandint", "low": int(low), "high": int(high), "q": int(q)}
        return {"type": "quniform", "low": low, "high": high, "q": q}
    entry = {
        "uniform": lambda: {"type": "uniform", "low": low, "high": high},
        "log_uniform_values": lambda: {"type": "loguniform", "low": low, "high": high},
        "log_uniform": lambda: {"type": "loguniform", "low": math.exp(low), "high": math.exp(high)},
        "inv_log_uniform_values": lambda: {"type": "loguniform", "low": low, "high": high},
        "inv_log_uniform": lambda: {"type": "loguniform", "low": math.exp(-high), "high": math.exp(-low)},
        "q_log_uniform_values": lambda: {"type": "qloguniform", "low": low, "high": high, "q": q},
        "q_log_uniform": lambda: {
            "type": "qloguniform", "low": math.exp(low), "high": math.exp(high), "q": q
        },
    }[kind]()
    return _grid_only_discrete(entry, kind, method, key)


def _grid_only_discrete(entry: dict[str, Any], kind: str, method: str, key: str) -> dict[str, Any]:
    if method == "grid":
        raise ConfigError(
            key,
            f"method grid cannot take a {kind} parameter",
            "give it values (or int_uniform / q_uniform), or use method: random",
        )
    return entry


def _metric(sweep: Mapping[str, Any], method: str, trainable: Trainable) -> tuple[dict[str, tuple[Any, str]], list[str]]:
    """metric and mode from the sweep's metric, under the trainable's name for it."""
    metric = sweep.get("metric")
    if metric is None:
        if method == "bayes":
            fix = "add metric: {name: val_acc, goal: maximize}"
            raise ConfigError(f"{KEY}.metric", "method bayes needs a metric", fix)
        return {}, []
    if not isinstance(metric, Mapping) or not metric.get("name"):
        raise ConfigError(f"{KEY}.metric.name", "is missing", "name the metric the trainable reports")
    for key in metric:
        if key not in ("name", "goal"):
            fix = "remove it; tuner optimises metric.name with metric.goal"
            raise ConfigError(f"{KEY}.metric.{key}", "is not supported", fix)
    goal = metric.get("goal", "minimize")
    if goal not in GOALS:
        problem = f"must be maximize or minimize, got {goal!r}"
        raise ConfigError(f"{KEY}.metric.goal", problem, "set goal: maximize")
    name, notes = str(metric["name"]), []
    own = trainable.aliases.get(name)
    if own:
        notes.append(f"{KEY}.metric.name {name} is {own}: {trainable.path}'s name for it")
        name = own
    check_reported(trainable, name, f"{KEY}.metric.name")
    return {"metric": (name, "metric.name"), "mode": (GOALS[goal], "metric.goal")}, notes


def _early_terminate(node: Any) -> tuple[dict[str, Any], int | None]:
    """The scheduler a sweep's early_terminate asks for, and max_epochs if max_iter sets it."""
    key = f"{KEY}.early_terminate"
    if node is None:
        return {"type": "fifo"}, None
    if not isinstance(node, Mapping) or node.get("type") != "hyperband":
        kind = node.get("type") if isinstance(node, Mapping) else node
        raise ConfigError(f"{key}.type", f"only hyperband is supported, got {kind!r}", "set type: hyperband")
    for extra in node:
        if extra not in HYPERBAND_KEYS:
            fix = f"use only: {', '.join(HYPERBAND_KEYS)}"
            raise ConfigError(f"{key}.{extra}", "is not a hyperband key", fix)
    if node.get("strict"):
        fix = "remove it: ASHA keeps the top 1/eta at each rung"
        raise ConfigError(f"{key}.strict", "the strict rule is not supported", fix)
    eta = _number(node.get("eta", 3), f"{key}.eta")
    if eta <= 1:
        raise ConfigError(f"{key}.eta", f"must be > 1, got {eta}", "set eta: 3")
    max_iter = _integer(node["max_iter"], f"{key}.max_iter", low=1) if "max_iter" in node else None
    if max_iter is not None and "s" in node:
        s = _number(node["s"], f"{key}.s")
        grace = int(max_iter / eta**s)
        if grace < 1:
            problem = f"max_iter / eta^s = {max_iter / eta**s:.3g} is below one epoch"
            raise ConfigError(f"{key}.s", problem, "lower s or eta")
    elif "min_iter" in node:
        grace = _integer(node["min_iter"], f"{key}.min_iter", low=1)
    else:
        raise ConfigError(key, "hyperband needs min_iter, or max_iter with s", "add min_iter: 1")
    return {"type": "asha", "grace_period": grace, "reduction_factor": eta}, max_iter


def check_command_line(settings: Mapping[str, tuple[Any, str]], overrides: Sequence[str]) -> None:
    """Refuse a command-line value that the sweep file would otherwise silently replace."""
    for override in overrides:
        key = override.lstrip("+~").partition("=")[0]
        for target, (_, field) in settings.items():
            group = key == "search" and target.startswith("search.")  # search=<option>
            if key == target or key.startswith(f"{target}.") or group:
                raise ConfigError(
                    key,
                    f"is set both on the command line and by the sweep file ({field})",
                    "drop one of the two",
                )


def command_line_overrides() -> list[str]:
    """The overrides Hydra got on the command line; none when the config was composed in code."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _number(value: Any, key: str) -> float | int:
    """A number; YAML 1.1 reads 1e-4 (no dot) as a string, so numeric strings count too."""
    if isinstance(value, bool):
        raise ConfigError(key, f"must be a number, got {value!r}", "give a number")
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"must be a number, got {value!r}", "give a number") from None


def _integer(value: Any, key: str, low: int) -> int:
    number = _number(value, key)
    if not _is_integer(number) or number < low:
        raise ConfigError(key, f"must be an integer >= {low}, got {value!r}", f"give a whole number >= {low}")
    return int(number)


def _is_integer(value: Any) -> bool:
    """A whole number, whatever its type (3 or 3.0)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()


def _is_int(value: Any) -> bool:
    """Written as an integer in the file (3, not 3.0): W&B's test for integer distributions."""
    return isinstance(value, int) and not isinstance(value, bool)
