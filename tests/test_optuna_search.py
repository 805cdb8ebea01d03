"""search=optuna's searcher: Optuna's study sees every epoch, and a trial stopped early is pruned."""

from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from tests.conftest import NO_DATA, compose_config
from tuner.pipeline import tune_from_config
from tuner.search.optuna_search import OptunaSearcher
from tuner.search.optuna_space import OptunaSpace
from tuner.space import parse_space
from tuner.trials import TRIAL_ID_DTYPE

SPACE = parse_space({"x": {"type": "uniform", "low": 0.0, "high": 1.0}})
QUADRATIC = [
    "trainable=tests.helpers.user_trainables.quadratic", *NO_DATA, "logger=none",
    "metric=score", "~space", "+space={x: {type: uniform, low: 0.0, high: 1.0}}", "+train.x=0.5",
]


def searcher(max_epochs: int = 3) -> OptunaSearcher:
    return OptunaSearcher(OptunaSpace(SPACE), optuna.samplers.TPESampler(seed=0), "score", "max", max_epochs)


def result(score: float, epoch: int) -> dict:
    return {"score": score, "training_iteration": epoch}


def test_a_trial_stopped_at_epoch_one_is_pruned_with_its_value_at_step_one():
    search = searcher()
    search.suggest("stopped")
    search.on_trial_complete("stopped", result=result(0.25, 1))  # Ray hands the stopping result here only
    [trial] = search.study.trials
    assert trial.state == TrialState.PRUNED, "never COMPLETE: one epoch of three is not a final value"
    assert trial.intermediate_values == {1: 0.25}


def test_a_finished_trial_is_complete_with_its_best_value_and_every_epoch_reported():
    search = searcher()
    search.suggest("finished")
    for epoch, score in enumerate([0.1, 0.4, 0.3], start=1):
        (search.on_trial_complete if epoch == 3 else search.on_trial_result)("finished", result(score, epoch))
    [trial] = search.study.trials
    assert trial.state == TrialState.COMPLETE and trial.value == 0.4
    assert trial.intermediate_values == {1: 0.1, 2: 0.4, 3: 0.3}


def test_a_crashed_trial_is_failed_and_tpe_ignores_it():
    search = searcher()
    search.suggest("crashed")
    search.on_trial_result("crashed", result(0.9, 1))
    search.on_trial_complete("crashed", error=True)
    assert [t.state for t in search.study.trials] == [TrialState.FAIL]


def test_the_study_continues_after_save_and_restore(tmp_path):
    search = searcher()
    search.suggest("a")
    search.on_trial_complete("a", result=result(0.2, 1))
    search.suggest("b")
    search.on_trial_result("b", result(0.5, 1))
    search.save(str(tmp_path / "state.pkl"))
    restored = searcher()
    restored.restore(str(tmp_path / "state.pkl"))
    restored.on_trial_result("b", result(0.5, 1))  # an epoch trained again after the restore
    restored.on_trial_complete("b", result=result(0.6, 2))
    assert restored.suggest("c") is not None
    assert [t.state for t in restored.study.trials] == [TrialState.PRUNED, TrialState.PRUNED, TrialState.RUNNING]
    assert restored.study.trials[1].intermediate_values == {1: 0.5, 2: 0.6}


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_a_tiny_run_tells_optuna_each_trial_as_far_as_it_got(tmp_path):
    summary = tune_from_config(compose_config(*QUADRATIC, "search=optuna", "num_samples=8", "max_epochs=3"), tmp_path / "run")
    folder = Path(summary["results_dir"])
    trials = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert set(trials.status) == {"completed", "early_stopped"}, "ASHA stopped some trials at rung 1"
    saved = searcher()
    saved.restore_from_dir(str(folder))  # the searcher state Ray Tune saved in the results folder
    study = {round(t.params["x"], 9): t for t in saved.study.trials}
    assert len(study) == len(trials)
    for row in trials.itertuples():
        trial = study[round(row.x, 9)]
        assert max(trial.intermediate_values) == row.epochs
        if row.status == "completed":
            assert trial.state == TrialState.COMPLETE and trial.value == pytest.approx(row.best_score)
        else:
            assert trial.state == TrialState.PRUNED and row.epochs < 3
