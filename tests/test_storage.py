"""Results in a bucket, on a real S3 API server (moto's, on 127.0.0.1): a run leaves its results
and its checkpoints there, the results verbs and retraining read it back, and bad storage is one
error line before anything is written. A folder as cluster storage is checked from every node."""

import io
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import boto3
import pandas as pd
import pytest
import ray
import yaml

from tests.conftest import ROOT, TINY, bucket_keys, compose_config
from tuner import storage as store
from tuner.errors import ConfigError
from tuner.pipeline import tune_from_config
from tuner.results import cli
from tuner.spec import build_spec
from tuner.retrain import retrain

RESULT_FILES = ("config.yaml", "trials.csv", "history.csv", "summary.json", "best_config.yaml", "report.html")


def new_bucket() -> str:
    name = f"tuner-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return f"s3://{name}/runs"


def read_csv(uri: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(store.read_text(uri)))


@pytest.fixture(scope="module")
def bucket_run(local_ray, tmp_path_factory) -> dict:
    """One tiny run with storage=s3://..., W&B offline; the driver's temporary folders under a
    folder of the test's own, to see what it leaves behind."""
    uri, local_tmp = new_bucket(), tmp_path_factory.mktemp("driver-tmp")
    saved = tempfile.tempdir
    tempfile.tempdir = str(local_tmp)
    try:
        summary = tune_from_config(compose_config(*TINY, f"storage={uri}", "logger.mode=offline"))
    finally:
        tempfile.tempdir = saved
    return {"summary": summary, "uri": uri, "local_tmp": local_tmp}


@pytest.mark.integration
def test_a_run_in_a_bucket_leaves_its_results_and_checkpoints_beside_rays_state(bucket_run):
    summary, uri = bucket_run["summary"], bucket_run["uri"]
    [run] = store.list_folders(uri)
    assert summary["results_dir"] == run and not summary["interrupted"]
    keys = bucket_keys(run)
    assert set(RESULT_FILES) <= set(keys)
    assert any(k.startswith("experiment_state-") for k in keys), "Ray's state is in the bucket"
    assert any(k.startswith("wandb/offline-run-") and k.endswith(".wandb") for k in keys), "the W&B runs too"
    trials = read_csv(store.join(run, "trials.csv"))
    assert len(trials) == summary["num_trials"] == 2
    best = trials.loc[trials.best_val_acc.idxmax()]
    assert summary["best_trial"]["checkpoint"] == best.checkpoint and best.checkpoint.startswith(f"{run}/")
    checkpoint = best.checkpoint.removeprefix(f"{run}/")
    assert f"{checkpoint}/checkpoint.pt" in keys, "the best checkpoint is in the bucket"
    assert set(trials.nodes) == {ray.get_runtime_context().get_node_id()}, "each trial reported its node"
    assert list(bucket_run["local_tmp"].glob("tuner-*")) == [], "the driver's local copy is gone once uploaded"
    assert list(bucket_run["local_tmp"].rglob("checkpoint*")) == [], "no checkpoint was written on the driver's disk"


@pytest.mark.integration
def test_the_results_verbs_read_a_run_in_a_bucket(bucket_run, capsys):
    [run] = store.list_folders(bucket_run["uri"])
    name = store.name(run)
    cli.main(["list", "--storage", bucket_run["uri"]])
    [row] = capsys.readouterr().out.splitlines()[1:]
    assert row.startswith(name) and row.endswith("complete")

    cli.main(["show", name, "--storage", bucket_run["uri"]])
    shown = capsys.readouterr().out
    assert f"run:       {name}  ({run})" in shown
    assert all(t in shown for t in read_csv(store.join(run, "trials.csv")).trial_id)

    cli.main(["best", run])
    comment, *config = capsys.readouterr().out.splitlines(keepends=True)
    assert comment.startswith(f"# {name}, trial {bucket_run['summary']['best_trial']['trial_id']}")
    assert "".join(config) == store.read_text(store.join(run, "best_config.yaml"))

    boto3.client("s3").delete_object(**_key(store.join(run, "report.html")))
    cli.main(["report", run])
    assert capsys.readouterr().out == f"report: {run}/report.html\n"
    assert bucket_run["summary"]["best_trial"]["trial_id"] in store.read_text(store.join(run, "report.html"))


@pytest.mark.integration
def test_the_best_checkpoint_in_the_bucket_is_scored_and_exported_and_export_writes_it_again(bucket_run, capsys):
    summary, [run] = bucket_run["summary"], store.list_folders(bucket_run["uri"])
    assert summary["best_trial"]["checkpoint"].startswith(f"{run}/")
    assert summary["test"]["trial_id"] == summary["model"]["trial_id"] == summary["best_trial"]["trial_id"]
    assert {"test_metrics.csv", "confusion_matrix.csv", "model.pt2"} <= set(bucket_keys(run))
    assert read_csv(store.join(run, "confusion_matrix.csv")).drop(columns=["trial_id", "true"]).values.sum() == 600
    boto3.client("s3").delete_object(**_key(store.join(run, "model.pt2")))
    cli.main(["export", run])
    assert capsys.readouterr().out == f"model: {run}/model.pt2\n"
    assert "model.pt2" in bucket_keys(run)


@pytest.mark.integration
def test_a_best_config_in_a_bucket_retrains_from_there(bucket_run, tmp_path):
    [run] = store.list_folders(bucket_run["uri"])
    best_config = store.join(run, "best_config.yaml")
    summary = retrain(best_config, ["max_epochs=1", f"storage={tmp_path}", "logger=none"])
    assert summary["status_counts"] == {"completed": 1}
    retrained = yaml.safe_load((Path(summary["results_dir"]) / "config.yaml").read_text())
    assert retrained["space"] == yaml.safe_load(store.read_text(best_config))["space"]


def _key(uri: str) -> dict:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return {"Bucket": bucket, "Key": key}


def bad_storage_cases(bucket: str) -> dict:
    """Each bad storage: (the storage value, what the environment lacks, the message)."""
    return {
        "unknown scheme": ("nfs://server/tuner", {}, "is not a storage pyarrow knows"),
        "no such bucket": (f"s3://no-such-{uuid.uuid4().hex[:8]}/runs", {}, "does not exist; create the bucket"),
        "no credentials": (bucket, {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, "no AWS credentials"),
        "unreachable endpoint": (bucket, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot reach"),
    }


@pytest.mark.parametrize("case", ["unknown scheme", "no such bucket", "no credentials", "unreachable endpoint"])
def test_bad_storage_is_one_error_naming_storage_before_anything_is_written(case, bucket, tmp_path, monkeypatch):
    location, environment, message = bad_storage_cases(bucket)[case]
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for name, value in environment.items():
        monkeypatch.delenv(name) if value is None else monkeypatch.setenv(name, value)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ConfigError) as err:
        tune_from_config(compose_config(*TINY, f"storage={location}", "logger=none"))
    assert err.value.key == "storage" and message in str(err.value)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == [] and bucket_keys(bucket) == [], "nothing written"


def test_a_missing_bucket_stops_python_m_tuner_with_one_line_and_exit_code_2(s3_server):
    missing = f"s3://no-such-{uuid.uuid4().hex[:8]}/runs"
    done = subprocess.run(
        [sys.executable, "-m", "tuner", f"storage={missing}", "logger=none"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    bucket = missing.removeprefix("s3://").split("/")[0]
    assert done.stderr.splitlines() == [
        f"error: storage: the bucket '{bucket}' of {missing} does not exist; create the bucket, "
        "or give storage=s3://<an existing bucket>/<prefix>"
    ]


@pytest.mark.parametrize(
    "overrides, key, message",
    [
        (["cluster=remote", "storage=outputs"], "storage", "'outputs' is relative: on a cluster"),
        (["cluster=remote", "storage=/mnt/shared", "cluster.address=ray://head:10001"], "cluster.address", "is a Ray Client address"),
    ],
)
def test_storage_a_cluster_cannot_share_is_refused_before_ray_starts(overrides, key, message, tmp_path):
    with pytest.raises(ConfigError) as err:
        build_spec(compose_config(*overrides), tmp_path / "run")
    assert err.value.key == key and message in str(err.value)


@pytest.mark.integration
def test_a_shared_folder_is_read_back_on_every_node_and_a_node_that_cannot_is_refused(tmp_path):
    folder = tmp_path / "shared"
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.shared_folder_scenario", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "checked 3 nodes of 3: all" in lines, "one task on the head and on each worker"
    [refused] = [line for line in lines if line.startswith("refused: ")]
    assert refused.startswith(f"refused: storage: {folder} is not the same folder on 1 of 4 nodes")
    assert "left in the folder: []" in lines, "the marker is removed"
