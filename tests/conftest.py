"""Shared fixtures: one local Ray and one S3 API server for each pytest worker (pyproject's
addopts run two), and Hydra composition of conf/."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import ray
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "conf"
BIN = Path(sys.executable).parent
# Small enough that a trial epoch takes a fraction of a second on one core.
TINY = ["num_samples=2", "max_epochs=2", "data.num_train=240", "data.num_val=120"]
# For the trainables of tests/helpers, which need no data: the HAR data settings go too.
NO_DATA = [
    "data._target_=tests.helpers.user_trainables.no_data",
    "~data.num_train", "~data.num_val", "~data.num_test", "~data.window", "~data.seed",
]


def compose_config(*overrides: str) -> DictConfig:
    """The config `python -m tuner <overrides>` would run, composed by Hydra itself."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1: each socket stays bound until all are picked
    (picked one at a time, the kernel may give the same port twice, which a `ray start` given
    it for two components refuses)."""
    with contextlib.ExitStack() as bound:
        sockets = [bound.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def wait_for_jobs_api(address: str, env: dict, timeout: float = 90) -> None:
    """Block until a Ray head's Jobs API answers `ray job list` (its dashboard starts last)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(
            [str(BIN / "ray"), "job", "list", "--address", address], env=env, capture_output=True, text=True
        )
        if listed.returncode == 0:
            return
        time.sleep(1)
    raise AssertionError("the head's Jobs API never answered")


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API server (moto's) on 127.0.0.1, reached the way a user reaches MinIO or Ceph:
    AWS_ENDPOINT_URL and the AWS_* credentials in the environment, set before Ray starts so
    that trials see them too. The keys are the server's own throwaway ones."""
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise AssertionError("the S3 server never answered")
            time.sleep(0.2)
    os.environ.update(
        AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="tuner-test", AWS_SECRET_ACCESS_KEY="tuner-test",
        AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
    )
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def bucket(s3_server) -> str:
    """A new empty bucket: the URI of a prefix in it."""
    import boto3

    name = f"tuner-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return f"s3://{name}/runs"


def bucket_keys(uri: str) -> list[str]:
    """Every object under a bucket URI, as keys relative to it."""
    import boto3

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"].removeprefix(prefix).lstrip("/") for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def local_ray(s3_server):
    """One embedded Ray for every test that tunes on this pytest worker; Ray's workers can import
    tests' own trainables and reach the S3 server."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("WANDB_MODE", "disabled")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture
def wandb_without_login(monkeypatch, tmp_path) -> dict[str, str]:
    """W&B as on a machine nobody has logged in to: no WANDB_MODE, no API key, an empty netrc,
    W&B's own folders under tmp_path. There the default logger=wandb (mode=auto) logs offline.
    Returns the environment for a `python -m tuner` subprocess, without this process's W&B
    service (W&B hands it to child processes in WANDB_SERVICE: a killed child's runs would stay
    open in it, and this process could not open them again when it resumes the run)."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return {name: value for name, value in os.environ.items() if name != "WANDB_SERVICE"}
