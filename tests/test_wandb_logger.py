"""W&B logging: real tiny tuning runs logged offline, read back from W&B's own record files
(tests.helpers.wandb_runs reads them strictly, and is checked against W&B's own reader here)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import ray

from tests.helpers import wandb_runs
from tests.conftest import NO_DATA, compose_config
from tests.helpers.wandb_runs import IncompleteRunFile, read_records, table, trial_runs
from tuner import ConfigError
from tuner import wandb_logger, wandb_mode
from tuner.pipeline import tune_from_config
from tuner.spec import build_spec
from tuner.trials import TRIAL_ID_DTYPE

FAKE_KEY = "fakekey0" + "0123456789abcdef" * 2  # 40 characters, like a real W&B key
SCORED = [
    "trainable=tests.helpers.wandb_trainables.scored",
    *NO_DATA,
    "metric=score", "trial.max_failures=0", "logger=wandb", "logger.project=tuner-tests",
    "~space", "+space={x: {type: uniform, low: 0.0, high: 1.0}}", "+train.x=0.5",
]
# With seed 0 and one trial at a time, ASHA completes two trials and stops two after their first
# epoch; one trial fails (0.8 < x) and one diverges (0.9 < x) before they report.
LOGGED = [
    *SCORED, "search=asha", "search.max_concurrent=1", "num_samples=6", "max_epochs=4",
    "+train.fail_above=0.8", "+train.diverge_above=0.9",
    "logger.mode=offline", "logger.tags=[tiny,ci]", "logger.notes=a tiny run",
]


@pytest.fixture(scope="module")
def logged(local_ray, tmp_path_factory):
    """One tiny tuning run with logger=wandb offline and a fake API key in the environment."""
    root = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_API_KEY", FAKE_KEY)
        for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
            env.setenv(name, str(root / name.lower()))
        printed, warned = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(warned):
            summary = tune_from_config(compose_config(*LOGGED), root / "run")
    folder = Path(summary["results_dir"])
    runs = wandb_runs.offline_runs(folder)
    trials = pd.read_csv(folder / "trials.csv", keep_default_na=False, na_values=[""], dtype=TRIAL_ID_DTYPE)
    assert sorted(trial_runs(folder)) == sorted(trials.trial_id) and len(trials) == 6, "the tests below loop over them"
    return {
        "root": root,
        "folder": folder,
        "summary": summary,
        "trials": trials.set_index("trial_id"),
        "history": pd.read_csv(folder / "history.csv", dtype=TRIAL_ID_DTYPE),
        "printed": printed.getvalue(),
        "warned": warned.getvalue(),
        "runs": runs,
        "trial_runs": trial_runs(folder),
        "summary_runs": wandb_runs.by_job(runs, "summary"),
    }


@pytest.mark.integration
def test_every_trial_is_one_offline_run_in_the_tuning_runs_group(logged):
    trials, runs = logged["trials"], logged["trial_runs"]
    for trial_id, run in runs.items():
        record = run.record
        assert record.run_group == logged["folder"].name and record.project == "tuner-tests"
        assert list(record.tags) == ["tiny", "ci"] and record.notes == "a tiny run"
        assert record.display_name == f"{trial_id} x={trials.loc[trial_id, 'x']:.3g}"
        assert record.run_id == f"{logged['folder'].name}-{trial_id}", "the same id in any driver"
        assert [f.parent.parent.parent for f in run.files] == [logged["folder"]], "one file, in the results folder"


@pytest.mark.integration
def test_trial_config_is_the_sampled_params_and_the_fixed_settings_as_dotted_keys(logged):
    for trial_id, run in logged["trial_runs"].items():
        config = run.config
        assert config["x"] == pytest.approx(logged["trials"].loc[trial_id, "x"])
        assert config["max_epochs"] == 4 and config["fail_above"] == 0.8 and config["seed"] == 0
        assert config["model.name"] == "cnn_tcn" and "model" not in config


@pytest.mark.integration
def test_history_is_one_row_per_epoch_with_step_equal_to_epoch(logged):
    history = logged["history"]
    for trial_id, run in logged["trial_runs"].items():
        expected = history[history.trial_id == trial_id]
        assert run.steps == expected.epoch.tolist()
        assert [row["epoch"] for row in run.history] == expected.epoch.tolist()
        assert [row["score"] for row in run.history] == pytest.approx(expected.score.tolist())
        assert all("time_total_s" not in row and "config" not in row for row in run.history)
    assert sum(len(run.history) for run in logged["trial_runs"].values()) == len(history) > 0


@pytest.mark.integration
def test_summary_and_status_of_each_run_match_the_results_folder(logged):
    trials = logged["trials"]
    statuses = {}
    for trial_id, run in logged["trial_runs"].items():
        row, summary = trials.loc[trial_id], run.summary
        statuses[trial_id] = summary["status"]
        assert summary["status"] == row.status and summary["epochs"] == row.epochs
        if row.status in ("errored", "diverged"):
            assert run.exit_codes == [1], "W&B shows the run as failed"
            assert summary["error"] == row.error
            assert summary["best_score"] is None
        else:
            assert run.exit_codes == [0]
            assert summary["best_score"] == pytest.approx(row.best_score)
            assert summary["last_score"] == pytest.approx(row.last_score)
    assert sorted(statuses.values()) == ["completed", "completed", "diverged", "early_stopped", "early_stopped", "errored"]


@pytest.mark.integration
def test_summary_run_holds_the_leaderboard_and_the_best_checkpoint(logged):
    [run] = logged["summary_runs"]
    best = logged["summary"]["best_trial"]
    assert run.record.run_group == logged["folder"].name and run.exit_codes == [0]
    assert run.summary["best_trial"] == best["trial_id"]
    assert run.config["metric"] == "score" and run.config["search.scheduler.type"] == "asha"
    rows = table(run, "leaderboard")
    assert [r["trial_id"] for r in rows][0] == best["trial_id"], "best first"
    assert {r["trial_id"]: r["status"] for r in rows} == logged["trials"].status.to_dict()
    [model] = [a for a in run.artifacts if a.type == "model"]
    assert sorted(model.aliases) == ["best", "latest"] and json.loads(model.metadata)["trial_id"] == best["trial_id"]
    assert [c.path for c in model.manifest.contents] == ["state.json"]
    assert "Adding directory" not in logged["warned"], "the artifact is made without a console line"
    assert Path(best["checkpoint"], "state.json").is_file()


@pytest.mark.integration
def test_our_reading_of_the_files_is_wandbs_own(logged):
    """Every record, as tests.helpers.wandb_runs reads it and as `wandb leet inspect` does; and the files
    are the ones `wandb sync` would upload."""
    files = sorted(f for run in logged["runs"].values() for f in run.files)
    assert len(files) == 7
    for path in files:
        ours, theirs = read_records(path), wandb_runs.leet_records(path)
        assert [(r.num, r.WhichOneof("record_type")) for r in ours] == [(r["num"], r["type"]) for r in theirs]
        for record, shown in zip(ours, theirs):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                assert wandb_runs.items(record.history.item) == shown["history"]["item"]
            elif kind == "summary":
                assert wandb_runs.items(record.summary.update) == shown["summary"]["update"]
            elif kind == "run":
                assert (record.run.run_id, record.run.display_name) == (shown["run"]["run_id"], shown["run"]["display_name"])
            elif kind == "exit":
                assert record.exit.exit_code == shown["exit"].get("exit_code", 0)
    assert wandb_runs.sync_would_upload(logged["folder"]) == {f.resolve() for f in files}


@pytest.mark.integration
def test_a_file_cut_short_or_damaged_is_a_clear_error(logged, tmp_path):
    [run] = logged["summary_runs"]
    data = run.files[0].read_bytes()
    record_at = len(data) - 100
    damaged = {
        "header only": data[:7],
        "cut in a record": data[:record_at],
        "one flipped bit": data[:record_at] + bytes([data[record_at] ^ 1]) + data[record_at + 1 :],
        "no exit record": data[: len(data) - 7 - len(read_records(run.files[0])[-1].SerializeToString())],
    }
    for name, content in damaged.items():
        path = tmp_path / f"{name}.wandb"
        path.write_bytes(content)
        with pytest.raises(IncompleteRunFile, match=rf"{path}: .* at byte \d+ of {len(content)}"):
            read_records(path)


@pytest.mark.integration
def test_offline_runs_come_with_the_command_that_uploads_them(logged):
    folder = logged["folder"] / "wandb"
    lines = [line for line in logged["printed"].splitlines() if "wandb sync" in line]
    assert lines == [f"W&B: offline runs in {folder}; upload them with: wandb sync {folder}"]


@pytest.mark.integration
def test_no_file_the_run_wrote_holds_the_api_key(logged):
    places = [logged["folder"], logged["root"], Path("~/.cache/wandb").expanduser()]
    places.append(Path(ray._private.worker._global_node.get_session_dir_path()) / "logs")
    files = [p for place in places if place.exists() for p in place.rglob("*") if p.is_file()]
    assert len(files) > 20
    leaks = [str(p) for p in files if FAKE_KEY.encode() in p.read_bytes()]
    assert leaks == []


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_an_unreachable_wandb_server_is_one_warning_and_every_trial_still_runs(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    cfg = compose_config(
        *SCORED, "search=fifo", "num_samples=2", "max_epochs=2", "+train.fail_above=2",
        "logger.mode=online", "logger.timeout=2",
    )
    with caplog.at_level(logging.WARNING, logger="tuner.wandb_logger"):
        summary = tune_from_config(cfg, tmp_path / "run")
    warnings = [r.getMessage() for r in caplog.records if r.name == "tuner.wandb_logger"]
    assert len(warnings) == 1 and "W&B logging stopped" in warnings[0] and str(tmp_path / "run") in warnings[0]
    assert summary["status_counts"] == {"completed": 2}
    assert (tmp_path / "run" / "trials.csv").is_file() and (tmp_path / "run" / "history.csv").is_file()
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert [str(p) for p in files if FAKE_KEY.encode() in p.read_bytes()] == [], "online, the key is used, not written"


def test_a_wandb_error_turns_wandb_off_with_one_warning_and_skips_the_rest(tmp_path, caplog):
    (tmp_path / "wandb").write_text("a file where W&B wants its folder")  # W&B cannot write
    spec = build_spec(compose_config("logger=wandb", "logger.mode=offline"), tmp_path)
    writer = wandb_logger.Writer(wandb_logger.WandbSettings.from_spec(spec))
    ran = []
    with caplog.at_level(logging.WARNING, logger="tuner.wandb_logger"):
        writer.submit(wandb_logger._start_run, "t1", "t1", {})
        writer.submit(lambda w: ran.append(1))
        assert writer.close(wait=30)
    assert writer.failed and ran == [] and writer.runs == {}
    assert [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()][0].startswith("warning: W&B logging stopped")


def test_runs_ray_tune_never_ended_are_closed_with_their_trials_csv_status(tmp_path):
    """HyperBand can leave a finished trial paused; Ctrl-C leaves trials unfinished."""
    spec = build_spec(compose_config("logger=wandb", "logger.mode=offline"), tmp_path)
    writer = wandb_logger.writer_for(wandb_logger.WandbSettings.from_spec(spec))
    for trial_id in ("paused", "cut"):
        writer.submit(wandb_logger._start_run, trial_id, trial_id, {})
    trials = pd.DataFrame(
        [
            {"trial_id": "paused", "status": "completed", "epochs": 10, "best_val_acc": 0.9, "last_val_acc": 0.8},
            {"trial_id": "cut", "status": "unfinished", "epochs": 3, "best_val_acc": float("nan"), "last_val_acc": float("nan")},
        ]
    )
    wandb_logger.log_tuning_run(spec, trials, {"best_trial": None, "num_trials": 2})
    runs = trial_runs(tmp_path)
    assert (runs["paused"].summary["status"], runs["paused"].exit_codes) == ("completed", [0])
    assert runs["paused"].summary["best_val_acc"] == 0.9 and runs["paused"].summary["epochs"] == 10
    assert (runs["cut"].summary["status"], runs["cut"].exit_codes) == ("unfinished", [1])
    assert runs["cut"].summary["best_val_acc"] is None


def test_auto_mode_is_offline_without_credentials_and_online_with_them(wandb_without_login, monkeypatch):
    assert wandb_mode.resolve_mode("auto") == "offline"
    netrc = Path(wandb_without_login["NETRC"])
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + FAKE_KEY + "\n")
    assert wandb_mode.resolve_mode("auto") == "online"
    netrc.write_text("")
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    assert wandb_mode.resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode.resolve_mode("auto") == "disabled"
    assert wandb_mode.resolve_mode("offline") == "offline"


@pytest.mark.usefixtures("wandb_without_login")
def test_online_without_credentials_is_refused_before_ray_starts(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_spec(compose_config("logger=wandb", "logger.mode=online"), tmp_path / "run")
    assert err.value.key == "logger.mode" and "wandb login" in str(err.value)


@pytest.mark.parametrize("overrides", [["logger=none"], ["logger=wandb", "logger.mode=disabled"]])
def test_logger_none_and_mode_disabled_add_no_callback(overrides, tmp_path):
    spec = build_spec(compose_config(*overrides), tmp_path)
    assert wandb_logger.trial_callbacks(spec) == []


def test_default_logger_is_wandb():
    assert compose_config().logger.kind == "wandb"


BAD_LOGGERS = [
    (["logger.mode=cloud"], "logger.mode", "must be one of auto, online, offline, disabled"),
    (["logger.project=''"], "logger.project", "needs a W&B project name"),
    (["logger.tags=tiny"], "logger.tags", "must be a list"),
    (["logger.timeout=0"], "logger.timeout", "positive number"),
    (["+logger.api_key=abc"], "logger.api_key", "is not a setting of logger=wandb"),
    (["logger=none", "+logger.project=x"], "logger.project", "is not a setting of logger=none"),
]


@pytest.mark.parametrize("overrides, key, phrase", BAD_LOGGERS, ids=[c[1] + ":" + c[2] for c in BAD_LOGGERS])
def test_bad_logger_setting_is_one_line_naming_the_key(overrides, key, phrase, tmp_path):
    with pytest.raises(ConfigError) as err:
        build_spec(compose_config("logger=wandb", *overrides), tmp_path / "run")
    assert err.value.key == key and phrase in str(err.value) and "\n" not in str(err.value)


def restarts(folder: Path, trial_id: str) -> list[int]:
    """The epochs at which a trial's process started training (1 for its first start)."""
    progress = pd.read_csv(folder / trial_id / "progress.csv", dtype=TRIAL_ID_DTYPE)
    return progress.loc[progress.iterations_since_restore == 1, "epoch"].tolist()


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_trials_hyperband_paused_and_resumed_keep_one_run_with_each_epoch_once(tmp_path):
    """HyperBand (max_t 3, eta 3) runs trials 0 and 1 to 3 epochs, and halves trials 2, 3 and 4
    at epoch 1: with seed 0 trial 4 is the slowest (x > 0.8) and the worst, so trials 2 and 3
    wait for it paused, then trial 2, the best, resumes from its checkpoint."""
    cfg = compose_config(
        *SCORED, "+train.fail_above=2", "+train.slow_above=0.8", "search=hyperband",
        "num_samples=5", "max_epochs=3", "logger.mode=offline",
    )
    folder = Path(tune_from_config(cfg, tmp_path / "run")["results_dir"])
    runs = wandb_runs.check_runs_match_the_folder(folder)
    paused = [t for t in runs if len(restarts(folder, t)) > 1]
    assert paused, "HyperBand paused a trial and resumed it from its checkpoint"
    assert all(len(runs[t].files) == 1 for t in paused), "one W&B run, kept open across the pause"


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_a_crashed_and_retried_trial_keeps_one_run_with_each_epoch_once(tmp_path):
    marker = tmp_path / "crashed"
    cfg = compose_config(
        *SCORED, "+train.fail_above=2", "search=fifo", "num_samples=2", "max_epochs=5",
        "trial.max_failures=1", "+train.crash_after=2", f"+train.crash_marker={marker}",
        "logger.mode=offline",
    )
    folder = Path(tune_from_config(cfg, tmp_path / "run")["results_dir"])
    runs = wandb_runs.check_runs_match_the_folder(folder)
    [crashed] = [t for t in runs if restarts(folder, t) == [1, 3]]
    assert marker.exists() and runs[crashed].summary["status"] == "completed"
    assert len(runs[crashed].files) == 1 and runs[crashed].exit_codes == [0]


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_a_finished_trials_run_its_killed_driver_never_wrote_is_written_from_the_results_folder(tmp_path):
    """A driver killed right after a trial finished can take the trial's W&B records with it
    (W&B writes a run's file when it closes the run): its file is the header only. The resumed
    run does not train the trial again, so it writes the run from params.json and history.csv."""
    cfg = compose_config(*SCORED, "+train.fail_above=2", "search=fifo", "num_samples=2", "max_epochs=3", "logger.mode=offline")
    summary = tune_from_config(cfg, tmp_path / "run")
    folder = Path(summary["results_dir"])
    trials = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE)
    lost = trials.trial_id[0]
    [file] = folder.glob(f"wandb/offline-run-*/run-run-{lost}.wandb")
    file.write_bytes(file.read_bytes()[:7])
    wandb_logger.log_tuning_run(build_spec(cfg, folder), trials, summary)
    assert not file.exists(), "the empty file is gone: `wandb sync` cannot read it"
    runs = wandb_runs.check_runs_match_the_folder(folder)
    assert [len(runs[t].files) for t in trials.trial_id] == [1, 1]
    assert runs[lost].config["x"] == pytest.approx(trials.x[0]) and runs[lost].record.display_name.startswith(lost)


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_each_stage_of_a_two_stage_run_is_its_own_group_named_after_the_run(tmp_path):
    cfg = compose_config(
        *SCORED, "+train.fail_above=2", "search=fifo", "num_samples=3", "max_epochs=2",
        "stages=screen_then_train", "stages.screen_epochs=1", "stages.top_k=1", "stages.seeds=2",
        "logger.mode=offline",
    )
    tune_from_config(cfg, tmp_path / "run")
    for stage, trials in (("screen", 3), ("train", 2)):
        runs = wandb_runs.offline_runs(tmp_path / "run" / stage)
        assert {run.record.run_group for run in runs.values()} == {f"run-{stage}"}
        assert len(wandb_runs.check_runs_match_the_folder(tmp_path / "run" / stage)) == trials
