"""A fast trainable for the W&B tests: a score per epoch, a checkpoint per epoch that a paused,
retried or resumed trial continues from, failures and one crash on demand."""

import json
import tempfile
import time
from pathlib import Path

from ray import tune

METRICS = ("score",)


def scored(config: dict, data: None) -> None:
    """Score peaks at x = 0.3 and grows a little each epoch; diverges when x is above
    config['diverge_above'], fails when it is above config['fail_above'], crashes once after
    config['crash_after'] epochs when config['crash_marker'] names a file that does not exist
    yet, and takes half a second per epoch when x is above config['slow_above']."""
    first = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            first = json.loads(Path(directory, "state.json").read_text())["epoch"] + 1
    for epoch in range(first, config["max_epochs"] + 1):
        if config["x"] > config.get("diverge_above", float("inf")):
            raise FloatingPointError(f"diverged at epoch {epoch}: score=nan")
        if config["x"] > config["fail_above"]:
            raise ValueError(f"x={config['x']:.3f} is out of range")
        if config["x"] > config.get("slow_above", float("inf")):
            time.sleep(0.5)
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "state.json").write_text(json.dumps({"epoch": epoch, "x": config["x"]}))
            score = -((config["x"] - 0.3) ** 2) + 0.01 * epoch
            tune.report({"score": score, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(directory))
        marker = Path(config.get("crash_marker") or "")
        if epoch == config.get("crash_after") and config.get("crash_marker") and not marker.exists():
            marker.touch()
            raise RuntimeError(f"simulated crash after epoch {epoch}")
