"""A synthetic human-activity-recognition (HAR) set to tune on: no download, same seed, same arrays."""

import numpy as np

from trainables.data.dataset import Dataset

HAR_CLASSES = ["walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "lying"]
SENSORS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]  # channel 6 on: acc_x_2, ...
RATE = 50.0  # Hz


def synthetic_har(
    num_train: int = 2400,
    num_val: int = 600,
    num_test: int = 0,
    channels: int = 6,
    window: int = 64,
    seed: int = 0,
) -> Dataset:
    """Accelerometer/gyroscope-like windows of six activities, so a tuning run needs no download.

    Sampled at 50 Hz. Channels 0-2 are an accelerometer (x forward, y left, z up, in g), 3-5 a
    gyroscope (rad/s); further channels repeat the sensor with their own gain and noise. Each
    window is a different "subject": gait frequency, amplitude, phase, sensor tilt and gains vary.
    The task is learnable but not trivial: the three walking classes differ only a little in
    cadence, harmonics and tilt, sitting and standing only in a small tilt under noise, and
    the random gait phase means no linear function of the raw samples separates the walks.
    Same seed, same arrays; the test windows come from a random stream of their own, so asking
    for them leaves the train and validation windows as they were. The windows are raw (no
    standardization), as a sensor gives them.
    """
    x, y = _windows(np.random.default_rng(seed), num_train + num_val, channels, window)
    test = (None, None)
    if num_test:
        test = _windows(np.random.default_rng([seed, 1]), num_test, channels, window)
    names = [SENSORS[i % 6] + (f"_{i // 6 + 1}" if i >= 6 else "") for i in range(channels)]
    train, val = slice(0, num_train), slice(num_train, None)
    return Dataset(
        x[train], y[train], x[val], y[val], list(HAR_CLASSES), *test, channels=names, sample_rate=RATE
    )


def _windows(
    rng: np.random.Generator, n: int, channels: int, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows [n, channels, window] and their labels, drawn from ``rng``."""
    y = rng.integers(0, len(HAR_CLASSES), size=n)
    t = np.arange(window) / RATE  # seconds

    def per_class(values: list[float]) -> np.ndarray:
        return np.array(values)[y][:, None]  # [n, 1]

    # The class sets the mean gait or posture; every window then varies like a new subject.
    #                    walk  up    down  sit    stand  lie
    cadence = per_class([1.9, 1.7, 2.1, 0.0, 0.0, 0.0]) * rng.normal(1.0, 0.08, (n, 1))  # steps/s
    bounce = per_class([0.25, 0.22, 0.30, 0.0, 0.0, 0.0]) * rng.lognormal(0.0, 0.25, (n, 1))  # g
    second = per_class([0.30, 0.50, 0.30, 0.0, 0.0, 0.0]) + rng.normal(0, 0.08, (n, 1))
    third = per_class([0.10, 0.10, 0.30, 0.0, 0.0, 0.0]) + rng.normal(0, 0.08, (n, 1))
    pitch = np.radians(per_class([0.0, 6.0, -5.0, 12.0, 0.0, 80.0]) + rng.normal(0, 4.0, (n, 1)))
    roll = np.radians(rng.normal(0, 4.0, (n, 1)))
    sway = per_class([0.0, 0.0, 0.0, 0.004, 0.012, 0.002]) * rng.lognormal(0.0, 0.3, (n, 1))  # g

    step = 2 * np.pi * cadence * t + rng.uniform(0, 2 * np.pi, (n, 1))  # gait phase, [n, window]
    gait = np.sin(step) + second * np.sin(2 * step + 0.5) + third * np.sin(3 * step + 1.0)
    foot = rng.integers(0, 2, (n, 1))  # which foot leads, so the stride phase covers the circle
    stride = step / 2 + np.pi * foot  # the body sways sideways once every two steps
    drift_hz = rng.uniform(0.2, 0.5, (n, 1))
    drift = np.sin(2 * np.pi * drift_hz * t + rng.uniform(0, 2 * np.pi, (n, 1)))  # postural sway

    gravity = [-np.sin(pitch), np.sin(roll) * np.cos(pitch), np.cos(roll) * np.cos(pitch)]
    acc = [
        gravity[0] + 0.5 * bounce * np.cos(step) + sway * drift,
        gravity[1] + 0.3 * bounce * np.sin(stride) + sway * drift,
        gravity[2] + bounce * gait + sway * drift,
    ]
    gyro = [
        1.2 * bounce * np.cos(stride),
        2.0 * bounce * np.sin(step + 0.3),
        0.5 * bounce * np.sin(stride),
    ]
    imu = np.stack(acc + gyro, axis=1)  # [n, 6, window]

    sensors = imu[:, np.arange(channels) % 6]
    gain = rng.normal(1.0, 0.05, (n, channels, 1))
    offset = rng.normal(0.0, 0.02, (n, channels, 1))
    noise = rng.normal(0.0, 0.03, (n, channels, window))
    return (gain * sensors + offset + noise).astype(np.float32), y.astype(np.int64)
