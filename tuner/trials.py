"""What a trial's record means, shared by the results folder, the W&B logger and the readers.

One status rule for all of them, so trials.csv and each trial's W&B run always agree; which of
two values of a metric is better; and a trial's error as one line. Plain Python: no Ray.
"""

from __future__ import annotations

import math
from typing import Any, Callable

COMPLETED, STOPPED, ERRORED, DIVERGED = "completed", "early_stopped", "errored", "diverged"
UNFINISHED = "unfinished"
NODE_KEY = "node_id"  # tuner's report adds the node each result came from
# A searcher's trial ids are 8 hex digits: "1234e567" or "00012345" read as numbers unless told.
TRIAL_ID_DTYPE = {"trial_id": str}


def ended_status(error: str, epochs: int, max_epochs: int) -> str:
    """A finished trial's status: diverged or errored when it raised, else completed, or
    early_stopped when the scheduler stopped it before max_epochs."""
    if error:
        return DIVERGED if "FloatingPointError" in error else ERRORED
    return COMPLETED if epochs >= max_epochs else STOPPED


def error_line(error: BaseException | str | None) -> str:
    """The last non-empty line of a trial's error (the exception's message, not Ray's wrapping);
    "" when there was none."""
    if error is None or error == "":
        return ""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if lines:
        return lines[-1]
    return type(error).__name__ if isinstance(error, BaseException) else "error"


def better(mode: str) -> Callable[..., Any]:
    """max or min: the better of values of a metric optimised in ``mode``."""
    return max if mode == "max" else min


def best_label(values: Any, mode: str) -> Any:
    """The index label of the best value in a pandas Series of a metric optimised in ``mode``."""
    return values.idxmax() if mode == "max" else values.idxmin()


def is_missing(value: Any) -> bool:
    """None or NaN: an empty cell of trials.csv."""
    return value is None or (isinstance(value, float) and math.isnan(value))
