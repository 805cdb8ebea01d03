"""Schedulers stop what they should, and trials.csv says so."""

import pandas as pd
import pytest

from tests.conftest import NO_DATA, compose_config
from tuner.pipeline import tune_from_config
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

QUADRATIC = [
    "trainable=tests.helpers.user_trainables.quadratic", *NO_DATA,
    "metric=score", "logger=none", "+train.x=0.5",
]


def test_median_rule_stops_the_trial_below_the_median_after_its_grace_period(tmp_path):
    # One trial at a time; score peaks at x = 0.3: each trial beats the ones before it but the last.
    summary = tune_from_config(
        compose_config(
            *QUADRATIC, "search=median", "max_epochs=4", "num_samples=1", "search.max_concurrent=1",
            "search.scheduler.grace_period=2", "search.scheduler.min_samples_required=2",
            "~space", "+space={x: {type: grid, values: [0.28, 0.29, 0.3, 0.9]}}",
        ),
        tmp_path / "run",
    )
    trials = pd.read_csv(tmp_path / "run" / "trials.csv", dtype=TRIAL_ID_DTYPE).set_index("x")
    assert trials.loc[0.9, "status"] == "early_stopped" and trials.loc[0.9, "epochs"] == 2
    assert (trials.drop(index=0.9).status == "completed").all()
    assert summary["status_counts"] == {"completed": 3, "early_stopped": 1}
