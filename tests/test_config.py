"""Every option of every config group composes with Hydra and validates into a run spec."""

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, compose_config
from tests.helpers.user_trainables import quadratic
from tuner.groups import GROUPS
from tuner.search import make_search
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
    option_file = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{option}.yaml"))
    # A model's file is global (it brings its space too); any other lands under its group's key.
    composed = OmegaConf.to_container(cfg if group == "model" else cfg[group], resolve=False)
    assert {key: composed[key] for key in option_file} == option_file, "the option's file, as written"
    if group == "search":
        assert spec.searcher == option_file["searcher"] and spec.scheduler["type"] == option_file["scheduler"]["type"]


def test_defaults_are_the_documented_default_run():
    cfg = compose_config()
    assert (cfg.search.name, cfg.model.name, cfg.data._target_) == ("optuna", "cnn_tcn", "trainables.data.synthetic_har")
    assert (cfg.logger.kind, cfg.cluster.kind, cfg.num_samples, cfg.max_epochs) == ("wandb", "local", 16, 10)
    assert cfg.search.prior is True and cfg.search.scheduler.type == "asha"
    assert cfg.name == "cnn_tcn-optuna"


def test_each_model_brings_its_own_space():
    tcn, lstm = compose_config("model=cnn_tcn"), compose_config("model=cnn_bilstm")
    assert "levels" in tcn.space.model and "levels" not in lstm.space.model
    assert "hidden" in lstm.space.model and lstm.model.name == "cnn_bilstm"


def test_command_line_values_reach_the_search_space_the_trainable_and_the_resources(tmp_path):
    overrides = ["search=asha", "space.lr.high=0.01", "trainable=tests.helpers.user_trainables.quadratic", "metric=score", "trial.gpus=0.25"]
    spec = build_spec(compose_config(*overrides), tmp_path)
    _, _, param_space = make_search(spec)
    assert param_space["lr"].upper == 0.01, "Ray samples lr below the new bound"
    assert spec.trainable.function is quadratic and spec.gpus == 0.25
