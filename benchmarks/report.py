"""What every benchmark writes: the machine it ran on, and its table as CSV plus JSON."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """The machine and library versions, so a table can be read against where it was made."""
    import optuna
    import ray
    import torch

    model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "optuna": optuna.__version__,
    }


def describe(info: dict[str, Any]) -> str:
    """One line naming the machine, for the printed table."""
    gpu = info["gpu"] or "no GPU"
    return (
        f"{info['cpus']} CPUs ({info['cpu_model']}), {gpu}, load {info['load_average_1min_at_start']} "
        f"at start; torch {info['torch']}, ray {info['ray']}, optuna {info['optuna']}"
    )


def save(name: str, table: pd.DataFrame, details: dict[str, Any]) -> tuple[Path, Path]:
    """benchmarks/results/<name>.csv (the table) and <name>.json (the table and the details)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = RESULTS / f"{name}.csv", RESULTS / f"{name}.json"
    table.to_csv(csv_path, index=False)
    report = {**details, "table": table.to_dict("records")}
    json_path.write_text(json.dumps(_plain(report), indent=2) + "\n")
    return csv_path, json_path


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers; infinities and NaN (never reached, not run) as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
