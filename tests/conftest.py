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
