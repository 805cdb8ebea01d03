"""A fast trainable for the W&B tests: a score per epoch, a checkpoint per epoch, failures on demand."""

import json
import tempfile
from pathlib import Path

from ray import tune

METRICS = ("score",)


def scored(config: dict, data: None) -> None:
    """Score peaks at x = 0.3 and grows a little each epoch; diverges when x is above
    config['diverge_above'], fails when it is above config['fail_above']."""
    for epoch in range(1, config["max_epochs"] + 1):
        if config["x"] > config.get("diverge_above", float("inf")):
            raise FloatingPointError(f"diverged at epoch {epoch}: score=nan")
        if config["x"] > config["fail_above"]:
            raise ValueError(f"x={config['x']:.3f} is out of range")
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "state.json").write_text(json.dumps({"epoch": epoch, "x": config["x"]}))
            score = -((config["x"] - 0.3) ** 2) + 0.01 * epoch
            tune.report({"score": score, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(directory))


def no_data() -> None:
    """A data function for trainables that need none."""
    return None
