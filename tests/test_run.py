"""Tiny real tuning runs on the shared local Ray, read back from their results folders."""

import json
import types
from pathlib import Path

import pandas as pd
import pyarrow.fs
import pytest
import yaml

from tests.conftest import NO_DATA, TINY, compose_config
from tuner.pipeline import tune_from_config
from tuner.retrain import retrain
from tuner.run import ProgressLogger
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

GRID_SPACE = ["~space", "+space={lr: {type: grid, values: [0.003, 0.01]}, batch_size: {type: choice, values: [64, 128]}}"]
SEARCHES = {
    "asha": ["num_samples=3"],
    "hyperband": ["num_samples=3"],
    "fifo": [],
    "random": [],
    "optuna": ["num_samples=3"],
    "grid": GRID_SPACE,
    "median": ["num_samples=3"],
    "pbt": ["num_samples=3", "search.scheduler.perturbation_interval=1"],
}
RESULT_FILES = ("config.yaml", "trials.csv", "history.csv", "best_config.yaml", "summary.json")


def tune(tmp_path: Path, *overrides: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    summary = tune_from_config(compose_config(*TINY, *overrides), tmp_path / "run")
    folder = Path(summary["results_dir"])
    return summary, pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE), pd.read_csv(folder / "history.csv", dtype=TRIAL_ID_DTYPE)


def check_histories(trials: pd.DataFrame, history: pd.DataFrame) -> None:
    """Each trial's history is epochs 1..n, once each, n being the epochs it ran."""
    for row in trials.itertuples():
        epochs = history.loc[history.trial_id == row.trial_id, "epoch"].tolist()
        assert epochs == list(range(1, row.epochs + 1)), (row.trial_id, epochs)


@pytest.mark.parametrize("search", SEARCHES)
def test_each_search_runs_and_writes_the_results_folder(search, tmp_path):
    summary, trials, history = tune(tmp_path, f"search={search}", *SEARCHES[search])
    folder = Path(summary["results_dir"])
    assert folder == tmp_path / "run" and all((folder / f).is_file() for f in RESULT_FILES)
    expected = 4 if search == "grid" else compose_config(*TINY, f"search={search}", *SEARCHES[search]).num_samples
    assert len(trials) == summary["num_trials"] == expected
    assert sum(summary["status_counts"].values()) == expected
    assert set(trials.status) <= {"completed", "early_stopped"}
    assert trials.epochs.between(1, 2).all() and (trials.error.isna()).all()
    check_histories(trials, history)
    assert set(history.columns) >= {"train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "epoch_time"}
    best = trials.loc[trials.best_val_acc.idxmax()]
    assert summary["best_trial"]["trial_id"] == best.trial_id
    assert summary["best_trial"]["val_acc"] == pytest.approx(best.best_val_acc)
    assert best.best_val_acc > 0.4, "six classes: chance is 0.17"
    assert Path(best.checkpoint).is_dir()
    if search == "grid":
        assert set(zip(trials.lr, trials.batch_size)) == {(a, b) for a in (0.003, 0.01) for b in (64, 128)}


def test_cnn_bilstm_trains(tmp_path):
    summary, trials, _ = tune(tmp_path, "model=cnn_bilstm", "search=fifo", "num_samples=1")
    assert trials.status.tolist() == ["completed"] and summary["best_trial"]["val_acc"] > 0.3


def test_a_space_can_choose_the_model_with_conditional_parameters(tmp_path):
    space = (
        "+space={model: {name: {type: choice, values: [cnn_tcn, cnn_bilstm]},"
        " num_layers: {type: randint, low: 1, high: 2, when: {model.name: cnn_bilstm}},"
        " levels: {type: randint, low: 1, high: 3, when: {model.name: cnn_tcn}}}}"
    )
    _, trials, _ = tune(tmp_path, "search=optuna", "num_samples=6", "max_epochs=1", "~space", space)
    assert set(trials["model.name"]) == {"cnn_tcn", "cnn_bilstm"}
    is_lstm = trials["model.name"] == "cnn_bilstm"
    assert trials.loc[is_lstm, "model.num_layers"].notna().all()
    assert trials.loc[is_lstm, "model.levels"].isna().all()
    assert trials.loc[~is_lstm, "model.num_layers"].isna().all()
    assert (trials.status == "completed").all()


def test_a_users_own_trainable_plugs_in_and_its_errors_are_recorded(tmp_path):
    summary, trials, _ = tune(
        tmp_path,
        "trainable=tests.helpers.user_trainables.quadratic",
        *NO_DATA,
        "metric=score", "search=random", "num_samples=8", "trial.max_failures=0",
        "~space", "+space={x: {type: uniform, low: 0.0, high: 1.0}}",
        "+train.x=0.5", "+train.fail_above=0.6", "+train.diverge_above=0.85",
    )
    diverged, failed = trials.x > 0.85, trials.x.between(0.6, 0.85, inclusive="right")
    assert diverged.any() and failed.any() and (trials.x <= 0.6).any(), "seeded x falls in all three ranges"
    assert (trials.loc[failed, "status"] == "errored").all()
    assert trials.loc[failed, "error"].str.contains(r"ValueError: x=0\.\d+ is out of range").all()
    assert (trials.loc[diverged, "status"] == "diverged").all()
    assert trials.loc[diverged, "error"].str.contains("diverged at epoch 1: score=nan").all()
    assert (trials.loc[trials.x <= 0.6, "status"] == "completed").all()
    assert summary["status_counts"]["errored"] == failed.sum()
    assert set(summary["errors"]) == set(trials.loc[failed | diverged, "trial_id"])
    ok = trials.loc[trials.x <= 0.6]
    assert summary["best_trial"]["params"]["x"] == pytest.approx(ok.x.iloc[(ok.x - 0.3).abs().argmin()])


def test_a_crashed_trial_continues_from_its_checkpoint(tmp_path):
    marker = tmp_path / "crashed"
    _, trials, history = tune(
        tmp_path, "trainable=tests.helpers.crashing_trainable.har_crashing_once", "search=fifo",
        "num_samples=1", "max_epochs=4", f"+train.crash_marker={marker}",
    )
    assert marker.exists(), "the trial really crashed once"
    assert trials.status.tolist() == ["completed"] and trials.epochs.tolist() == [4]
    check_histories(trials, history)
    progress = pd.read_csv(tmp_path / "run" / trials.trial_id[0] / "progress.csv", dtype=TRIAL_ID_DTYPE)
    assert progress.epoch.tolist() == [1, 2, 3, 4], "no epoch trained twice"
    restarts = progress.loc[progress.iterations_since_restore == 1, "epoch"].tolist()
    assert restarts == [1, 3] and progress.pid.nunique() == 2, "a second process went on at epoch 3"


def test_best_config_retrains_the_best_trial_alone(tmp_path):
    summary, _, _ = tune(tmp_path, "num_samples=3")
    best_file = Path(summary["results_dir"]) / "best_config.yaml"
    best = yaml.safe_load(best_file.read_text())
    assert best["space"]["lr"] == pytest.approx(summary["best_trial"]["params"]["lr"])
    retrained = retrain(best_file, [f"storage={tmp_path / 'retrain'}", "max_epochs=1", "logger=none"])
    assert retrained["num_trials"] == 1 and retrained["status_counts"] == {"completed": 1}
    folder = Path(retrained["results_dir"])
    assert pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE).epochs.tolist() == [1], "max_epochs=1 reached the trial"
    assert not (folder / "wandb").exists() and yaml.safe_load((folder / "config.yaml").read_text())["logger"] == {"kind": "none"}
    trial_dir = Path(retrained["best_trial"]["checkpoint"]).parent
    params = json.loads((trial_dir / "params.json").read_text())
    assert params["lr"] == pytest.approx(summary["best_trial"]["params"]["lr"])
    assert params["model.channels"] == summary["best_trial"]["params"]["model.channels"]


class ResumedTrial:
    """What Ray's file loggers read of a resumed trial: where its files are in the results
    folder, and its staging folder on the driver."""

    def __init__(self, results: Path, staging: Path) -> None:
        self.checkpoint = True
        self.storage = types.SimpleNamespace(
            trial_fs_path=str(results), storage_filesystem=pyarrow.fs.LocalFileSystem()
        )
        self.local_experiment_path = str(staging / "driver_artifacts")
        self.local_path = str(staging / "driver_artifacts" / results.name)

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def saved_progress(results: Path) -> str:
    """A trial's progress.csv of five epochs, as the results folder holds it."""
    results.mkdir(parents=True)
    saved = "epoch,val_acc\n" + "".join(f"{epoch},0.5\n" for epoch in range(1, 6))
    (results / "progress.csv").write_text(saved)
    return saved


def test_a_trial_resumed_on_the_same_head_goes_on_from_its_staged_progress(tmp_path):
    """Ray's sync rewrites the results folder's copy in place from the staged one; a restore
    reading it mid-rewrite (here: empty) must not replace the staged rows."""
    saved = saved_progress(tmp_path / "results" / "trial")
    trial = ResumedTrial(tmp_path / "results" / "trial", tmp_path / "staging")
    trial.init_local_path()
    Path(trial.local_path, "progress.csv").write_text(saved)
    (tmp_path / "results" / "trial" / "progress.csv").write_text("")
    ProgressLogger().log_trial_result(6, trial, {"epoch": 6, "val_acc": 0.6})
    assert Path(trial.local_path, "progress.csv").read_text() == saved + "6,0.6\n"


def test_a_trial_resumed_on_another_head_gets_its_progress_whole(tmp_path):
    saved = saved_progress(tmp_path / "results" / "trial")
    trial = ResumedTrial(tmp_path / "results" / "trial", tmp_path / "staging")
    ProgressLogger().log_trial_result(6, trial, {"epoch": 6, "val_acc": 0.6})
    assert Path(trial.local_path, "progress.csv").read_text() == saved + "6,0.6\n"
    assert [p.name for p in (tmp_path / "staging").iterdir()] == ["driver_artifacts"], "no copy left aside"
