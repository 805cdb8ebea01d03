"""What a run leaves to take away, from real tiny runs: the chosen model scored once on held-out
subjects (the files, the summary, W&B, `results show`), the test split taking no part in the
choice, and the model exported as one file that runs in a Python without tuner or trainables."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from tests.conftest import NO_DATA, TINY, compose_config
from tests.helpers.wandb_runs import by_job, offline_runs, table
from trainables import har
from trainables.data import synthetic_har
from trainables.data.npz import npz_windows
from tuner.evaluation import trial_settings
from tuner.pipeline import tune_from_config
from tuner.results import cli
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
TEST_SUBJECTS = [11, 12]
TEST_FILES = ("test_metrics.csv", "confusion_matrix.csv")
# A fresh Python given the exported file and raw windows: the logits, what the file says, and
# which modules of this project it loaded (none may be).
LOAD_AND_CLASSIFY = """
import json, sys
import numpy as np, torch
extra = {"inference.json": ""}
model = torch.export.load(sys.argv[1], extra_files=extra).module()
with torch.no_grad():
    logits = model(torch.from_numpy(np.load(sys.argv[2])))
np.save(sys.argv[3], logits.numpy())
ours = sorted(m for m in sys.modules if m.split(".")[0] in ("tuner", "trainables"))
print(json.dumps({"info": json.loads(extra["inference.json"]), "ours": ours}))
"""


def recordings(folder: Path) -> tuple[Path, dict]:
    """Synthetic windows of 12 subjects (40 each) on a scale far from mean 0, std 1, as an .npz
    with channel names and rate: the loader standardizes them, so the raw windows differ."""
    data = synthetic_har(num_train=400, num_val=80, seed=3)
    x = np.concatenate([data.x_train, data.x_val]) * np.arange(1, 7)[:, None] + np.array([9.0, -4, 0, 2, 30, -1])[:, None]
    arrays = {
        "X": x.astype(np.float32), "y": np.concatenate([data.y_train, data.y_val]),
        "subject": np.repeat(np.arange(1, 13), 40), "classes": data.classes, "channels": CHANNELS, "sample_rate": 50,
    }
    np.savez(folder / "windows.npz", **arrays)
    return folder / "windows.npz", arrays


def tune(cfg, folder: Path) -> tuple[dict, str]:
    """A run's summary and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary = tune_from_config(cfg, folder)
    return summary, printed.getvalue()


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory, local_ray) -> dict:
    """Two trials on windows of 10 subjects, scored on the other 2; W&B offline."""
    root = tmp_path_factory.mktemp("evaluation")
    file, arrays = recordings(root)
    overrides = [
        "data=numpy", f"data.path={file}", f"data.test_subjects={TEST_SUBJECTS}", "search=fifo", "num_samples=2",
        "max_epochs=2", "logger=wandb", "logger.mode=offline", "logger.project=tuner-tests",
    ]
    with pytest.MonkeyPatch.context() as env:
        for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
            env.setenv(name, str(root / name.lower()))
        summary, printed = tune(compose_config(*overrides), root / "run")
    held_out = np.isin(arrays["subject"], TEST_SUBJECTS)
    np.save(root / "raw_test.npy", arrays["X"][held_out])
    return {
        "folder": root / "run", "summary": summary, "printed": printed, "raw_test": root / "raw_test.npy",
        "data": npz_windows(file, test_subjects=TEST_SUBJECTS), "labels": arrays["y"][held_out],
    }


def best_model(run: dict) -> tuple[dict, str]:
    """The config the best trial trained with, and its checkpoint."""
    best_config = yaml.safe_load((run["folder"] / "best_config.yaml").read_text())
    return trial_settings(best_config), run["summary"]["best_trial"]["checkpoint"]


def test_the_chosen_trial_is_scored_on_the_held_out_subjects_as_scikit_learn_scores_it(npz_run):
    summary, data = npz_run["summary"], npz_run["data"]
    test = summary["test"]
    assert test["trial_id"] == summary["best_trial"]["trial_id"] and test["windows"] == 80
    np.testing.assert_array_equal(data.y_test, npz_run["labels"])
    config, checkpoint = best_model(npz_run)
    predicted = har.predict_test_split(config, checkpoint, data)["predictions"]
    matrix = pd.read_csv(npz_run["folder"] / "confusion_matrix.csv", dtype=TRIAL_ID_DTYPE)
    assert set(matrix.trial_id) == {test["trial_id"]} and matrix.true.tolist() == data.classes
    np.testing.assert_array_equal(matrix[data.classes].to_numpy(), confusion_matrix(data.y_test, predicted, labels=range(6)))
    assert test["accuracy"] == pytest.approx(accuracy_score(data.y_test, predicted))
    assert test["macro_f1"] == pytest.approx(f1_score(data.y_test, predicted, average="macro"))
    metrics = pd.read_csv(npz_run["folder"] / "test_metrics.csv", dtype=TRIAL_ID_DTYPE)
    assert metrics["class"].tolist() == data.classes
    assert metrics.support.tolist() == np.bincount(data.y_test, minlength=6).tolist()
    line = f"test: accuracy {test['accuracy']:.4g}, macro F1 {test['macro_f1']:.4g} on 80 windows (trial {test['trial_id']})"
    assert line in npz_run["printed"].splitlines()


def test_the_exported_model_runs_without_tuner_and_predicts_raw_windows_as_the_checkpoint(npz_run, tmp_path):
    folder, data = npz_run["folder"], npz_run["data"]
    model = npz_run["summary"]["model"]
    assert model["file"] == "model.pt2" and model["trial_id"] == npz_run["summary"]["best_trial"]["trial_id"]
    logits = tmp_path / "logits.npy"
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_CLASSIFY, str(folder / "model.pt2"), str(npz_run["raw_test"]), str(logits)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded["ours"] == [], "neither tuner nor trainables was imported"
    config, checkpoint = best_model(npz_run)
    with torch.no_grad():
        expected = har.load_model(config, checkpoint, data)(torch.from_numpy(data.x_test)).numpy()
    exported = np.load(logits)
    np.testing.assert_allclose(exported, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(exported.argmax(axis=1), expected.argmax(axis=1))
    info = loaded["info"]
    assert (info["classes"], info["channels"], info["window"], info["sample_rate"]) == (data.classes, CHANNELS, 64, 50.0)
    np.testing.assert_allclose(info["mean"], data.mean.ravel())
    np.testing.assert_allclose(info["std"], data.std.ravel())
    assert np.abs(data.mean).max() > 1, "the raw windows are far from standardized"


def test_the_wandb_summary_run_holds_the_confusion_matrix(npz_run):
    [run] = by_job(offline_runs(npz_run["folder"]), "summary")
    rows = table(run, "test_confusion_matrix")
    matrix = pd.read_csv(npz_run["folder"] / "confusion_matrix.csv", dtype=TRIAL_ID_DTYPE)
    assert list(rows[0]) == ["true", *npz_run["data"].classes]
    assert [list(row.values()) for row in rows] == matrix.drop(columns="trial_id").values.tolist()
    assert run.summary["test_accuracy"] == pytest.approx(npz_run["summary"]["test"]["accuracy"])


def test_results_show_prints_the_test_figures_per_class_and_the_matrix(npz_run, capsys):
    cli.main(["show", str(npz_run["folder"])])
    shown = capsys.readouterr().out.splitlines()
    test = npz_run["summary"]["test"]
    figures = f"accuracy {test['accuracy']:.4g}, macro F1 {test['macro_f1']:.4g} on 80 windows"
    assert f"test:      {figures} (trial {test['trial_id']})" in shown
    assert f"model:     {npz_run['folder']}/model.pt2 (trial {test['trial_id']})" in shown
    per_class = shown[shown.index(f"Test split, per class (trial {test['trial_id']}):") + 2 :][:6]
    metrics = pd.read_csv(npz_run["folder"] / "test_metrics.csv", dtype=TRIAL_ID_DTYPE)
    assert [line.split()[0] for line in per_class] == metrics["class"].tolist()
    assert [int(line.split()[-1]) for line in per_class] == metrics.support.tolist()
    rows = shown[shown.index("Confusion matrix (rows: true class, columns: predicted class):") + 2 :][:6]
    matrix = pd.read_csv(npz_run["folder"] / "confusion_matrix.csv", dtype=TRIAL_ID_DTYPE)
    assert [[int(n) for n in line.split()[1:]] for line in rows] == matrix.drop(columns=["trial_id", "true"]).values.tolist()


def test_results_export_writes_the_model_again_for_a_saved_run(npz_run, capsys):
    folder = npz_run["folder"]
    summary_before = (folder / "summary.json").read_text()
    (folder / "model.pt2").unlink()
    cli.main(["export", str(folder)])
    assert capsys.readouterr().out == f"model: {folder / 'model.pt2'}\n"
    program = torch.export.load(folder / "model.pt2").module()
    config, checkpoint = best_model(npz_run)
    data = npz_run["data"]
    with torch.no_grad():
        expected = har.load_model(config, checkpoint, data)(torch.from_numpy(data.x_test))
        torch.testing.assert_close(program(torch.from_numpy(np.load(npz_run["raw_test"]))), expected, rtol=1e-4, atol=1e-5)
    assert (folder / "summary.json").read_text() == summary_before


@pytest.fixture(scope="module")
def shuffled_pair(tmp_path_factory, local_ray) -> dict:
    """The same seeded search twice: on the synthetic set, and on it with its test labels shuffled."""
    root = tmp_path_factory.mktemp("shuffled")
    common = [*TINY, "search=fifo", "num_samples=3", "logger=none", "data.num_test=300"]
    runs = {}
    for name, data in (("plain", []), ("shuffled", ["data._target_=tests.helpers.shuffled_data.shuffled_test_labels"])):
        summary, _ = tune(compose_config(*common, *data), root / name)
        trials = pd.read_csv(root / name / "trials.csv", dtype=TRIAL_ID_DTYPE)
        history = pd.read_csv(root / name / "history.csv", dtype=TRIAL_ID_DTYPE)
        runs[name] = {"summary": summary, "trials": trials, "history": history}
    return runs


def by_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials keyed by their number in the run (Ray's trial ids differ between runs)."""
    return frame.assign(trial=frame.trial_id.str.rsplit("_", n=1).str[-1]).drop(columns="trial_id")


def test_shuffled_test_labels_leave_the_best_trial_and_every_validation_figure_as_they_were(shuffled_pair):
    plain, shuffled = shuffled_pair["plain"], shuffled_pair["shuffled"]
    searched = ["trial", "status", "epochs", "lr", "weight_decay", "dropout", "batch_size", "model.channels", "model.levels",
                "best_val_acc", "last_val_acc", "last_val_loss", "last_val_f1", "last_train_loss", "last_train_acc"]
    key = ["trial"]
    pd.testing.assert_frame_equal(
        by_index(plain["trials"])[searched].sort_values(key).reset_index(drop=True),
        by_index(shuffled["trials"])[searched].sort_values(key).reset_index(drop=True),
    )
    curves = ["trial", "epoch", "train_loss", "val_loss", "val_acc", "val_f1"]
    pd.testing.assert_frame_equal(
        by_index(plain["history"])[curves].sort_values(["trial", "epoch"]).reset_index(drop=True),
        by_index(shuffled["history"])[curves].sort_values(["trial", "epoch"]).reset_index(drop=True),
    )
    best = [run["summary"]["best_trial"] for run in (plain, shuffled)]
    assert best[0]["trial_id"].rsplit("_")[-1] == best[1]["trial_id"].rsplit("_")[-1]
    assert best[0]["val_acc"] == best[1]["val_acc"]
    tests = [run["summary"]["test"] for run in (plain, shuffled)]
    assert tests[0]["accuracy"] > 0.4 > tests[1]["accuracy"], "the test split itself was scored, and it changed"


def test_a_run_on_data_without_a_test_split_says_so_and_writes_no_test_files(tmp_path, capsys):
    cfg = compose_config(*TINY, "num_samples=1", "max_epochs=1", "data.num_test=0", "logger=none")
    summary, printed = tune(cfg, tmp_path / "run")
    assert summary["test"] == {"skipped": "the data has no test split"}
    assert "test: none: the data has no test split" in printed.splitlines()
    assert not [name for name in TEST_FILES if (tmp_path / "run" / name).exists()]
    assert (tmp_path / "run" / "model.pt2").is_file(), "the model is exported all the same"
    cli.main(["show", str(tmp_path / "run")])
    assert "test:      none: the data has no test split" in capsys.readouterr().out.splitlines()


def test_a_trainable_without_a_test_function_gets_one_line_and_no_files(tmp_path, capsys):
    overrides = [
        "trainable=tests.helpers.user_trainables.quadratic", *NO_DATA, "logger=none", "metric=score", "search=fifo",
        "num_samples=1", "max_epochs=1", "~space", "+space={x: {type: uniform, low: 0.0, high: 1.0}}", "+train.x=0.5",
    ]
    summary, printed = tune(compose_config(*overrides), tmp_path / "run")
    why = "tests.helpers.user_trainables has no predict_test_split(config, checkpoint_dir, data)"
    assert summary["test"] == {"skipped": why}
    assert [line for line in printed.splitlines() if line.startswith("test:")] == [f"test: none: {why}"]
    written = sorted(p.name for p in (tmp_path / "run").iterdir() if p.suffix in (".csv", ".pt2"))
    assert written == ["history.csv", "trials.csv"]
    with pytest.raises(SystemExit) as exit:
        cli.main(["export", str(tmp_path / "run")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "pid=" not in line]
    assert exit.value.code == 2 and errors == [
        "error: trainable: tests.helpers.user_trainables has no export_model; add export_model(config, checkpoint_dir, data, folder)"
        " to it (README: Your own trainable and data)"
    ]
