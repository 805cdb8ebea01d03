"""A cheap multi-fidelity test function with a known optimum, on the default cnn_tcn space.

Each config of `conf/model/cnn_tcn.yaml`'s space (lr, weight_decay, dropout, batch_size,
model.channels, model.levels, in that order, so nothing puts the optimum near the benchmark's
grid on purpose) is mapped into the unit cube and scored by the Hartmann-6 function, a standard
global-optimisation test function; the score is scaled to look like an accuracy (chance 1/6 ..
0.95). Training for `epoch` epochs approaches that final score along an exponential learning
curve whose speed grows with the learning rate (so a high lr looks good early and a low one
late, as in real training), plus Gaussian noise fixed by (config, seed, epoch). `train` is the
trainable tuner runs; `val_acc` gives in-process baselines the same values.

`crossing_curve` (trainable `train_crossing`) is the same test function with learning curves
that cross: a high lr starts high after one epoch whatever its final score, and pays for it at
the end, so the ranking after one epoch misleads and stopping on it costs what it costs.

Example:
    >>> config = {"lr": 3e-4, "weight_decay": 1e-5, "dropout": 0.1, "batch_size": 64,
    ...           "model": {"channels": 32, "levels": 3}, "seed": 0}
    >>> val_acc(config, epoch=10) > val_acc(config, epoch=1)
    True
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import zlib

import numpy as np
from ray import tune

METRICS = ("val_acc",)
CHANCE, CEILING = 1 / 6, 0.95
NOISE_SD = 0.003  # per reported epoch, in accuracy units
SLEEP_S = 0.005  # per epoch: a trial that does next to nothing, so tuner itself is measured
CHECKPOINT_FILE = "epoch.txt"

# Hartmann-6 (Surjanovic & Bingham's library of test functions); minimum -3.32237.
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
HARTMANN6_MIN = -3.32237


def hartmann6(u: np.ndarray) -> np.ndarray:
    """Hartmann-6 at points u in [0, 1]^6 (shape [..., 6])."""
    inner = np.sum(_A * (u[..., None, :] - _P) ** 2, axis=-1)
    return -np.sum(_ALPHA * np.exp(-inner), axis=-1)


def unit_cube(lr, weight_decay, dropout, batch_size, channels, levels) -> np.ndarray:
    """The cnn_tcn space's bounds mapped onto [0, 1]^6 (log scales where the space is log)."""
    coordinates = [  # the space's order: lr, weight_decay, dropout, batch_size, channels, levels
        np.log(np.asarray(lr) / 1e-4) / np.log(3e-2 / 1e-4),
        np.log(np.asarray(weight_decay) / 1e-6) / np.log(1e-1 / 1e-6),
        np.asarray(dropout) / 0.5,
        np.log2(np.asarray(batch_size) / 32) / 2,  # 32, 64, 128 -> 0, 0.5, 1
        np.log2(np.asarray(channels) / 16) / 2,  # 16, 32, 64 -> 0, 0.5, 1
        (np.asarray(levels) - 1) / 3,  # 1..4 -> 0..1
    ]
    return np.stack(np.broadcast_arrays(*coordinates), axis=-1)


def curve(u: np.ndarray, epoch: np.ndarray | int) -> np.ndarray:
    """Noise-free accuracy after `epoch` epochs of the config at unit-cube point u."""
    final = CHANCE + (CEILING - CHANCE) * hartmann6(u) / HARTMANN6_MIN
    tau = 0.5 + 3.0 * (1.0 - u[..., 0]) ** 2  # epochs to reach 63% of the way: low lr learns slowly
    return CHANCE + (final - CHANCE) * (1.0 - np.exp(-np.asarray(epoch) / tau))


def crossing_curve(u: np.ndarray, epoch: np.ndarray | int) -> np.ndarray:
    """Noise-free accuracy after `epoch` epochs where fast starters end worse: an early level
    set by the lr alone fades out over the first epochs, while the Hartmann-6 score, lowered by
    up to 40% for the highest lr, builds up."""
    speed = u[..., 0]
    early = CHANCE + (CEILING - CHANCE) * 0.7 * speed
    final = CHANCE + (CEILING - CHANCE) * hartmann6(u) / HARTMANN6_MIN * (1.0 - 0.4 * speed)
    fade = np.exp(-(np.asarray(epoch) - 1) / 2.0)  # 1 after one epoch, 0.01 after ten
    return fade * early + (1.0 - fade) * (CHANCE + (final - CHANCE) * (1.0 - np.exp(-np.asarray(epoch) / 2.0)))


CURVES = {"hartmann": curve, "crossing": crossing_curve}


def val_acc(config: dict, epoch: int, shape: str = "hartmann") -> float:
    """The noisy accuracy a trial of `config` reports after `epoch` epochs on the curve `shape`."""
    model = config["model"]
    u = unit_cube(
        config["lr"], config["weight_decay"], config["dropout"], config["batch_size"],
        model["channels"], model["levels"],
    )
    key = repr((config["seed"], epoch, *np.round(u, 12).tolist())).encode()
    noise = np.random.default_rng(zlib.crc32(key)).normal(0.0, NOISE_SD)
    return float(CURVES[shape](u, epoch) + noise)


def optimum(max_epochs: int, resolution: int = 41, shape: str = "hartmann") -> float:
    """The best noise-free accuracy after `max_epochs` over the whole space (dense search + refine)."""
    best = -math.inf
    for batch_size in (32, 64, 128):
        for channels in (16, 32, 64):
            for levels in (1, 2, 3, 4):
                lo = np.array([math.log(1e-4), math.log(1e-6), 0.0])
                hi = np.array([math.log(3e-2), math.log(1e-1), 0.5])
                for _ in range(4):  # zoom in around the best grid point, four times
                    axes = [np.linspace(lo[i], hi[i], resolution) for i in range(3)]
                    lr, wd, dropout = np.meshgrid(*axes, indexing="ij")
                    u = unit_cube(np.exp(lr), np.exp(wd), dropout, batch_size, channels, levels)
                    values = CURVES[shape](u, max_epochs)
                    i = np.unravel_index(np.argmax(values), values.shape)
                    best = max(best, float(values[i]))
                    centre = np.array([lr[i], wd[i], dropout[i]])
                    step = (hi - lo) / (resolution - 1)
                    lo = np.maximum(centre - 2 * step, [math.log(1e-4), math.log(1e-6), 0.0])
                    hi = np.minimum(centre + 2 * step, [math.log(3e-2), math.log(1e-1), 0.5])
    return best


def train(config: dict, data: None = None) -> None:
    """The trainable: report `val_acc` once per epoch, checkpointing like trainables.har.train."""
    report_epochs(config, "hartmann")


def train_crossing(config: dict, data: None = None) -> None:
    """The trainable on the crossing curves."""
    report_epochs(config, "crossing")


def report_epochs(config: dict, shape: str) -> None:
    """Report the curve `shape`'s val_acc each epoch, resuming from the checkpoint's epoch."""
    finished = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            with open(os.path.join(directory, CHECKPOINT_FILE)) as saved:
                finished = int(saved.read())
    for epoch in range(finished + 1, config["max_epochs"] + 1):
        time.sleep(SLEEP_S)
        metrics = {"epoch": epoch, "val_acc": val_acc(config, epoch, shape)}
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, CHECKPOINT_FILE), "w") as out:
                out.write(str(epoch))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def no_data() -> None:
    """The test function needs no data."""
    return None
