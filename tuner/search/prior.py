"""A prior from the user's own config: the ``train:`` defaults and the model's values (or
``space.<name>.prior``) are a centre that a share of the trials is drawn around, a share that
shrinks as trials accumulate, as in piBO (Hvarfner et al. 2022) and PriorBand (Mallik et al. 2023).

Trial 0 is the centre itself. After it, trial n is drawn around the centre with probability
``weight(n) = SHARE / (1 + n / HALVES_AT)`` (1/2 at first, 1/4 after 10 trials, 1/8 after 30),
and left to the searcher's model otherwise. A draw is normal on the parameter's own scale (log for
a log-uniform), its sd a tenth of the range, kept inside the bounds; a choice takes its default.
A parameter whose default lies outside its distribution has no prior: the searcher draws it.
Nothing here imports Optuna: the values are the user's, and the searcher converts them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from tuner.space import CONSTANT, Param, flatten

SHARE = 0.5  # the chance that trial 1 is drawn around the centre
HALVES_AT = 10  # trials after which that chance has halved (and after 30, halved again)
WIDTH = 0.1  # sd of a draw, as a share of the parameter's range on its own scale
NORMAL_WIDTH = 0.4  # sd of a draw around a normal parameter's centre, in the parameter's sds
_LOG = ("loguniform", "qloguniform")


@dataclass(frozen=True)
class Prior:
    """Where a search starts: the parameters that have a centre, and the centres.

    Example::

        prior = Prior.from_config(spec.params, spec.base_config)
        values = prior.sample(n, rng)  # trial n's values, or None: the searcher chooses
    """

    params: list[Param]
    centres: dict[str, Any]

    @classmethod
    def from_config(cls, params: list[Param], base_config: dict[str, Any]) -> Prior:
        """Each sampled parameter's ``prior``, else its value in the trial's base config."""
        defaults = flatten(base_config)
        centres = {}
        for param in params:
            centre = param.prior if param.prior is not None else defaults.get(param.name)
            if param.type not in (CONSTANT, "grid") and centre is not None and _inside(param, centre):
                centres[param.name] = centre
        return cls([p for p in params if p.name in centres], centres)

    def weight(self, n: int) -> float:
        """The chance that trial n (n >= 1) is drawn around the centre."""
        return SHARE / (1 + n / HALVES_AT)

    def sample(self, n: int, rng: random.Random) -> dict[str, Any] | None:
        """Trial n's values of the parameters with a centre, or None when the searcher draws it."""
        if not self.centres:
            return None
        if n == 0:
            return dict(self.centres)
        if rng.random() >= self.weight(n):
            return None
        return {p.name: _draw(p, self.centres[p.name], rng) for p in self.params}


def _inside(param: Param, value: Any) -> bool:
    if param.type == "choice":
        return value in param.args["values"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return param.type == "normal" or param.args["low"] <= value <= param.args["high"]


def _draw(param: Param, centre: Any, rng: random.Random) -> Any:
    args = param.args
    if param.type == "choice":
        return centre
    if param.type == "normal":
        return rng.gauss(centre, NORMAL_WIDTH * args["sd"])
    scale = (math.log, math.exp) if param.type in _LOG else (float, float)
    low, high, mid = (scale[0](v) for v in (args["low"], args["high"], centre))
    while True:  # the centre lies inside, so at least about half the draws do
        value = rng.gauss(mid, WIDTH * (high - low))
        if low <= value <= high:
            return scale[1](value)
