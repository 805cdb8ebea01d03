"""The parsed space as Ray Tune's ``param_space``, for the searchers that sample through Ray's
variant generator (basic, random, grid), and stage two's grid of chosen configs."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from tuner.errors import ConfigError
from tuner.space import CONSTANT, CONTINUOUS, Param

if TYPE_CHECKING:
    from tuner.search import Searcher


def check_space(params: list[Param], searcher: Searcher) -> None:
    """A searcher that only enumerates (grid) cannot take a distribution it would have to sample."""
    if searcher.samples:
        return
    for param in params:
        if param.type in CONTINUOUS:
            raise ConfigError(
                f"space.{param.name}",
                f"search={searcher.name} cannot take a {param.type} distribution",
                "give it type grid or choice with values, or use search=random",
            )


def to_ray(params: list[Param], searcher: Searcher) -> dict[str, Any]:
    """Ray Tune's flat param_space: the searcher's grid axes expand (every point run num_samples
    times under basic), the rest is sampled (grid entries as choices under random)."""
    return {p.name: domain(p, searcher.grid_axes) for p in params}


def candidate_space(params: list[Param], candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage two's param_space: one trial per candidate, each taking its candidate's values of
    the sampled parameters (None where the candidate had none: an inactive conditional)."""
    from ray import tune

    space: dict[str, Any] = {"candidate": tune.grid_search(list(range(len(candidates))))}
    for param in params:
        if param.type == CONSTANT:
            space[param.name] = param.args["value"]
        else:
            space[param.name] = tune.sample_from(functools.partial(_pick, candidates, param.name))
    return space


def _pick(candidates: list[dict[str, Any]], name: str, config: dict[str, Any]) -> Any:
    return candidates[config["candidate"]].get(name)


def domain(param: Param, grid_axes: tuple[str, ...] = ()) -> Any:
    """One parameter as a Ray Tune domain (or a grid_search, for the searcher's grid axes)."""
    from ray import tune

    kind, args = param.type, param.args
    if kind == CONSTANT:
        return args["value"]
    if kind in grid_axes:
        return tune.grid_search(args["values"])
    if kind in ("choice", "grid"):
        return tune.choice(args["values"])
    if kind == "uniform":
        return tune.uniform(args["low"], args["high"])
    if kind == "loguniform":
        return tune.loguniform(args["low"], args["high"])
    if kind == "quniform":
        return tune.quniform(args["low"], args["high"], args["q"])
    if kind == "qloguniform":
        return tune.qloguniform(args["low"], args["high"], args["q"])
    if kind == "randint":
        return tune.randint(int(args["low"]), int(args["high"]) + 1)
    if kind == "qrandint":
        return tune.qrandint(int(args["low"]), int(args["high"]), int(args["q"]))
    return tune.randn(args["mean"], args["sd"])
