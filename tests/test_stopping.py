"""trial.patience, trial.max_time_s, budget.epochs and budget.time_s stop what they should, and
trials.csv says why."""

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import compose_config
from tuner.pipeline import tune_from_config
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

PLATEAU = [
    "trainable=tests.helpers.user_trainables.plateau", "data._target_=tests.helpers.user_trainables.no_data",
    "~data.num_train", "~data.num_val", "~data.num_test", "~data.window", "~data.seed",
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
    stops = json.loads((tmp_path / "run" / "stops.json").read_text())
    assert stops["run"].startswith("budget.time_s: the run took ")
    assert (trials.loc[trials.status == "early_stopped", "stop_reason"] == stops["run"]).all()
