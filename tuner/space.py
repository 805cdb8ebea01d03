"""Parse the YAML ``space:`` into plain data: a list of ``Param``, checked, conditions ordered.
Each searcher converts the list into its own form beside its code (tuner/search/).

A space maps parameter names to distributions. Names are dotted paths into the trial config
(``lr``, ``model.channels``); nested YAML mappings give the same names::

    space:
      lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}
      model:
        name: {type: choice, values: [cnn_tcn, cnn_bilstm]}
        num_layers: {type: randint, low: 1, high: 3, when: {model.name: cnn_bilstm}}
      lr_schedule: cosine            # a constant

``when`` makes a parameter conditional: it exists only in trials where the named parameters
have one of the given values. ``randint`` and ``qrandint`` include ``high``, as Optuna and W&B do.
``qloguniform`` rounds a log-uniform value to a multiple of ``q`` (W&B's q_log_uniform_values);
its values are integers when ``low``, ``high`` and ``q`` are. ``prior`` gives the centre a search
with ``search.prior=true`` samples around, in place of the ``train:`` default (tuner/search/prior.py).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from tuner.errors import ConfigError

DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "quniform": ("low", "high", "q"),
    "qloguniform": ("low", "high", "q"),
    "randint": ("low", "high"),
    "qrandint": ("low", "high", "q"),
    "normal": ("mean", "sd"),
    "choice": ("values",),
    "grid": ("values",),
}
CONSTANT = "constant"
CONTINUOUS = ("uniform", "loguniform", "quniform", "qloguniform", "randint", "qrandint", "normal")
_INTEGER = ("randint", "qrandint")


@dataclass(frozen=True)
class Param:
    """One entry of the space: a distribution (or a constant) at a dotted name."""

    name: str
    type: str
    args: dict[str, Any]
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    prior: Any = None  # the user's best guess (space.<name>.prior); None: the train: default is

    def is_active(self, sampled: Mapping[str, Any]) -> bool:
        """Whether this parameter exists for a trial whose other parameters are ``sampled``."""
        return all(sampled.get(name) in allowed for name, allowed in self.when.items())


def parse_space(space: Mapping[str, Any], key: str = "space") -> list[Param]:
    """Validate a space mapping and return its parameters, conditions after what they name."""
    params = list(_walk(space, prefix="", key=key))
    names = [p.name for p in params]
    for param in params:
        for ref in param.when:
            if ref not in names:
                raise ConfigError(
                    f"{key}.{param.name}.when",
                    f"refers to '{ref}', which is not a parameter of the space",
                    f"name one of: {', '.join(n for n in names if n != param.name)}",
                )
            if ref == param.name:
                raise ConfigError(f"{key}.{param.name}.when", "refers to itself", "remove it")
    return order_conditions(params, key)


def _walk(node: Mapping[str, Any], prefix: str, key: str):
    for child, value in node.items():
        name = f"{prefix}{child}"
        if isinstance(value, Mapping) and "type" in value:
            yield _parse_distribution(name, value, f"{key}.{name}")
        elif isinstance(value, Mapping):
            yield from _walk(value, prefix=f"{name}.", key=key)
        else:
            yield Param(name, CONSTANT, {"value": value})


def _parse_distribution(name: str, node: Mapping[str, Any], key: str) -> Param:
    kind = node["type"]
    if kind not in DISTRIBUTIONS:
        raise ConfigError(
            f"{key}.type",
            f"unknown distribution '{kind}'",
            f"use one of: {', '.join(DISTRIBUTIONS)}",
        )
    required = DISTRIBUTIONS[kind]
    allowed = {"type", "when", "prior", *required}
    for extra in node:
        if extra not in allowed:
            raise ConfigError(
                f"{key}.{extra}",
                f"unknown key for a {kind} distribution",
                f"use only: {', '.join(sorted(allowed))}",
            )
    for needed in required:
        if needed not in node or node[needed] is None:
            raise ConfigError(key, f"a {kind} distribution needs '{needed}'", f"add {key}.{needed}")
    args = {k: _native(node[k]) for k in required}
    _check_args(kind, args, key)
    prior = _native(node.get("prior"))
    if prior is not None:
        check_prior(kind, args, prior, f"{key}.prior")
    return Param(name, kind, args, _parse_when(node.get("when"), f"{key}.when"), prior)


def _native(value: Any) -> Any:
    """OmegaConf containers as Python lists and dicts, which Ray and Optuna take."""
    if hasattr(value, "items"):
        return {k: _native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [_native(v) for v in value]
    return value


def _check_args(kind: str, args: dict[str, Any], key: str) -> None:
    if kind in ("choice", "grid"):
        values = args["values"]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{key}.values", "needs a non-empty list", f"give {key}.values=[a,b]")
        return
    for arg, value in args.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}.{arg}", f"must be a number, got {value!r}", "give a number")
    if kind == "normal":
        if args["sd"] <= 0:
            raise ConfigError(f"{key}.sd", f"must be > 0, got {args['sd']}", "give a positive sd")
        return
    low, high = args["low"], args["high"]
    if low >= high:
        raise ConfigError(
            key, f"low ({low}) must be below high ({high})", f"set {key}.low < {key}.high"
        )
    if kind in ("loguniform", "qloguniform") and low <= 0:
        raise ConfigError(
            f"{key}.low", f"log bounds must be > 0, got {low}", "use a positive low or type uniform"
        )
    if kind in _INTEGER and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(key, f"{kind} bounds must be integers", "use whole numbers or uniform")
    if "q" in args and args["q"] <= 0:
        raise ConfigError(f"{key}.q", f"must be > 0, got {args['q']}", "give a positive step")
    if kind == "qloguniform" and grid_bounds(args)[0] > high:
        raise ConfigError(key, f"no multiple of q ({args['q']}) lies in [{low}, {high}]", f"lower {key}.q")


def check_prior(kind: str, args: dict[str, Any], prior: Any, key: str) -> None:
    """A prior centre the distribution can draw: one of a choice's values, a number inside the
    bounds of the others."""
    if kind == "grid":
        raise ConfigError(key, "a grid runs every value; it has no prior", f"drop {key} or use type choice")
    if kind == "choice":
        if prior not in args["values"]:
            raise ConfigError(key, f"{prior!r} is not one of the values {args['values']}", "give one of them")
        return
    if isinstance(prior, bool) or not isinstance(prior, (int, float)):
        raise ConfigError(key, f"must be a number, got {prior!r}", "give a number inside the bounds")
    if kind != "normal" and not args["low"] <= prior <= args["high"]:
        raise ConfigError(key, f"{prior} is outside [{args['low']}, {args['high']}]", "give a value inside the bounds")


def _parse_when(when: Any, key: str) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(key, "must map parameter names to values", "e.g. when: {model.name: x}")
    parsed = {}
    for name, allowed in when.items():
        allowed = _native(allowed)
        parsed[name] = tuple(allowed) if isinstance(allowed, list) else (allowed,)
    return parsed


def order_conditions(params: list[Param], key: str = "space") -> list[Param]:
    """Put each conditional parameter after the parameters its condition names."""
    ordered: list[Param] = []
    pending = list(params)
    while pending:
        ready = [p for p in pending if all(r in {o.name for o in ordered} for r in p.when)]
        if not ready:
            raise ConfigError(
                f"{key}.{pending[0].name}.when", "conditions form a cycle", "break the cycle"
            )
        ordered.extend(ready)
        pending = [p for p in pending if p not in ready]
    return ordered


def sampled_names(params: list[Param]) -> list[str]:
    """The names of the parameters a search samples (not the constants): trials.csv's columns."""
    return [p.name for p in params if p.type != CONSTANT]


def active(params: list[Param], sampled: Mapping[str, Any]) -> dict[str, Any]:
    """The sampled values of the parameters whose conditions hold, in space order."""
    kept: dict[str, Any] = {}
    for param in params:
        if param.name in sampled and param.is_active(kept):
            kept[param.name] = typed(param, sampled[param.name])
    return kept


def grid_bounds(args: Mapping[str, Any]) -> tuple[float, float]:
    """The lowest and highest multiples of q inside [low, high], as Ray's quantized domains use."""
    q = args["q"]
    return math.ceil(args["low"] / q) * q, math.floor(args["high"] / q) * q


def typed(param: Param, value: Any) -> Any:
    """An integral qloguniform's value as an int: Ray samples it as a float."""
    if param.type != "qloguniform" or value is None:
        return value
    integral = all(float(param.args[k]).is_integer() for k in ("low", "high", "q"))
    return int(round(value)) if integral else value


def apply(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each dotted name in ``values`` set to its value."""
    config = copy.deepcopy(dict(base))
    for name, value in values.items():
        node = config
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted names, the inverse of ``apply``:
    {"model": {"channels": 32}} -> {"model.channels": 32}."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat
