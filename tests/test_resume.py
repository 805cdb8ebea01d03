"""Interrupt a real `python -m tuner` (Ctrl-C or SIGKILL) and resume it: nothing redone, nothing lost."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, compose_config
from tuner.main import tune_from_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

RUN = ["search=fifo", "num_samples=4", "max_epochs=6", "name=resumable", "data.num_train=1200"]


def start_run(storage: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *RUN, f"storage={storage}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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


def check_resumed(results_dir: Path, before: dict[str, int]) -> None:
    """Exactly num_samples trials, all complete, finished ones untouched, the rest continued."""
    summary = tune_from_config(compose_config(f"resume={results_dir}"))
    assert summary["num_trials"] == 4 and summary["status_counts"] == {"completed": 4}
    assert summary["results_dir"] == str(results_dir) and not summary["interrupted"]
    history = history_of(results_dir)
    for trial_id, group in history.groupby("trial_id"):
        assert group.epoch.tolist() == [1, 2, 3, 4, 5, 6], trial_id
        progress = pd.read_csv(results_dir / trial_id / "progress.csv")
        restarts = progress.loc[progress.iterations_since_restore == 1, "epoch"].tolist()
        if before.get(trial_id) == 6:
            assert restarts == [1], f"{trial_id} finished before the interrupt: not rerun"
        elif before.get(trial_id, 0) >= 2:
            assert len(restarts) == 2 and restarts[1] > 1, f"{trial_id} continued from a checkpoint"


def test_ctrl_c_saves_state_prints_the_resume_command_and_resume_finishes_the_run(tmp_path):
    run = start_run(tmp_path)
    results_dir = wait_for_one_finished_and_one_started(tmp_path)
    before = epochs_done(results_dir)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output
    assert f"interrupted: resume with  python -m tuner resume={results_dir}" in output
    trials = pd.read_csv(results_dir / "trials.csv")
    assert "unfinished" in set(trials.status) and "completed" in set(trials.status)
    check_resumed(results_dir, before)


def test_a_killed_driver_resumes_from_the_last_saved_state(tmp_path):
    run = start_run(tmp_path)
    results_dir = wait_for_one_finished_and_one_started(tmp_path)
    wait_for_saved_state(results_dir, finished=1)
    before = epochs_done(results_dir)
    run.kill()
    run.communicate(timeout=60)
    assert not (results_dir / "trials.csv").exists(), "SIGKILL left no chance to write results"
    check_resumed(results_dir, before)


def test_resume_of_a_folder_without_a_run_is_one_error_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tuner", f"resume={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith(f"error: resume: no run to resume at {tmp_path}")
