"""Trainables a user might write, reached by import path like any other (no HAR code)."""

import json
import tempfile
import time
from pathlib import Path

from ray import tune

METRICS = ("score",)


def quadratic(config: dict, data: None) -> None:
    """Score peaks at x = 0.3; fails on purpose when x is above config['fail_above'] and
    diverges (as trainables.har does on a NaN loss) above config['diverge_above']."""
    for epoch in range(1, config["max_epochs"] + 1):
        if config["x"] > config.get("diverge_above", float("inf")):
            raise FloatingPointError(f"diverged at epoch {epoch}: score=nan")
        if config["x"] > config.get("fail_above", float("inf")):
            raise ValueError(f"x={config['x']:.3f} is out of range")
        tune.report({"score": -((config["x"] - 0.3) ** 2) + 0.01 * epoch, "epoch": epoch})


def no_data() -> None:
    """A data function for trainables that need none."""
    return None


def three_inputs(config: dict, data: None, budget: int) -> None:
    """A function tuner cannot call: it needs a third argument neither form gives."""


def two_inputs(config: dict) -> None:
    """Reads x1 and x2 alone, as a W&B sweep's parameters give them; Ray Tune's form."""
    for epoch in range(1, config["max_epochs"] + 1):
        tune.report({"score": -((config["x1"] - 0.2) ** 2) - (config["x2"] - 0.7) ** 2 + 0.01 * epoch})


def plateau(config: dict, data: None) -> None:
    """Score rises until epoch config['peak'], then stays below its best; each epoch sleeps
    config['sleep_s'] seconds, as a real one trains."""
    for epoch in range(1, config["max_epochs"] + 1):
        time.sleep(config["sleep_s"])
        tune.report({"score": min(epoch, config["peak"]) - 0.1 * max(0, epoch - config["peak"]), "epoch": epoch})


def checkpointed(config: dict, data: None) -> None:
    """Score x - 0.1 * epoch, best at a trial's first epoch; every epoch a checkpoint records the x
    (and the y, when the trial has one) it was trained under, and a restored trial goes on after
    the checkpoint's epoch."""
    start = 0
    if tune.get_checkpoint():
        with tune.get_checkpoint().as_directory() as folder:
            start = json.loads(Path(folder, "state.json").read_text())["epoch"]
    for epoch in range(start + 1, config["max_epochs"] + 1):
        with tempfile.TemporaryDirectory() as folder:
            state = {"epoch": epoch, **{name: config[name] for name in ("x", "y") if name in config}}
            Path(folder, "state.json").write_text(json.dumps(state))
            tune.report({"score": config["x"] - 0.1 * epoch, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(folder))
