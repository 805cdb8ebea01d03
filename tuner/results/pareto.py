"""The Pareto front of a run with several objectives: the trials no other trial beats on every one.

A trial's objective values are its last reports (``last_<metric>`` in trials.csv): what NSGA-II
was told when the trial ended. Only trials that ended normally (completed or early-stopped) count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tuner.trials import COMPLETED, STOPPED


def pareto_front(trials: pd.DataFrame, objectives: list[dict[str, str]]) -> pd.DataFrame:
    """The non-dominated rows of ``trials``, best first by the first objective."""
    columns = [f"last_{o['metric']}" for o in objectives]
    if trials.empty or not set(columns) <= set(trials.columns):
        return trials.iloc[0:0]
    ended = trials[trials["status"].isin([COMPLETED, STOPPED])].dropna(subset=columns)
    # Flip the maximised objectives so that smaller is better on every column.
    signs = np.array([-1.0 if o["mode"] == "max" else 1.0 for o in objectives])
    values = ended[columns].to_numpy(dtype=float) * signs
    dominated = np.zeros(len(values), dtype=bool)
    for i, point in enumerate(values):
        no_worse = (values <= point).all(axis=1)
        better = (values < point).any(axis=1)
        dominated[i] = (no_worse & better).any()
    front = ended[~dominated]
    return front.sort_values(columns[0], ascending=objectives[0]["mode"] == "min")
