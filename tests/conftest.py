"""Shared fixtures: one local Ray for the whole suite, and Hydra composition of conf/."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import ray
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "conf"
# Small enough that a trial epoch takes a fraction of a second on one core.
TINY = ["num_samples=2", "max_epochs=2", "data.num_train=240", "data.num_val=120"]


def compose_config(*overrides: str) -> DictConfig:
    """The config `python -m tuner <overrides>` would run, composed by Hydra itself."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="session")
def local_ray():
    """One embedded Ray for every test that tunes; workers can import tests' own trainables."""
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
