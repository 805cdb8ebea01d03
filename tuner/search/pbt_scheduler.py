"""Ray Tune's PopulationBasedTraining, leaving each trial's last epoch alone (imports Ray; the
rest of search=pbt, in pbt.py, does not).

Ray's PBT knows no last epoch. A trial exploiting at its last report would go back to another
trial's earlier checkpoint and train that epoch again, as often as it stays in the bottom
quantile; a trial cloning a checkpoint taken at the last epoch would inherit a config it never
trains with, and trials.csv would show that config beside metrics it did not earn. So the last
report neither exploits nor offers its checkpoint: clones start from an earlier epoch and train on.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler


class EpochBoundedPBT(PopulationBasedTraining):
    """PBT over trials of ``max_epochs`` training iterations (``time_attr`` is training_iteration).

    Example::

        EpochBoundedPBT(max_epochs=10, perturbation_interval=2, hyperparam_mutations={"lr": tune.loguniform(1e-4, 1e-2)})
    """

    def __init__(self, max_epochs: int, **kwargs: Any) -> None:
        super().__init__(time_attr="training_iteration", **kwargs)
        self.max_epochs = max_epochs

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get("training_iteration", 0) >= self.max_epochs:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)
