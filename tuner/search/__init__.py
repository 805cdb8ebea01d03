"""The one registry of searchers (``search.searcher``) and schedulers (``search.scheduler.type``).

Each entry holds its options with their defaults, their check, and its Ray Tune builder.
``check_search`` and ``check_space`` validate a config without importing Ray or Optuna (tuner.spec
calls them); ``make_search`` builds the searcher, scheduler and param_space of a RunSpec for Ray
Tune (tuner.run), converting the parsed space beside the searcher that takes it (ray_space.py,
optuna_space.py).

A new scheduler is a check and a builder in schedulers.py (or its own module, as pbt.py), one
entry in SCHEDULERS and one ``conf/search/<name>.yaml``; a new searcher, a builder in
searchers.py and one entry in SEARCHERS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from tuner.errors import ConfigError
from tuner.search import optuna_space, pbt, ray_space, schedulers, searchers
from tuner.space import Param

if TYPE_CHECKING:
    from tuner.spec import RunSpec


@dataclass(frozen=True)
class Scheduler:
    """A trial scheduler: when trials stop before max_epochs."""

    name: str
    options: dict[str, Any]  # its keys under search.scheduler, with their defaults
    check: Callable[[dict[str, Any], int], None]  # (options, max_epochs); no Ray
    build: Callable[[dict[str, Any], RunSpec], Any]  # (options, spec) -> Ray Tune's scheduler
    stops_early: bool  # it stops trials on one metric, which a Pareto search cannot rank by
    explores: bool = False  # it changes trials' configs itself: only Ray's own sampling starts them
    check_params: Callable[[dict[str, Any], list[Param]], None] | None = None  # (options, space)
    shares_checkpoints: bool = False  # trials restore each other's checkpoints: Ray keeps them all


@dataclass(frozen=True)
class Searcher:
    """A searcher: which configs the trials get."""

    name: str
    space: str  # the form of the space it takes: "ray" (param_space) or "optuna" (define-by-run)
    grid_axes: tuple[str, ...]  # the distribution types it enumerates as a grid
    samples: bool  # False: it only enumerates its grid, once (num_samples is not used)
    pareto: bool  # it searches the Pareto front of several objectives
    options: dict[str, Any]  # its own keys under search:, with their defaults
    check: Callable[[dict[str, Any]], None]
    build: Callable[[RunSpec], Any]  # -> Ray Tune's searcher


SCHEDULERS = {
    scheduler.name: scheduler
    for scheduler in (
        Scheduler("fifo", {}, schedulers.check_fifo, schedulers.fifo, stops_early=False),
        Scheduler("asha", {"grace_period": 1, "reduction_factor": 3}, schedulers.check_asha, schedulers.asha, stops_early=True),
        Scheduler("hyperband", {"reduction_factor": 3}, schedulers.check_hyperband, schedulers.hyperband, stops_early=True),
        Scheduler("median", {"grace_period": 1, "min_samples_required": 3}, schedulers.check_median, schedulers.median, stops_early=True),
        Scheduler(
            "pbt",
            {"perturbation_interval": 2, "quantile_fraction": 0.25, "resample_probability": 0.25, "mutate": ["lr", "weight_decay", "dropout"]},
            pbt.check_pbt, pbt.pbt, stops_early=True, explores=True, check_params=pbt.check_mutated, shares_checkpoints=True,
        ),
        Scheduler(
            "pb2",
            {"perturbation_interval": 2, "quantile_fraction": 0.25, "mutate": ["lr", "weight_decay", "dropout"]},
            pbt.check_population, pbt.pb2, stops_early=True, explores=True, check_params=pbt.check_bounded, shares_checkpoints=True,
        ),
    )
}
SEARCHERS = {
    searcher.name: searcher
    for searcher in (
        Searcher("basic", "ray", ("grid",), True, False, {}, searchers.check_none, searchers.variant_generator),
        Searcher("random", "ray", (), True, False, {}, searchers.check_none, searchers.variant_generator),
        Searcher("grid", "ray", ("grid", "choice"), False, False, {}, searchers.check_none, searchers.variant_generator),
        Searcher("optuna", "optuna", (), True, False, {"prior": True}, searchers.check_prior, searchers.tpe),
        Searcher("nsga2", "optuna", (), True, True, {"population_size": 8}, searchers.check_nsga2, searchers.nsga2),
    )
}
# One config as given, to max_epochs: what retraining and stage two run.
NO_SEARCH = {"name": "fifo", "searcher": "basic", "scheduler": {"type": "fifo"}}


class CheckedSearch(NamedTuple):
    """A ``search:`` group, checked, with every default filled in."""

    searcher: str
    scheduler: dict[str, Any]  # {"type": <name>, <option>: <value>, ...}
    max_concurrent: int | None
    searcher_options: dict[str, Any]


def check_search(search: dict[str, Any], max_epochs: int) -> CheckedSearch:
    """The searcher, the scheduler and their options, each checked; one ConfigError otherwise."""
    name = search.get("searcher")
    if name not in SEARCHERS:
        raise ConfigError("search.searcher", f"unknown searcher '{name}'", f"use one of: {', '.join(SEARCHERS)}")
    searcher = SEARCHERS[name]
    given = dict(search.get("scheduler") or {})
    kind = given.pop("type", None)
    if kind not in SCHEDULERS:
        raise ConfigError("search.scheduler.type", f"unknown scheduler {kind!r}", f"use one of: {', '.join(SCHEDULERS)}")
    scheduler = SCHEDULERS[kind]
    for key in given:
        if key not in scheduler.options:
            allowed = ", ".join(scheduler.options) or "nothing but type"
            raise ConfigError(f"search.scheduler.{key}", f"is not an option of {kind}", f"use {allowed}")
    options = scheduler.options | given
    scheduler.check(options, max_epochs)
    if scheduler.explores and searcher.space != "ray":
        raise ConfigError(
            "search.searcher", f"{kind} changes the trials' configs itself; {name} cannot choose them",
            "use search.searcher=basic (search=pbt does)",
        )
    limit = search.get("max_concurrent")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError("search.max_concurrent", f"must be a positive integer, got {limit!r}", "set it or null")
    searcher_options = {key: search.get(key, default) for key, default in searcher.options.items()}
    searcher.check(searcher_options)
    return CheckedSearch(name, {"type": kind, **options}, limit, searcher_options)


def check_space(
    params: list[Param], searcher: str, scheduler: dict[str, Any] | None = None, searcher_options: dict[str, Any] | None = None,
) -> None:
    """The space fits the searcher (the grid searcher cannot sample, Optuna has no grid, a
    space.<p>.prior needs search.prior on) and the scheduler (PBT mutates parameters of the space)."""
    with_prior = next((p for p in params if p.prior is not None), None)
    if with_prior and "prior" in SEARCHERS[searcher].options and not (searcher_options or {}).get("prior"):
        raise ConfigError(f"space.{with_prior.name}.prior", "is not used: search.prior is false", "set search.prior=true, or drop it")
    if SEARCHERS[searcher].space == "optuna":
        optuna_space.check_space(params, searcher)
    else:
        ray_space.check_space(params, SEARCHERS[searcher])
    if scheduler and SCHEDULERS[scheduler["type"]].check_params:
        SCHEDULERS[scheduler["type"]].check_params(scheduler, params)


def trial_count(params: list[Param], searcher: str, num_samples: int) -> int:
    """How many trials a search creates: grid points times samples, as Ray Tune counts them."""
    entry = SEARCHERS[searcher]
    points = math.prod(len(p.args["values"]) for p in params if p.type in entry.grid_axes)
    return points * num_samples if entry.samples else points


def checkpoints_to_keep(spec: RunSpec) -> int | None:
    """How many checkpoints Ray keeps per trial: the best one, or every one (None) when another
    trial may restore a checkpoint after its owner has moved on (PBT)."""
    return None if SCHEDULERS[spec.scheduler["type"]].shares_checkpoints else 1


def make_search(spec: RunSpec) -> tuple[Any, Any, dict[str, Any]]:
    """Ray Tune's searcher, scheduler and param_space for a checked spec (stage two's: a grid of
    its candidates)."""
    searcher = SEARCHERS[spec.searcher]
    options = {key: value for key, value in spec.scheduler.items() if key != "type"}
    scheduler = SCHEDULERS[spec.scheduler["type"]].build(options, spec)
    if spec.candidates:
        param_space = ray_space.candidate_space(spec.params, spec.candidates)
    elif searcher.space == "ray":
        param_space = ray_space.to_ray(spec.params, searcher)
    else:
        param_space = {}  # the define-by-run space is the searcher's own
    return searcher.build(spec), scheduler, param_space
