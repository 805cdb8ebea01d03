"""The function a run tunes, found by its import path, and what its module declares about it.

Two forms are called: Ray Tune's own, ``train(config)``, and ``train(config, data)``, which gets
the data built once in the driver; either may take ``report``, and then gets tuner's (it adds the
node and a weighted score). Beside the function, its module may declare, as plain data:

    METRICS = ("val_acc", ...)                # what it reports: `metric` is checked against it
    CONFIG_KEYS = {"lr": float,               # the keys it reads, each with its type ...
                   "lr_schedule": ("none", "cosine"),  # ... or its choices
                   "model.name": ("cnn_tcn", "cnn_bilstm")}
    ALIASES = {"learning_rate": "lr", "val/accuracy": "val_acc"}  # other projects' names

A trainable that declares CONFIG_KEYS has every other name refused before the run starts, with a
did-you-mean; one that does not gets whatever keys the space names, as a W&B sweep's parameters
become a run's config. Nothing here imports Ray.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from tuner.errors import ConfigError

FORMS = "train(config) or train(config, data), either with an optional report argument"
FIX = "set trainable=<package>.<module>.<function>, e.g. trainables.har.train"


@dataclass(frozen=True)
class Trainable:
    """The function a run tunes, how to call it, and what its module declares."""

    path: str
    function: Callable[..., None]
    takes_data: bool  # train(config, data): the data is built and shared; train(config): none
    takes_report: bool
    metrics: tuple[str, ...] | None  # None: not declared, any metric is taken on trust
    keys: dict[str, Any] | None  # dotted key -> type or tuple of choices; None: any key
    aliases: dict[str, str] = field(default_factory=dict)


def load_trainable(path: str) -> Trainable:
    """The trainable at ``trainable=<path>``, its call form checked; one ConfigError naming
    ``trainable`` when it cannot be imported or called in either form."""
    function, module = import_function(path, "trainable", FIX)
    takes_data, takes_report = call_form(function, path)
    metrics = getattr(module, "METRICS", None)
    keys = getattr(module, "CONFIG_KEYS", None)
    return Trainable(
        path=path,
        function=function,
        takes_data=takes_data,
        takes_report=takes_report,
        metrics=tuple(metrics) if metrics is not None else None,
        keys=dict(keys) if keys is not None else None,
        aliases=dict(getattr(module, "ALIASES", None) or {}),
    )


def call_form(function: Callable[..., Any], path: str) -> tuple[bool, bool]:
    """Whether the function takes the data (a second positional argument) and a ``report``
    argument; a signature that fits neither form is a ConfigError."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        raise ConfigError("trainable", f"{path} has no signature tuner can read", f"give a function {FORMS}") from None
    if inspect.isclass(function):
        raise ConfigError("trainable", f"{path} is a class", f"give a function {FORMS}")
    takes_report = any(p.name == "report" and p.kind != p.POSITIONAL_ONLY for p in parameters)
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "report"]
    spread = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    required = [p for p in positional if p.default is p.empty]
    keyword_only = [p.name for p in parameters if p.kind == p.KEYWORD_ONLY and p.default is p.empty and p.name != "report"]
    if (not positional and not spread) or len(required) > 2 or keyword_only:
        shown = f"{path.rpartition('.')[2]}({', '.join(p.name for p in parameters)})"
        raise ConfigError("trainable", f"{shown} fits neither trainable form", f"give it the form {FORMS}")
    return len(positional) >= 2 or spread, takes_report


def import_function(path: str, key: str, fix: str) -> tuple[Callable[..., Any], Any]:
    """The function at a dotted import path (a trainable, a data builder) and its module."""
    module_name, _, attr = str(path).rpartition(".")
    if not module_name:
        raise ConfigError(key, f"'{path}' is not a dotted import path", fix)
    try:
        module = _import_module(module_name)
    except ImportError as err:
        raise ConfigError(key, f"cannot import '{module_name}' ({err})", fix) from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError(key, f"'{module_name}' has no function '{attr}'", fix)
    return function, module


def _import_module(name: str) -> Any:
    """A module by dotted name, or one its package re-exports under that name (as Hydra finds a
    ``_target_``: trainables.uci_har is trainables.data.uci_har)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        package, _, child = name.rpartition(".")
        if err.name != name or not package:  # the module exists but something it imports does not
            raise
        module = getattr(importlib.import_module(package), child, None)
        if not inspect.ismodule(module):
            raise
        return module


def value_problem(value: Any, kind: Any) -> str:
    """Why a value does not fit a declared type or tuple of choices; "" when it fits."""
    if isinstance(kind, tuple):
        return "" if value in kind else f"must be {describe(kind)}, got {value!r}"
    if kind is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
    else:
        fits = isinstance(value, kind)
    return "" if fits else f"must be {describe(kind)}, got {value!r}"


def describe(kind: Any) -> str:
    """A declared type or tuple of choices in words: "one of: none, step", "an integer"."""
    if isinstance(kind, tuple):
        return f"one of: {', '.join(str(choice) for choice in kind)}"
    words = {float: "a number", int: "an integer", bool: "true or false", str: "text", dict: "a mapping"}
    return words.get(kind, f"a {getattr(kind, '__name__', kind)}")

