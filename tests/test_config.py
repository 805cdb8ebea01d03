"""Every option of every config group composes with Hydra and validates into a run spec."""

import pytest

from tests.conftest import CONF_DIR, compose_config
from tuner.groups import GROUPS
from tuner.spec import build_spec

OPTIONS = [(group, p.stem) for group in GROUPS for p in sorted((CONF_DIR / group).glob("*.yaml"))]


def test_every_group_has_options():
    assert {group for group, _ in OPTIONS} == set(GROUPS)


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_group_option_composes_and_validates(group, option, tmp_path):
    overrides = [f"{group}={option}"]
    if option == "grid":  # a grid takes values, not continuous distributions
        overrides += ["~space", "+space={lr: {type: grid, values: [0.001, 0.01]}}"]
    if option == "nsga2":  # a Pareto search needs a second objective
        overrides += ["objectives={num_params:min}"]
    if option == "remote":  # every node must reach the storage: no relative folder
        overrides += [f"storage={tmp_path}"]
    cfg = compose_config(*overrides)
    spec = build_spec(cfg, tmp_path)
    assert cfg[group] is not None
    if group == "search":
        assert spec.searcher == cfg.search.searcher and spec.scheduler["type"] == cfg.search.scheduler.type


def test_defaults_are_the_documented_default_run():
    cfg = compose_config()
    assert (cfg.search.name, cfg.model.name, cfg.data._target_) == ("asha", "cnn_tcn", "trainables.data.synthetic_har")
    assert (cfg.logger.kind, cfg.cluster.kind, cfg.num_samples, cfg.max_epochs) == ("wandb", "local", 16, 10)
    assert cfg.name == "cnn_tcn-asha"


def test_each_model_brings_its_own_space():
    tcn, lstm = compose_config("model=cnn_tcn"), compose_config("model=cnn_bilstm")
    assert "levels" in tcn.space.model and "levels" not in lstm.space.model
    assert "hidden" in lstm.space.model and lstm.model.name == "cnn_bilstm"


def test_command_line_reaches_the_space_and_the_trainable():
    cfg = compose_config("space.lr.high=0.01", "trainable=tests.user_trainables.quadratic", "trial.gpus=0.25")
    assert cfg.space.lr.high == 0.01 and cfg.trainable == "tests.user_trainables.quadratic"
    assert cfg.trial.gpus == 0.25
