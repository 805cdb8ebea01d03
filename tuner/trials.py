"""What a trial's record means, shared by the results folder and the W&B logger.

One status rule for both, so trials.csv and each trial's W&B run always agree; and which keys
of a Ray Tune result are bookkeeping (Ray's, and the node tuner adds) rather than the trainable's
metrics.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.result import AUTO_RESULT_KEYS

COMPLETED, STOPPED, ERRORED, DIVERGED = "completed", "early_stopped", "errored", "diverged"
UNFINISHED = "unfinished"
NODE_KEY = "node_id"  # tuner's report adds the node each result came from
RAY_KEYS = set(AUTO_RESULT_KEYS) | {"done", "should_checkpoint", "experiment_tag", "trial_id", NODE_KEY}


def ended_status(error: str, epochs: int, max_epochs: int) -> str:
    """A finished trial's status: diverged or errored when it raised, else completed, or
    early_stopped when the scheduler stopped it before max_epochs."""
    if error:
        return DIVERGED if "FloatingPointError" in error else ERRORED
    return COMPLETED if epochs >= max_epochs else STOPPED


def last_line(text: str) -> str:
    """The last non-empty line of an error: the exception's message, not Ray's wrapping."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def is_missing(value: Any) -> bool:
    """None or NaN: an empty cell of trials.csv."""
    return value is None or (isinstance(value, float) and math.isnan(value))
