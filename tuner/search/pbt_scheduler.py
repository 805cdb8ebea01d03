"""Ray Tune's PopulationBasedTraining and PB2, leaving each trial's last epoch alone (imports Ray;
the rest of search=pbt and search=pb2, in pbt.py, does not).

Ray's PBT knows no last epoch. A trial exploiting at its last report would go back to another
trial's earlier checkpoint and train that epoch again, as often as it stays in the bottom
quantile; a trial cloning a checkpoint taken at the last epoch would inherit a config it never
trains with, and trials.csv would show that config beside metrics it did not earn. So the last
report neither exploits nor offers its checkpoint: clones start from an earlier epoch and train on.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.schedulers.pb2 import PB2


class LastEpochKept:
    """Over trials of ``max_epochs`` training iterations (``time_attr`` is training_iteration), the
    last report continues: it neither exploits nor is exploited."""

    def __init__(self, max_epochs: int, **kwargs: Any) -> None:
        super().__init__(time_attr="training_iteration", **kwargs)
        self.max_epochs = max_epochs

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get("training_iteration", 0) >= self.max_epochs:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)


class EpochBoundedPBT(LastEpochKept, PopulationBasedTraining):
    """PBT up to the last epoch.

    Example::

        EpochBoundedPBT(max_epochs=10, perturbation_interval=2, hyperparam_mutations={"lr": tune.loguniform(1e-4, 1e-2)})
    """


class EpochBoundedPB2(LastEpochKept, PB2):
    """PB2 up to the last epoch: the new values come from a GP bandit over the population's
    results, within bounds.

    Example::

        EpochBoundedPB2(max_epochs=10, perturbation_interval=2, hyperparam_bounds={"lr": [1e-4, 1e-2]})
    """
