"""W&B sweep files: every field of the shipped example, each distribution, and bad files."""

import math
import subprocess
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, TINY, compose_config
from tests.helpers.wandb_runs import trial_runs
from tuner import ConfigError
from tuner import space as space_lib
from tuner.pipeline import tune_from_config
from tuner.search import SEARCHERS, make_search, ray_space
from tuner.search.optuna_space import OptunaSpace
from tuner.spec import build_spec
from tuner.sweep import apply_sweep_file, check_command_line, convert, convert_parameter
from tuner.trials import TRIAL_ID_DTYPE

EXAMPLE = ROOT / "conf" / "sweeps" / "har_sweep.yaml"
HAR_PROJECT = ROOT / "conf" / "sweeps" / "har_project_sweep.yaml"


def sweep_config(tmp_path, sweep: dict, *overrides: str):
    """The config `python -m tuner sweep_file=<a file holding sweep> <overrides>` runs."""
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return apply_sweep_file(compose_config(f"sweep_file={path}", *overrides))


def test_the_example_sweep_file_converts_field_by_field(tmp_path, capsys):
    cfg = apply_sweep_file(compose_config(f"sweep_file={EXAMPLE}"))
    assert cfg.name == "har-cnn-tcn-bayes"
    assert cfg.logger.notes == "CNN-TCN on synthetic HAR windows, TPE with hyperband stopping"
    assert cfg.logger.project == "tuner-har"
    assert (cfg.search.name, cfg.search.searcher) == ("wandb-bayes", "optuna")
    assert (cfg.metric, cfg.mode, cfg.num_samples) == ("val_acc", "max", 16)
    assert dict(cfg.search.scheduler) == {"type": "asha", "grace_period": 1, "reduction_factor": 3}
    assert cfg.max_epochs == 10, "min_iter leaves max_epochs to the config"
    assert dict(cfg.space) == {
        "lr": {"type": "loguniform", "low": 1e-4, "high": 3e-2},
        "weight_decay": {"type": "loguniform", "low": 1e-6, "high": 1e-1},
        "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
        "batch_size": {"type": "choice", "values": [32, 64, 128]},
        "lr_schedule": "cosine",
        "model.channels": {"type": "qloguniform", "low": 16, "high": 64, "q": 16},
        "model.levels": {"type": "randint", "low": 1, "high": 4},
    }
    assert cfg.sweep_file is None, "the saved config reruns without the file"
    assert "method bayes -> searcher optuna, scheduler asha, 7 parameters" in capsys.readouterr().out


def test_the_example_sweep_builds_a_run_whose_trials_get_valid_values(tmp_path):
    spec = build_spec(apply_sweep_file(compose_config(f"sweep_file={EXAMPLE}")), tmp_path)
    make_search(spec)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    samples = [OptunaSpace(spec.params)(study.ask()) for _ in range(200)]
    assert {s["model.channels"] for s in samples} == {16, 32, 48, 64}
    assert {s["model.levels"] for s in samples} == {1, 2, 3, 4}
    assert all(1e-4 <= s["lr"] <= 3e-2 and s["lr_schedule"] == "cosine" for s in samples)


# (W&B parameter, method, tuner space entry)
PARAMETERS = [
    ({"value": 7}, "random", 7),
    ({"distribution": "constant", "value": "adam"}, "bayes", "adam"),
    ({"values": [1, 2]}, "random", {"type": "choice", "values": [1, 2]}),
    ({"distribution": "categorical", "values": ["a"]}, "grid", {"type": "grid", "values": ["a"]}),
    ({"min": 0.0, "max": 1.0}, "random", {"type": "uniform", "low": 0.0, "high": 1.0}),
    ({"min": 1, "max": 3}, "bayes", {"type": "randint", "low": 1, "high": 3}),
    ({"distribution": "int_uniform", "min": 1, "max": 3}, "grid", {"type": "grid", "values": [1, 2, 3]}),
    ({"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25}, "random", {"type": "quniform", "low": 0.0, "high": 1.0, "q": 0.25}),
    ({"distribution": "q_uniform", "min": 8, "max": 64, "q": 8}, "random", {"type": "qrandint", "low": 8, "high": 64, "q": 8}),
    ({"distribution": "q_uniform", "min": 0, "max": 10, "q": 4}, "grid", {"type": "grid", "values": [0, 4, 8]}),
    ({"distribution": "log_uniform_values", "min": "1e-4", "max": 0.1}, "random", {"type": "loguniform", "low": 1e-4, "high": 0.1}),
    ({"distribution": "inv_log_uniform_values", "min": 1e-3, "max": 1.0}, "random", {"type": "loguniform", "low": 1e-3, "high": 1.0}),
    ({"distribution": "q_log_uniform_values", "min": 16, "max": 256, "q": 16}, "random", {"type": "qloguniform", "low": 16, "high": 256, "q": 16}),
    ({"distribution": "normal"}, "bayes", {"type": "normal", "mean": 0.0, "sd": 1.0}),
    ({"distribution": "normal", "mu": 2, "sigma": 0.5}, "random", {"type": "normal", "mean": 2, "sd": 0.5}),
]


@pytest.mark.parametrize("parameter, method, entry", PARAMETERS, ids=[f"{p.get('distribution', '-')}-{m}-{i}" for i, (p, m, _) in enumerate(PARAMETERS)])
def test_each_wandb_parameter_becomes_its_space_entry(parameter, method, entry):
    assert convert_parameter(parameter, method, "sweep_file.parameters.p") == entry


# W&B distributions whose bounds are natural-log exponents: the samples' range shows the conversion.
EXPONENT_BOUNDS = [
    ({"distribution": "log_uniform", "min": math.log(1e-4), "max": math.log(1e-1)}, 1e-4, 1e-1),
    ({"distribution": "inv_log_uniform", "min": math.log(10), "max": math.log(1e4)}, 1e-4, 1e-1),
    ({"distribution": "q_log_uniform", "min": math.log(16), "max": math.log(256), "q": 16}, 16, 256),
]


@pytest.mark.parametrize("parameter, low, high", EXPONENT_BOUNDS, ids=[p["distribution"] for p, _, _ in EXPONENT_BOUNDS])
def test_exponent_bounds_become_value_bounds_spread_log_uniformly(parameter, low, high):
    entry = convert_parameter(parameter, "random", "sweep_file.parameters.p")
    assert entry["low"] == pytest.approx(low) and entry["high"] == pytest.approx(high)
    params = space_lib.parse_space({"p": entry})
    domain = ray_space.to_ray(params, SEARCHERS["random"])["p"]
    values = [space_lib.active(params, {"p": v})["p"] for v in domain.sample(size=2000, random_state=np.random.default_rng(0))]
    assert min(values) >= low * 0.999 and max(values) <= high * 1.001
    middle = math.sqrt(low * high)  # the log-midpoint splits a log-uniform sample in two halves
    assert 0.4 < np.mean([v < middle for v in values]) < 0.6


def test_nested_parameters_become_dotted_names_and_grid_runs_every_point(tmp_path):
    sweep = {
        "method": "grid",
        "parameters": {
            "lr": {"values": [0.001, 0.01]},
            "model": {"parameters": {"channels": {"values": [16, 32]}, "levels": {"distribution": "int_uniform", "min": 1, "max": 2}}},
        },
    }
    cfg = sweep_config(tmp_path, sweep)
    assert set(cfg.space) == {"lr", "model.channels", "model.levels"}
    spec = build_spec(cfg, tmp_path / "run")
    assert spec.searcher == "grid" and spec.scheduler == {"type": "fifo"}
    assert spec.expected_trials == 8
    assert (cfg.metric, cfg.mode) == ("val_acc", "max"), "no metric: the config's stays"


@pytest.mark.parametrize(
    "early_terminate, scheduler, max_epochs",
    [
        ({"type": "hyperband", "min_iter": 2}, {"type": "asha", "grace_period": 2, "reduction_factor": 3}, 10),
        ({"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3}, {"type": "asha", "grace_period": 3, "reduction_factor": 3}, 27),
        ({"type": "hyperband", "min_iter": 1, "eta": 2, "strict": False}, {"type": "asha", "grace_period": 1, "reduction_factor": 2}, 10),
    ],
)
def test_hyperband_early_termination_becomes_asha(early_terminate, scheduler, max_epochs, tmp_path):
    sweep = {"method": "random", "metric": {"name": "val_loss"}, "early_terminate": early_terminate, "parameters": {"lr": {"min": 0.001, "max": 0.01}}}
    cfg = sweep_config(tmp_path, sweep)
    assert dict(cfg.search.scheduler) == scheduler and cfg.max_epochs == max_epochs
    assert (cfg.metric, cfg.mode) == ("val_loss", "min"), "W&B's goal defaults to minimize"
    make_search(build_spec(cfg, tmp_path / "run"))


def test_keys_for_the_wandb_agent_and_logger_keys_without_wandb_are_listed_as_unused(tmp_path, capsys):
    sweep = {"program": "train.py", "command": ["python", "${program}"], "project": "p", "method": "random", "parameters": {"lr": {"value": 0.01}}}
    sweep_config(tmp_path, sweep, "logger=none")
    note = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert note == [
        "note: sweep_file keys not used: program (tuner runs trainables.har.train itself), "
        "command (tuner runs trainables.har.train itself), project (needs logger=wandb)"
    ]


GOOD = {"method": "random", "parameters": {"lr": {"min": 0.001, "max": 0.01}}}
# (what the sweep file holds, the key the error must name, a phrase of its message)
BAD_SWEEPS = [
    ({**GOOD, "metod": "grid"}, "sweep_file.metod", "not a key tuner can honour"),
    ({**GOOD, "method": "custom"}, "sweep_file.method", "must be grid, random or bayes"),
    ({**GOOD, "method": "bayes"}, "sweep_file.metric", "method bayes needs a metric"),
    ({**GOOD, "scheduler": {"engine": "optuna"}}, "sweep_file.scheduler", "not supported"),
    ({**GOOD, "metrics": [{"name": "a"}, {"name": "b"}]}, "sweep_file.metrics", "not supported"),
    ({"method": "random"}, "sweep_file.parameters", "missing or empty"),
    ({**GOOD, "metric": {"name": "val_acc", "target": 0.9}}, "sweep_file.metric.target", "not supported"),
    ({**GOOD, "metric": {"name": "val_acc", "goal": "max"}}, "sweep_file.metric.goal", "maximize or minimize"),
    ({**GOOD, "run_cap": 0}, "sweep_file.run_cap", "integer >= 1"),
    ({**GOOD, "early_terminate": {"type": "envelope"}}, "sweep_file.early_terminate.type", "only hyperband"),
    ({**GOOD, "early_terminate": {"type": "hyperband"}}, "sweep_file.early_terminate", "needs min_iter"),
    ({**GOOD, "early_terminate": {"type": "hyperband", "min_iter": 1, "strict": True}}, "sweep_file.early_terminate.strict", "not supported"),
    ({**GOOD, "early_terminate": {"type": "hyperband", "max_iter": 9, "s": 3}}, "sweep_file.early_terminate.s", "below one epoch"),
    ({**GOOD, "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 1}}, "sweep_file.early_terminate.eta", "must be > 1"),
    ({"method": "random", "parameters": {"opt": {"values": ["a", "b"], "probabilities": [0.9, 0.1]}}}, "sweep_file.parameters.opt.probabilities", "weighted values"),
    ({"method": "random", "parameters": {"lr": {"distribution": "beta", "a": 2, "b": 2}}}, "sweep_file.parameters.lr.distribution", "beta has no equivalent"),
    ({"method": "random", "parameters": {"lr": {"distribution": "q_normal", "q": 1}}}, "sweep_file.parameters.lr.distribution", "q_normal has no equivalent"),
    ({"method": "random", "parameters": {"lr": {"distribution": "log_normal"}}}, "sweep_file.parameters.lr.distribution", "log_normal has no equivalent"),
    ({"method": "random", "parameters": {"lr": {"distribution": "q_log_normal"}}}, "sweep_file.parameters.lr.distribution", "q_log_normal has no equivalent"),
    ({"method": "random", "parameters": {"lr": {"distribution": "gamma", "min": 1, "max": 2}}}, "sweep_file.parameters.lr.distribution", "unknown distribution"),
    ({"method": "random", "parameters": {"lr": {"min": 0.1, "max": 0.01}}}, "sweep_file.parameters.lr", "must be below max"),
    ({"method": "random", "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}}, "sweep_file.parameters.lr.min", "log bounds must be > 0"),
    ({"method": "random", "parameters": {"lr": {"distribution": "uniform", "min": 0, "max": 1, "q": 2}}}, "sweep_file.parameters.lr.q", "not a key of a uniform parameter"),
    ({"method": "random", "parameters": {"n": {"distribution": "int_uniform", "min": 1.5, "max": 3}}}, "sweep_file.parameters.n", "must be integers"),
    ({"method": "random", "parameters": {"lr": {"distribution": "uniform", "min": "low", "max": 1}}}, "sweep_file.parameters.lr.min", "must be a number"),
    ({"method": "random", "parameters": {"lr": {}}}, "sweep_file.parameters.lr", "has no value, values"),
    ({"method": "random", "parameters": {"lr": 0.01}}, "sweep_file.parameters.lr", "must be a mapping"),
    ({"method": "random", "parameters": {"opt": {"values": []}}}, "sweep_file.parameters.opt.values", "non-empty list"),
    ({"method": "grid", "parameters": {"lr": {"min": 0.001, "max": 0.01}}}, "sweep_file.parameters.lr", "method grid cannot take a uniform"),
    ({"method": "random", "parameters": {"model": {"parameters": {"x": {"value": 1}}, "value": 2}}}, "sweep_file.parameters.model", "nested parameters stand alone"),
    ({"method": "random", "parameters": {"optimizer": {"values": ["adam", "sgd"]}}}, "sweep_file.parameters.optimizer", "trainables.har.train never reads optimizer"),
    ({"method": "random", "parameters": {"learning_rat": {"value": 0.01}}}, "sweep_file.parameters.learning_rat", "did you mean learning_rate?"),
    ({"method": "random", "parameters": {"model": {"values": ["tcn", "lstm"]}}}, "sweep_file.parameters.model", "never reads model"),
    ({"method": "random", "parameters": {"lr": {"value": 0.01}, "learning_rate": {"value": 0.1}}}, "sweep_file.parameters.learning_rate", "another parameter of the sweep file sets too"),
    ({**GOOD, "metric": {"name": "val/acuracy"}}, "sweep_file.metric.name", "never reported by trainables.har.train"),
    ({**GOOD, "parameters": {"epochs": {"value": 5}}, "early_terminate": {"type": "hyperband", "max_iter": 9, "s": 1}}, "sweep_file.parameters", "sets 5 epochs where early_terminate.max_iter sets 9"),
]


@pytest.mark.parametrize("sweep, key, phrase", BAD_SWEEPS, ids=[c[1] + ":" + c[2] for c in BAD_SWEEPS])
def test_a_sweep_key_tuner_cannot_honour_is_one_line_naming_it(sweep, key, phrase, tmp_path):
    with pytest.raises(ConfigError) as err:
        convert(sweep, compose_config())
    assert err.value.key == key
    assert phrase in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text, phrase",
    [(None, "no file at"), ("method: [random\n", "is not valid YAML"), ("- a list\n", "does not hold a mapping")],
)
def test_a_missing_or_unreadable_sweep_file_names_sweep_file(text, phrase, tmp_path):
    path = tmp_path / "sweep.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as err:
        apply_sweep_file(compose_config(f"sweep_file={path}"))
    assert err.value.key == "sweep_file" and phrase in str(err.value)


def test_a_command_line_value_the_sweep_would_replace_is_refused():
    settings, _, _ = convert(yaml.safe_load(EXAMPLE.read_text()), compose_config())
    for override, key in [("search=asha", "search"), ("space.lr.high=0.01", "space.lr.high"), ("num_samples=4", "num_samples"), ("+search.scheduler.grace_period=2", "search.scheduler.grace_period")]:
        with pytest.raises(ConfigError) as err:
            check_command_line(settings, [override])
        assert err.value.key == key and "set both on the command line and by the sweep file" in str(err.value)
    check_command_line(settings, ["sweep_file=x.yaml", "search.max_concurrent=4", "logger=wandb", "model=cnn_tcn", "max_epochs=3"])


@pytest.mark.parametrize(
    "args, line",
    [
        ([f"sweep_file={EXAMPLE}", "num_samples=4"], "error: num_samples: is set both on the command line and by the sweep file (run_cap); drop one of the two"),
        (["sweep_file=nowhere.yaml"], "error: sweep_file: no file at nowhere.yaml; give the path of a W&B sweep YAML, e.g. conf/sweeps/har_sweep.yaml"),
    ],
)
def test_command_line_sweep_errors_are_one_line_and_exit_2(args, line, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tuner", *args, f"storage={tmp_path / 'outputs'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [line], done.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_har_projects_sweep_file_takes_the_trainables_names_each_said_once(capsys):
    cfg = apply_sweep_file(compose_config(f"sweep_file={HAR_PROJECT}"))
    assert dict(cfg.space) == {
        "model.name": {"type": "choice", "values": ["cnn_tcn", "cnn_bilstm"]},
        "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
        "batch_size": {"type": "choice", "values": [32, 64, 128]},
        "dropout": {"type": "uniform", "low": 0.0, "high": 0.4},
        "model.hidden": {"type": "choice", "values": [32, 64, 128]},
    }
    assert (cfg.metric, cfg.mode, cfg.max_epochs, cfg.search.searcher) == ("val_acc", "max", 10, "optuna")
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: sweep_file.parameters.model is model.name: each model's own settings go with it",
        "note: sweep_file.parameters.epochs is max_epochs: trainables.har.train's name for it",
        "note: sweep_file.parameters.learning_rate is lr: trainables.har.train's name for it",
        "note: sweep_file.parameters.hidden_size is model.hidden: trainables.har.train's name for it",
        "note: sweep_file.metric.name val/accuracy is val_acc: trainables.har.train's name for it",
        "note: sweep_file keys not used: program (tuner runs trainables.har.train itself)",
    ]


@pytest.mark.integration
def test_a_har_projects_sweep_file_runs_unchanged_with_no_errored_trial(local_ray, tmp_path):
    sweep = yaml.safe_load(HAR_PROJECT.read_text())
    sweep["run_cap"], sweep["parameters"]["epochs"]["value"] = 6, 2  # the file as it is, made tiny
    summary = tune_from_config(sweep_config(tmp_path, sweep, *TINY[2:], "logger=none"), tmp_path / "run")
    trials = pd.read_csv(tmp_path / "run" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert len(trials) == 6 and set(trials.status) <= {"completed", "early_stopped"}, trials
    assert set(trials["model.name"]) == {"cnn_tcn", "cnn_bilstm"}
    bilstm = trials["model.name"] == "cnn_bilstm"
    assert trials.loc[bilstm, "model.hidden"].notna().all() and trials.loc[~bilstm, "model.hidden"].isna().all()
    assert summary["metric"] == "val_acc" and summary["best_trial"]["val_acc"] > 0.3


@pytest.mark.integration
def test_a_users_own_trainable_gets_its_sweep_parameters_as_config_keys_and_in_wandb(local_ray, tmp_path):
    sweep = {
        "method": "random", "metric": {"name": "score", "goal": "maximize"}, "run_cap": 4,
        "parameters": {"x1": {"min": 0.0, "max": 1.0}, "x2": {"values": [0.5, 0.7, 0.9]}},
    }
    overrides = ["trainable=tests.helpers.user_trainables.two_inputs", "max_epochs=2", "logger=wandb", "logger.mode=offline"]
    tune_from_config(sweep_config(tmp_path, sweep, *overrides), tmp_path / "run")
    trials = pd.read_csv(tmp_path / "run" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert trials.status.tolist() == ["completed"] * 4
    assert trials.x1.between(0, 1).all() and set(trials.x2) <= {0.5, 0.7, 0.9}
    logged = {run.config["x1"]: run.config["x2"] for run in trial_runs(tmp_path / "run").values()}
    assert logged == dict(zip(trials.x1, trials.x2)), "each trial's W&B config holds its x1 and x2"
