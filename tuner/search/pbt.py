"""Population based training (``search=pbt``): every ``perturbation_interval`` epochs, a trial in
the bottom ``quantile_fraction`` of the population continues from the checkpoint of one in the top
fraction, with the parameters named in ``mutate`` perturbed (x0.8 or x1.2, a neighbouring choice)
or, with ``resample_probability``, drawn afresh from the space. ``search=pb2`` (Parker-Holder et al.
2020) exploits the same way and picks the new values with a GP bandit fitted to the population's
results, within each mutated parameter's bounds.

The trainable must restore a checkpoint under a changed config (trainables.har does: lr and
weight decay are taken from the config, not from the optimizer state, and dropout has no weights).
The checks run without Ray; the builder converts the space's parameters into Ray's mutations.

Example::

    python -m tuner search=pbt num_samples=8 search.scheduler.perturbation_interval=2
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

from tuner.errors import ConfigError, check_count
from tuner.search import ray_space
from tuner.space import CONSTANT, Param

if TYPE_CHECKING:
    from tuner.spec import RunSpec

BOUNDED = ("uniform", "loguniform", "quniform", "qloguniform", "randint", "qrandint")


def check_pbt(options: dict[str, Any], max_epochs: int) -> None:
    check_population(options, max_epochs)
    probability = options["resample_probability"]
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
        raise ConfigError("search.scheduler.resample_probability", f"must be from 0 to 1, got {probability!r}", "set it to 0.25")


def check_population(options: dict[str, Any], max_epochs: int) -> None:
    """What search=pbt and search=pb2 share: how often and how many trials exploit, and what."""
    interval = check_count(options["perturbation_interval"], "search.scheduler.perturbation_interval")
    if interval >= max_epochs:
        raise ConfigError(
            "search.scheduler.perturbation_interval",
            f"must be below max_epochs ({max_epochs}) for a trial ever to exploit another, got {interval}",
            "lower it or raise max_epochs",
        )
    fraction = options["quantile_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
        raise ConfigError("search.scheduler.quantile_fraction", f"must be above 0 and at most 0.5, got {fraction!r}", "set it to 0.25")
    mutate = options["mutate"]
    if not isinstance(mutate, list) or not mutate or not all(isinstance(name, str) for name in mutate):
        raise ConfigError("search.scheduler.mutate", f"must be a non-empty list of space names, got {mutate!r}", "set it to [lr,weight_decay,dropout]")


def check_mutated(options: dict[str, Any], params: list[Param]) -> None:
    """Each mutated name is a sampled parameter of the space: PBT perturbs within its distribution."""
    sampled = [p.name for p in params if p.type != CONSTANT]
    for name in options["mutate"]:
        if name not in sampled:
            raise ConfigError(
                "search.scheduler.mutate",
                f"'{name}' is not a sampled parameter of the space",
                f"mutate some of: {', '.join(sampled)}, or add it to space:",
            )


def check_bounded(options: dict[str, Any], params: list[Param]) -> None:
    """Each mutated name is a sampled parameter with bounds: PB2 chooses values between them."""
    check_mutated(options, params)
    for param in params:
        if param.name in options["mutate"] and param.type not in BOUNDED:
            raise ConfigError(
                "search.scheduler.mutate",
                f"'{param.name}' is a {param.type}; pb2 chooses values between bounds",
                "mutate only parameters with low and high, or use search=pbt",
            )


def pbt(options: dict[str, Any], spec: RunSpec) -> Any:
    """Ray Tune's PopulationBasedTraining (up to the last epoch), its mutations taken from the space."""
    from tuner.search.pbt_scheduler import EpochBoundedPBT

    mutated = [p for p in spec.params if p.name in options["mutate"]]
    return EpochBoundedPBT(
        max_epochs=spec.max_epochs,
        perturbation_interval=options["perturbation_interval"],
        hyperparam_mutations={p.name: mutation(p) for p in mutated},
        quantile_fraction=options["quantile_fraction"],
        resample_probability=options["resample_probability"],
        custom_explore_fn=functools.partial(keep_in_space, mutated),
    )


def pb2(options: dict[str, Any], spec: RunSpec) -> Any:
    """Ray Tune's PB2 (up to the last epoch), its bounds taken from the space."""
    from sklearn.exceptions import ConvergenceWarning

    from tuner.search.pbt_scheduler import EpochBoundedPB2

    # The GP refit at every exploit warns when a kernel parameter reaches its bound: noise in the run's output.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    mutated = [p for p in spec.params if p.name in options["mutate"]]
    return EpochBoundedPB2(
        max_epochs=spec.max_epochs,
        perturbation_interval=options["perturbation_interval"],
        hyperparam_bounds={p.name: [p.args["low"], p.args["high"]] for p in mutated},
        quantile_fraction=options["quantile_fraction"],
        custom_explore_fn=functools.partial(keep_in_space, mutated),
    )


def mutation(param: Param) -> Any:
    """What Ray's PBT perturbs a parameter within: the list of a choice (it shifts to a
    neighbour), else the distribution (it multiplies by 0.8 or 1.2, or resamples)."""
    if param.type in ("choice", "grid"):
        return list(param.args["values"])
    return ray_space.domain(param)


def keep_in_space(params: list[Param], config: dict[str, Any]) -> dict[str, Any]:
    """A perturbed config with each value back inside its distribution's bounds and on its grid of
    q: a dropout perturbed x1.2 at 0.5 stays 0.5."""
    for param in params:
        value = config.get(param.name)
        if param.type not in BOUNDED or value is None:
            continue
        q = param.args.get("q")
        if q:
            value = round(value / q) * q
        value = min(max(value, param.args["low"]), param.args["high"])
        config[param.name] = type(config[param.name])(value)
    return config
