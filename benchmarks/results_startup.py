"""How long `python -m tuner.results list` takes on 20 runs: this tree against an earlier one.

    python -m benchmarks.results_startup                      # baseline: the tree before the tidy-up
    python -m benchmarks.results_startup --baseline <rev>     # any earlier commit
    python -m benchmarks.results_startup --quick              # 3 timings each instead of 9

One real tiny run (2 trials, logger=none) is made and copied to 20 results folders; then the same
command runs in fresh processes, alternating between this tree and the baseline tree (extracted
with `git archive`, run with the same Python and packages), so both are measured in the same run
on the same machine. Writes benchmarks/results/results_startup.{json,csv}.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.report import describe, machine, save

ROOT = Path(__file__).resolve().parent.parent
# The last commit before the structure tidy-up: its results command imported Ray, W&B and Hydra.
BEFORE_TIDY_UP = "0a5adb7"
RUNS = 20


def make_runs(storage: Path) -> None:
    """One real tiny run, then 19 copies of it under other names and start times."""
    subprocess.run(
        [sys.executable, "-m", "tuner", "num_samples=2", "max_epochs=2", "data.num_train=240",
         "data.num_val=120", "logger=none", f"storage={storage}"],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=600,
    )
    [first] = storage.iterdir()
    for number in range(1, RUNS):
        copy = storage / f"{first.name}-copy{number:02d}"
        shutil.copytree(first, copy)
        summary = json.loads((copy / "summary.json").read_text())
        summary["started"] = summary["started"][:-2] + f"{number:02d}"
        (copy / "summary.json").write_text(json.dumps(summary))


def extract(revision: str, target: Path) -> Path:
    """The tuner package and conf/ of an earlier commit, to run beside this tree."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "tuner", "trainables", "conf"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def timed_list(tree: Path, storage: Path) -> float:
    """Seconds for one `python -m tuner.results list` in a fresh process, run from ``tree``."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tuner.results", "list", "--storage", str(storage)],
        cwd=tree, capture_output=True, text=True, timeout=300,
    )
    seconds = time.perf_counter() - start
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != RUNS + 1:
        raise RuntimeError(f"list in {tree} failed or missed runs:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BEFORE_TIDY_UP, help="the earlier commit to compare with")
    parser.add_argument("--quick", action="store_true", help="3 timings each instead of 9")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    info = machine()
    with tempfile.TemporaryDirectory(prefix="results-startup-") as scratch:
        storage = Path(scratch) / "runs"
        make_runs(storage)
        trees = {"this tree": ROOT, f"baseline {args.baseline}": extract(args.baseline, Path(scratch) / "baseline")}
        for tree in trees.values():  # warm the file cache and the .pyc files once
            timed_list(tree, storage)
        seconds: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(repeats):
            for name, tree in trees.items():
                seconds[name].append(timed_list(tree, storage))
    table = pd.DataFrame(
        [{"tree": name, "runs": RUNS, "median_s": statistics.median(s), "min_s": min(s), "max_s": max(s)}
         for name, s in seconds.items()]
    )
    baseline, current = table["median_s"].iloc[1], table["median_s"].iloc[0]
    speedup = baseline / current
    print(f"python -m tuner.results list on {RUNS} runs, {repeats} fresh processes each; {describe(info)}\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nspeed-up against {args.baseline}: {speedup:.1f}x (target >= 3x)")
    save("results_startup", table, {"machine": info, "repeats": repeats, "seconds": seconds, "speedup": speedup})


if __name__ == "__main__":
    main()
