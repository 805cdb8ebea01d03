"""`python -m tuner.results`: every verb on real results folders of tiny runs (complete,
interrupted with Ctrl-C, killed before its summary, damaged), read as a user reads them."""

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, TINY, compose_config
from tuner.pipeline import tune_from_config
from tuner.results import cli, read
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

SMALL_SPACE = [
    "~space",
    "+space={lr: {type: loguniform, low: 1.0e-3, high: 1.0e-2}, batch_size: {type: choice, values: [32, 64]}}",
]
STOPPED = ["search=fifo", "num_samples=4", "max_epochs=4", "name=stopped", "data.num_train=1200", "logger=none"]
RESULTS = ("summary.json", "trials.csv", "history.csv", "best_config.yaml")


@pytest.fixture(scope="module")
def storage(tmp_path_factory, local_ray) -> Path:
    """asha/ (val_acc, max), random/ (val_loss, min, on a two-parameter space), stopped-<time>/
    (Ctrl-C'd part-way) and killed/ (what a SIGKILL leaves: config.yaml and Ray's state)."""
    root = tmp_path_factory.mktemp("storage")
    tiny = [*TINY, "logger=none", f"storage={root}"]
    tune_from_config(compose_config(*tiny, "search=asha", "num_samples=4"), root / "asha")
    tune_from_config(compose_config(*tiny, "search=random", "metric=val_loss", "mode=min", *SMALL_SPACE), root / "random")
    stopped = interrupt_a_run(root)
    shutil.copytree(stopped, root / "killed")
    for name in RESULTS:
        (root / "killed" / name).unlink()
    return root


def interrupt_a_run(root: Path) -> Path:
    """A real `python -m tuner` stopped with Ctrl-C once a trial has finished and another started."""
    run = subprocess.Popen(
        [sys.executable, "-m", "tuner", *STOPPED, f"storage={root}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 180
    while run.poll() is None and time.monotonic() < deadline:
        done = [len(p.read_text().splitlines()) - 1 for p in root.glob("stopped-*/*/progress.csv")]
        if 4 in done and any(0 < n < 4 for n in done):
            break
        time.sleep(0.1)
    else:
        run.kill()
        raise AssertionError(f"the run never had a finished and an unfinished trial:\n{run.communicate()[0][-3000:]}")
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    assert "interrupted: resume with" in output, output[-3000:]
    [folder] = root.glob("stopped-*")
    return folder


def stopped(storage: Path) -> Path:
    return next(storage.glob("stopped-*"))


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def trials(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE)


def output(capsys, *args: str) -> str:
    cli.main(list(args))
    return capsys.readouterr().out


def error(capsys, *args: str) -> str:
    """The one error line a user mistake gives, after exit code 2."""
    with pytest.raises(SystemExit) as exit:
        cli.main(list(args))
    assert exit.value.code == 2
    lines = stderr_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def stderr_lines(err: str) -> list[str]:
    """What the command wrote to stderr, without the worker logs Ray forwards to it late."""
    return [line for line in err.splitlines() if line.strip() and "pid=" not in line]


def columns(table: str) -> dict[str, dict[str, str]]:
    """compare's table read back: {run: {row label: cell}}, cells cut at the header's columns."""
    header, *lines = table.splitlines()
    names = header.split()
    starts = [header.index(name) for name in names]
    cells = {name: {} for name in names}
    for line in lines:
        label = line[: starts[0]].strip()
        for name, start, end in zip(names, starts, [*starts[1:], None]):
            cells[name][label] = line[start:end].strip()
    return cells


def leaderboard_ids(shown: str) -> list[str]:
    rows = shown.split("Leaderboard", 1)[1].splitlines()[2:]
    return [row.split()[0] for row in rows]


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_list_shows_every_run_newest_first_with_its_best_and_status(storage, capsys):
    lines = output(capsys, "list", "--storage", str(storage)).splitlines()
    assert lines[0].split() == ["run", "started", "search", "trials", "best", "status"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"asha", "random", stopped(storage).name, "killed"}
    order = [line.split()[0] for line in lines[1:]]
    assert order.index(stopped(storage).name) < order.index("random") < order.index("asha")
    for name, metric in [("asha", "val_acc"), ("random", "val_loss")]:
        best = summary(storage / name)["best_trial"][metric]
        assert rows[name].endswith("complete") and f"{metric}={best:.4g}" in rows[name]
    assert rows[stopped(storage).name].endswith(f"interrupted (resume: python -m tuner resume={stopped(storage)})")
    assert rows["killed"].endswith(f"killed before its summary (resume: python -m tuner resume={storage / 'killed'})")


@pytest.mark.parametrize("name, column, mode", [("asha", "best_val_acc", "max"), ("random", "best_val_loss", "min")])
def test_show_gives_the_run_and_every_trial_best_first(storage, capsys, name, column, mode):
    shown = output(capsys, "show", name, "--storage", str(storage), "--top", "50")
    runs_trials = trials(storage / name)
    assert f"search:    {summary(storage / name)['search']}" in shown and "status:    complete" in shown
    best_first = runs_trials.sort_values(column, ascending=mode == "min", kind="stable").trial_id.tolist()
    assert leaderboard_ids(shown) == best_first
    top = output(capsys, "show", str(storage / name), "--top", "1")
    assert leaderboard_ids(top) == best_first[:1]


def test_show_of_an_interrupted_or_killed_run_says_it_is_incomplete(storage, capsys):
    shown = output(capsys, "show", stopped(storage).name, "--storage", str(storage))
    assert f"interrupted (resume: python -m tuner resume={stopped(storage)})" in shown
    assert "warning:   incomplete run" in shown
    assert "test:      none: the run is incomplete: its best trial is scored and exported when it ends (resume it)" in shown
    assert sorted(leaderboard_ids(shown)) == sorted(trials(stopped(storage)).trial_id)
    killed = output(capsys, "show", "killed", "--storage", str(storage))
    assert "killed before its summary" in killed and "no trials recorded" in killed


def test_compare_puts_each_run_in_a_column_that_matches_its_summary(storage, capsys):
    names = ["asha", "random", stopped(storage).name]
    cells = columns(output(capsys, "compare", *names, "--storage", str(storage)))
    assert list(cells) == names
    for name in names:
        saved = summary(storage / name)
        best = saved["best_trial"]
        assert cells[name]["metric"] == f"{saved['metric']} ({saved['mode']})"
        assert cells[name]["best"] == f"{best[saved['metric']]:.4g}" and cells[name]["best trial"] == best["trial_id"]
        assert cells[name]["trials"] == str(saved["num_trials"]) and cells[name]["epochs"] == str(best["epochs"])
        assert cells[name]["wall time"] == f"{saved['wall_time_s']} s" and cells[name]["search"] == saved["search"]
        assert cells[name]["batch_size"] == f"{best['params']['batch_size']:.3g}"
    assert cells["random"]["dropout"] == "-", "a param the run did not search"
    assert [cells[n]["complete"] for n in names] == ["yes", "yes", "no: interrupted"]


def test_best_prints_the_runs_best_config_yaml_after_a_comment(storage, capsys):
    printed = output(capsys, "best", "asha", "--storage", str(storage))
    comment, rest = printed.split("\n", 1)
    best = summary(storage / "asha")["best_trial"]
    assert comment.startswith(f"# asha, trial {best['trial_id']}: val_acc={best['val_acc']:.6g}")
    assert rest == (storage / "asha" / "best_config.yaml").read_text()


def test_best_across_runs_picks_the_higher_one(storage, capsys):
    names = ["asha", stopped(storage).name]
    printed = output(capsys, "best", *names, "--storage", str(storage))
    winner = max(names, key=lambda n: summary(storage / n)["best_trial"]["val_acc"])
    assert printed.startswith(f"# {winner}, trial {summary(storage / winner)['best_trial']['trial_id']}")
    assert ("incomplete: interrupted" in printed.splitlines()[0]) == (winner != "asha")
    assert printed.split("\n", 1)[1] == (storage / winner / "best_config.yaml").read_text()


def test_best_on_another_metric_picks_the_trial_with_the_lowest(storage, capsys):
    printed = output(capsys, "best", "asha", "--metric", "val_loss", "--mode", "min", "--storage", str(storage))
    asha = trials(storage / "asha")
    lowest = asha.loc[asha.last_val_loss.idxmin()]
    assert printed.startswith(f"# asha, trial {lowest.trial_id}: val_loss={lowest.last_val_loss:.6g} (last_val_loss, min)")
    config = yaml.safe_load(printed)
    assert config["space"] == {name: lowest[name] for name in summary(storage / "asha")["best_trial"]["params"]}
    assert config["num_samples"] == 1 and config["search"]["scheduler"]["type"] == "fifo"
    assert config["name"] == "cnn_tcn-asha-best"


def test_best_needs_one_metric_across_runs_and_skips_runs_without_trials(storage, capsys):
    different = "error: metric: the runs optimise different metrics (val_acc, val_loss)"
    assert error(capsys, "best", "asha", "random", "--storage", str(storage)).startswith(different)
    assert error(capsys, "best", "--storage", str(storage)).startswith(different)
    assert error(capsys, "best", "asha", "--metric", "val_loss", "--storage", str(storage)).startswith("error: mode:")
    assert error(capsys, "best", "asha", "--metric", "nonsense", "--mode", "min", "--storage", str(storage)).startswith(
        "error: metric: 'nonsense' is not in"
    )
    cli.main(["best", "--metric", "val_acc", "--mode", "max", "--storage", str(storage)])
    printed, notes = capsys.readouterr()
    columns = {"asha": "best_val_acc", stopped(storage).name: "best_val_acc", "random": "last_val_acc"}
    values = {name: trials(storage / name)[column].max() for name, column in columns.items()}
    assert printed.startswith(f"# {max(values, key=values.get)}, trial ")
    killed = f"killed before its summary (resume: python -m tuner resume={storage / 'killed'})"
    assert stderr_lines(notes) == [f"note: skipped killed, no trials recorded: {killed}"]


def test_report_writes_the_page_with_the_best_trial(storage, capsys):
    for name in ("asha", stopped(storage).name):
        printed = output(capsys, "report", name, "--storage", str(storage))
        assert printed == f"report: {storage / name / 'report.html'}\n"
        assert summary(storage / name)["best_trial"]["trial_id"] in (storage / name / "report.html").read_text()


def test_retrain_trains_the_best_config_alone_with_the_overrides(storage, tmp_path, capsys):
    before = hashes(storage / "asha")
    overrides = ["max_epochs=1", "data.num_train=120", f"storage={tmp_path}"]
    printed = output(capsys, "retrain", "asha", "--storage", str(storage), *overrides)
    [folder] = tmp_path.iterdir()
    assert f"{summary(storage / 'asha')['best_trial']['trial_id']}: {folder}" in printed
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["max_epochs"] == 1 and config["data"]["num_train"] == 120
    assert config["space"] == yaml.safe_load((storage / "asha" / "best_config.yaml").read_text())["space"]
    assert summary(folder)["num_trials"] == 1 and summary(folder)["status_counts"] == {"completed": 1}
    assert hashes(storage / "asha") == before, "the run's own files are untouched"


def test_retrain_top_2_writes_each_trials_config_then_trains_each(storage, tmp_path, capsys):
    output(capsys, "retrain", "asha", "--top", "2", "--storage", str(storage), "max_epochs=1", f"storage={tmp_path}")
    asha = trials(storage / "asha").sort_values("best_val_acc", ascending=False, kind="stable")
    top = asha.trial_id.tolist()[:2]
    assert sorted(p.stem for p in (storage / "asha" / "retrain").iterdir()) == sorted(top)
    first = yaml.safe_load((storage / "asha" / "retrain" / f"{top[0]}.yaml").read_text())
    assert first == yaml.safe_load((storage / "asha" / "best_config.yaml").read_text()) | {"name": f"cnn_tcn-asha-{top[0]}"}
    folders = sorted(tmp_path.iterdir())
    assert [f.name.rsplit("-", 2)[0] for f in folders] == sorted(f"cnn_tcn-asha-{t}" for t in top)
    assert all(summary(f)["status_counts"] == {"completed": 1} for f in folders)


def test_a_damaged_folder_is_one_error_line_for_every_verb_and_stays_byte_identical(storage, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    for name in ("garbage", "truncated", "noconfig"):
        shutil.copytree(storage / "random", damaged / name)
    (damaged / "garbage" / "summary.json").write_text("{not json")
    cut = (damaged / "truncated" / "trials.csv").read_bytes()
    (damaged / "truncated" / "trials.csv").write_bytes(cut[: len(cut) // 2])
    (damaged / "noconfig" / "config.yaml").unlink()
    before = {name: hashes(damaged / name) for name in ("garbage", "truncated", "noconfig")}

    listed = output(capsys, "list", "--storage", str(damaged))
    for name, file in [("garbage", "summary.json"), ("truncated", "trials.csv"), ("noconfig", "config.yaml")]:
        assert f"damaged: {file}: " in next(line for line in listed.splitlines() if line.startswith(name))
        verbs = [["show", name], ["compare", str(storage / "asha"), name], ["best", name], ["report", name], ["retrain", name]]
        for verb in verbs:
            assert f"{damaged / name / file}: " in error(capsys, *verb, "--storage", str(damaged)), verb
    assert error(capsys, "best", "--storage", str(damaged)).startswith("error: storage: no results folders with trials")
    assert {name: hashes(damaged / name) for name in before} == before


def test_user_mistakes_are_one_error_line_and_exit_code_2(storage, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([])
    assert exit.value.code == 2 and capsys.readouterr().err.startswith("usage: python -m tuner.results")
    assert error(capsys, "list", "--storage", str(tmp_path)).startswith(f"error: storage: no results folders under {tmp_path}")
    assert error(capsys, "list", "--storage", str(tmp_path / "nowhere")).startswith("error: storage: no folder at")
    at = ["--storage", str(storage)]
    assert error(capsys, "show", "asha", "--top", "0", *at).startswith("error: python -m tuner.results show: argument --top")
    assert error(capsys, "retrain", "asha", "max_epochs", *at).startswith("error: max_epochs: is not key=value")
    assert error(capsys, "best", "killed", "--storage", str(storage)).startswith("error: killed: has no trials recorded")
    done = subprocess.run(
        [sys.executable, "-m", "tuner.results", "show", "nowhere", "--storage", str(storage)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    fix = "give a folder path, or a name that `python -m tuner.results list` shows"
    assert done.stderr.splitlines() == [f"error: nowhere: no results folder here or under {storage}; {fix}"]


def test_a_searchers_trial_ids_that_look_like_numbers_are_read_as_text(tmp_path):
    path = tmp_path / "trials.csv"
    path.write_text("trial_id,status,epochs\n1234e567,completed,2\n00012345,completed,2\n")
    assert read._read_trials(path, 2).trial_id.tolist() == ["1234e567", "00012345"]
