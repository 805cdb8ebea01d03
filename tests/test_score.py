"""score=<function>: a function of a trial's reported metrics that the run searches, stops and
ranks by, reported beside them as `score`."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import NO_DATA, compose_config
from tests.helpers.scored_trainables import generalization
from tuner.pipeline import tune_from_config
from tuner.trials import TRIAL_ID_DTYPE

OVERFITS = [
    "trainable=tests.helpers.scored_trainables.overfits", *NO_DATA,
    "logger=none", "search=fifo", "~space", "+space={memorize: {type: grid, values: [0.0, 0.05]}}",
    "+train.memorize=0.0", "max_epochs=4", "num_samples=1",
]


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_score_function_is_reported_ranks_the_leaderboard_and_stops_trials(tmp_path, capsys):
    summary = tune_from_config(
        compose_config(*OVERFITS, "score=tests.helpers.scored_trainables.generalization", "trial.patience=1"),
        tmp_path / "run",
    )
    folder = Path(summary["results_dir"])
    history = pd.read_csv(folder / "history.csv", dtype=TRIAL_ID_DTYPE)
    expected = [generalization(row) for row in history[["train_acc", "val_acc"]].to_dict("records")]
    assert np.allclose(history.score, expected)
    assert summary["metric"] == "score" and summary["score"] == "tests.helpers.scored_trainables.generalization"
    trials = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE).set_index("memorize")
    # By val_acc the memorizing trial leads at every epoch; by the score it falls from epoch 1.
    assert trials.loc[0.05, "status"] == "early_stopped" and trials.loc[0.05, "epochs"] == 2
    assert trials.loc[0.05, "stop_reason"] == "trial.patience: no better score for 1 epochs"
    assert trials.loc[0.0, "status"] == "completed" and trials.loc[0.0, "epochs"] == 4
    assert summary["best_trial"]["params"] == {"memorize": 0.0}
    assert summary["best_trial"]["score"] == pytest.approx(0.7) == trials.best_score.max()
    board = capsys.readouterr().out.split("Leaderboard of ", 1)[1].splitlines()
    assert board[0].endswith("(score, max):")
    assert board[2].split()[1:3] == ["0", "0.7"] and board[3].split()[1:3] == ["0.05", "0.53"]
