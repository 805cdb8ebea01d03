"""What tuner spends per trial on bookkeeping, beside plain Ray Tune and a plain Optuna loop.

    python -m benchmarks.overhead            # 200 trials x 10 reports, then 10/100/1000 trials
    python -m benchmarks.overhead --quick    # 20 trials, then 10/40 trials

Every variant runs the same trainable: 10 reports of 10 ms of sleep (no real work), so what is
left of the wall time is overhead. Each variant runs in its own process on 2 CPUs (Ray started
before the clock starts), which also gives each its own peak memory:

- ray_docs: a Ray Tune script as its docs show it (Tuner + TuneConfig(num_samples), defaults),
- ray_tuned: the same with actor reuse, Ray's biggest knob,
- tuner: `python -m tuner` with its defaults (search=random, logger=none, the trivial trainable),
- optuna: a plain `study.optimize` loop, one trial at a time (Optuna's default n_jobs=1).

Overhead = wall - compute / parallelism (2 for Ray, 1 for the Optuna loop). Utilization =
compute / (wall x 2 CPUs). Writes benchmarks/results/overhead.{json,csv}.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
REPORTS, SLEEP, CPUS = 10, 0.01, 2
METRICS = ("score",)


def trivial(config: dict, data: None = None) -> None:
    """Ten 10 ms steps, each reported: a trainable with nothing to it but its reports."""
    from ray import tune

    for step in range(1, REPORTS + 1):
        time.sleep(SLEEP)
        tune.report({"score": config["x"] * step, "epoch": step})


def no_data() -> None:
    return None


def ray_variant(trials: int, storage: Path, reuse_actors: bool) -> None:
    from ray import tune

    tuner = tune.Tuner(
        trivial,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            num_samples=trials, metric="score", mode="max", reuse_actors=reuse_actors
        ),
        run_config=tune.RunConfig(storage_path=str(storage), name="ray"),
    )
    tuner.fit()


def tuner_variant(trials: int, storage: Path) -> None:
    from hydra import compose, initialize_config_dir

    from tuner.cli import CONF_DIR
    from tuner.pipeline import tune_from_config

    overrides = [
        "trainable=benchmarks.overhead.trivial", "data._target_=benchmarks.overhead.no_data",
        "~data.num_train", "~data.num_val", "~data.num_test", "~data.window", "~data.seed",
        "metric=score", "search=random", f"num_samples={trials}", f"max_epochs={REPORTS}",
        "~space", "+space={x: {type: uniform, low: 0.0, high: 1.0}}", "+train.x=0.5",
        f"storage={storage}", "name=tuner", "logger=none",
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        tune_from_config(compose("config", overrides=overrides))


def optuna_variant(trials: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        for step in range(1, REPORTS + 1):
            time.sleep(SLEEP)
            trial.report(x * step, step)
        return x * REPORTS

    optuna.create_study(direction="maximize").optimize(objective, n_trials=trials)


def child(variant: str, trials: int) -> None:
    """Run one variant in this process and print its measurements as JSON.

    Imports and Ray's start happen before the clock starts: they are paid once per process,
    not per trial.
    """
    if variant != "optuna":
        import ray
        from ray import tune  # noqa: F401

        import tuner.main  # noqa: F401

        ray.init(address="local", num_cpus=CPUS, include_dashboard=False, logging_level=logging.ERROR)
    with tempfile.TemporaryDirectory() as storage:
        start = time.perf_counter()
        if variant == "optuna":
            optuna_variant(trials)
        elif variant == "tuner":
            tuner_variant(trials, Path(storage))
        else:
            ray_variant(trials, Path(storage), reuse_actors=variant == "ray_tuned")
        wall = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"wall_s": wall, "peak_mib": peak_mib}))


def measure(variant: str, trials: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.overhead", "--child", variant, str(trials)],
        cwd=ROOT, capture_output=True, text=True,
    )
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    measured = json.loads(lines[-1][len("RESULT "):])
    compute = trials * REPORTS * SLEEP
    parallelism = 1 if variant == "optuna" else CPUS
    overhead = max(0.0, measured["wall_s"] - compute / parallelism)
    row = {
        "variant": variant,
        "trials": trials,
        "wall_s": round(measured["wall_s"], 2),
        "overhead_per_trial_ms": round(1000 * overhead / trials, 1),
        "overhead_per_report_ms": round(1000 * overhead / (trials * REPORTS), 2),
        "utilization": round(compute / (measured["wall_s"] * CPUS), 3),
        "driver_peak_mib": round(measured["peak_mib"]),
    }
    print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 trials; scaling 10 and 40")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "TRIALS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    trials, scaling = (20, (10, 40)) if args.quick else (200, (10, 100, 1000))
    rows = [measure(v, trials) for v in ("ray_docs", "ray_tuned", "tuner", "optuna")]
    rows += [measure(v, n) for n in scaling for v in ("ray_tuned", "tuner")]
    table = pd.DataFrame(rows)
    by_variant = table[table.trials == trials].set_index("variant")
    docs, tuned, ours = (by_variant.loc[v, "overhead_per_trial_ms"] for v in ("ray_docs", "ray_tuned", "tuner"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "overhead.csv", index=False)
    summary = {
        "trials": trials,
        "reports_per_trial": REPORTS,
        "sleep_per_report_s": SLEEP,
        "cpus": CPUS,
        "tuner_vs_ray_docs_overhead": round(ours / docs, 3) if docs else None,
        "tuner_vs_ray_tuned_overhead": round(ours / tuned, 3) if tuned else None,
        "rows": rows,
    }
    (RESULTS / "overhead.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{table.to_string(index=False)}\n")
    print(f"tuner overhead / Ray defaults: {summary['tuner_vs_ray_docs_overhead']} (target <= 0.2)")
    print(f"tuner overhead / Ray tuned by hand: {summary['tuner_vs_ray_tuned_overhead']} (target <= 1.0)")


if __name__ == "__main__":
    main()
