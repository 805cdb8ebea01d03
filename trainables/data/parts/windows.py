"""A continuous recording into fixed-length windows: gaps filled, rate reduced, and every window
cut from one run of a single label, so no window mixes two activities.

Example:
    >>> labels = np.array([1, 1, 1, 1, 2, 2, 2])
    >>> label_runs(labels)
    [(0, 4), (4, 7)]
    >>> sliding_windows(np.arange(8.0).reshape(4, 2), length=2, step=2).shape  # [n, C, length]
    (2, 2, 2)
"""

import numpy as np


def label_runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each maximal run of equal consecutive labels, in order."""
    if len(labels) == 0:
        return []
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = [0, *changes.tolist(), len(labels)]
    return list(zip(bounds[:-1], bounds[1:]))


def sliding_windows(signal: np.ndarray, length: int, step: int) -> np.ndarray:
    """Windows [n, channels, length] of `signal` [time, channels], starting at 0, step, 2 step, ...

    Only whole windows are kept: the samples after the last one that fits are dropped.
    """
    if len(signal) < length:
        return np.empty((0, signal.shape[1], length), dtype=signal.dtype)
    views = np.lib.stride_tricks.sliding_window_view(signal, length, axis=0)  # [starts, C, length]
    return views[::step].copy()


def downsample(signal: np.ndarray, factor: int) -> np.ndarray:
    """`signal` [time, channels] at 1/`factor` of its rate: the mean of each `factor` samples.

    Averaging is a simple low-pass filter, so fast vibration does not alias into the result.
    """
    if factor == 1:
        return signal
    usable = len(signal) // factor * factor
    return signal[:usable].reshape(-1, factor, signal.shape[1]).mean(axis=1)


def fill_gaps(signal: np.ndarray) -> np.ndarray:
    """`signal` [time, channels] with each NaN linearly interpolated from its channel's neighbours.

    Before a channel's first value and after its last, the nearest value is held. A channel with
    no value at all stays NaN; the caller decides what that means.
    """
    filled = signal.copy()
    time = np.arange(len(signal))
    for channel in range(signal.shape[1]):
        values = signal[:, channel]
        known = ~np.isnan(values)
        if known.any() and not known.all():
            filled[:, channel] = np.interp(time, time[known], values[known])
    return filled
