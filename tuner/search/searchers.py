"""Searchers: which configs the trials get. Each builder imports Ray (and Optuna) when called."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.errors import ConfigError
from tuner.search.optuna_space import OptunaSpace
from tuner.search.prior import Prior

if TYPE_CHECKING:
    from tuner.spec import RunSpec


def variant_generator(spec: RunSpec) -> Any:
    """Ray's own sampling (basic, random, grid): the space is Ray's param_space."""
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(max_concurrent=spec.max_concurrent or 0, random_state=spec.seed)


def tpe(spec: RunSpec) -> Any:
    """Optuna's TPE sampler, learning from every epoch of every trial (tuner/search/optuna_search.py),
    around the prior of the user's config when search.prior is on."""
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    from tuner.search.optuna_search import OptunaSearcher

    _quiet_optuna(spec)
    prior = Prior.from_config(spec.params, spec.base_config) if spec.searcher_options["prior"] else None
    searcher = OptunaSearcher(
        OptunaSpace(spec.params), optuna.samplers.TPESampler(seed=spec.seed), spec.metric, spec.mode,
        spec.max_epochs, prior, spec.seed,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent) if spec.max_concurrent else searcher


def nsga2(spec: RunSpec) -> Any:
    """Optuna's NSGA-II: the Pareto front of the run's objectives."""
    import optuna

    sampler = optuna.samplers.NSGAIISampler(seed=spec.seed, population_size=spec.searcher_options["population_size"])
    metrics, modes = [o["metric"] for o in spec.objectives], [o["mode"] for o in spec.objectives]
    return _optuna_search(spec, sampler, metrics, modes)


def check_nsga2(options: dict[str, Any]) -> None:
    size = options["population_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        raise ConfigError("search.population_size", f"must be an integer >= 2, got {size!r}", "set it to about num_samples / 4")


def check_prior(options: dict[str, Any]) -> None:
    if not isinstance(options["prior"], bool):
        raise ConfigError("search.prior", f"must be true or false, got {options['prior']!r}", "set search.prior=true or search.prior=false")


def check_none(options: dict[str, Any]) -> None:
    """A searcher with no options of its own."""


def _quiet_optuna(spec: RunSpec) -> None:
    import optuna

    if not spec.verbose:  # Optuna's "A new study created" line is not part of tuner's progress
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def _optuna_search(spec: RunSpec, sampler: Any, metric: Any, mode: Any) -> Any:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    _quiet_optuna(spec)
    # A define-by-run space is fixed at construction, so Optuna must learn metric and mode here.
    searcher = OptunaSearch(space=OptunaSpace(spec.params), metric=metric, mode=mode, sampler=sampler)
    return ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent) if spec.max_concurrent else searcher
