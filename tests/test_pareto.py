"""The Pareto front of a multi-objective run: only non-dominated trials, checked by brute force."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY, compose_config
from tuner.pipeline import tune_from_config
from tuner.results.pareto import pareto_front
from tuner.trials import TRIAL_ID_DTYPE

OBJECTIVES = [{"metric": "val_acc", "mode": "max"}, {"metric": "num_params", "mode": "min"}]


def dominates(a: pd.Series, b: pd.Series, objectives: list[dict]) -> bool:
    """a is no worse than b on every objective and better on one (the textbook definition)."""
    better = False
    for objective in objectives:
        x, y = a[f"last_{objective['metric']}"], b[f"last_{objective['metric']}"]
        if objective["mode"] == "min":
            x, y = -x, -y
        if x < y:
            return False
        better = better or x > y
    return better


def brute_force_front(trials: pd.DataFrame, objectives: list[dict]) -> set[str]:
    ended = trials[trials.status.isin(["completed", "early_stopped"])]
    return {
        a.trial_id
        for _, a in ended.iterrows()
        if not any(dominates(b, a, objectives) for _, b in ended.iterrows())
    }


def test_front_of_random_points_matches_brute_force():
    rng = np.random.default_rng(0)
    for objectives in (OBJECTIVES, [*OBJECTIVES, {"metric": "latency_ms", "mode": "min"}]):
        trials = pd.DataFrame(
            {
                "trial_id": [f"t{i}" for i in range(60)],
                "status": rng.choice(["completed", "early_stopped", "errored"], 60, p=[0.6, 0.3, 0.1]),
                # Few distinct values: ties, where dominance needs one strictly better objective.
                "last_val_acc": rng.integers(0, 8, 60) / 8,
                "last_num_params": rng.integers(1, 8, 60) * 1000,
                "last_latency_ms": rng.integers(1, 5, 60) / 4,
            }
        )
        front = pareto_front(trials, objectives)
        assert set(front.trial_id) == brute_force_front(trials, objectives)
        assert front.last_val_acc.is_monotonic_decreasing  # best first by the first objective


def test_errored_trials_and_missing_values_are_not_on_the_front():
    trials = pd.DataFrame(
        {
            "trial_id": ["best_but_errored", "missing", "ok"],
            "status": ["errored", "completed", "completed"],
            "last_val_acc": [0.99, None, 0.5],
            "last_num_params": [10, 10, 1000],
        }
    )
    assert list(pareto_front(trials, OBJECTIVES).trial_id) == ["ok"]


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_nsga2_run_writes_a_pareto_csv_of_only_non_dominated_trials(tmp_path):
    cfg = compose_config(
        *TINY, "search=nsga2", "objectives={num_params:min}", "num_samples=6",
        "search.population_size=3", "logger=none",
    )
    summary = tune_from_config(cfg, tmp_path / "run")
    folder = Path(summary["results_dir"])
    trials, front = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE), pd.read_csv(folder / "pareto.csv", dtype=TRIAL_ID_DTYPE)
    assert len(trials) == 6 and (trials.status == "completed").all()  # NSGA-II runs every trial out
    assert trials.last_num_params.nunique() > 1, "the models differ in size"
    assert summary["objectives"] == OBJECTIVES
    assert set(front.trial_id) == brute_force_front(trials, OBJECTIVES) and len(front) >= 1
    assert list(front.columns) == list(trials.columns)


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_weighted_score_ranks_a_one_metric_search_by_the_weighted_sum(tmp_path):
    cfg = compose_config(
        *TINY, "objectives={num_params:min}", "weights={val_acc:1,num_params:1.0e-5}", "logger=none",
    )
    summary = tune_from_config(cfg, tmp_path / "run")
    folder = Path(summary["results_dir"])
    history = pd.read_csv(folder / "history.csv", dtype=TRIAL_ID_DTYPE)
    expected = history.val_acc - 1.0e-5 * history.num_params
    assert np.allclose(history.weighted_score, expected)
    assert summary["metric"] == "weighted_score" and summary["weights"] == {"val_acc": 1.0, "num_params": 1.0e-5}
    trials = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert summary["best_trial"]["weighted_score"] == trials.best_weighted_score.max()
    assert (folder / "pareto.csv").is_file()
