"""An Optuna study driven through Ray Tune as Optuna's own pruners would see it: every epoch's value
goes to ``trial.report(value, step=epoch)``, and a trial the scheduler (or a stopping rule) ended
before ``max_epochs`` is told PRUNED, never COMPLETE. Optuna's TPE then ranks a pruned trial below
every finished one, by how far it got and its value there: a trial stopped at rung 1 counts as a
rung-1 result, not as a final one (Ray's OptunaSearch tells it COMPLETE with its last value).
It uses Optuna's public ask-and-tell interface only.
"""

from __future__ import annotations

import pickle
import random
from typing import Any

from ray.tune.search import Searcher

from tuner.search import optuna_space
from tuner.search.optuna_space import OptunaSpace
from tuner.search.prior import Prior


class OptunaSearcher(Searcher):
    """Ray Tune searcher over an Optuna study: ask for each trial, report each epoch, tell at the end.

    With a ``prior``, trial 0 takes the prior's centre and a decaying share of the later trials
    are drawn around it (tuner/search/prior.py), enqueued in the study so that its sampler learns
    from them like from its own.

    Example::

        searcher = OptunaSearcher(OptunaSpace(params), optuna.samplers.TPESampler(seed=0),
                                  metric="val_acc", mode="max", max_epochs=10)
        tune.Tuner(train, tune_config=tune.TuneConfig(search_alg=searcher, scheduler=ASHAScheduler()))
    """

    def __init__(
        self, space: OptunaSpace, sampler: Any, metric: str, mode: str, max_epochs: int,
        prior: Prior | None = None, seed: int = 0,
    ) -> None:
        import optuna

        super().__init__(metric=metric, mode=mode)
        direction = "maximize" if mode == "max" else "minimize"
        self.study = optuna.create_study(sampler=sampler, direction=direction)
        self.space = space
        self.max_epochs = max_epochs
        self.prior = prior
        self.rng = random.Random(seed)
        self.trials: dict[str, Any] = {}  # Ray's trial id -> Optuna's trial, while it runs
        self.reported: dict[str, tuple[float, int]] = {}  # Ray's trial id -> (best value, last step)
        self.asked = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        values = self.prior.sample(self.asked, self.rng) if self.prior else None
        if values:
            params = {p.name: p for p in self.prior.params}
            self.study.enqueue_trial({name: optuna_space.fixed(params[name], v) for name, v in values.items()})
        self.asked += 1
        trial = self.study.ask()
        self.trials[trial_id] = trial
        return self.space(trial)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial, value = self.trials.get(trial_id), result.get(self.metric)
        if trial is None or value is None:
            return
        step = int(result["training_iteration"])
        best, last = self.reported.get(trial_id, (value, 0))
        if step <= last:  # an epoch trained again after a restore: Optuna keeps the first report
            return
        trial.report(float(value), step=step)
        self.reported[trial_id] = (max(best, value) if self.mode == "max" else min(best, value), step)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        from optuna.trial import TrialState

        if result and not error:  # Ray hands a trial's last result (the one it stopped on) here only
            self.on_trial_result(trial_id, result)
        trial = self.trials.pop(trial_id, None)
        if trial is None:
            return
        best, _ = self.reported.pop(trial_id, (None, 0))
        if error or best is None:  # it crashed, or never reported: nothing to learn from
            self.study.tell(trial, state=TrialState.FAIL)
        elif result and result.get("training_iteration", 0) >= self.max_epochs:
            self.study.tell(trial, best)
        else:  # stopped early: Optuna takes its last reported value at its last step
            self.study.tell(trial, state=TrialState.PRUNED)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))
