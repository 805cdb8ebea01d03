"""How much of a run's metric each param explains: Optuna's fANOVA over the finished trials.

Imported only when a report asks for it: Optuna's importance module imports scikit-learn,
which takes about a second.
"""

from __future__ import annotations

from typing import Any

import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from tuner import space as space_lib
from tuner.results.tables import plain
from tuner.trials import UNFINISHED

_LOG_TYPES = ("loguniform", "qloguniform")
_INT_TYPES = ("randint", "qrandint")


def importances(
    trials: pd.DataFrame, column: str, mode: str, searched: dict[str, space_lib.Param]
) -> tuple[dict[str, float], list[str]] | str:
    """fANOVA importances, on ``column``, of the ``searched`` params set in every finished trial,
    and the params left out; or why there are none."""
    if trials.empty or column not in trials:
        return "No finished trials to weigh the params with."
    trials = trials[(trials["status"] != UNFINISHED) & trials[column].notna()]
    if len(trials) < 3:
        return f"Only {len(trials)} finished trials with a {column}: fANOVA needs at least 3."
    kept = [n for n in searched if trials[n].notna().all()]
    varying = [n for n in kept if trials[n].nunique() > 1]
    if not varying:
        return "No param set in every finished trial takes more than one value."
    if trials[column].nunique() < 2:
        return f"Every finished trial has the same {column}: no param explains any of it."
    distributions = {n: _distribution(trials[n], searched[n]) for n in varying}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
        for _, row in trials.iterrows():
            params = {n: plain(row[n]) for n in varying}
            trial = optuna.trial.create_trial(params=params, distributions=distributions, value=float(row[column]))
            study.add_trial(trial)
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        weights = optuna.importance.get_param_importances(study, evaluator=evaluator)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {n: float(v) for n, v in weights.items()}, [n for n in searched if n not in kept]


def _distribution(values: pd.Series, param: space_lib.Param) -> BaseDistribution:
    """The param's distribution as the space declares it, or inferred from its values where the
    declared one does not hold them all (a quantized value past a bound, a choice of lists)."""
    observed = [plain(v) for v in values]
    declared = _declared(param)
    if declared is not None and all(_holds(declared, v) for v in observed):
        return declared
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in observed):
        if all(isinstance(v, int) for v in observed):
            return IntDistribution(min(observed), max(observed))
        return FloatDistribution(min(observed), max(observed))
    return CategoricalDistribution(sorted(set(observed), key=str))


def _declared(param: space_lib.Param) -> BaseDistribution | None:
    args = param.args
    if param.type in ("choice", "grid"):
        choices = args["values"]
        if all(v is None or isinstance(v, (bool, int, float, str)) for v in choices):
            return CategoricalDistribution(choices)
        return None
    if param.type in _INT_TYPES:
        return IntDistribution(int(args["low"]), int(args["high"]))
    if param.type in ("uniform", "quniform", *_LOG_TYPES):
        return FloatDistribution(float(args["low"]), float(args["high"]), log=param.type in _LOG_TYPES)
    return None


def _holds(distribution: BaseDistribution, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    integral = not isinstance(distribution, IntDistribution) or float(value).is_integer()
    return integral and distribution.low <= value <= distribution.high
