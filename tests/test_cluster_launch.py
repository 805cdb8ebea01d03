"""Launching a cluster for real on one machine: `ray up` of cluster-onprem.yaml over SSH,
`ray job stop` of a tuning run, and Ray's autoscaler adding GPU workers for trials.

Every Ray here runs in a PID and mount namespace of its own (`unshare`): the `ray stop` that
`ray up` and `ray down` run on a node stops only what runs in that namespace, never the suite's
own Ray or anyone else's on the machine, and killing the namespace ends whatever is left.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tuner.trials import TRIAL_ID_DTYPE

from tests.conftest import BIN, ROOT, TINY, free_ports, wait_for_jobs_api

SSH_TOOLS = ("sshd", "ssh", "ssh-keygen", "rsync", "unshare")


def tool(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ['PATH']}:/usr/sbin")


def require_root_and(*tools: str) -> None:
    """Skip where the machine cannot host these tests; in CI (.ci/run installs them) fail."""
    problems = [f"no {name}" for name in tools if not tool(name)]
    if os.geteuid() != 0:
        problems.append("not root")
    if problems:
        message = f"needs root and {', '.join(tools)} (.ci/run installs them): {', '.join(problems)}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


class Namespace:
    """A shell script run as PID 1 of its own PID and mount namespace; closing it kills every
    process the namespace holds."""

    def __init__(self, script: str, log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10
        while not (inner := self._init_pid()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inner, f"unshare started nothing: {log.read_text()[-2000:]}"
        self.pid_ns = os.readlink(f"/proc/{inner}/ns/pid")

    def _init_pid(self) -> int | None:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else None

    def processes(self) -> list[str]:
        """The names of the live processes in the namespace."""
        names = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and os.readlink(entry / "ns/pid") == self.pid_ns:
                    stat_line = (entry / "stat").read_text()
                    if stat_line.rsplit(")", 1)[1].split()[0] != "Z":
                        names.append((entry / "comm").read_text().strip())
            except OSError:
                pass  # it ended meanwhile
        return names

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not self.processes(), f"left running: {self.processes()}"


def node_venv(venv: Path) -> None:
    """The node's ~/venv as if installed from the lock, made in a second: this interpreter, the
    suite's packages seen through a .pth file, and their console scripts. Installing the lock
    there is then a check, and the suite's own environment is never written to."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    suite = sysconfig.get_paths()["purelib"]
    (site_packages / "suite.pth").write_text(f"import site; site.addsitedir({suite!r})\n")
    for dist in distributions():
        for entry in dist.entry_points.select(group="console_scripts"):
            script = venv / "bin" / entry.name
            script.write_text(
                f"#!{venv}/bin/python\nimport sys\nfrom {entry.module} import {entry.attr.split('.')[0]}\n"
                f"sys.exit({entry.attr}())\n"
            )
            script.chmod(0o755)


@dataclass
class OnPrem:
    """cluster-onprem.yaml aimed at this machine, and the client side that runs `ray`."""

    config: Path
    node_home: Path
    address: str
    env: dict[str, str]
    node: Namespace

    def ray(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "ray"), *args], cwd=ROOT, env={**self.env, **env},
            capture_output=True, text=True, timeout=timeout,
        )

    def job(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return self.ray("job", args[0], "--address", self.address, *args[1:], **env)


def onprem_config(key: Path, cluster_name: str) -> tuple[dict, int]:
    """The repository's cluster-onprem.yaml with this machine's head, the throwaway key and
    free ports in place of Ray's defaults (the suite's own Ray may hold those); nothing else
    changed. Returns it and the dashboard's port."""
    config = yaml.safe_load((ROOT / "cluster-onprem.yaml").read_text())
    config["cluster_name"] = cluster_name
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(key)}
    flags = (
        "--dashboard-port", "--port", "--object-manager-port", "--ray-client-server-port", "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
    )
    ports = dict(zip(flags, free_ports(len(flags))))
    (start,) = [i for i, c in enumerate(config["head_start_ray_commands"]) if "ray start" in c]
    command = config["head_start_ray_commands"][start]
    for flag, port in ports.items():
        command, found = re.subn(rf"{flag}=\d+", f"{flag}={port}", command)
        command += "" if found else f" {flag}={port}"
    config["head_start_ray_commands"][start] = command
    return config, ports["--dashboard-port"]


@pytest.fixture
def onprem(tmp_path):
    """An SSH node at root@127.0.0.1:22 for cluster-onprem.yaml: the test's own sshd in a
    namespace where root's home is a throwaway folder holding the node's venv, and /tmp/ray is
    the node's own. The client side gets a throwaway HOME with a fresh token."""
    require_root_and(*SSH_TOOLS)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", 22)) != 0, "127.0.0.1:22 is taken: the test runs its sshd there"
    node, client = tmp_path / "node", tmp_path / "client"
    home, ray_tmp = node / "home", node / "tmp-ray"
    for folder in (home / ".config" / "pip", ray_tmp, client / ".ray", client / "tmp"):
        folder.mkdir(parents=True)
    (client / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    key = tmp_path / "key"
    for path in (key, node / "host_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    (node / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
    passwd = re.sub(r"^(root:[^:]*:0:0:[^:]*:)[^:]*:", rf"\g<1>{home}:", Path("/etc/passwd").read_text(), flags=re.M)
    (node / "passwd").write_text(passwd)
    (node / "sshd_config").write_text(
        f"Port 22\nListenAddress 127.0.0.1\nHostKey {node}/host_key\nPidFile {node}/sshd.pid\n"
        f"AuthorizedKeysFile {node}/authorized_keys\nPermitRootLogin prohibit-password\nAllowUsers root\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PrintMotd no\nPrintLastLog no\n"
    )
    node_venv(home / "venv")
    # No index on the node: the lock is satisfied by what the suite has, or setup fails.
    (home / ".config" / "pip" / "pip.conf").write_text("[global]\nno-index = true\n")
    os.makedirs("/run/sshd", exist_ok=True)
    os.makedirs("/tmp/ray", exist_ok=True)
    sshd = Namespace(
        f"mount --bind {node}/passwd /etc/passwd && mount --bind {ray_tmp} /tmp/ray && "
        f"exec {tool('sshd')} -D -e -f {node}/sshd_config",
        node / "sshd.log",
    )
    cluster_name = f"tuner-test-{secrets.token_hex(3)}"
    try:
        wait_for_port(22, sshd.log)
        config, dashboard = onprem_config(key, cluster_name)
        config_file = tmp_path / "cluster-onprem.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {**os.environ, "HOME": str(client), "TMPDIR": str(client / "tmp"), "RAY_USAGE_STATS_ENABLED": "0"}
        yield OnPrem(config_file, home, f"http://127.0.0.1:{dashboard}", env, sshd)
    finally:
        sshd.close()
        control = ssh_control_dir(cluster_name)
        shutil.rmtree(control, ignore_errors=True)
        with contextlib.suppress(OSError):
            control.parent.rmdir()  # when no other cluster's sockets are there


def ssh_control_dir(cluster_name: str) -> Path:
    """Where Ray's SSH runner keeps its control sockets for this cluster (under /tmp)."""
    user = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
    return Path(f"/tmp/ray_ssh_{user}") / hashlib.sha256(cluster_name.encode()).hexdigest()[:10]


def wait_for_port(port: int, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}: {log.read_text()[-2000:]}")


def tail(done: subprocess.CompletedProcess, chars: int = 3000) -> str:
    return (done.stdout + done.stderr)[-chars:]


def submit_when_ready(cluster: OnPrem, *args: str) -> subprocess.CompletedProcess:
    """`ray job submit` once the head's job agent is up ("No available agent" until then)."""
    wait_for_jobs_api(cluster.address, {**cluster.env, "RAY_AUTH_MODE": "token"})
    deadline = time.monotonic() + 90
    while True:
        submitted = cluster.job("submit", *args, RAY_AUTH_MODE="token")
        if "No available agent" not in tail(submitted) or time.monotonic() > deadline:
            return submitted
        time.sleep(2)


@pytest.mark.integration
def test_ray_up_on_prem_runs_a_job_as_the_readme_writes_it_and_ray_down_stops_it(onprem, tmp_path):
    up = onprem.ray("up", "-y", str(onprem.config))
    assert up.returncode == 0, tail(up, 6000)
    assert "pip install" in up.stdout and "requirements.lock" in up.stdout, "setup installs from the lock"
    token = onprem.node_home / ".ray" / "auth_token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and stat.S_IMODE(token.parent.stat().st_mode) == 0o700

    # What README writes (its storage= and run options aside): no PATH set here; the job's
    # python is the node venv's because `ray start` ran with it first on PATH.
    storage = tmp_path / "results"
    done = submit_when_ready(
        onprem, "--working-dir", ".", "--", "python", "-m", "tuner", "cluster=remote",
        f"storage={storage}", "logger=none", "search=fifo", *TINY,
    )
    assert done.returncode == 0 and "succeeded" in done.stdout, tail(done)
    (results_dir,) = storage.iterdir()
    assert pd.read_csv(results_dir / "trials.csv", dtype=TRIAL_ID_DTYPE).status.eq("completed").all()
    assert f"results: {results_dir}" in done.stdout
    which = onprem.job("submit", "--", "python", "-c", "import sys; print(sys.executable)", RAY_AUTH_MODE="token")
    assert f"{onprem.node_home}/venv/bin/python" in which.stdout, tail(which)

    for wrong in ({"RAY_AUTH_TOKEN": secrets.token_hex(32)}, {"RAY_AUTH_MODE": "disabled"}):
        refused = onprem.job("submit", "--", "python", "-c", "print(1)", **{"RAY_AUTH_MODE": "token", **wrong})
        assert refused.returncode != 0 and "AuthenticationError" in tail(refused), tail(refused)

    status = onprem.ray("exec", str(onprem.config), "ray status")
    assert status.returncode == 0 and "Active:" in status.stdout, "the node's shell has token auth on"

    assert "raylet" in onprem.node.processes()
    down = onprem.ray("down", "-y", str(onprem.config))
    assert down.returncode == 0 and "Exception occurred" not in tail(down), tail(down)
    deadline = time.monotonic() + 20
    while set(onprem.node.processes()) != {"sshd"} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(onprem.node.processes()) == {"sshd"}, f"ray down left {onprem.node.processes()}"


def epochs_so_far(storage: Path) -> int:
    """The most epochs any trial of the run under storage has reported."""
    counts = [len(p.read_text().splitlines()) - 1 for p in storage.glob("*/*/progress.csv")]
    return max(counts, default=0)


@pytest.mark.integration
def test_ray_job_stop_ends_a_run_with_its_results_written_and_resume_finishes_it(onprem, tmp_path):
    up = onprem.ray("up", "-y", str(onprem.config))
    assert up.returncode == 0, tail(up)
    storage = tmp_path / "results"
    run = ["search=fifo", "num_samples=4", "max_epochs=16", "data.num_train=240", "data.num_val=120"]
    submitted = submit_when_ready(
        onprem, "--no-wait", "--submission-id", "stopped", "--working-dir", ".", "--",
        "python", "-m", "tuner", "cluster=remote", f"storage={storage}", "logger=none", *run,
    )
    assert submitted.returncode == 0, tail(submitted)
    deadline = time.monotonic() + 180
    while epochs_so_far(storage) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    stop = onprem.job("stop", "stopped", RAY_AUTH_MODE="token")
    assert stop.returncode == 0 and "stopped" in tail(stop).lower(), tail(stop)

    logs = onprem.job("logs", "stopped", RAY_AUTH_MODE="token").stdout
    (results_dir,) = storage.iterdir()
    assert logs.rstrip().splitlines()[-1] == f"interrupted: resume with  python -m tuner resume={results_dir}", logs[-3000:]
    summary = pd.read_json(results_dir / "summary.json", typ="series")
    assert summary["interrupted"]
    trials = pd.read_csv(results_dir / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert len(trials) >= 1 and (results_dir / "report.html").is_file()
    assert (trials.status != "completed").any(), "the stop came before the run ended"

    done = onprem.job(
        "submit", "--working-dir", ".", "--", "python", "-m", "tuner", f"resume={results_dir}",
        RAY_AUTH_MODE="token",
    )
    assert done.returncode == 0 and "succeeded" in done.stdout, tail(done)
    trials = pd.read_csv(results_dir / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert len(trials) == 4 and trials.status.eq("completed").all(), trials
    history = pd.read_csv(results_dir / "history.csv", dtype=TRIAL_ID_DTYPE)
    for trial_id, group in history.groupby("trial_id"):
        assert group.epoch.tolist() == list(range(1, 17)), trial_id
    assert onprem.ray("down", "-y", str(onprem.config)).returncode == 0


def fake_gpu_cluster_config(gcs_port: int) -> dict:
    """cluster.yaml's shape on Ray's fake multi-node provider: a head with no CPU for trials
    and GPU workers started on demand (local raylets that declare a GPU), removed when idle."""
    config = {
        "cluster_name": "fake-gpu",
        "max_workers": 2,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 0.2,
        "provider": {
            "type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
            "disable_launch_config_check": True, "gcs_address": f"127.0.0.1:{gcs_port}",
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "ray.worker.gpu": {"resources": {"CPU": 1, "GPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": 2},
        },
        "head_node_type": "ray.head.default",
        "auth": {"ssh_user": "ubuntu"},
    }
    # The fake provider's defaults are not shipped with Ray: every other key, empty.
    empty_lists = (
        "cluster_synced_files", "rsync_exclude", "rsync_filter", "initialization_commands",
        "setup_commands", "head_setup_commands", "worker_setup_commands",
        "head_start_ray_commands", "worker_start_ray_commands",
    )
    return {**config, "file_mounts": {}, "file_mounts_sync_continuously": False, **{k: [] for k in empty_lists}}


@pytest.mark.integration
def test_the_autoscaler_adds_gpu_workers_for_trials_and_removes_them_when_idle(tmp_path):
    require_root_and("unshare")
    flags = ("ray-client-server-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port")
    gcs_port, dashboard, *agent_ports = free_ports(2 + len(flags))
    config = tmp_path / "fake-gpu.yaml"
    config.write_text(yaml.safe_dump(fake_gpu_cluster_config(gcs_port)))
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    ports = " ".join(f"--{flag}={port}" for flag, port in zip(flags, agent_ports))
    head = Namespace(
        # As on a node of cluster.yaml, the environment's bin first on PATH for `ray start`. The
        # project comes by PYTHONPATH, not --working-dir: the fake nodes share one disk and one
        # session folder, and a second node's agent unpacking the package replaces the folder
        # the driver runs in (the on-prem test ships the project with --working-dir).
        f"RAY_FAKE_CLUSTER=1 HOME={home} RAY_AUTH_MODE=disabled PATH={BIN}:$PATH PYTHONPATH={ROOT} "
        "exec ray start --head --block "
        f"--node-ip-address=127.0.0.1 --port={gcs_port} --num-cpus=0 --dashboard-host=127.0.0.1 "
        f"--dashboard-port={dashboard} {ports} --temp-dir={temp_dir} --autoscaling-config={config} "
        "--disable-usage-stats",
        tmp_path / "head.log",
    )
    address = f"http://127.0.0.1:{dashboard}"
    storage = tmp_path / "results"
    try:
        wait_for_jobs_api(address, env)
        started = time.monotonic()
        done = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--address", address, "--",
             "python", "-m", "tuner", "cluster=remote", "cluster.autoscaling=true", "trial.gpus=0.5",
             f"storage={storage}", "logger=none", "search=fifo", *TINY],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0 and "succeeded" in done.stdout, tail(done)
        (results_dir,) = storage.iterdir()
        trials = pd.read_csv(results_dir / "trials.csv", dtype=TRIAL_ID_DTYPE)
        assert trials.status.eq("completed").all()
        nodes = {node for cell in trials.nodes for node in cell.split(";")}
        # The fake provider names its workers' nodes f...f00001, f...f00002; the head is random.
        assert nodes and all(re.fullmatch("f{51}[0-9]{5}", node) for node in nodes), nodes

        deadline = time.monotonic() + 120
        while (alive := gpu_nodes_alive(gcs_port, env)) and time.monotonic() < deadline:
            time.sleep(2)
        assert not alive, f"GPU workers still up {time.monotonic() - started:.0f} s after submission: {alive}"
    finally:
        head.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def gpu_nodes_alive(gcs_port: int, env: dict) -> list[str]:
    """The ids of the live nodes with a GPU, as Ray's GCS lists them."""
    listed = subprocess.run(
        [sys.executable, "-c",
         f"import ray; ray.init(address='127.0.0.1:{gcs_port}', logging_level='ERROR'); "
         "print(*[n['NodeID'] for n in ray.nodes() if n['Alive'] and n['Resources'].get('GPU')])"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert listed.returncode == 0, tail(listed)
    return listed.stdout.split()
