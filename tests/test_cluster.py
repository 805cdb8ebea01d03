"""The cluster path for real on one machine: the launch configs and the lock they install, Ray
Jobs with token auth, several raylets with one lost mid-run, and trials no node can host."""

import difflib
import io
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import BIN, ROOT, TINY, compose_config, free_ports, wait_for_jobs_api
from tuner import ConfigError
from tuner import storage as store
from tuner.run import check_resources
from tuner.spec import build_spec
from tuner.trials import NODE_KEY, TRIAL_ID_DTYPE

TINY_JOB = ["search=fifo", *TINY]


def launch_config(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-onprem.yaml"])
def test_the_launch_configs_pass_rays_autoscaler_schema(name):
    validate_config(prepare_config(launch_config(name)))


def test_cluster_yaml_launches_gpu_workers_from_a_pinned_image_and_the_lock():
    config = launch_config("cluster.yaml")
    head, workers = (config["available_node_types"][t] for t in ("head", "gpu_worker"))
    assert workers["min_workers"] == 0 and workers["node_config"]["InstanceType"].startswith("g")
    assert head["resources"] == {"CPU": 0}, "trials go to the GPU workers, never beside the driver"
    for node in (head, workers):  # never Ray's default AMI (Ubuntu 18.04, glibc 2.27)
        assert "ubuntu-22.04" in node["node_config"]["ImageId"] or "/22.04/" in node["node_config"]["ImageId"]
    assert "nvidia-driver" in workers["node_config"]["ImageId"]
    lock = (ROOT / "conf" / "cluster" / "requirements.lock").read_text()
    assert re.search(r"^boto3==", lock, re.M), "Ray's AWS provider on the head launches workers with it"
    profiles = {node["node_config"]["IamInstanceProfile"]["Name"] for node in (head, workers)}
    assert len(profiles) == 2, "the head and the workers get different instance profiles"
    # Ray creates a security group open to SSH from 0.0.0.0/0 for any node type without one.
    assert all(node["node_config"]["SecurityGroupIds"] for node in (head, workers))
    assert config["file_mounts"]["~/tuner/requirements.lock"] == "conf/cluster/requirements.lock"


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-onprem.yaml"])
def test_every_node_gets_the_lock_token_auth_and_a_graceful_job_stop(name):
    config = launch_config(name)
    setup = " ".join(config["setup_commands"])
    assert re.search(r"astral.sh/uv/\d+\.\d+\.\d+/install.sh", setup), "a pinned uv"
    assert f"--python {locked_python()} " in setup, "the Python the lock was made with, to the patch"
    assert "pip install --quiet -r ~/tuner/requirements.lock" in setup
    assert "chmod 700 ~/.ray && chmod 600 ~/.ray/auth_token" in setup
    assert re.search(r"echo 'export PATH=\"\$HOME/venv/bin:\$PATH\" RAY_AUTH_MODE=token", setup)
    assert "~/.ray/auth_token" in config["file_mounts"], "the token travels by file, never in the YAML"
    head_start = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_start and "--dashboard-host=127.0.0.1" in head_start
    assert "RAY_JOB_STOP_SIGNAL=SIGINT" in head_start
    assert int(re.search(r"RAY_JOB_STOP_WAIT_TIME_S=(\d+)", head_start).group(1)) >= 60
    assert all("RAY_AUTH_MODE=token" in c for c in config["worker_start_ray_commands"] if "start" in c)


def test_aws_and_on_prem_nodes_are_set_up_by_the_same_commands():
    aws, onprem = launch_config("cluster.yaml"), launch_config("cluster-onprem.yaml")
    for key in ("file_mounts", "setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        assert aws[key] == onprem[key], key


def locked_python() -> str:
    lock = (ROOT / "conf" / "cluster" / "requirements.lock").read_text()
    return re.search(r"^# python: (\S+)$", lock, re.M).group(1)


def test_the_lock_is_the_environment_the_suite_runs_in(tmp_path):
    written = tmp_path / "requirements.lock"
    subprocess.run([sys.executable, ROOT / ".ci" / "lock.py", written], check=True, capture_output=True)
    lock = ROOT / "conf" / "cluster" / "requirements.lock"
    assert written.read_text() == lock.read_text(), (
        "conf/cluster/requirements.lock is not this environment: run `make lock`\n"
        + "".join(difflib.unified_diff(lock.read_text().splitlines(True), written.read_text().splitlines(True)))
    )
    assert re.search(r"^torch==[\d.]+$", lock.read_text(), re.M), "no +cpu: GPU nodes take the CUDA build"


def test_a_misspelt_cluster_yaml_is_refused_by_the_same_schema():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config["available_node_types"]["gpu_worker"]["min_worker"] = 0
    with pytest.raises(Exception, match="min_worker"):
        validate_config(prepare_config(config))


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize(
    "overrides, key",
    [(["trial.gpus=1"], "trial.gpus"), (["trial.cpus=3"], "trial.cpus")],
)
def test_a_trial_no_node_can_host_is_refused_before_it_starts(overrides, key, tmp_path):
    with pytest.raises(ConfigError) as err:
        check_resources(build_spec(compose_config(*overrides), tmp_path))
    assert err.value.key == key and "the largest node has 2 CPUs and 0 GPUs" in str(err.value)


@pytest.mark.usefixtures("local_ray")
def test_an_autoscaling_cluster_may_take_trials_bigger_than_its_nodes(tmp_path, capsys):
    spec = build_spec(compose_config("trial.gpus=0.25", "+cluster.autoscaling=true"), tmp_path)
    check_resources(spec)
    assert "1 node(s), 2 CPUs, 0 GPUs: up to 0 trials at once" in capsys.readouterr().out


@pytest.mark.integration
def test_trials_spread_over_nodes_and_survive_losing_one_with_results_in_a_bucket(bucket):
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.cluster_scenario", bucket],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    removals = [l for l in done.stdout.splitlines() if l.startswith("removing node ")]
    assert len(removals) == 1, "the scenario removed one node mid-run:\n" + done.stdout[-3000:]
    killed = removals[0].split(" running ")[1].split()[0]  # the trial that had checkpointed epochs there
    (line,) = [l for l in done.stdout.splitlines() if l.startswith("results folder: ")]
    results = line.removeprefix("results folder: ")
    assert results.startswith(f"{bucket}/nodes-")
    trials = read_csv(store.join(results, "trials.csv"))
    assert len(trials) == 4 and (trials.status == "completed").all()
    nodes = trials.nodes.str.split(";")
    assert len({n for trial_nodes in nodes for n in trial_nodes}) >= 2, "trials ran on several nodes"
    moved = trials[nodes.str.len() > 1]
    assert killed in set(moved.trial_id), "the lost node's trial was retried elsewhere"
    history = read_csv(store.join(results, "history.csv"))
    assert set(history.trial_id) == set(trials.trial_id)
    for trial_id, group in history.groupby("trial_id"):
        assert group.epoch.tolist() == list(range(1, 9)), trial_id
    # The retry goes on from the trial's last registered checkpoint. Ray registers the checkpoint
    # reported with a result by a call to the trial's process after the result: a node lost in
    # between leaves the one before, and that one epoch is trained again.
    progress = read_csv(store.join(results, killed, "progress.csv"))
    restart = progress.index[progress.iterations_since_restore == 1][-1]
    lost, retried = progress.epoch[:restart].tolist(), progress.epoch[restart:].tolist()
    assert lost == list(range(1, len(lost) + 1)) and retried == list(range(retried[0], 9)), progress.epoch.tolist()
    assert 1 < retried[0] and len(lost) <= retried[0] <= len(lost) + 1, f"continued from a checkpoint: {progress.epoch.tolist()}"
    assert progress[NODE_KEY].nunique() == 2, "it went on on the other node"
    restarted = progress[progress.iterations_since_restore == 1].epoch.tolist()
    assert len(restarted) == 2 and restarted[1] > 1, "from its last checkpoint in the bucket, mid-way"


def read_csv(uri: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(store.read_text(uri)))


@pytest.fixture
def token_head(tmp_path):
    """A real `ray start --head` on 127.0.0.1 with token auth; stopped (only it) afterwards."""
    token = secrets.token_hex(16)
    gcs_port, dashboard_port, client, agent, agent_grpc, runtime_env, metrics = free_ports(7)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "PATH": f"{BIN}:{os.environ['PATH']}"}
    head = subprocess.Popen(
        [
            str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
            f"--port={gcs_port}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
            f"--ray-client-server-port={client}", "--num-cpus=2",
            # Its own agent ports: the defaults may be held by the suite's local Ray.
            f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        wait_for_jobs_api(address, env)
        yield address, env
    finally:
        # Its whole process group at once: `ray start --block` outlived a SIGTERM by more than
        # the 15 s an earlier version waited for it, in every run.
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
        current = Path("/tmp/ray/ray_current_cluster")
        if current.exists() and current.read_text().strip().endswith(f":{gcs_port}"):
            current.unlink()  # `ray start` pointed later `ray.init()` calls at this head


def job(args: list[str], env: dict, address: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ray"), "job", args[0], "--address", address, *args[1:]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.integration
def test_ray_job_submit_runs_a_tuning_run_and_refuses_a_missing_token(token_head, tmp_path):
    address, env = token_head
    storage = tmp_path / "results"
    submission = f"tuner-test-{secrets.token_hex(4)}"
    entrypoint = ["python", "-m", "tuner", "cluster=remote", *TINY_JOB, f"storage={storage}"]
    deadline = time.monotonic() + 90
    while True:  # the head answers before its job agent is up: "No available agent", retry
        submitted = job(
            ["submit", "--no-wait", "--submission-id", submission, "--working-dir", ".", "--", *entrypoint],
            env, address,
        )
        if "No available agent" not in submitted.stderr or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = job(["status", submission], env, address)
        said = (status.stdout + status.stderr).lower()
        if any(f"' {state}" in said for state in ("succeeded", "failed", "stopped")):
            break
        time.sleep(2)
    logs = job(["logs", submission], env, address).stdout
    assert f"job '{submission}' succeeded" in said, logs[-3000:]
    (results_dir,) = storage.iterdir()
    assert pd.read_csv(results_dir / "trials.csv", dtype=TRIAL_ID_DTYPE).status.eq("completed").all()
    assert f"results: {results_dir}" in logs

    for wrong in ({"RAY_AUTH_TOKEN": secrets.token_hex(16)}, {"RAY_AUTH_MODE": "disabled"}):
        refused = job(["submit", "--no-wait", "--", "python", "-c", "print(1)"], {**env, **wrong}, address)
        assert refused.returncode != 0 and "AuthenticationError" in refused.stderr, refused.stderr[-1000:]
