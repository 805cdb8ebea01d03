"""Command-line overrides of keys the config does not have: one line with a did-you-mean, before
Hydra composes (and before a retrain runs); everything Hydra takes passes untouched."""

import pytest
from omegaconf import OmegaConf

from tests.conftest import compose_config
from tuner import ConfigError
from tuner.overrides import check_override_keys
from tuner.retrain import retrain

# (the command line, the key the error names, its did-you-mean)
MISSPELT = [
    (["lrr=0.1"], "lrr", "did you mean train.lr?"),
    (["train.lrr=0.1"], "train.lrr", "did you mean train.lr?"),
    (["search.schedular.grace_period=2"], "search.schedular.grace_period", "did you mean search.scheduler.grace_period?"),
    (["space.lr.hihg=0.01"], "space.lr.hihg", "did you mean space.lr.high?"),
    (["model=cnn_bilstm", "model.hiden=32"], "model.hiden", "did you mean model.hidden?"),
    (["--multirun", "data.num_trian=100,200"], "data.num_trian", "did you mean data.num_train or data.num_val?"),
    (["max_epoch=3"], "max_epoch", "did you mean max_epochs?"),
]


@pytest.mark.parametrize("args, key, hint", MISSPELT, ids=[c[1] for c in MISSPELT])
def test_a_key_the_config_does_not_have_is_one_line_with_a_did_you_mean(args, key, hint):
    with pytest.raises(ConfigError) as err:
        check_override_keys(args)
    assert err.value.key == key
    assert str(err.value) == f"{key}: is not a key of the config; {hint}"


def test_a_key_nothing_is_close_to_points_at_the_list_of_keys():
    with pytest.raises(ConfigError) as err:
        check_override_keys(["zzz=1"])
    assert str(err.value) == "zzz: is not a key of the config; python -m tuner --cfg job shows every key"


ACCEPTED = [
    ["space.lr.high=0.01", "seed=3"],
    ["+train.x=1", "train.x=2"],
    ["~space", "+space={lr: {type: grid, values: [0.001]}}", "space.lr.values=[0.01]"],
    ["model=cnn_bilstm", "model.hidden=32"],
    ["--multirun", "model=cnn_tcn,cnn_bilstm", "model.channels=16"],
    ["data=uci_har", "data.fold=1"],
    ["search=fifo", "logger.entity=me", "objectives={num_params:min}"],
    ["hydra.verbose=true", "--cfg", "job"],
    ["lr=[unclosed"],  # a syntax error: Hydra's own message says where
]


@pytest.mark.parametrize("args", ACCEPTED, ids=[" ".join(a) for a in ACCEPTED])
def test_what_hydra_takes_passes(args):
    check_override_keys(args)


def test_a_retrain_override_of_a_key_its_config_lacks_is_refused_before_it_runs(tmp_path):
    best_config = tmp_path / "best_config.yaml"
    OmegaConf.save(compose_config(), best_config)
    with pytest.raises(ConfigError) as err:
        retrain(best_config, ["max_epoch=3", f"storage={tmp_path / 'outputs'}"])
    assert str(err.value) == "max_epoch: is not a key of the config; did you mean max_epochs?"
    assert not (tmp_path / "outputs").exists()
