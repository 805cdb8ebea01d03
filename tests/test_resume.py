"""Interrupt a real `python -m tuner` (Ctrl-C or SIGKILL) and resume it: nothing redone, nothing
lost, in the results folder and in W&B (the default logger=wandb, offline without a login)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests import wandb_runs
from tests.conftest import ROOT, compose_config
from tuner.main import tune_from_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

RUN = ["search=fifo", "num_samples=4", "max_epochs=6", "name=resumable", "data.num_train=1200"]


def start_run(storage: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *RUN, f"storage={storage}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def epochs_done(results_dir: Path) -> dict[str, int]:
    counts = {}
    for progress in results_dir.glob("*/progress.csv"):
        counts[progress.parent.name] = max(0, len(progress.read_text().splitlines()) - 1)
    return counts


def wait_for_one_finished_and_one_started(storage: Path, timeout: float = 240) -> Path:
    """Block until one trial has all its epochs and another is part-way with a checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for results_dir in storage.glob("resumable-*"):
            done = sorted(epochs_done(results_dir).values())
            if done and done[-1] == 6 and any(2 <= n < 6 for n in done):
                return results_dir
        time.sleep(0.2)
    raise AssertionError("the run never reached a finished and an unfinished trial")


def wait_for_saved_state(results_dir: Path, finished: int, timeout: float = 120) -> None:
    """Block until Ray's saved experiment state counts `finished` terminated trials."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for state in results_dir.glob("experiment_state-*.json"):
            try:
                trials = [json.loads(t[0]) for t in json.loads(state.read_text())["trial_data"]]
            except json.JSONDecodeError:  # caught mid-write: read it again
                continue
            if sum(t.get("status") == "TERMINATED" for t in trials) >= finished:
                return
        time.sleep(0.2)
    raise AssertionError("Ray never saved a finished trial")


def history_of(results_dir: Path) -> pd.DataFrame:
    return pd.read_csv(results_dir / "history.csv")


def check_resumed(results_dir: Path, before: dict[str, int], unfinished: bool = False) -> dict:
    """Exactly num_samples trials, all complete, finished ones untouched, the rest continued;
    in W&B one run per trial holding each epoch once. Returns the W&B trial runs by trial id
    (``unfinished``: a killed driver may have left W&B files without their exit record)."""
    summary = tune_from_config(compose_config(f"resume={results_dir}"))
    assert summary["num_trials"] == 4 and summary["status_counts"] == {"completed": 4}
    assert summary["results_dir"] == str(results_dir) and not summary["interrupted"]
    history = history_of(results_dir)
    finished = {trial_id for trial_id, epochs in before.items() if epochs == 6}
    continued = {trial_id for trial_id, epochs in before.items() if 2 <= epochs < 6}
    assert finished and continued, before
    assert set(history.trial_id) == set(pd.read_csv(results_dir / "trials.csv").trial_id) >= finished | continued
    for trial_id, group in history.groupby("trial_id"):
        assert group.epoch.tolist() == [1, 2, 3, 4, 5, 6], trial_id
        progress = pd.read_csv(results_dir / trial_id / "progress.csv")
        restarts = progress.loc[progress.iterations_since_restore == 1, "epoch"].tolist()
        if trial_id in finished:
            assert restarts == [1], f"{trial_id} finished before the interrupt: not rerun"
        elif trial_id in continued:
            assert len(restarts) == 2 and restarts[1] > 1, f"{trial_id} continued from a checkpoint"
    runs = wandb_runs.check_runs_match_the_folder(results_dir, unfinished)
    files = {f.resolve() for run in wandb_runs.offline_runs(results_dir, unfinished).values() for f in run.files}
    assert wandb_runs.sync_would_upload(results_dir) == files, "every file there is one `wandb sync` can read"
    for trial_id in continued:
        assert runs[trial_id].record.run_id == f"{results_dir.name}-{trial_id}"
    return runs


def test_ctrl_c_saves_state_prints_the_resume_command_and_resume_finishes_the_run(tmp_path, wandb_without_login):
    run = start_run(tmp_path, wandb_without_login)
    results_dir = wait_for_one_finished_and_one_started(tmp_path)
    before = epochs_done(results_dir)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output
    assert f"interrupted: resume with  python -m tuner resume={results_dir}" in output
    assert f"W&B: offline runs in {results_dir / 'wandb'}" in output, "logger=wandb mode=auto: offline"
    trials = pd.read_csv(results_dir / "trials.csv")
    assert "unfinished" in set(trials.status) and "completed" in set(trials.status)
    unfinished = set(trials.trial_id[trials.status == "unfinished"])
    runs = check_resumed(results_dir, before)
    for trial_id in unfinished & {t for t, epochs in before.items() if epochs >= 2}:
        assert runs[trial_id].exit_codes == [1, 0], "closed unfinished at Ctrl-C, continued, completed"


def test_a_killed_driver_resumes_from_the_last_saved_state(tmp_path, wandb_without_login):
    run = start_run(tmp_path, wandb_without_login)
    results_dir = wait_for_one_finished_and_one_started(tmp_path)
    wait_for_saved_state(results_dir, finished=1)
    before = epochs_done(results_dir)
    run.kill()
    run.communicate(timeout=60)
    assert not (results_dir / "trials.csv").exists(), "SIGKILL left no chance to write results"
    assert list(results_dir.glob("wandb/offline-run-*/*.wandb")), "W&B logged offline before the kill"
    check_resumed(results_dir, before, unfinished=True)


def test_resume_of_a_folder_without_a_run_is_one_error_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tuner", f"resume={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith(f"error: resume: no run to resume at {tmp_path}")
