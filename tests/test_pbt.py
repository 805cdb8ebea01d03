"""search=pbt: trials continue from each other's checkpoints with mutated lr, weight_decay and
dropout, and the mutated values stay inside the space."""

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import NO_DATA, TINY, compose_config
from tuner.evaluation import local_checkpoint
from tuner.pipeline import tune_from_config
from tuner.search.pbt import keep_in_space
from tuner.space import parse_space
from tuner.trials import TRIAL_ID_DTYPE

EXPLOITING = ["num_samples=4", "max_epochs=4", "search.scheduler.perturbation_interval=1", "search.scheduler.quantile_fraction=0.5"]


def continued_from(history: pd.DataFrame) -> dict[tuple[str, int], str]:
    """For each (trial, epoch) after the first, the trial whose previous epoch it trained on.

    trainables.har carries the training time in its checkpoint, so an epoch's train_time_s less
    its own epoch_time is the train_time_s of the epoch whose checkpoint it started from.
    """
    origins = {}
    for row in history.itertuples():
        if row.epoch == 1:
            continue
        before = history[(history.epoch == row.epoch - 1) & ((history.train_time_s - (row.train_time_s - row.epoch_time)).abs() < 1e-9)]
        assert len(before) <= 1, "training times are unique to the nanosecond"
        if len(before):
            origins[(row.trial_id, row.epoch)] = before.trial_id.iloc[0]
    return origins


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("search", ["pbt", "pb2"])
def test_pbt_continues_a_trial_from_another_trials_checkpoint_with_mutated_params(search, tmp_path):
    """PB2 exploits as PBT does; its new values come from a GP bandit, within the same bounds."""
    summary = tune_from_config(compose_config(*TINY, *EXPLOITING, f"search={search}"), tmp_path / "run")
    folder = Path(summary["results_dir"])
    trials, history = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE), pd.read_csv(folder / "history.csv", dtype=TRIAL_ID_DTYPE)
    assert summary["status_counts"] == {"completed": 4} and (trials.epochs == 4).all()
    for taken in ("test", "model"):  # the chosen trial's checkpoint holds the model its config builds
        assert summary[taken]["trial_id"] == summary["best_trial"]["trial_id"], summary[taken]

    exploits = [json.loads(line) for line in (folder / "pbt_global.txt").read_text().splitlines()]
    assert exploits, "Ray's PBT logged the exploits it made"
    origins = continued_from(history)
    borrowed = {key: origin for key, origin in origins.items() if origin != key[0]}
    assert borrowed, f"some epoch trained on another trial's checkpoint: {origins}"
    for (trial, epoch), origin in borrowed.items():
        row = history[(history.trial_id == trial) & (history.epoch == epoch)].iloc[0]
        parent = history[(history.trial_id == origin) & (history.epoch == epoch - 1)].iloc[0]
        assert row.num_params == parent.num_params, "the architecture came with the checkpoint"

    # The optimizer trains with the config PBT gave last, not with the lr of the restored state.
    last = history.sort_values("epoch").groupby("trial_id").last()
    for row in trials.itertuples():
        assert last.loc[row.trial_id, "lr"] == pytest.approx(row.lr)
        assert 1e-4 <= row.lr <= 3e-2 and 1e-6 <= row.weight_decay <= 1e-1 and 0 <= row.dropout <= 0.5


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("search, mutate", [("pbt", "[x,kind,y]"), ("pb2", "[x,y]")])  # pb2: bounded ones only
def test_each_trials_checkpoint_was_trained_under_the_config_trials_csv_shows(search, mutate, tmp_path):
    """A trial's best-scoring checkpoint can predate an exploit that changed its config (its
    model, for trainables.har): the results keep its last one, trained under its last config.
    A conditional parameter (y, searched only when kind is a) reaches the trainable with the
    trial's value when active, also after an exploit and a mutation, and its train: default
    otherwise; trials.csv shows it just when active."""
    checkpointed = [
        "trainable=tests.helpers.user_trainables.checkpointed", *NO_DATA, "logger=none", "metric=score",
        "~space", "+space={x: {type: uniform, low: 0.0, high: 1.0}, kind: {type: choice, values: [a, b]},"
        " y: {type: uniform, low: 0.0, high: 1.0, when: {kind: a}}}",
        "+train.x=0.5", "+train.kind=a", "+train.y=0.5",
        f"search={search}", f"search.scheduler.mutate={mutate}", "num_samples=4", "max_epochs=4",
        "search.scheduler.perturbation_interval=1", "search.scheduler.quantile_fraction=0.5",
    ]
    tune_from_config(compose_config(*checkpointed), tmp_path / "run")
    trials = pd.read_csv(tmp_path / "run" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    history = pd.read_csv(tmp_path / "run" / "history.csv", dtype=TRIAL_ID_DTYPE)
    started = history[history.epoch == 1].set_index("trial_id").score + 0.1  # the x each trial started with
    assert any(abs(row.x - started[row.trial_id]) > 1e-9 for row in trials.itertuples()), "some trial exploited another"
    for row in trials.itertuples():
        assert pd.isna(row.y) == (row.kind != "a"), row
        y = row.y if row.kind == "a" else 0.5
        with local_checkpoint(row.checkpoint) as folder:
            assert json.loads(Path(folder, "state.json").read_text()) == {"epoch": 4, "x": row.x, "y": y}, row.trial_id


def test_mutated_values_stay_inside_their_distribution():
    params = parse_space({
        "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
        "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
        "batch": {"type": "qrandint", "low": 8, "high": 64, "q": 8},
        "width": {"type": "quniform", "low": 0.0, "high": 1.0, "q": 0.25},
    })
    config = keep_in_space(params, {"dropout": 0.6, "lr": 0.5e-4, "batch": 77, "width": 0.3, "other": 5})
    assert config == {"dropout": 0.5, "lr": 1e-4, "batch": 64, "width": 0.25, "other": 5}
    assert isinstance(config["batch"], int)
    inside = {"dropout": 0.2, "lr": 3e-3, "batch": 16, "width": 0.5}
    assert keep_in_space(params, dict(inside)) == inside
