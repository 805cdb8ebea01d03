"""How values and tables read as text: one cell format and one leaderboard for what a run prints,
what ``python -m tuner.results`` shows, the report's tables and W&B run names."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tuner.trials import is_missing


def plain(value: Any) -> Any:
    """numpy scalars as plain Python values, as YAML, JSON and Optuna take them."""
    return value.item() if hasattr(value, "item") else value


def cell(value: Any, digits: int = 3) -> str:
    """A value in a table cell: floats to ``digits`` significant digits, "-" when missing."""
    value = plain(value)
    if is_missing(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def leaderboard_table(trials: pd.DataFrame, params: list[str], column: str, mode: str, top: int) -> str:
    """The ``top`` trials best first on ``column``, as text: the params trials.csv has, the
    value, epochs run, status; what printed and read-back leaderboards share."""
    shown = trials.sort_values(column, ascending=mode == "min", na_position="last", kind="stable").head(top)
    params = [name for name in params if name in shown]
    table = shown[["trial_id", *params, column, "epochs", "status"]].copy()
    for name in params:
        table[name] = table[name].map(cell)
    return table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def text_table(rows: list[dict[str, Any]]) -> str:
    """Rows of text as left-aligned columns (a missing cell is blank)."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    cells = [columns] + [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(width) for c, width in zip(line, widths)).rstrip() for line in cells)


def scores_text(test: dict[str, Any] | None) -> str:
    """summary.json's "test" as one line: the exported model's accuracy and macro F1 on the test
    split (with a two-stage winner's mean ± std over its seeds first), or why there are none."""
    if not test:
        return "-"
    if "skipped" in test:
        return f"none: {test['skipped']}"
    figures = f"accuracy {test['accuracy']:.4g}, macro F1 {test['macro_f1']:.4g} on {test['windows']} windows"
    if "seeds" not in test:
        return f"{figures} (trial {test['trial_id']})"
    seeds = pd.DataFrame(test["seeds"])
    spread = {name: f"{seeds[name].mean():.4g} ± {seeds[name].std(ddof=0):.2g}" for name in ("accuracy", "macro_f1")}
    over = f"accuracy {spread['accuracy']}, macro F1 {spread['macro_f1']} over {len(seeds)} seeds"
    return f"{over}; exported seed (trial {test['trial_id']}): {figures}"


def model_text(model: dict[str, Any] | None, where: str) -> str:
    """summary.json's "model" as one line: where the exported file is, or why there is none."""
    if not model:
        return "-"
    if "skipped" in model:
        return f"none: {model['skipped']}"
    return f"{where.rstrip('/')}/{model['file']} (trial {model['trial_id']})"
