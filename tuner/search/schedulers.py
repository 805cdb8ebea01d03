"""Trial schedulers: which trials stop before max_epochs. Each has a check of its options, which
runs without Ray, and a builder of Ray Tune's scheduler, which imports Ray when it is called."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.errors import ConfigError, check_count

if TYPE_CHECKING:
    from tuner.spec import RunSpec


def check_fifo(options: dict[str, Any], max_epochs: int) -> None:
    """Every trial runs to max_epochs: nothing to check."""


def check_hyperband(options: dict[str, Any], max_epochs: int) -> None:
    factor = options["reduction_factor"]
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
        raise ConfigError("search.scheduler.reduction_factor", f"must be > 1, got {factor!r}", "set it to 2, 3 or 4")


def check_asha(options: dict[str, Any], max_epochs: int) -> None:
    check_hyperband(options, max_epochs)
    check_grace_period(options, max_epochs)


def check_median(options: dict[str, Any], max_epochs: int) -> None:
    check_grace_period(options, max_epochs)
    check_count(options["min_samples_required"], "search.scheduler.min_samples_required", fix="set it to 3 or more")


def check_grace_period(options: dict[str, Any], max_epochs: int) -> None:
    """Epochs every trial gets before it can be stopped: from 1 to max_epochs."""
    grace = options["grace_period"]
    if isinstance(grace, bool) or not isinstance(grace, int) or not 1 <= grace <= max_epochs:
        raise ConfigError(
            "search.scheduler.grace_period",
            f"must be an integer from 1 to max_epochs ({max_epochs}), got {grace!r}",
            "lower it or raise max_epochs",
        )


def fifo(options: dict[str, Any], spec: RunSpec) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def asha(options: dict[str, Any], spec: RunSpec) -> Any:
    """Asynchronous successive halving: a trial stops at a rung where it is not in the top 1/factor."""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    return AsyncHyperBandScheduler(
        max_t=spec.max_epochs, grace_period=options["grace_period"], reduction_factor=options["reduction_factor"]
    )


def hyperband(options: dict[str, Any], spec: RunSpec) -> Any:
    """Synchronous HyperBand: brackets of successive halving."""
    from ray.tune.schedulers import HyperBandScheduler

    # Ray's default (stop_last_trials=True) can leave a run waiting forever on a trial
    # paused at the last rung of a finished bracket.
    return HyperBandScheduler(max_t=spec.max_epochs, reduction_factor=options["reduction_factor"], stop_last_trials=False)


def median(options: dict[str, Any], spec: RunSpec) -> Any:
    """The median stopping rule: after grace_period epochs, a trial whose best so far is worse than
    the median of the other trials' running means at the same epoch stops."""
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr="training_iteration",
        grace_period=options["grace_period"],
        min_samples_required=options["min_samples_required"],
    )
