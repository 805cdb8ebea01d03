"""The search-space compiler: Ray domains, Optuna define-by-run, conditions, nesting."""

import math
from itertools import product

import numpy as np
import optuna
import pytest
from ray.tune.search.variant_generator import generate_variants

from tuner import ConfigError
from tuner import space as space_lib
from tuner.search import SEARCHERS, check_space
from tuner.search.optuna_space import OptunaSpace
from tuner.search.ray_space import to_ray as ray_param_space


def to_ray(params: list, searcher: str) -> dict:
    """The space as the searcher gives it to Ray Tune, checked first as tuner.spec does."""
    check_space(params, searcher)
    return ray_param_space(params, SEARCHERS[searcher])


def to_optuna(params: list) -> OptunaSpace:
    """The space as search=optuna gives it to Optuna, checked first as tuner.spec does."""
    check_space(params, "optuna")
    return OptunaSpace(params)

EVERY_DISTRIBUTION = {
    "u": {"type": "uniform", "low": -1.0, "high": 2.0},
    "lu": {"type": "loguniform", "low": 1e-4, "high": 1.0},
    "qu": {"type": "quniform", "low": 0.0, "high": 1.0, "q": 0.25},
    "ri": {"type": "randint", "low": 1, "high": 3},
    "qri": {"type": "qrandint", "low": 8, "high": 64, "q": 8},
    "n": {"type": "normal", "mean": 5.0, "sd": 0.5},
    "c": {"type": "choice", "values": ["a", "b", "c"]},
}


def check_bounds(values: dict[str, list]) -> None:
    assert all(-1.0 <= v <= 2.0 for v in values["u"])
    assert all(1e-4 <= v <= 1.0 for v in values["lu"])
    assert set(values["qu"]) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert set(values["ri"]) == {1, 2, 3}, "randint includes both bounds"
    assert set(values["qri"]) <= set(range(8, 65, 8)) and len(set(values["qri"])) > 4
    assert abs(np.mean(values["n"]) - 5.0) < 0.2 and 0.3 < np.std(values["n"]) < 0.7
    assert set(values["c"]) == {"a", "b", "c"}


def test_ray_domains_sample_inside_their_bounds():
    domains = to_ray(space_lib.parse_space(EVERY_DISTRIBUTION), "random")
    rng = np.random.default_rng(0)
    check_bounds({name: list(d.sample(size=300, random_state=rng)) for name, d in domains.items()})


def test_optuna_suggestions_sample_inside_their_bounds():
    define = to_optuna(space_lib.parse_space(EVERY_DISTRIBUTION))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    samples = [define(study.ask()) for _ in range(300)]
    check_bounds({name: [s[name] for s in samples] for name in EVERY_DISTRIBUTION})


def test_loguniform_is_spread_evenly_over_decades():
    space = {"lr": {"type": "loguniform", "low": 1e-6, "high": 1.0}}
    domain = to_ray(space_lib.parse_space(space), "random")["lr"]
    decades = np.floor(np.log10(domain.sample(size=6000, random_state=np.random.default_rng(1))))
    counts = np.bincount((decades + 6).astype(int), minlength=6)[:6]
    assert counts.min() > 800, counts  # about 1000 per decade; uniform would put ~5400 in the top one


def test_grid_search_runs_the_full_cartesian_product():
    space = {
        "lr": {"type": "grid", "values": [0.1, 0.01]},
        "batch_size": {"type": "choice", "values": [32, 64, 128]},
        "model": {"levels": {"type": "grid", "values": [1, 2]}},
        "seed": 7,
    }
    params = space_lib.parse_space(space)
    variants = [cfg for _, cfg in generate_variants(to_ray(params, "grid"))]
    points = {(v["lr"], v["batch_size"], v["model.levels"]) for v in variants}
    assert len(variants) == 12 and points == set(product([0.1, 0.01], [32, 64, 128], [1, 2]))
    assert all(v["seed"] == 7 for v in variants)


def test_random_search_samples_grid_entries_instead_of_expanding_them():
    params = space_lib.parse_space({"lr": {"type": "grid", "values": [0.1, 0.01]}})
    assert len(list(generate_variants(to_ray(params, "random")))) == 1
    assert len(list(generate_variants(to_ray(params, "basic")))) == 2


CONDITIONAL = {
    "model": {
        "name": {"type": "choice", "values": ["cnn_tcn", "cnn_bilstm"]},
        "num_layers": {"type": "randint", "low": 1, "high": 3, "when": {"model.name": "cnn_bilstm"}},
        "levels": {"type": "randint", "low": 1, "high": 4, "when": {"model.name": ["cnn_tcn"]}},
    },
}


def test_conditional_parameters_exist_only_when_their_condition_holds():
    params = space_lib.parse_space(CONDITIONAL)
    domains = to_ray(params, "random")
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        sampled = {name: d.sample(random_state=rng) for name, d in domains.items()}
        kept = space_lib.active(params, sampled)
        seen.add(kept["model.name"])
        assert ("model.num_layers" in kept) == (kept["model.name"] == "cnn_bilstm")
        assert ("model.levels" in kept) == (kept["model.name"] == "cnn_tcn")
    assert seen == {"cnn_tcn", "cnn_bilstm"}


def test_optuna_suggests_conditional_parameters_only_when_their_condition_holds():
    define = to_optuna(space_lib.parse_space(CONDITIONAL))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(50):
        trial = study.ask()
        sampled = define(trial)
        assert set(trial.params) == set(sampled)
        assert ("model.num_layers" in sampled) == (sampled["model.name"] == "cnn_bilstm")


def test_conditions_are_ordered_after_the_parameter_they_name():
    space = {
        "depth": {"type": "randint", "low": 1, "high": 2, "when": {"kind": "deep"}},
        "kind": {"type": "choice", "values": ["deep", "wide"]},
    }
    assert [p.name for p in space_lib.parse_space(space)] == ["kind", "depth"]


def test_nested_and_dotted_names_are_the_same_parameter():
    nested = space_lib.parse_space({"model": {"hidden": {"type": "choice", "values": [1, 2]}}})
    dotted = space_lib.parse_space({"model.hidden": {"type": "choice", "values": [1, 2]}})
    assert nested == dotted and nested[0].name == "model.hidden"


def test_apply_sets_dotted_names_inside_a_copy_of_the_nested_config():
    base = {"lr": 0.1, "model": {"name": "cnn_tcn", "hidden": 8}}
    config = space_lib.apply(base, {"lr": 0.5, "model.hidden": 32, "model.extra": 1})
    assert config == {"lr": 0.5, "model": {"name": "cnn_tcn", "hidden": 32, "extra": 1}}
    assert base["model"]["hidden"] == 8


def test_normal_through_optuna_keeps_its_mean_and_spread():
    define = to_optuna(space_lib.parse_space({"x": {"type": "normal", "mean": -2, "sd": 3}}))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    xs = [define(study.ask())["x"] for _ in range(2000)]
    assert math.isclose(np.mean(xs), -2, abs_tol=0.3) and math.isclose(np.std(xs), 3, rel_tol=0.1)


@pytest.mark.parametrize(
    "space, key",
    [
        ({"lr": {"type": "logarithmic", "low": 1, "high": 2}}, "space.lr.type"),
        ({"lr": {"type": "uniform", "low": 0.1, "high": 0.01}}, "space.lr"),
        ({"lr": {"type": "uniform", "low": 0.1, "high": 0.1}}, "space.lr"),
        ({"lr": {"type": "loguniform", "low": 0.0, "high": 0.1}}, "space.lr.low"),
        ({"lr": {"type": "loguniform", "low": 1e-3}}, "space.lr"),
        ({"lr": {"type": "uniform", "low": 0, "high": 1, "hihg": 2}}, "space.lr.hihg"),
        ({"lr": {"type": "uniform", "low": "a", "high": 1}}, "space.lr.low"),
        ({"bs": {"type": "choice", "values": []}}, "space.bs.values"),
        ({"bs": {"type": "grid", "values": 3}}, "space.bs.values"),
        ({"n": {"type": "randint", "low": 1.5, "high": 3}}, "space.n"),
        ({"n": {"type": "qrandint", "low": 1, "high": 9, "q": 0}}, "space.n.q"),
        ({"x": {"type": "normal", "mean": 0, "sd": 0}}, "space.x.sd"),
        ({"x": {"type": "choice", "values": [1], "when": {"nope": 1}}}, "space.x.when"),
    ],
)
def test_bad_spaces_name_the_key(space, key):
    with pytest.raises(ConfigError) as err:
        space_lib.parse_space(space)
    assert err.value.key == key
    assert "\n" not in str(err.value)


def test_grid_search_refuses_continuous_distributions():
    params = space_lib.parse_space({"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}})
    with pytest.raises(ConfigError, match="search=grid cannot take a loguniform") as err:
        to_ray(params, "grid")
    assert err.value.key == "space.lr"


def test_optuna_refuses_grid_entries():
    params = space_lib.parse_space({"bs": {"type": "grid", "values": [1, 2]}})
    with pytest.raises(ConfigError, match="search=optuna cannot take a grid") as err:
        to_optuna(params)
    assert err.value.key == "space.bs"


QLOG = {"type": "qloguniform", "low": 16, "high": 256, "q": 16}


def test_qloguniform_gives_integer_multiples_of_q_spread_over_decades():
    params = space_lib.parse_space({"bs": QLOG, "lr": {"type": "qloguniform", "low": 1e-4, "high": 1e-1, "q": 1e-4}})
    domains = to_ray(params, "random")
    rng = np.random.default_rng(0)
    ray_values = [space_lib.active(params, {n: d.sample(random_state=rng) for n, d in domains.items()}) for _ in range(400)]
    define = to_optuna(params)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    optuna_values = [define(study.ask()) for _ in range(400)]
    for values in (ray_values, optuna_values):
        sizes = [v["bs"] for v in values]
        assert all(type(s) is int and s % 16 == 0 and 16 <= s <= 256 for s in sizes)
        assert 0.35 < np.mean([s <= 64 for s in sizes]) < 0.65, "log-uniform: 16-64 weighs as 64-256 (uniform: 0.2)"
        lrs = [v["lr"] for v in values]
        assert all(isinstance(x, float) and 1e-4 <= x <= 1e-1 + 1e-12 for x in lrs)
        assert all(abs(x / 1e-4 - round(x / 1e-4)) < 1e-6 for x in lrs)


@pytest.mark.parametrize(
    "space, phrase",
    [
        ({"x": {**QLOG, "low": 0}}, "log bounds must be > 0"),
        ({"x": {**QLOG, "low": 17, "high": 30, "q": 16}}, "no multiple of q"),
    ],
)
def test_bad_qloguniform_names_the_key(space, phrase):
    with pytest.raises(ConfigError, match=phrase) as err:
        space_lib.parse_space(space)
    assert err.value.key.startswith("space.x")
