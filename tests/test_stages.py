"""Two-stage search: stage one screens on a short budget, stage two trains its top-k with seeds."""

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, TINY, compose_config
from tuner import ConfigError
from tuner.pipeline import tune_from_config
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

TWO_STAGES = [
    "stages=screen_then_train", "num_samples=5", "max_epochs=3", "stages.screen_epochs=1",
    "stages.top_k=2", "stages.seeds=2", "seed=7", "logger=none",
]
PARAMS = ["lr", "weight_decay", "dropout", "batch_size", "model.channels", "model.levels"]


@pytest.fixture(scope="module")
def two_stage_run(tmp_path_factory, local_ray):
    folder = tmp_path_factory.mktemp("stages") / "run"
    summary = tune_from_config(compose_config(*TINY, *TWO_STAGES), folder)
    return folder, summary


@pytest.mark.parametrize("search", [
    ["search=median", "search.scheduler.min_samples_required=2"],
    ["search=pbt", "search.scheduler.perturbation_interval=1", "search.scheduler.quantile_fraction=0.5"],
    ["search=pb2", "search.scheduler.perturbation_interval=1", "search.scheduler.quantile_fraction=0.5"],
], ids=["median", "pbt", "pb2"])
def test_a_new_scheduler_screens_stage_one_and_stage_two_trains_its_top_configs(search, tmp_path):
    two_stages = [*TINY, "stages=screen_then_train", "num_samples=4", "max_epochs=2", "stages.screen_epochs=2",
                  "stages.top_k=2", "stages.seeds=1", "logger=none", *search]
    summary = tune_from_config(compose_config(*two_stages), tmp_path / "run")
    screen = pd.read_csv(tmp_path / "run" / "screen" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    trained = pd.read_csv(tmp_path / "run" / "train" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert yaml.safe_load((tmp_path / "run" / "screen" / "config.yaml").read_text())["search"]["name"] == search[0].split("=")[1]
    assert len(screen) == 4 and len(trained) == 2 and (trained.status == "completed").all()
    assert len(pd.read_csv(tmp_path / "run" / "ranking.csv")) == 2 and not summary["interrupted"]


def test_stage_one_screens_every_sample_on_the_short_budget(two_stage_run):
    folder, _ = two_stage_run
    screen = pd.read_csv(folder / "screen" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert len(screen) == 5 and (screen.epochs == 1).all()
    assert yaml.safe_load((folder / "screen" / "config.yaml").read_text())["max_epochs"] == 1


def test_stage_two_retrains_the_top_k_fully_with_different_seeds(two_stage_run):
    folder, _ = two_stage_run
    screen = pd.read_csv(folder / "screen" / "trials.csv", dtype=TRIAL_ID_DTYPE).sort_values("best_val_acc", ascending=False)
    top = screen.drop_duplicates(PARAMS).head(2)
    train = pd.read_csv(folder / "train" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert len(train) == 4 and (train.epochs == 3).all() and (train.status == "completed").all()
    for candidate in range(2):
        runs = train[train.candidate == candidate]
        assert sorted(runs.seed) == [7, 8], "each candidate once per seed"
        assert (runs[PARAMS] == top.iloc[candidate][PARAMS].to_numpy()).all().all(), "stage one's values"
    history = pd.read_csv(folder / "train" / "history.csv", dtype=TRIAL_ID_DTYPE).merge(train[["trial_id", "candidate", "seed"]])
    first = history[history.candidate == 0].pivot(index="epoch", columns="seed", values="train_loss")
    assert (first[7] != first[8]).any(), "different seeds train differently"


def test_ranking_is_the_mean_and_std_over_seeds_and_its_winner_is_best_config(two_stage_run):
    folder, summary = two_stage_run
    train = pd.read_csv(folder / "train" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    ranking = pd.read_csv(folder / "ranking.csv", dtype=TRIAL_ID_DTYPE)
    assert list(ranking["rank"]) == [1, 2] and ranking.mean_val_acc.is_monotonic_decreasing
    for row in ranking.itertuples():
        values = train.loc[train.candidate == row.candidate, "best_val_acc"]
        assert row.mean_val_acc == pytest.approx(values.mean())
        assert row.std_val_acc == pytest.approx(values.std(ddof=0)) and row.seeds == 2
    winner = ranking.iloc[0]
    best = yaml.safe_load((folder / "best_config.yaml").read_text())
    assert best["stages"]["kind"] == "single" and best["max_epochs"] == 3 and best["num_samples"] == 1
    for name in PARAMS:
        assert best["space"][name] == pytest.approx(winner[name])
    assert summary["best_trial"]["val_acc"] == pytest.approx(winner.mean_val_acc)
    assert summary["stages"] == "screen_then_train" and summary["num_trials"] == 9
    assert not summary["interrupted"] and sum(summary["status_counts"].values()) == 9


def test_each_seed_of_the_winner_is_scored_on_the_test_split_and_the_best_seed_exported(two_stage_run):
    folder, summary = two_stage_run
    train = pd.read_csv(folder / "train" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    seeds = train[train.candidate == summary["best_trial"]["candidate"]]
    test = summary["test"]
    assert sorted((s["trial_id"], s["seed"]) for s in test["seeds"]) == sorted(zip(seeds.trial_id, seeds.seed))
    assert test["trial_id"] == summary["model"]["trial_id"] == summary["best_trial"]["trial_id"]
    assert test["accuracy"] == next(s["accuracy"] for s in test["seeds"] if s["trial_id"] == test["trial_id"])
    matrix = pd.read_csv(folder / "confusion_matrix.csv", dtype=TRIAL_ID_DTYPE)
    assert sorted(set(matrix.trial_id)) == sorted(seeds.trial_id)
    for seed in test["seeds"]:
        counts = matrix[matrix.trial_id == seed["trial_id"]].drop(columns=["trial_id", "true"]).values
        assert counts.trace() / counts.sum() == pytest.approx(seed["accuracy"])
    assert (folder / "model.pt2").is_file() and not (folder / "train" / "model.pt2").exists()


BAD_STAGES = [
    (["stages.top_k=0"], "stages.top_k"),
    (["stages.seeds=two"], "stages.seeds"),
    (["stages.screen_epochs=5", "max_epochs=3"], "stages.screen_epochs"),
    (["+space.seed={type: choice, values: [1, 2]}"], "space.seed"),
    (["stages.kind=three_stages"], "stages.kind"),
]


@pytest.mark.parametrize("overrides, key", BAD_STAGES, ids=[k for _, k in BAD_STAGES])
def test_bad_stage_settings_are_refused_before_anything_is_written(overrides, key, tmp_path):
    with pytest.raises(ConfigError) as err:
        cfg = compose_config(*TINY, "stages=screen_then_train", "stages.screen_epochs=1", *overrides)
        tune_from_config(cfg, tmp_path / "run")
    assert err.value.key == key and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ctrl_c_in_stage_two_then_resume_keeps_stage_one_and_finishes_stage_two(tmp_path):
    run = subprocess.Popen(
        [sys.executable, "-m", "tuner", "stages=screen_then_train", "num_samples=3", "max_epochs=6",
         "stages.screen_epochs=1", "stages.top_k=2", "stages.seeds=2", "search=fifo",
         "data.num_train=1200", "logger=none", "name=staged", f"storage={tmp_path}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(
        len(p.read_text().splitlines()) >= 3 for p in tmp_path.glob("staged-*/train/*/progress.csv")
    ):
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    [folder] = tmp_path.glob("staged-*")
    assert f"interrupted: resume with  python -m tuner resume={folder}" in output, output[-3000:]
    screen_files = {name: digest(folder / "screen" / name) for name in ("trials.csv", "history.csv")}
    summary = tune_from_config(compose_config(f"resume={folder}"))
    assert not summary["interrupted"] and summary["num_trials"] == 3 + 4
    assert {name: digest(folder / "screen" / name) for name in screen_files} == screen_files
    train = pd.read_csv(folder / "train" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert len(train) == 4 and (train.epochs == 6).all() and (train.status == "completed").all()
    assert pd.read_csv(folder / "ranking.csv", dtype=TRIAL_ID_DTYPE).seeds.tolist() == [2, 2]
