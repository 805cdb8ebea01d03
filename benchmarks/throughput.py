"""Trainable throughput: training samples per second of our loop against a DataLoader loop.

    python -m benchmarks.throughput           # 2400 windows, 5 rounds; 1k..8k windows (~1.5 min)
    python -m benchmarks.throughput --quick   # 1200 windows, 3 rounds; 500..4k windows (~1 min)

Part 1, samples/s. One training epoch over the synthetic HAR windows (6 channels x 64 samples),
for cnn_tcn and cnn_bilstm at their default sizes, batch sizes 32 and 64, with 1 and 2 torch
threads, two ways over the same tensors with the same model and optimizer:

- ours: trainables.har.train_one_epoch, which indexes the in-memory tensors with a shuffled
  permutation, one gather per batch;
- DataLoader: the standard loop, `DataLoader(TensorDataset(x, y), batch_size, shuffle=True)`
  (num_workers=0, its default), the same forward/backward/step and the same loss/accuracy sums.

The two alternate, round after round, from freshly built models, so a busy neighbour on a shared
machine slows both alike; the table shows each one's median samples/s and their ratio, the
time each spends fetching a batch without any model (fetch_*_us), the training step's time
(step_ms), and ratio_bound: the ratio our loop would reach if the DataLoader loop's fetch cost
were replaced by ours and nothing else changed.

Part 2, scaling: our loop's epoch time (training plus evaluation of 1/4 as many windows, as
trainables.har.train does) as the data set grows, with a least-squares line through it; the
largest deviation from the line says whether it stays linear.

Part 3, GPU packing (only with a GPU): k = 1, 2, 4, 8 trials of cnn_tcn on one GPU through
tuner with trial.gpus=1/k, with and without mixed precision; aggregate samples/s and the packing
efficiency against k = 1. Without a GPU it says so and skips.

Writes benchmarks/results/throughput.{csv,json}.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.report import describe, machine, save
from trainables.data import synthetic_har
from trainables.har import evaluate, make_optimizer, train_one_epoch
from trainables.models import build_model

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "cnn_tcn": {"name": "cnn_tcn", "channels": 32, "levels": 3, "kernel_size": 5},
    "cnn_bilstm": {"name": "cnn_bilstm", "channels": 32, "hidden": 64, "num_layers": 1},
}
TARGET_RATIO = 2.0  # ours >= 2x the DataLoader loop's samples/s
LINEAR_TOLERANCE = 0.20  # time per window may vary this much across sizes on a shared machine
BATCH_SIZES = (32, 64)
PACKING = (1, 2, 4, 8)
CPU = torch.device("cpu")


def dataloader_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    batch_size: int, generator: torch.Generator,
) -> tuple[float, float]:
    """The standard PyTorch loop over a TensorDataset: the same step as train_one_epoch."""
    model.train()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=generator)
    total_loss, correct = 0.0, 0
    for xb, yb in loader:
        logits = model(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(yb)
        correct += (logits.argmax(dim=1) == yb).sum().item()
    return total_loss / len(x), correct / len(x)


def ours_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    batch_size: int, generator: torch.Generator,
) -> tuple[float, float]:
    return train_one_epoch(model, optimizer, x, y, batch_size, generator, 0.0, None, CPU)


LOOPS: dict[str, Callable[..., tuple[float, float]]] = {"ours": ours_epoch, "DataLoader": dataloader_epoch}


def timed_epoch(loop: str, model_cfg: dict, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> float:
    """Seconds of one training epoch of a freshly built model (built outside the clock)."""
    torch.manual_seed(seed)
    model = build_model(model_cfg, x.shape[1], 6, dropout=0.1)
    optimizer = make_optimizer(model, 1e-3, 1e-4)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    LOOPS[loop](model, optimizer, x, y, batch_size, generator)
    return time.perf_counter() - start


def samples_per_second(windows: int, rounds: int) -> pd.DataFrame:
    """Part 1: median samples/s of each loop per model, batch size and thread count."""
    data = synthetic_har(num_train=windows, num_val=60, seed=0)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for model_name, model_cfg in MODELS.items():
            for batch_size in BATCH_SIZES:
                for loop in LOOPS:  # warm-up: first-call allocations and kernel choices
                    timed_epoch(loop, model_cfg, x[: 4 * batch_size], y[: 4 * batch_size], batch_size, 0)
                times: dict[str, list[float]] = {loop: [] for loop in LOOPS}
                for round_ in range(rounds):
                    order = list(LOOPS) if round_ % 2 == 0 else list(reversed(LOOPS))
                    for loop in order:
                        times[loop].append(timed_epoch(loop, model_cfg, x, y, batch_size, round_))
                ours, theirs = (windows / statistics.median(times[loop]) for loop in LOOPS)
                row = {
                    "model": model_name, "threads": threads, "batch_size": batch_size, "windows": windows,
                    "ours_samples_s": round(ours), "dataloader_samples_s": round(theirs),
                    "ratio": round(ours / theirs, 3),
                    "ours_epoch_s": round(statistics.median(times["ours"]), 3),
                    "dataloader_epoch_s": round(statistics.median(times["DataLoader"]), 3),
                }
                rows.append(row)
                print(
                    f"  {model_name:10} threads={threads} batch={batch_size:3d}: ours {ours:7.0f}/s, "
                    f"DataLoader {theirs:7.0f}/s, ratio {ours / theirs:.2f}",
                    flush=True,
                )
    return pd.DataFrame(rows)


def fetch_cost(windows: int, batch_size: int, rounds: int) -> dict[str, float]:
    """Microseconds per batch spent on the data alone (no model): our gather vs the DataLoader."""
    torch.set_num_threads(1)
    data = synthetic_har(num_train=windows, num_val=60, seed=0)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)

    def ours() -> None:
        order = torch.randperm(windows)
        for i in range(0, windows, batch_size):
            batch = order[i : i + batch_size]
            x[batch], y[batch]

    def loader() -> None:
        for _ in DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True):
            pass

    cost = {}
    for name, fetch in (("ours", ours), ("DataLoader", loader)):
        fetch()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            fetch()
            times.append(time.perf_counter() - start)
        cost[name] = 1e6 * statistics.median(times) / math.ceil(windows / batch_size)
    return cost


def with_fetch_costs(table: pd.DataFrame, costs: dict[int, dict[str, float]]) -> pd.DataFrame:
    """Add the fetch cost per batch of each loop, the training step's time, and the ratio our
    loop could reach at best: the DataLoader epoch with its fetch cost replaced by ours."""
    rows = []
    for row in table.to_dict("records"):
        cost = costs[row["batch_size"]]
        batches = math.ceil(row["windows"] / row["batch_size"])
        saved = (cost["DataLoader"] - cost["ours"]) * batches / 1e6
        rows.append(
            row | {
                "fetch_ours_us": round(cost["ours"], 1), "fetch_dataloader_us": round(cost["DataLoader"], 1),
                "step_ms": round(1000 * row["ours_epoch_s"] / batches, 2),
                "ratio_bound": round(row["dataloader_epoch_s"] / (row["dataloader_epoch_s"] - saved), 3),
            }
        )
    return pd.DataFrame(rows)


def scaling(sizes: tuple[int, ...], rounds: int) -> pd.DataFrame:
    """Part 2: our epoch time (train + evaluate a quarter as many windows) as the data grows."""
    torch.set_num_threads(1)
    rows = []
    for model_name, model_cfg in MODELS.items():
        data = synthetic_har(num_train=max(sizes), num_val=max(sizes) // 4, seed=0)
        for windows in sizes:
            x, y = torch.from_numpy(data.x_train[:windows]), torch.from_numpy(data.y_train[:windows])
            x_val, y_val = torch.from_numpy(data.x_val[: windows // 4]), torch.from_numpy(data.y_val[: windows // 4])
            times = []
            for round_ in range(rounds):
                torch.manual_seed(round_)
                model = build_model(model_cfg, x.shape[1], 6, dropout=0.1)
                optimizer = make_optimizer(model, 1e-3, 1e-4)
                generator = torch.Generator().manual_seed(round_)
                start = time.perf_counter()
                train_one_epoch(model, optimizer, x, y, 64, generator, 0.0, None, CPU)
                evaluate(model, x_val, y_val, 64, CPU)
                times.append(time.perf_counter() - start)
            rows.append({"model": model_name, "windows": windows, "epoch_s": statistics.median(times)})
            print(f"  {model_name:10} {windows:5d} windows: {rows[-1]['epoch_s']:.3f} s/epoch", flush=True)
    table = pd.DataFrame(rows)
    fitted = []
    for model_name, group in table.groupby("model", sort=False):
        slope, intercept = np.polyfit(group.windows, group.epoch_s, 1)
        line = slope * group.windows + intercept
        r2 = 1 - ((group.epoch_s - line) ** 2).sum() / ((group.epoch_s - group.epoch_s.mean()) ** 2).sum()
        per_window = group.epoch_s / group.windows  # linear growth: the same at every size
        deviation = (per_window / per_window.median() - 1).abs().max()
        fitted.append(
            group.assign(
                fit_s=line.round(3), samples_s=(group.windows / group.epoch_s).round(),
                ms_per_1k_windows=round(1e6 * slope, 1), intercept_s=round(intercept, 3),
                r2=round(r2, 4), max_per_window_deviation=round(deviation, 3),
            )
        )
    return pd.concat(fitted).assign(epoch_s=lambda t: t.epoch_s.round(3))


def packing(windows: int, epochs: int) -> pd.DataFrame:
    """Part 3: k trials sharing one GPU through tuner (trial.gpus=1/k), aggregate samples/s."""
    from hydra import compose, initialize_config_dir

    from tuner.cli import CONF_DIR
    from tuner.pipeline import tune_from_config

    rows = []
    with tempfile.TemporaryDirectory() as storage:
        for amp in (False, True):
            for k in PACKING:
                overrides = [
                    "search=fifo", f"num_samples={k}", f"max_epochs={epochs}", "space=null", "logger=none",
                    f"trial.gpus={1 / k}", f"train.amp={str(amp).lower()}", "train.device=cuda",
                    f"data.num_train={windows}", "data.num_val=600", f"storage={storage}",
                ]
                with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                    cfg = compose("config", overrides=overrides)
                folder = Path(storage) / f"amp{int(amp)}-k{k}"
                with open(Path(storage) / "tuner.log", "a") as log, contextlib.redirect_stdout(log):
                    tune_from_config(cfg, folder)
                history = pd.read_csv(folder / "history.csv")
                later = history[history.epoch > 1]  # the first epoch carries CUDA start-up
                per_trial = windows / later.groupby("trial_id").epoch_time.median()
                rows.append({"amp": amp, "trials_per_gpu": k, "aggregate_samples_s": round(per_trial.sum())})
                print(f"  amp={amp} k={k}: {rows[-1]['aggregate_samples_s']} samples/s", flush=True)
    table = pd.DataFrame(rows)
    single = table.groupby("amp").aggregate_samples_s.transform("first")
    return table.assign(packing_efficiency=(table.aggregate_samples_s / single).round(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer windows and rounds")
    args = parser.parse_args()
    windows, rounds, sizes = (1200, 3, (500, 1000, 2000, 4000)) if args.quick else (2400, 5, (1000, 2000, 4000, 8000))
    info = machine()
    started = time.time()
    print("Part 1: samples/s, our in-memory batching vs a DataLoader loop", flush=True)
    table = samples_per_second(windows, rounds)
    table = with_fetch_costs(table, {size: fetch_cost(windows, size, rounds) for size in BATCH_SIZES})
    print("Part 2: epoch time as the data set grows (ours, 1 thread, batch 64)", flush=True)
    grown = scaling(sizes, rounds)
    gpu = None
    if info["gpu"]:
        import ray

        print("Part 3: trials per GPU", flush=True)
        ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        gpu = packing(windows, epochs=3)
        ray.shutdown()

    print(f"\nTrainable throughput ({'quick' if args.quick else 'full'}). {describe(info)}.")
    print(f"\nSamples/s, median of {rounds} epochs of {windows} windows (6 x 64) each; fetch = data alone per batch:")
    print(table.drop(columns=["windows"]).to_string(index=False))
    print("\nEpoch time as the data set grows (train + evaluate a quarter as many), linear fit:")
    print(grown.to_string(index=False))
    lines = verdicts(table, grown)
    if gpu is None:
        lines.append("GPU packing: not measured, this machine has no GPU (it needs a lent GPU)")
    else:
        print("\nTrials per GPU (tuner, trial.gpus=1/k), aggregate samples/s:")
        print(gpu.to_string(index=False))
    print("\n" + "\n".join(lines))
    print(f"\ntotal time: {time.time() - started:.0f} s")
    details = {
        "mode": "quick" if args.quick else "full", "machine": info, "windows": windows, "rounds": rounds,
        "scaling": grown.to_dict("records"),
        "gpu_packing": None if gpu is None else gpu.to_dict("records"), "verdicts": lines,
    }
    csv_path, json_path = save("throughput", table, details)
    print(f"wrote {csv_path.relative_to(ROOT)} and {json_path.relative_to(ROOT)}")


def verdicts(table: pd.DataFrame, grown: pd.DataFrame) -> list[str]:
    """The target (ours >= 2x DataLoader) per row and why, and whether epoch time grows linearly."""
    lines = []
    met = table[table.ratio >= TARGET_RATIO]
    for threads, rows in table.groupby("threads"):
        worst, best = rows.ratio.min(), rows.ratio.max()
        lines.append(
            f"target ours >= {TARGET_RATIO:g}x DataLoader, {threads} thread(s): ratios {worst:.2f}x..{best:.2f}x, "
            + ("met" if worst >= TARGET_RATIO else f"MISSED by up to {1 - worst / TARGET_RATIO:.0%} of the target")
        )
    one = table[table.threads == 1]
    lines.append(
        f"why: fetching a batch costs ours {one.fetch_ours_us.min():.0f}-{one.fetch_ours_us.max():.0f} us and the "
        f"DataLoader {one.fetch_dataloader_us.min():.0f}-{one.fetch_dataloader_us.max():.0f} us, but a training "
        f"step takes {one.step_ms.min():.1f}-{one.step_ms.max():.1f} ms on 1 thread, so even a free fetch would make "
        f"the loop at most {one.ratio_bound.max():.2f}x faster; the model's compute dominates "
        f"(rows meeting {TARGET_RATIO:g}x: {len(met)}/{len(table)})"
    )
    for model_name, group in grown.groupby("model", sort=False):
        first = group.iloc[0]
        linear = first.r2 >= 0.99 and first.max_per_window_deviation <= LINEAR_TOLERANCE
        lines.append(
            f"scaling {model_name}: {first.ms_per_1k_windows} ms per 1k windows + {first.intercept_s} s, "
            f"R^2 {first.r2}, time per window within {first.max_per_window_deviation:.0%} of its median "
            f"at every size: {'linear' if linear else 'NOT linear'} (tolerance {LINEAR_TOLERANCE:.0%})"
        )
    return lines


if __name__ == "__main__":
    main()
