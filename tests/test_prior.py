"""search.prior: a decaying share of search=optuna's configs is drawn around the user's defaults."""

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.conftest import compose_config
from tuner.pipeline import tune_from_config
from tuner.search.optuna_search import OptunaSearcher
from tuner.search.optuna_space import OptunaSpace
from tuner.search.prior import Prior
from tuner.space import parse_space

SPACE = parse_space({
    "lr": {"type": "loguniform", "low": 1.0e-5, "high": 1.0e-1},
    "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
    "batch_size": {"type": "choice", "values": [32, 64, 128]},
})
DEFAULTS = {"lr": 1.0e-3, "dropout": 0.1, "batch_size": 64}
STUDIES, TRIALS = 40, 20
# Near the defaults: within a decade of lr (2.5 prior sds), 0.125 of dropout (2.5 sds), batch 64.
CHANCE = (2 / 4) * (0.225 / 0.5) * (1 / 3)  # the share of the space that is near, drawn at random


def near(config: dict, centre: dict) -> bool:
    return (
        abs(math.log10(config["lr"] / centre["lr"])) < 1
        and abs(config["dropout"] - centre["dropout"]) < 0.125
        and config["batch_size"] == centre["batch_size"]
    )


def share_near(prior: bool, params=SPACE, centre=DEFAULTS) -> float:
    """The share of the configs that a fresh search=optuna (no results yet) draws near ``centre``."""
    hits = 0
    for seed in range(STUDIES):
        searcher = OptunaSearcher(
            OptunaSpace(params), optuna.samplers.TPESampler(seed=seed), "val_acc", "max", 10,
            Prior.from_config(params, DEFAULTS) if prior else None, seed,
        )
        hits += sum(near(searcher.suggest(str(n)), centre) for n in range(TRIALS))
    return hits / (STUDIES * TRIALS)


def configured_share() -> float:
    """Trial 0 at the centre, then trial n drawn around it with probability weight(n)."""
    prior = Prior.from_config(SPACE, DEFAULTS)
    return (1 + sum(prior.weight(n) for n in range(1, TRIALS))) / TRIALS


def test_the_configured_share_of_configs_lies_near_the_defaults():
    share = configured_share()
    assert 0.3 < share < 0.35
    # A prior draw lands near with probability about 0.98, the other draws by chance.
    expected = share * 0.98 + (1 - share) * CHANCE
    assert share_near(prior=True) == pytest.approx(expected, abs=0.05)


def test_without_the_prior_no_more_configs_than_chance_lie_near_the_defaults():
    assert share_near(prior=False) == pytest.approx(CHANCE, abs=0.03)


def test_a_space_prior_moves_the_centre():
    params = parse_space({
        "lr": {"type": "loguniform", "low": 1.0e-5, "high": 1.0e-1, "prior": 1.0e-2},
        "dropout": {"type": "uniform", "low": 0.0, "high": 0.5, "prior": 0.3},
        "batch_size": {"type": "choice", "values": [32, 64, 128], "prior": 128},
    })
    moved = {"lr": 1.0e-2, "dropout": 0.3, "batch_size": 128}
    assert Prior.from_config(params, DEFAULTS).centres == moved
    assert share_near(True, params, moved) > configured_share() * 0.9


def test_a_default_outside_the_space_has_no_prior():
    prior = Prior.from_config(SPACE, {**DEFAULTS, "lr": 0.5, "batch_size": 48})
    assert prior.centres == {"dropout": 0.1}


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_a_tiny_run_with_the_prior_starts_at_the_train_defaults(tmp_path):
    from tests.test_optuna_search import QUADRATIC

    summary = tune_from_config(compose_config(*QUADRATIC, "search=optuna", "search.prior=true", "num_samples=4", "max_epochs=1"), tmp_path / "run")
    trials = pd.read_csv(Path(summary["results_dir"]) / "trials.csv")
    assert len(trials) == 4 and (trials.x == 0.5).sum() == 1, "trial 0 is train.x itself"
