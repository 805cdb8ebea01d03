"""Build Ray Tune's searcher and scheduler from a RunSpec: the only place that names them."""

from __future__ import annotations

import optuna
from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    TrialScheduler,
)
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from tuner.errors import ConfigError
from tuner.spec import RunSpec

SCHEDULER_OPTIONS = {
    "fifo": (),
    "asha": ("grace_period", "reduction_factor"),
    "hyperband": ("reduction_factor",),
}


def make_searcher(spec: RunSpec) -> Searcher | BasicVariantGenerator:
    """Random/basic/grid sampling through Ray's variant generator, Optuna TPE or NSGA-II."""
    limit = spec.max_concurrent
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(
            "search.max_concurrent", f"must be a positive integer, got {limit!r}", "set it or null"
        )
    if spec.optuna_space is None:
        return BasicVariantGenerator(max_concurrent=limit or 0, random_state=spec.seed)
    if spec.searcher == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=spec.seed, population_size=population_size(spec))
        metric, mode = [o["metric"] for o in spec.objectives], [o["mode"] for o in spec.objectives]
    else:
        sampler = optuna.samplers.TPESampler(seed=spec.seed)
        metric, mode = spec.metric, spec.mode
    # A define-by-run space is fixed at construction, so Optuna must learn metric and mode here.
    searcher = OptunaSearch(space=spec.optuna_space, metric=metric, mode=mode, sampler=sampler)
    return ConcurrencyLimiter(searcher, max_concurrent=limit) if limit else searcher


def population_size(spec: RunSpec) -> int:
    """NSGA-II's generation size: the trials it samples before it starts to select."""
    size = spec.config["search"].get("population_size", 8)
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        raise ConfigError("search.population_size", f"must be an integer >= 2, got {size!r}", "set it to about num_samples / 4")
    return size


def make_scheduler(spec: RunSpec) -> TrialScheduler:
    """FIFO (every trial runs to max_epochs), ASHA or HyperBand early stopping, per epoch."""
    options = {k: v for k, v in spec.scheduler.items() if k != "type"}
    kind = spec.scheduler["type"]
    for key in options:
        if key not in SCHEDULER_OPTIONS[kind]:
            allowed = ", ".join(SCHEDULER_OPTIONS[kind]) or "nothing but type"
            raise ConfigError(f"search.scheduler.{key}", f"is not an option of {kind}", f"use {allowed}")
    if kind == "fifo":
        return FIFOScheduler()
    factor = options.get("reduction_factor", 3)
    if not isinstance(factor, (int, float)) or factor <= 1:
        raise ConfigError(
            "search.scheduler.reduction_factor", f"must be > 1, got {factor!r}", "set it to 2, 3 or 4"
        )
    if kind == "hyperband":
        # Ray's default (stop_last_trials=True) can leave a run waiting forever on a trial
        # paused at the last rung of a finished bracket.
        return HyperBandScheduler(
            max_t=spec.max_epochs, reduction_factor=factor, stop_last_trials=False
        )
    grace = options.get("grace_period", 1)
    if not isinstance(grace, int) or not 1 <= grace <= spec.max_epochs:
        raise ConfigError(
            "search.scheduler.grace_period",
            f"must be an integer from 1 to max_epochs ({spec.max_epochs}), got {grace!r}",
            "lower it or raise max_epochs",
        )
    return AsyncHyperBandScheduler(max_t=spec.max_epochs, grace_period=grace, reduction_factor=factor)
