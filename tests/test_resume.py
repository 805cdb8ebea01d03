"""Interrupt a real `python -m tuner` (Ctrl-C or SIGKILL) and resume it: nothing redone, nothing
lost, in the results and in W&B (the default logger=wandb, offline without a login); with results
in a folder, and in a bucket on a real S3 API server."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs as pafs
import pytest
import ray.cloudpickle

from tests.helpers import wandb_runs
from tests.conftest import NO_DATA, ROOT, compose_config
from tuner import storage as store
from tuner.pipeline import tune_from_config
from tuner.stopping import read_stops
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

RUN = ["search=fifo", "num_samples=4", "max_epochs=6", "name=resumable", "data.num_train=1200"]


@pytest.fixture(params=["folder", "bucket"])
def storage(request, tmp_path) -> str:
    """Where the run keeps its results: a folder, or a prefix in a new bucket."""
    return str(tmp_path) if request.param == "folder" else request.getfixturevalue("bucket")


def start_run(storage: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *RUN, f"storage={storage}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def read(location: str) -> str | None:
    """The text of a file in a folder or a bucket, None when it is not (yet) there."""
    fs, path = store.filesystem(location)
    try:
        with fs.open_input_stream(path) as source:
            return source.read().decode()
    except FileNotFoundError:
        return None


def files(location: str, suffix: str) -> list[str]:
    fs, path = store.filesystem(location)
    found = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return [store.join(location, f.base_name) for f in found if f.base_name.endswith(suffix)]


def epochs_done(results: str) -> dict[str, list[int]]:
    """The epochs in each trial's progress.csv, as far as it has been written."""
    done = {}
    for trial in store.list_folders(results):
        progress = read(store.join(trial, "progress.csv"))
        if progress:
            done[store.name(trial)] = pd.read_csv(io.StringIO(progress)).epoch.tolist()
    return done


def wait_for(condition: Callable[[], Any], run: subprocess.Popen, what: str, timeout: float = 240) -> Any:
    """Poll ``condition`` until it returns something (returned); fail at once if the run ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        if run.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{run.communicate()[0][-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"the run never reached {what} in {timeout:.0f} s")


def one_finished_and_one_started(storage: str) -> str | None:
    """The results folder once one trial has all its epochs and another is part-way."""
    for results in store.list_folders(storage):
        done = sorted(len(epochs) for epochs in epochs_done(results).values())
        if done and done[-1] == 6 and any(2 <= n <= 4 for n in done):  # not about to finish
            return results
    return None


def saved_states(results: str) -> dict[str, tuple[str, int]]:
    """Each trial's status and the epoch of its last checkpoint in Ray's newest saved experiment
    state ({} until there is one): a resumed trial goes on after that epoch. (Not its last result's
    epoch: Ray registers the checkpoint reported with a result after the result, so a Ctrl-C in
    between leaves the last result one epoch ahead, and that epoch is trained again.)"""
    states = sorted(s for s in files(results, ".json") if store.name(s).startswith("experiment_state-"))
    if not states:
        return {}
    try:
        trials = [(json.loads(t), json.loads(m)) for t, m in json.loads(read(states[-1]) or "{}").get("trial_data", [])]
    except json.JSONDecodeError:  # caught mid-write: read it again
        return {}
    return {t["trial_id"]: (t["status"], checkpoint_epoch(m)) for t, m in trials}


def checkpoint_epoch(run_metadata: dict) -> int:
    """The epoch of the last checkpoint Ray registered for a trial (0: none), from the trial's
    checkpoint manager as Ray pickles it into its saved state."""
    manager = ray.cloudpickle.loads(bytes.fromhex(run_metadata["checkpoint_manager"]["value"]))
    latest = manager.latest_checkpoint_result
    return latest.metrics["epoch"] if latest else 0


def finished_and_part_way_saved(results: str) -> bool:
    """Whether Ray's saved experiment state holds a finished trial and one part-way that is not
    about to finish (the state it saves later may have moved on from what progress.csv showed)."""
    saved = saved_states(results).values()
    return any(s == "TERMINATED" for s, _ in saved) and any(s != "TERMINATED" and 0 < e <= 4 for s, e in saved)


def csv(location: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(read(location)))


def local_copy(results: str, tmp_path: Path) -> Path:
    """The results folder itself, or a copy of a bucket's (W&B's files included), as a user
    would download it to run `wandb sync`."""
    if not store.is_uri(results):
        return Path(results)
    fs, path = store.filesystem(results)
    local = tmp_path / store.name(results)
    pafs.copy_files(path, str(local), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    return local


def check_resumed(results: str, before: dict[str, list[int]], lossless: bool, tmp_path: Path) -> dict:
    """Exactly num_samples trials, all complete, finished ones untouched, the rest continued from
    their checkpoints (a restored trial's iterations count again from 1, its epochs do not).

    `before` holds the epochs each trial's progress.csv had when the run stopped. A trial Ray's
    saved state calls terminated is not rerun; the others go on after the epoch of their last
    saved checkpoint (a killed driver's progress.csv can be ahead of its saved state). Not lossless:
    a SIGKILL can cut the driver's upload to a bucket short, so epochs it never uploaded before
    a trial's last checkpoint may be missing; everything uploaded is kept, everything after the
    checkpoint is there.

    In W&B, one run per trial (its id the run's folder name and the trial id) holds each epoch
    once and ends with the trial's status, in files `wandb sync` reads. Returns the trial runs
    by trial id (read from what a killed driver left too: whole records, no exit record)."""
    saved = saved_states(results)
    summary = tune_from_config(compose_config(f"resume={results}"))
    assert summary["num_trials"] == 4 and summary["status_counts"] == {"completed": 4}
    assert summary["results_dir"] == results and not summary["interrupted"]
    history = csv(store.join(results, "history.csv"))
    assert history.trial_id.nunique() == 4
    for trial_id, group in history.groupby("trial_id"):
        epochs = group.epoch.tolist()
        progress = csv(store.join(results, trial_id, "progress.csv"))
        restarts = progress.loc[progress.iterations_since_restore == 1, "epoch"].tolist()
        if lossless:
            assert epochs == [1, 2, 3, 4, 5, 6], trial_id
        else:
            assert set(before.get(trial_id, [])) <= set(epochs), f"{trial_id} kept what was uploaded"
            assert epochs == sorted(set(epochs)), trial_id
            assert set(range(restarts[-1], 7)) <= set(epochs), f"{trial_id} ran on to the end"
        status, saved_epoch = saved.get(trial_id, ("PENDING", 0))
        if status == "TERMINATED":
            assert restarts == [1], f"{trial_id} finished before the interrupt: not rerun"
        elif saved_epoch:
            assert restarts[-1] == saved_epoch + 1, f"{trial_id} continued from its checkpoint"
    statuses = [status for status, _ in saved.values()]
    assert "TERMINATED" in statuses, "a trial had finished when the run stopped"
    assert any(0 < epoch < 6 for _, epoch in saved.values()), "a trial was part-way when the run stopped"
    folder = local_copy(results, tmp_path)
    runs = wandb_runs.check_runs_match_the_folder(folder, unfinished=not lossless, lossy=not lossless)
    offline = wandb_runs.offline_runs(folder, unfinished=not lossless)
    files = {f.resolve() for run in offline.values() for f in run.files}
    assert wandb_runs.sync_would_upload(folder) == files, "every file there is one `wandb sync` can read"
    assert {run.record.run_id for run in runs.values()} == {f"{folder.name}-{trial_id}" for trial_id in runs}
    return runs


def test_ctrl_c_saves_state_prints_the_resume_command_and_resume_finishes_the_run(
    storage, wandb_without_login, tmp_path
):
    run = start_run(storage, wandb_without_login)
    results = wait_for(lambda: one_finished_and_one_started(storage), run, "a finished and a part-way trial")
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    before = epochs_done(results)
    assert run.returncode == 0, output
    assert f"interrupted: resume with  python -m tuner resume={results}" in output
    assert f"W&B: offline runs in {store.join(results, 'wandb')}" in output, "logger=wandb mode=auto: offline"
    trials = csv(store.join(results, "trials.csv"))
    assert "unfinished" in set(trials.status) and "completed" in set(trials.status)
    unfinished = set(trials.trial_id[trials.status == "unfinished"])
    runs = check_resumed(results, before, lossless=True, tmp_path=tmp_path)
    for trial_id in unfinished & {t for t, epochs in before.items() if len(epochs) >= 2}:
        assert runs[trial_id].exit_codes == [1, 0], "closed unfinished at Ctrl-C, continued, completed"


def test_a_killed_driver_resumes_from_the_last_saved_state(storage, wandb_without_login, tmp_path):
    run = start_run(storage, wandb_without_login)
    results = wait_for(lambda: one_finished_and_one_started(storage), run, "a finished and a part-way trial")
    wait_for(lambda: finished_and_part_way_saved(results), run, "a saved state with both", timeout=120)
    run.kill()
    run.communicate(timeout=60)
    before = epochs_done(results)
    assert read(store.join(results, "trials.csv")) is None, "SIGKILL left no chance to write results"
    assert read(store.join(results, "config.yaml")) is not None, "the config to resume with was saved at the start"
    check_resumed(results, before, lossless=False, tmp_path=tmp_path)


def test_resume_of_a_folder_without_a_run_is_one_error_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tuner", f"resume={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith(f"error: resume: no run to resume at {tmp_path}")


SEARCHES = {
    "optuna": ["search=optuna"],  # the default: TPE with the prior, under ASHA
    "median": ["search=median", "search.scheduler.min_samples_required=2"],
    "pbt": ["search=pbt", "search.scheduler.perturbation_interval=1", "search.scheduler.quantile_fraction=0.5"],
    "pb2": ["search=pb2", "search.scheduler.perturbation_interval=1", "search.scheduler.quantile_fraction=0.5"],
    "budget": ["search=fifo", "budget.epochs=18"],  # 4 trials x 6 epochs would be 24
}


def progress_rows(results: Path) -> dict[str, pd.DataFrame]:
    return {trial.name: pd.read_csv(trial / "progress.csv") for trial in results.iterdir() if (trial / "progress.csv").is_file()}


def epochs_per_trial(storage: Path) -> list[int]:
    """How many epochs each trial's progress.csv holds so far, over the runs in ``storage``."""
    return [len(epochs) for results in store.list_folders(str(storage)) for epochs in epochs_done(results).values()]


def interrupt(overrides: list[str], storage: Path, condition: Callable[[], bool], what: str) -> Path:
    """Start `python -m tuner` with results in ``storage``, press Ctrl-C once ``condition`` holds,
    and check the interrupted run's output: tuner's words, no traceback, and the resume command as
    its last line. Returns the run's results folder."""
    run = subprocess.Popen(
        [sys.executable, "-m", "tuner", *overrides, f"storage={storage}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ray saves its state (and progress.csv with it) often, so the interrupt comes part-way:
        # under PBT, which keeps every checkpoint, it would otherwise save about every 10 s.
        env=os.environ | {"TUNE_GLOBAL_CHECKPOINT_S": "0.5"},
    )
    wait_for(condition, run, what)
    run.send_signal(signal.SIGINT)
    output, errors = run.communicate(timeout=120)
    assert run.returncode == 0 and "Traceback" not in errors, errors[-3000:]
    assert "Ctrl-C: stopping" in errors and "Tuner.restore" not in errors, "tuner's words, not Ray's"
    (results,) = storage.iterdir()
    assert output.strip().split("\n")[-1] == f"interrupted: resume with  python -m tuner resume={results}", output
    return results


@pytest.mark.parametrize("search", SEARCHES)
def test_ctrl_c_then_resume_continues_each_search_and_budget(search, tmp_path):
    """The interrupted run's last line is the command that resumes it. Searcher, scheduler and
    budget go on where the run stopped: num_samples trials in all, finished ones not rerun,
    part-way ones continued from a checkpoint (PBT's may be another trial's), and budget.epochs
    counts the epochs trained before the interrupt."""
    def part_way() -> bool:
        done = epochs_per_trial(tmp_path)
        return sum(done) >= 5 and any(2 <= n <= 4 for n in done)

    overrides = [*RUN[1:], *SEARCHES[search], "logger=none"]
    results = interrupt(overrides, tmp_path, part_way, "five epochs, one trial part-way")
    saved, before = saved_states(str(results)), progress_rows(results)
    params = {trial.name: (trial / "params.json").read_text() for trial in results.iterdir() if (trial / "params.json").is_file()}
    assert any(status != "TERMINATED" and 0 < epoch < 6 for status, epoch in saved.values()), "stopped part-way"

    summary = tune_from_config(compose_config(f"resume={results}"))
    assert summary["num_trials"] == 4 and not summary["interrupted"]
    after = progress_rows(results)
    for trial_id, status_epoch in saved.items():
        status, epoch = status_epoch
        old, new = before.get(trial_id), after.get(trial_id)
        if new is None:
            # The budget can end the run before a trial reports: one not started, or just started.
            assert search == "budget" and status in ("PENDING", "RUNNING") and epoch == 0, f"{trial_id} never ran"
            continue
        if old is not None:
            pd.testing.assert_frame_equal(new.head(len(old)), old, obj=f"{trial_id}'s rows before the interrupt")
            if search not in ("pbt", "pb2"):  # PBT changes a trial's config when it exploits another
                assert (results / trial_id / "params.json").read_text() == params[trial_id], trial_id
        resumed = new.iloc[0 if old is None else len(old):]
        if status == "TERMINATED":
            assert resumed.empty, f"{trial_id} finished before the interrupt: not rerun"
        elif not resumed.empty:  # part-way, or not started: it goes on after its checkpoint, if any
            first = resumed.iloc[0]
            assert first.iterations_since_restore == 1, f"{trial_id} was restored"
            if search in ("pbt", "pb2"):
                assert not epoch or first.epoch > 1, f"{trial_id} continued from a checkpoint, its own or another trial's"
            else:
                assert first.epoch == epoch + 1, f"{trial_id} continued after its checkpoint: saved {saved}, rows {new[['epoch', 'iterations_since_restore']].values.tolist()}, before {0 if old is None else len(old)}"
    trained = sum(len(rows) for rows in after.values())
    if search == "budget":
        stops = read_stops(results)
        assert stops["run"].startswith("budget.epochs: the run trained "), stops
        assert 18 <= trained <= 18 + 2, f"the budget counts the {sum(map(len, before.values()))} epochs before the interrupt"
    else:
        assert set(summary["status_counts"]) <= {"completed", "early_stopped"}, summary["status_counts"]


def test_a_trial_without_checkpoints_starts_over_after_the_rows_it_had(tmp_path):
    """A trainable that saves no checkpoint (or a trial interrupted before Ray registered its
    first) trains again from epoch 1 on resume; its progress.csv keeps the rows it had, and its
    history holds each epoch once."""
    overrides = [
        "trainable=tests.helpers.user_trainables.plateau", *NO_DATA, "metric=score", "logger=none",
        "search=fifo", "num_samples=2", "max_epochs=6", "~space", "+space={peak: {type: choice, values: [2, 3]}}",
        "+train.peak=2", "+train.sleep_s=0.5", "name=uncheckpointed",
    ]

    def both_part_way() -> bool:
        done = epochs_per_trial(tmp_path)
        return len(done) == 2 and min(done) >= 2

    results = interrupt(overrides, tmp_path, both_part_way, "two trials part-way")
    assert list(saved_states(str(results)).values()) == [("RUNNING", 0)] * 2, "both running, no checkpoint"
    before = progress_rows(results)

    summary = tune_from_config(compose_config(*overrides, f"resume={results}"))
    assert summary["status_counts"] == {"completed": 2}
    after, history = progress_rows(results), pd.read_csv(results / "history.csv", dtype=TRIAL_ID_DTYPE)
    for trial_id, old in before.items():
        assert 2 <= len(old) < 6, f"{trial_id} was part-way"
        new = after[trial_id]
        pd.testing.assert_frame_equal(new.head(len(old)), old, obj=f"{trial_id}'s rows before the interrupt")
        again = new.iloc[len(old):]
        assert again.epoch.tolist() == [1, 2, 3, 4, 5, 6] and again.iterations_since_restore.tolist() == [1, 2, 3, 4, 5, 6]
        assert history[history.trial_id == trial_id].epoch.tolist() == [1, 2, 3, 4, 5, 6]
