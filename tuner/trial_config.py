"""The config each trial's trainable gets, and the checks that it holds only what the trainable
reads, before Ray starts.

A trial's config is the ``train:`` section plus ``model``, ``max_epochs``, ``seed`` and
``threads``, with the space's values at their dotted names (``lr``, ``model.channels``). A space
that chooses ``model.name`` gives each trial the settings of the model it draws, as
``model=<option>`` would: keys every chosen model shares stay in the base config, the others
become constants that exist only when their model is drawn, and a sampled ``model.*`` parameter
that only some models have exists only for those. Nothing here imports Ray.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tuner import space as space_lib
from tuner.errors import ConfigError, did_you_mean
from tuner.groups import GROUPS, option_section
from tuner.space import CONSTANT, Param
from tuner.trainable import Trainable, describe, value_problem

TUNER_KEYS = ("max_epochs", "seed", "threads")  # what tuner puts in every trial's config itself
CHOICES = ("choice", "grid")
WHOLE_NUMBER_TYPES = ("randint", "qrandint", "qloguniform")  # qloguniform: with integral low, high and q


def trial_base_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config every trial starts from, before its sampled parameters are applied."""
    return {
        **config["train"],
        "model": dict(config["model"]),
        "max_epochs": config["max_epochs"],
        "seed": config["seed"],
        "threads": max(1, math.floor(config["trial"]["cpus"])),
    }


def trial_space(config: dict[str, Any]) -> tuple[dict[str, Any], list[Param]]:
    """The base config and the space's parameters that give each trial its config, a chosen
    model's own settings included."""
    base = trial_base_config(config)
    params = space_lib.parse_space(config.get("space") or {})
    for section in [key for key, value in base.items() if isinstance(value, dict) and key in GROUPS]:
        base, params = _choose_section(section, base, params)
    return base, params


def _choose_section(section: str, base: dict[str, Any], params: list[Param]) -> tuple[dict[str, Any], list[Param]]:
    """``<section>.name`` drawn from the group's options: each option's settings, conditional on it."""
    chooser = f"{section}.name"
    drawn = next((p for p in params if p.name == chooser), None)
    if drawn is None or drawn.type not in (CONSTANT, *CHOICES):
        return base, params
    own = base[section]
    choices = [drawn.args["value"]] if drawn.type == CONSTANT else list(drawn.args["values"])
    if choices == [own.get("name")]:
        return base, params
    sections = _option_sections(section, own, choices)
    if sections is None:  # not every value names an option: plain values, as given
        return base, params
    keys = list(dict.fromkeys(key for settings in sections.values() for key in settings if key != "name"))
    searched = {p.name: p for p in params}
    shared: dict[str, Any] = {}
    added: list[Param] = []
    for key in keys:
        owners = tuple(option for option, settings in sections.items() if key in settings)
        name = f"{section}.{key}"
        if name in searched:
            if len(owners) < len(sections) and not searched[name].when:
                searched[name] = dataclasses.replace(searched[name], when={chooser: owners})
            continue
        values = [sections[option][key] for option in owners]
        if any(value != values[0] for value in values):
            raise ConfigError(
                f"space.{chooser}",
                f"{' and '.join(owners)} set {name} differently ({', '.join(map(repr, values))})",
                f"set {name} on the command line, or search it in the space",
            )
        if len(owners) == len(sections):
            shared[key] = values[0]
        else:
            added.append(Param(name, CONSTANT, {"value": values[0]}, when={chooser: owners}))
    for param in searched.values():
        key = param.name.removeprefix(f"{section}.").partition(".")[0]
        if param.name.startswith(f"{section}.") and key != "name" and key not in keys:
            raise ConfigError(
                f"space.{param.name}",
                f"is not a setting of any {section} the space chooses ({', '.join(sections)})",
                did_you_mean(f"{section}.{key}", [f"{section}.{k}" for k in keys]) or f"use one of: {', '.join(keys)}",
            )
    chosen = {**base, section: {"name": own.get("name"), **shared}}
    return chosen, space_lib.order_conditions([searched[p.name] for p in params] + added)


def _option_sections(section: str, own: dict[str, Any], choices: list[Any]) -> dict[str, dict[str, Any]] | None:
    """Each chosen option's settings: its file's, with the command line's changes to the config's
    own option applied to every option that has the key; None when a value names no option."""
    own_file = option_section(section, own.get("name")) or {}
    changed = {key: value for key, value in own.items() if key in own_file and own_file[key] != value}
    sections = {}
    for option in choices:
        if option == own.get("name"):
            sections[option] = own
            continue
        settings = option_section(section, option)
        if settings is None:
            return None
        sections[option] = settings | {key: value for key, value in changed.items() if key in settings}
    return sections


def check_names(params: list[Param], base: dict[str, Any], trainable: Trainable) -> None:
    """Every space name reaches a key the trainable gets: never a whole section, never inside a
    plain value, inside the model only at a setting it has (a conditional may add one), and one
    the trainable reads when it declares its keys."""
    leaves = space_lib.flatten(base)
    sections = {name for name in _paths(base) if name not in leaves}
    for param in params:
        name = param.name
        if name in sections:
            raise ConfigError(
                f"space.{name}",
                f"its values would replace the {name} section of the trial config",
                f"search its settings instead ({name}.name, {name}.<key>)",
            )
        parts = name.split(".")
        for depth in range(1, len(parts)):
            if ".".join(parts[:depth]) in leaves:
                raise ConfigError(f"space.{name}", f"{'.'.join(parts[:depth])} is a value, not a section", "name a key of the trial config")
        grouped = parts[0] in sections and parts[0] in GROUPS
        if grouped and name not in leaves and not param.when:
            known = [key for key in leaves if key.startswith(f"{parts[0]}.")]
            raise ConfigError(f"space.{name}", "is not a key of the trial config", did_you_mean(name, known) or f"use one of: {', '.join(known)}")
        if not trainable_reads(trainable, name):
            raise never_read(trainable, name, f"space.{name}")


def check_values(params: list[Param], base: dict[str, Any], trainable: Trainable) -> None:
    """With declared keys: every base value (``train.*`` and the model's settings) is a key the
    trainable reads, of its type or among its choices, and so is every value the space gives."""
    if trainable.keys is None:
        return
    for name, value in space_lib.flatten(base).items():
        label = name if name in TUNER_KEYS or name.startswith("model.") else f"train.{name}"
        if name not in trainable.keys:
            if name not in TUNER_KEYS and not trainable_reads(trainable, name):
                raise never_read(trainable, name, label)
            continue
        problem = value_problem(value, trainable.keys[name])
        if problem:
            raise ConfigError(label, problem, f"set {label} to {describe(trainable.keys[name])}")
    for param in params:
        if param.name in trainable.keys:
            _check_param(param, trainable.keys[param.name])


def _check_param(param: Param, kind: Any) -> None:
    key = f"space.{param.name}"
    if param.type == CONSTANT:
        problem = value_problem(param.args["value"], kind)
        if problem:
            raise ConfigError(key, problem, f"give it {describe(kind)}")
    elif param.type in CHOICES:
        for value in param.args["values"]:
            problem = value_problem(value, kind)
            if problem:
                raise ConfigError(f"{key}.values", f"each value {problem}", f"remove {value!r}")
    elif kind is not float:
        whole = param.type in WHOLE_NUMBER_TYPES and all(float(param.args.get(k, 1)).is_integer() for k in ("low", "high", "q"))
        if kind is not int or not whole:
            raise ConfigError(
                key,
                f"must be {describe(kind)}, which a {param.type} distribution does not draw",
                "give it values" if kind is not int else "use randint, qrandint or values",
            )


def trainable_reads(trainable: Trainable, name: str) -> bool:
    """Whether a key is one the trainable reads: any key when it declares none; a declared one;
    or one under a section it declares nothing of (a model section it never looks into)."""
    if trainable.keys is None or name in trainable.keys:
        return True
    top = name.partition(".")[0]
    return "." in name and not any(key.startswith(f"{top}.") for key in trainable.keys)


def never_read(trainable: Trainable, name: str, key: str) -> ConfigError:
    """A name the trainable does not read: refused, with its own name for it or a did-you-mean."""
    alias = trainable.aliases.get(name)
    if alias:
        fix = f"use {alias} ({trainable.path}'s name for {name})"
    else:
        fix = did_you_mean(name, [*(trainable.keys or ()), *trainable.aliases]) or f"it reads: {', '.join(trainable.keys or ())}"
    return ConfigError(key, f"{trainable.path} never reads {name}", fix)


def _paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    """Every dotted path of nested mappings, sections and values alike."""
    paths = []
    for key, value in node.items():
        paths.append(f"{prefix}{key}")
        if isinstance(value, dict):
            paths += _paths(value, f"{prefix}{key}.")
    return paths
