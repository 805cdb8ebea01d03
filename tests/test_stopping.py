"""trial.patience, trial.max_time_s, budget.epochs and budget.time_s stop what they should, and
trials.csv says why."""

import pickle
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import NO_DATA, compose_config
from tuner.pipeline import tune_from_config
from tuner.stopping import StopRules, read_stops, restoring_into
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

PLATEAU = [
    "trainable=tests.helpers.user_trainables.plateau", *NO_DATA,
    "metric=score", "logger=none", "search=fifo", "~space", "+space={peak: {type: choice, values: [2]}}",
    "+train.peak=2", "+train.sleep_s=0",
]


def tune(tmp_path: Path, *overrides: str) -> tuple[dict, pd.DataFrame]:
    summary = tune_from_config(compose_config(*PLATEAU, *overrides), tmp_path / "run")
    return summary, pd.read_csv(tmp_path / "run" / "trials.csv", dtype=TRIAL_ID_DTYPE)


def test_patience_stops_a_trial_that_stopped_improving(tmp_path):
    summary, trials = tune(tmp_path, "num_samples=1", "max_epochs=8", "trial.patience=2")
    # Best at epoch 2; epochs 3 and 4 are no better.
    assert trials.status.tolist() == ["early_stopped"] and trials.epochs.tolist() == [4]
    assert trials.stop_reason.tolist() == ["trial.patience: no better score for 2 epochs"]
    assert not summary["interrupted"]


def test_max_time_stops_a_slow_trial(tmp_path):
    _, trials = tune(tmp_path, "num_samples=1", "max_epochs=20", "train.sleep_s=0.2", "trial.max_time_s=0.5")
    assert trials.status.tolist() == ["early_stopped"] and trials.epochs.iloc[0] < 20
    assert trials.stop_reason.iloc[0].startswith("trial.max_time_s: it took ")


def test_epoch_budget_ends_the_run_with_a_normal_results_folder(tmp_path):
    summary, trials = tune(tmp_path, "num_samples=5", "max_epochs=4", "search.max_concurrent=1", "budget.epochs=6")
    assert trials.epochs.sum() == 6, "one trial at a time: the run stops at the sixth epoch"
    assert trials.status.iloc[0] == "completed" and trials.status.iloc[1] == "early_stopped"
    assert trials.stop_reason.iloc[1] == "budget.epochs: the run trained 6 epochs >= 6"
    assert not summary["interrupted"] and summary["best_trial"]["trial_id"] in set(trials.trial_id)
    assert all((tmp_path / "run" / f).is_file() for f in ("summary.json", "best_config.yaml", "history.csv"))


def test_time_budget_ends_the_run_before_its_trials_are_done(tmp_path):
    summary, trials = tune(tmp_path, "num_samples=20", "max_epochs=5", "train.sleep_s=0.2", "budget.time_s=2")
    assert trials.epochs.sum() < 20 * 5 and not summary["interrupted"]
    stops = read_stops(tmp_path / "run")
    assert stops["run"].startswith("budget.time_s: the run took ")
    assert (trials.loc[trials.status == "early_stopped", "stop_reason"] == stops["run"]).all()


def test_a_stopper_brought_back_by_resume_goes_on_counting_and_writes_where_the_run_is_resumed(tmp_path):
    """Ray Tune saves the stopper with its experiment state and unpickles it on resume: it goes on
    from the epochs, run time and bests it had, without the pause, writing in the resumed folder."""
    started, resumed = tmp_path / "started", tmp_path / "resumed"
    started.mkdir()
    rules = {"patience": 2, "max_time_s": None, "epochs": 5, "time_s": 3600}
    stopper = StopRules(rules, "score", "max", started / "stops.yaml")
    for epoch, score in [(1, 0.5), (2, 0.9), (3, 0.8)]:
        assert not stopper("a", {"training_iteration": epoch, "score": score})
    ran_s = stopper.elapsed_s()
    saved = pickle.dumps(stopper)  # as Ray's experiment state holds it
    time.sleep(1.0)  # the pause between Ctrl-C and resume=
    shutil.copytree(started, resumed)  # a bucket run is resumed in a fresh local folder

    with restoring_into(resumed):
        restored = pickle.loads(saved)
    assert restored.path == resumed / "stops.yaml" and restored.epochs == 3
    assert ran_s <= restored.elapsed_s() < ran_s + 1.0, "the run time goes on; the pause is not counted"
    assert restored("a", {"training_iteration": 4, "score": 0.7}), "patience: no better score since epoch 2"
    assert read_stops(resumed)["trials"]["a"].startswith("trial.patience: no better score for 2 epochs")
    assert restored("b", {"training_iteration": 1, "score": 1.0}), "5 epochs in all: the budget is spent"
    assert read_stops(resumed)["run"] == "budget.epochs: the run trained 5 epochs >= 5"
    assert not read_stops(started)["run"], "the folder the run started in is left alone"
