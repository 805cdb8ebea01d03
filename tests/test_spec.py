"""Validation before Ray starts: every user mistake is one line naming the key, exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, compose_config
from tuner import ConfigError
from tuner.groups import check_group_options
from tuner.pipeline import tune_from_config
from tuner.search import make_search
from tuner.spec import build_spec

SCORED = "tests.helpers.scored_trainables.generalization"
GRID_ENTRY = "+space.model.kernel_size={type: grid, values: [3, 5]}"

# (overrides, the key the error must name, a phrase of its message)
BAD_CONFIGS = [
    (["space.lr.type=logarithmic"], "space.lr.type", "unknown distribution"),
    (["space.lr.low=0.1", "space.lr.high=0.01"], "space.lr", "must be below high"),
    (["space.lr.low=0"], "space.lr.low", "log bounds must be > 0"),
    (["space.batch_size.values=[]"], "space.batch_size.values", "non-empty list"),
    (["search=optuna", GRID_ENTRY], "space.model.kernel_size", "cannot take a grid"),
    (["search=grid"], "space.lr", "cannot take a loguniform"),
    (["+space.lrr={type: uniform, low: 0, high: 1}"], "space.lrr", "trainables.har.train never reads lrr; did you mean lr?"),
    (["+space.model.depth={type: choice, values: [1, 2]}"], "space.model.depth", "not a key of the trial config"),
    (["~space", "+space={model: {type: choice, values: [cnn_tcn, cnn_bilstm]}}"], "space.model", "would replace the model section"),
    (["~space", "+space={lr: {type: uniform, low: 0.1, high: 1}, lr.x: 1}"], "space.lr.x", "lr is a value, not a section"),
    (["+space.lr_schedule=warp"], "space.lr_schedule", "must be one of: none, step, plateau, cosine, got 'warp'"),
    (["space.batch_size.values=[32,48.5]"], "space.batch_size.values", "each value must be an integer, got 48.5"),
    (["~space", "+space={batch_size: {type: uniform, low: 16, high: 64}}"], "space.batch_size", "must be an integer, which a uniform"),
    (["~space", "+space={model.name: {type: choice, values: [cnn_tcn, transformer]}}"], "space.model.name.values", "got 'transformer'"),
    (["~space", "+space={model.name: {type: choice, values: [cnn_tcn, cnn_bilstm]}, model.hiden: {type: choice, values: [32]}}"], "space.model.hiden", "did you mean model.hidden?"),
    (["seed=abc"], "seed", "integer >= 0, got 'abc'"),
    (["train.lr_schedule=warp"], "train.lr_schedule", "must be one of: none, step, plateau, cosine, got 'warp'"),
    (["train.batch_size=1.5"], "train.batch_size", "must be an integer, got 1.5"),
    (["+train.lrr=0.1"], "train.lrr", "trainables.har.train never reads lrr; did you mean lr?"),
    (["+model.depth=3"], "model.depth", "trainables.har.train never reads model.depth"),
    (["verbose=maybe"], "verbose", "must be true or false"),
    (["progress_every=0"], "progress_every", "positive number"),
    (["metric=val/accuracy"], "metric", "use val_acc (trainables.har.train's name for val/accuracy)"),
    (["trainable=tests.helpers.user_trainables.three_inputs"], "trainable", "fits neither trainable form"),
    (["+space.model.depth={type: choice, values: [1], when: {model.nme: x}}"], "space.model.depth.when", "not a parameter"),
    (["trainable=my_pkg.my_module.train"], "trainable", "cannot import 'my_pkg.my_module'"),
    (["trainable=trainables.har.fit"], "trainable", "has no function 'fit'"),
    (["trainable=train"], "trainable", "not a dotted import path"),
    (["metric=val_accuracy"], "metric", "never reported"),
    (["mode=best"], "mode", "must be min or max"),
    (["num_samples=0"], "num_samples", "positive integer"),
    (["max_epochs=2.5"], "max_epochs", "positive integer"),
    (["trial.cpus=0"], "trial.cpus", "positive number"),
    (["trial.gpus=-1"], "trial.gpus", ">= 0"),
    (["trial.patience=0"], "trial.patience", "positive integer"),
    (["trial.max_time_s=-5"], "trial.max_time_s", "positive number"),
    (["budget.epochs=1.5"], "budget.epochs", "positive integer"),
    (["budget.time_s=0"], "budget.time_s", "positive number"),
    (["+budget.trials=3"], "budget.trials", "is not a budget"),
    (["search.searcher=bayes"], "search.searcher", "unknown searcher"),
    (["search.scheduler.type=pb3"], "search.scheduler.type", "unknown scheduler"),
    (["data._target_=trainables.data.nope"], "data._target_", "has no function 'nope'"),
    (["search=nsga2"], "objectives", "needs a metric to trade off"),
    (["objectives={num_params:less}"], "objectives.num_params", "must be min or max"),
    (["objectives={val_acc:max}"], "objectives.val_acc", "already the run's metric"),
    (["search=nsga2", "objectives={flops:min}"], "objectives.flops", "never reported"),
    (["objectives={num_params:min}"], "weights", "optimises one metric"),
    (["objectives={num_params:min}", "weights={val_acc:1}"], "weights", "one weight for each"),
    (["objectives={num_params:min}", "weights={val_acc:1,num_params:-1}"], "weights.num_params", "positive number"),
    (["search=nsga2", "objectives={num_params:min}", "weights={val_acc:1,num_params:1}"], "weights", "Pareto front itself"),
    (["search=nsga2", "objectives={num_params:min}", "search.scheduler.type=asha"], "search.scheduler.type", "weighs several"),
    (["score=my_pkg.scores.gap"], "score", "cannot import 'my_pkg.scores'"),
    (["score=tests.helpers.scored_trainables.NOT_A_FUNCTION"], "score", "has no function 'NOT_A_FUNCTION'"),
    (["score=tests.helpers.scored_trainables.two_arguments"], "score", "cannot be called with one argument"),
    ([f"score={SCORED}", "objectives={num_params:min}", "weights={val_acc:1,num_params:1}"], "score", "objectives or weights are set too"),
    ([f"score={SCORED}", "trainable=tests.helpers.user_trainables.quadratic", "metric=score"], "score", "reports through ray.tune.report itself"),
]


@pytest.mark.parametrize("overrides, key, phrase", BAD_CONFIGS, ids=[c[1] + ":" + c[2] for c in BAD_CONFIGS])
def test_bad_config_is_one_line_naming_the_key_and_nothing_is_written(overrides, key, phrase, tmp_path):
    with pytest.raises(ConfigError) as err:
        tune_from_config(compose_config(*overrides), tmp_path / "run")
    assert err.value.key == key
    assert phrase in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


# Search settings Ray would only reject with an assertion: checked with the rest of the spec.
BAD_SEARCHES = [
    (["search.scheduler.grace_period=20"], "search.scheduler.grace_period", "from 1 to max_epochs"),
    (["search.scheduler.reduction_factor=1"], "search.scheduler.reduction_factor", "must be > 1"),
    (["+search.scheduler.patience=3"], "search.scheduler.patience", "not an option of asha"),
    (["search.max_concurrent=0"], "search.max_concurrent", "positive integer"),
    (["search=nsga2", "objectives={num_params:min}", "search.population_size=1"], "search.population_size", "integer >= 2"),
    (["search=median", "search.scheduler.grace_period=0"], "search.scheduler.grace_period", "from 1 to max_epochs"),
    (["search=median", "search.scheduler.min_samples_required=0"], "search.scheduler.min_samples_required", "positive integer"),
    (["search=pbt", "search.scheduler.perturbation_interval=10"], "search.scheduler.perturbation_interval", "below max_epochs (10)"),
    (["search=pbt", "search.scheduler.perturbation_interval=0"], "search.scheduler.perturbation_interval", "positive integer"),
    (["search=pbt", "search.scheduler.quantile_fraction=0.8"], "search.scheduler.quantile_fraction", "at most 0.5"),
    (["search=pbt", "search.scheduler.resample_probability=2"], "search.scheduler.resample_probability", "from 0 to 1"),
    (["search=pbt", "search.scheduler.mutate=[]"], "search.scheduler.mutate", "non-empty list"),
    (["search=pbt", "search.scheduler.mutate=[lr,momentum]"], "search.scheduler.mutate", "'momentum' is not a sampled parameter"),
    (["search=pbt", "search.searcher=optuna"], "search.searcher", "pbt changes the trials' configs itself"),
    (["search=pb2", "search.scheduler.mutate=[lr,batch_size]"], "search.scheduler.mutate", "'batch_size' is a choice; pb2 chooses values between bounds"),
    (["search=pb2", "search.scheduler.perturbation_interval=10"], "search.scheduler.perturbation_interval", "below max_epochs (10)"),
    (["search=optuna", "search.prior=maybe"], "search.prior", "must be true or false"),
    (["search=optuna", "search.prior=true", "+space.lr.prior=0.5"], "space.lr.prior", "0.5 is outside [0.0001, 0.03]"),
    (["search=optuna", "search.prior=true", "+space.dropout.prior=high"], "space.dropout.prior", "must be a number, got 'high'"),
    (["search=optuna", "search.prior=true", "+space.batch_size.prior=48"], "space.batch_size.prior", "48 is not one of the values"),
    (["search=optuna", "search.prior=false", "+space.lr.prior=0.001"], "space.lr.prior", "is not used: search.prior is false"),
]


@pytest.mark.parametrize("overrides, key, phrase", BAD_SEARCHES, ids=[c[1] for c in BAD_SEARCHES])
def test_bad_search_settings_name_the_key(overrides, key, phrase, tmp_path):
    with pytest.raises(ConfigError) as err:
        build_spec(compose_config(*overrides), tmp_path / "run")
    assert err.value.key == key and phrase in str(err.value)


def test_unknown_group_option_names_the_group_and_its_options():
    with pytest.raises(ConfigError) as err:
        check_group_options(["search=bayesian"])
    assert err.value.key == "search" and "asha, fifo, grid, hyperband, median, nsga2, optuna, pb2, pbt, random" in str(err.value)
    with pytest.raises(ConfigError):
        check_group_options(["--multirun", "model=cnn_tcn,transformer"])
    check_group_options(["model=cnn_tcn,cnn_bilstm", "space.lr.high=0.01"])


# (the command line, the one error line it prints)
COMMAND_LINES = [
    (["search=bayesian"], "error: search: unknown option 'bayesian'; choose one of: asha, fifo, grid, hyperband, median, nsga2, optuna, pb2, pbt, random"),
    (["space.lr.low=0"], "error: space.lr.low: log bounds must be > 0, got 0; use a positive low or type uniform"),
    (["trainable=my_pkg.my_module.train"], "error: trainable: cannot import 'my_pkg.my_module' (No module named 'my_pkg'); set trainable=<package>.<module>.<function>, e.g. trainables.har.train"),
    (["lrr=0.1"], "error: lrr: is not a key of the config; did you mean train.lr?"),
    (["train.lrr=0.1"], "error: train.lrr: is not a key of the config; did you mean train.lr?"),
    (["search.schedular.grace_period=2"], "error: search.schedular.grace_period: is not a key of the config; did you mean search.scheduler.grace_period?"),
    (["+train.lrr=0.1"], "error: train.lrr: trainables.har.train never reads lrr; did you mean lr?"),
    (["seed=abc"], "error: seed: must be an integer >= 0, got 'abc'; set seed to an integer >= 0"),
    (["train.lr_schedule=warp"], "error: train.lr_schedule: must be one of: none, step, plateau, cosine, got 'warp'; set train.lr_schedule to one of: none, step, plateau, cosine"),
    (["storage=/proc/tuner-out"], "error: storage: cannot create /proc/tuner-out (No such file or directory); give a folder you can write to"),
    (["search=pbt", "search.scheduler.mutate=[momentum]"], "error: search.scheduler.mutate: 'momentum' is not a sampled parameter of the space; mutate some of: lr, weight_decay, dropout, batch_size, model.channels, model.levels, or add it to space:"),
    (["search=optuna", "search.prior=true", "+space.lr.prior=0.5"], "error: space.lr.prior: 0.5 is outside [0.0001, 0.03]; give a value inside the bounds"),
    (["budget.epochs=0"], "error: budget.epochs: must be a positive integer, got 0; set it to the epochs all trials may train together, or null"),
    (["score=trainables.har.val_acc"], "error: score: 'trainables.har' has no function 'val_acc'; set score=<package>.<module>.<function>, a function of the reported metrics dict returning a number"),
    (["trainable=tests.helpers.user_trainables.three_inputs"], "error: trainable: three_inputs(config, data, budget) fits neither trainable form; give it the form train(config) or train(config, data), either with an optional report argument"),
]


@pytest.mark.parametrize("args, line", COMMAND_LINES, ids=[" ".join(args) for args, _ in COMMAND_LINES])
def test_command_line_prints_one_error_line_and_exits_2(args, line, tmp_path):
    storage = tmp_path / "outputs"
    done = subprocess.run(
        [sys.executable, "-m", "tuner", f"storage={storage}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [line], done.stderr
    assert not storage.exists(), "nothing is written before the config is valid"


def test_retrain_of_a_missing_file_is_one_error_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tuner.retrain", str(tmp_path / "best_config.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stderr.strip().startswith("error: config: no file at")


def test_a_valid_config_becomes_a_spec_with_the_trial_config_the_trainable_gets(tmp_path):
    spec = build_spec(compose_config("search=asha", "space.lr.high=0.01", "trial.cpus=2"), Path(tmp_path))
    _, _, param_space = make_search(spec)
    assert param_space["lr"].upper == 0.01
    assert spec.base_config["model"]["name"] == "cnn_tcn"
    assert spec.base_config["threads"] == 2 and spec.base_config["max_epochs"] == 10
    assert {"lr", "batch_size", "model.channels"} <= set(param_space)


@pytest.mark.parametrize(
    "target", ["trainables.uci_har.uci_har", "trainables.pamap2.pamap2", "trainables.npz.npz_windows"]
)
def test_data_targets_from_before_the_loaders_moved_into_data_still_validate(target, tmp_path):
    spec = build_spec(compose_config(f"data._target_={target}"), tmp_path / "run")
    assert spec.data["_target_"] == target
