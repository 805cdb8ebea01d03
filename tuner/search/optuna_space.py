"""The parsed space as an Optuna define-by-run function, for the searchers that sample through an
Optuna study (TPE, NSGA-II). Nothing here imports Optuna: the function gets Optuna's trial."""

from __future__ import annotations

import math
import statistics
from typing import Any

from tuner.errors import ConfigError
from tuner.space import CONSTANT, Param, grid_bounds, typed


def check_space(params: list[Param], searcher_name: str) -> None:
    """Optuna samples; it has no grid, and its categorical choices must be scalars."""
    for param in params:
        if param.type == "grid":
            raise ConfigError(
                f"space.{param.name}",
                f"search={searcher_name} cannot take a grid entry",
                "give it type choice, or use search=grid or search=fifo",
            )
        if param.type == "choice":
            for value in param.args["values"]:
                if value is not None and not isinstance(value, (bool, int, float, str)):
                    raise ConfigError(
                        f"space.{param.name}.values",
                        f"search={searcher_name} takes only scalar choices, got {value!r}",
                        "use scalar values or another search",
                    )


class OptunaSpace:
    """Optuna define-by-run function: suggests each active parameter in condition order.

    Optuna has no normal distribution, so a normal parameter is suggested as its quantile
    (uniform in (0, 1)) and mapped through the inverse normal CDF: TPE models the quantile,
    which orders values exactly as the normal does.

    Example::

        OptunaSearch(space=OptunaSpace(params), metric="val_acc", mode="max")
    """

    def __init__(self, params: list[Param]) -> None:
        self.params = params

    def __call__(self, trial: Any) -> dict[str, Any]:
        sampled: dict[str, Any] = {}
        for param in self.params:
            if param.is_active(sampled):
                sampled[param.name] = _suggest(trial, param)
        return sampled


def _suggest(trial: Any, param: Param) -> Any:
    kind, args, name = param.type, param.args, param.name
    if kind == CONSTANT:
        return args["value"]
    if kind == "choice":
        return trial.suggest_categorical(name, args["values"])
    if kind == "uniform":
        return trial.suggest_float(name, args["low"], args["high"])
    if kind == "loguniform":
        return trial.suggest_float(name, args["low"], args["high"], log=True)
    if kind == "quniform":
        return trial.suggest_float(name, args["low"], args["high"], step=args["q"])
    if kind == "qloguniform":
        low, high = grid_bounds(args)
        value = trial.suggest_float(name, low, high, log=True)
        return typed(param, round(value / args["q"]) * args["q"])
    if kind == "randint":
        return trial.suggest_int(name, int(args["low"]), int(args["high"]))
    if kind == "qrandint":
        return trial.suggest_int(name, int(args["low"]), int(args["high"]), step=int(args["q"]))
    quantile = trial.suggest_float(name, 1e-6, 1 - 1e-6)
    return statistics.NormalDist(args["mean"], args["sd"]).inv_cdf(quantile)


def fixed(param: Param, value: Any) -> Any:
    """The value Optuna's trial must hold (``study.enqueue_trial``) for ``param`` to come out near
    ``value``: on the step grid Optuna suggests from, the quantile of a normal."""
    kind, args = param.type, param.args
    if kind in ("quniform", "qrandint"):
        steps = min(round((value - args["low"]) / args["q"]), math.floor((args["high"] - args["low"]) / args["q"]))
        snapped = args["low"] + max(0, steps) * args["q"]
        return int(snapped) if kind == "qrandint" else snapped
    if kind == "randint":
        return int(round(value))
    if kind == "qloguniform":
        low, high = grid_bounds(args)
        return min(max(value, low), high)
    if kind == "normal":
        quantile = statistics.NormalDist(args["mean"], args["sd"]).cdf(value)
        return min(max(quantile, 1e-6), 1 - 1e-6)
    return value
