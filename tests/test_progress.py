"""What a real `python -m tuner` prints while it runs: on a pseudo-terminal, one status line
redrawn in place and a line per ended trial; on a pipe, plain lines with no control character;
Ray Tune's tables only with verbose=true. (An interrupted run's last line, the command that
resumes it, is checked in test_resume.py under each search.)"""

import fcntl
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyarrow.fs
import pytest
from ray.train._internal.storage import StorageContext
from ray.tune.execution.experiment_state import _ExperimentCheckpointManager
from ray.tune.utils.util import _atomic_save

from tests.conftest import ROOT
from tuner.run import STATE_UPLOAD_LOGGERS, not_a_temp_file_race, quiet_ray_output, silent_exit_in_finalizers

pytestmark = pytest.mark.integration

TINY_RUN = ["num_samples=4", "max_epochs=3", "data.num_train=240", "data.num_val=120", "data.num_test=120", "logger=none"]
ENDED_TRIAL = re.compile(r"^trial \w+ (completed|early_stopped) after \d epochs?: best val_acc 0\.\d+$")
STATUS = re.compile(r"\d\d:\d\d(, ~\d\d:\d\d left)? \| \d/4 trials done \(\d stopped early, 0 errored\), \d running, \d pending \| best val_acc")
RAY_OUTPUT = ("╭", "Trial status", "Configuration for experiment", "Checkpoint successfully created")


def on_terminal(args: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run `python -m tuner <args>` on a pseudo-terminal 110 columns wide: its exit code and
    everything it wrote, control characters included."""
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 110, 0, 0))
    run = subprocess.Popen([sys.executable, "-m", "tuner", *args], cwd=ROOT, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    written, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([master], [], [], 1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the run closed the terminal
                break
            if not chunk:
                break
            written += chunk
        elif run.poll() is not None:
            break
    os.close(master)
    return run.wait(timeout=60), written.decode()


def last_lines(text: str) -> list[str]:
    return [line.strip("\r") for line in text.strip().split("\n")[-5:]]


def check_ending(lines: list[str], folder) -> None:
    """The run ends with its take-away: leaderboard above, then the test figures, the model, the
    results folder and the report."""
    assert lines[-3].startswith("model: ") and lines[-2] == f"results: {folder}", lines
    assert lines[-1] == f"report: {folder}/report.html", lines


def test_a_terminal_shows_one_status_line_redrawn_in_place_and_a_line_per_trial(tmp_path):
    code, written = on_terminal([*TINY_RUN, f"storage={tmp_path}"])
    assert code == 0, written[-3000:]
    (folder,) = tmp_path.iterdir()
    redrawn = [part for line in written.split("\n") for part in line.split("\r") if STATUS.search(part)]
    assert len(set(redrawn)) >= 3, "the status line changes as the run goes"
    assert sum(line.count("\r") > 1 for line in written.split("\n")) >= 1, "redrawn in place, not line after line"
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in written.split("\n")]  # what stays on screen
    assert sum(bool(ENDED_TRIAL.match(line)) for line in lines) == 4, written
    assert not any(text in written for text in RAY_OUTPUT), written
    assert "Leaderboard of cnn_tcn-optuna (val_acc, max):" in written
    check_ending(last_lines(written.replace("\x1b[0m", "")), folder)
    assert len(written.split("\n")) < 30


def test_a_pipe_gets_plain_status_lines_and_no_control_character(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tuner", *TINY_RUN, "search=optuna", "progress_every=2", f"storage={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = tmp_path.iterdir()
    for stream in (done.stdout, done.stderr):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", stream), "no escape, carriage return or other control character"
    lines = done.stdout.strip().split("\n")
    assert sum(bool(STATUS.search(line)) for line in lines) >= 2, "a status line every 2 s, and the last one"
    assert STATUS.search(lines[lines.index("Leaderboard of cnn_tcn-optuna (val_acc, max):") - 2]), "the final status"
    assert sum(bool(ENDED_TRIAL.match(line)) for line in lines) == 4, done.stdout
    assert not any(text in done.stdout + done.stderr for text in (*RAY_OUTPUT, "A new study created")), "nor Optuna's log"
    check_ending(last_lines(done.stdout), folder)
    assert len(lines) + len(done.stderr.strip().split("\n")) < 40


def test_verbose_brings_ray_tunes_tables_and_worker_lines_back(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tuner", *TINY_RUN, "num_samples=1", "max_epochs=1", "verbose=true", f"storage={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Configuration for experiment" in done.stdout and "Trial status" in done.stdout
    assert "Checkpoint successfully created" in done.stdout + done.stderr
    assert not any(ENDED_TRIAL.match(line) for line in done.stdout.split("\n")), "tuner's own lines give way"



class Finalized:
    """An object whose finalizer raises, as a trial's process does when Ray's SIGTERM lands there."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error


def test_a_trial_process_stopped_in_a_finalizer_prints_no_traceback(monkeypatch, capsys):
    monkeypatch.setattr(sys, "unraisablehook", silent_exit_in_finalizers)
    Finalized(SystemExit(1))
    assert capsys.readouterr().err == ""
    Finalized(ValueError("a real error"))
    printed = capsys.readouterr().err
    assert "Exception ignored in" in printed and "ValueError: a real error" in printed


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("forced", [True, False], ids=["forced", "periodic"])
def test_rays_upload_failing_on_its_own_temporary_file_prints_nothing_and_the_last_upload_is_whole(forced, monkeypatch, tmp_path):
    """Ray's own upload of its staging folder, racing Ray's own save of the next state under a
    temporary name (a traceback a busy CI run printed): the failure is real, tuner's filter
    drops exactly its report, and the forced, waited upload that ends a run copies every file."""
    for variable in ("RAY_AIR_NEW_OUTPUT", "TUNE_PRINT_ALL_TRIAL_ERRORS", "RAY_COLOR_PREFIX"):
        monkeypatch.setenv(variable, "")  # restored afterwards; quiet_ray_output sets them
    quiet_ray_output(verbose=True)  # Ray's reports unfiltered (a run in this process may have filtered them)
    reports: list[logging.LogRecord] = []
    keep = logging.Handler()
    keep.emit = reports.append
    # The staging folder is named by the second and the run: each test its own run.
    storage = StorageContext(storage_path=str(tmp_path / "results"), experiment_dir_name=tmp_path.name)
    snapshots = _ExperimentCheckpointManager(storage=storage, checkpoint_period=0)
    staging = Path(storage.experiment_driver_staging_path)
    staging.mkdir(parents=True)
    for trial in range(100):
        (staging / f"trial-{trial}.json").write_text("{}" * 500)

    def save() -> None:
        _atomic_save({"history": list(range(300_000))}, str(staging), "searcher-state.pkl", "tmp-searcher-state.pkl")

    for name in STATE_UPLOAD_LOGGERS:
        logging.getLogger(name).addHandler(keep)
    try:
        deadline = time.monotonic() + 60
        while not reports and time.monotonic() < deadline:
            snapshots.sync_up_experiment_state(save, force=forced)
        levels = {report.levelname for report in reports}
        snapshots.sync_up_experiment_state(save, force=True, wait=True)  # as Ray ends a run
    finally:
        for name in STATE_UPLOAD_LOGGERS:
            logging.getLogger(name).removeHandler(keep)

    assert reports, "the upload raced the temporary file within 60 s"
    assert levels == ({"ERROR"} if forced else {"WARNING"})
    assert not any(not_a_temp_file_race(report) for report in reports), [report.getMessage()[:300] for report in reports]
    stored = tmp_path / "results" / tmp_path.name
    assert {path.name for path in staging.iterdir()} <= {path.name for path in stored.iterdir()}
    assert (stored / "searcher-state.pkl").read_bytes() == (staging / "searcher-state.pkl").read_bytes()

    assert logging.getLogger(reports[0].name).filter(reports[0]), "verbose shows Ray's own report"
    quiet_ray_output(verbose=False)
    assert not logging.getLogger(reports[0].name).filter(reports[0])


def test_a_missing_file_that_is_not_rays_temporary_one_is_still_reported(tmp_path):
    with pytest.raises(FileNotFoundError) as missing:
        pyarrow.fs.copy_files(str(tmp_path / "results" / "trial-1.json"), str(tmp_path / "copy.json"))
    report = logging.makeLogRecord({"msg": "Saving experiment state failed", "exc_info": (FileNotFoundError, missing.value, None)})
    assert not_a_temp_file_race(report)
    report = logging.makeLogRecord({"msg": f"Last sync command failed with the following error:\nFileNotFoundError: {missing.value}"})
    assert not_a_temp_file_race(report)
