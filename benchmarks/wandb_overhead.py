"""What W&B logging costs: the same tuning run with logger=none, with tuner's W&B logger, and with
Ray Tune's stock WandbLoggerCallback, one after the other on the same Ray, in one process.

    python -m benchmarks.wandb_overhead            # 50 trials per variant, 3 rounds (~8 min on 2 cores)
    python -m benchmarks.wandb_overhead --quick    # 10 trials, 2 rounds, to try it out

Every variant runs ``tune_from_config`` on the same config (random search, no early stopping,
trials of 5 epochs with a short sleep each); W&B is offline, so no network is involved. The Ray
variant is tuner's pipeline with Ray's callback in place of tuner's (logger=none plus
``WandbLoggerCallback(mode="offline")``). The variants run in rounds, each round in a rotated
order, and the table shows each variant's median wall time, so a noisy neighbour on a shared
machine or the order of the runs does not decide the result. Prints the table and writes it to
benchmarks/results/wandb_overhead.{json,csv} (every single run is in the JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import ray
import wandb
from hydra import compose, initialize_config_dir
from ray import tune
from ray.air.integrations.wandb import WandbLoggerCallback

import tuner.run
from tuner.cli import CONF_DIR
from tuner.pipeline import tune_from_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("score",)


def trivial(config: dict, data: None) -> None:
    """A trainable that only sleeps and reports: what is left to measure is the overhead."""
    for epoch in range(1, config["max_epochs"] + 1):
        time.sleep(config["sleep"])
        tune.report({"score": -((config["x"] - 0.3) ** 2) + 0.01 * epoch, "epoch": epoch})


def no_data() -> None:
    return None


def overrides(trials: int, logger: str, storage: Path) -> list[str]:
    return [
        "trainable=benchmarks.wandb_overhead.trivial",
        "data._target_=benchmarks.wandb_overhead.no_data",
        "~data.num_train", "~data.num_val", "~data.num_test", "~data.window", "~data.seed",
        "metric=score", "search=random", f"num_samples={trials}", "max_epochs=5",
        "trial.max_failures=0", "~space", "+space={x: {type: uniform, low: 0.0, high: 1.0}}",
        "+train.x=0.5", "+train.sleep=0.05", f"storage={storage}", "name=bench",
        f"logger={logger}", *(["logger.mode=offline", "logger.project=tuner-bench"] if logger == "wandb" else []),
    ]


def timed_run(trials: int, logger: str, storage: Path, ray_callback: bool = False) -> tuple[float, int]:
    """Wall time of one tuning run, and how many W&B runs it left."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides(trials, logger, storage))
    stock = tuner.run.trial_callbacks
    if ray_callback:
        tuner.run.trial_callbacks = lambda spec: [
            WandbLoggerCallback(project="tuner-bench", group=spec.results_dir.name, mode="offline", dir=str(spec.results_dir))
        ]
    started = time.perf_counter()
    try:
        summary = tune_from_config(cfg)
    finally:
        tuner.run.trial_callbacks = stock
    wall = time.perf_counter() - started
    folder = Path(summary["results_dir"])
    assert summary["status_counts"] == {"completed": trials}, summary["status_counts"]
    return wall, len(list(folder.rglob("*.wandb")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three variants")
    parser.add_argument("--quick", action="store_true", help="10 trials per variant, 2 rounds")
    args = parser.parse_args()
    trials, repeats = (10, 2) if args.quick else (args.trials, args.repeats)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ["WANDB_MODE"] = "offline"  # Ray's logging actors read it; tuner's logger is told offline
    # A Ray of its own: never a cluster that `ray start` left running on this machine.
    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    variants = [
        ("logger=none", "none", False),
        ("logger=wandb (tuner)", "wandb", False),
        ("Ray WandbLoggerCallback", "none", True),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as storage:
        timed_run(2, "wandb", Path(storage) / "warmup")  # starts Ray's workers and W&B's service
        for round_ in range(repeats):
            for shift in range(len(variants)):
                number = (round_ + shift) % len(variants)
                name, logger, ray_callback = variants[number]
                wall, logged = timed_run(trials, logger, Path(storage) / f"round{round_}-{number}", ray_callback)
                rows.append({"round": round_ + 1, "variant": name, "wandb_runs": logged, "wall_s": round(wall, 2)})
                print(f"round {round_ + 1}/{repeats}  {name}: {wall:.1f} s", flush=True)
    ray.shutdown()
    table = summarize(pd.DataFrame(rows), [name for name, _, _ in variants], trials)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__, "wandb": wandb.__version__}
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "wandb_overhead.csv", index=False)
    report = {"machine": machine, "trials": trials, "rounds": repeats, "table": table.to_dict("records"), "runs": rows}
    (RESULTS / "wandb_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nW&B logging overhead: {trials} trials x 5 epochs, median of {repeats} rounds "
        f"({machine['cpus']} CPUs, ray {ray.__version__}, wandb {wandb.__version__}):"
    )
    print(table.to_string(index=False))


def summarize(runs: pd.DataFrame, variants: list[str], trials: int) -> pd.DataFrame:
    """One row per variant: its median wall time, and that against logger=none."""
    table = runs.groupby("variant").agg(wandb_runs=("wandb_runs", "first"), wall_s=("wall_s", "median"))
    table = table.reindex(variants).reset_index()
    table.insert(1, "trials", trials)
    table["wall_s"] = table.wall_s.round(1)
    table["vs_none"] = (table.wall_s / table.wall_s[0]).round(2)
    table["overhead_per_trial_s"] = ((table.wall_s - table.wall_s[0]) / trials).round(3)
    return table

if __name__ == "__main__":
    main()
