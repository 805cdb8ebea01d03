"""The config each trial gets: a space that chooses model.name gives every trial what
`model=<option>` would give it, and a sampled model setting exists only for the models that have it."""

import pytest

from tests.conftest import compose_config
from tuner import space as space_lib
from tuner.spec import build_spec
from tuner.trial_config import trial_base_config

CHOOSE_MODEL = "+space={model.name: {type: choice, values: [cnn_tcn, cnn_bilstm]}, model.hidden: {type: choice, values: [32, 128]}}"


def trial(spec, **sampled) -> dict:
    """The config a trial with these sampled values gets, as tuner.run builds it."""
    return space_lib.apply(spec.base_config, space_lib.active(spec.params, sampled | constants(spec)))


def constants(spec) -> dict:
    return {p.name: p.args["value"] for p in spec.params if p.type == space_lib.CONSTANT}


@pytest.mark.parametrize("base_model", ["cnn_tcn", "cnn_bilstm"])
def test_each_drawn_model_gets_its_own_settings_as_its_config_group_gives_them(base_model, tmp_path):
    spec = build_spec(compose_config(f"model={base_model}", "~space", CHOOSE_MODEL), tmp_path / "run")
    tcn = trial(spec, **{"model.name": "cnn_tcn", "model.hidden": 32})
    bilstm = trial(spec, **{"model.name": "cnn_bilstm", "model.hidden": 128})
    assert tcn["model"] == trial_base_config(compose_config("model=cnn_tcn"))["model"], "no hidden: only cnn_bilstm has it"
    assert bilstm["model"] == trial_base_config(compose_config("model=cnn_bilstm"))["model"] | {"hidden": 128}


def test_a_command_line_setting_of_the_configs_model_applies_to_every_model_that_has_it(tmp_path):
    spec = build_spec(compose_config("model.channels=16", "model.levels=2", "~space", CHOOSE_MODEL), tmp_path / "run")
    assert trial(spec, **{"model.name": "cnn_bilstm", "model.hidden": 32})["model"]["channels"] == 16
    assert trial(spec, **{"model.name": "cnn_tcn"})["model"] == {"name": "cnn_tcn", "channels": 16, "levels": 2, "kernel_size": 5}


def test_a_model_chosen_as_a_constant_replaces_the_configs_model(tmp_path):
    spec = build_spec(compose_config("~space", "+space={model.name: cnn_bilstm, lr: 0.01}"), tmp_path / "run")
    assert trial(spec)["model"] == {"name": "cnn_bilstm", "channels": 32, "hidden": 64, "num_layers": 1}
