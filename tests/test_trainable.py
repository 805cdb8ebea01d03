"""The trainable a run tunes: the two forms tuner calls (Ray Tune's train(config), and
train(config, data)), a trainable as Ray Tune's docs write one tuned end to end, and signatures
that fit neither form refused before the run starts."""

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT
from tuner import ConfigError
from tuner.trainable import call_form
from tuner.trials import TRIAL_ID_DTYPE


def config_only(config): ...
def with_data(config, data): ...
def with_report(config, data, report=None): ...
def config_and_report(config, *, report=None): ...
def optional_data(config, data=None): ...
def nothing(): ...
def three(config, data, budget): ...
def keyword_needed(config, *, budget): ...


class TrainableClass:
    def __init__(self, config): ...


@pytest.mark.parametrize(
    "function, takes_data, takes_report",
    [(config_only, False, False), (with_data, True, False), (with_report, True, True), (config_and_report, False, True), (optional_data, True, False)],
)
def test_each_form_is_called_with_what_it_takes(function, takes_data, takes_report):
    assert call_form(function, f"my_module.{function.__name__}") == (takes_data, takes_report)


@pytest.mark.parametrize("function", [nothing, three, keyword_needed, TrainableClass])
def test_a_signature_that_fits_neither_form_names_trainable(function):
    with pytest.raises(ConfigError) as err:
        call_form(function, f"my_module.{function.__name__}")
    assert err.value.key == "trainable" and "train(config) or train(config, data)" in str(err.value)


RAY_DOCS_TRAINABLE = '''
    """An objective as Ray Tune's docs write one: config in, tune.report out, nothing else."""
    from ray import tune


    def objective(config):
        for step in range(config["max_epochs"]):
            score = -(config["x"] - 0.3) ** 2 - (config["y"] + 0.1) ** 2 + 0.01 * step
            tune.report({"score": score})
'''


@pytest.mark.integration
def test_a_trainable_written_as_ray_tunes_docs_write_one_is_tuned_to_a_results_folder(tmp_path):
    (tmp_path / "my_objective.py").write_text(textwrap.dedent(RAY_DOCS_TRAINABLE))
    storage = tmp_path / "outputs"
    done = subprocess.run(
        [
            sys.executable, "-m", "tuner", "trainable=my_objective.objective", "metric=score", "search=random",
            "num_samples=3", "max_epochs=2", "logger=none", "~space",
            "+space={x: {type: uniform, low: 0, high: 1}, y: {type: uniform, low: -1, high: 1}}", f"storage={storage}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = storage.iterdir()
    trials = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert trials.status.tolist() == ["completed"] * 3, "called with the config alone: data would be a TypeError"
    assert trials.x.between(0, 1).all() and trials.y.between(-1, 1).all()
    best = yaml.safe_load((folder / "best_config.yaml").read_text())
    assert best["space"]["x"] == pytest.approx(trials.loc[trials.best_score.idxmax(), "x"])
    assert "test: none" in done.stdout, "no predict_test_split beside it: said so, nothing scored"
