"""PAMAP2 ("Physical Activity Monitoring"), read from its published `Protocol/subject10N.dat` files.

Nine subjects wore three IMUs (hand, chest, ankle; 100 Hz) and a heart-rate monitor (about 9 Hz)
through a protocol of 12 activities. Each line of a subject's file is one 100 Hz sample of 54
space-separated columns: timestamp (s), activity id (0 = transient), heart rate (bpm), then per
IMU 17 columns: temperature, 3D acceleration +-16 g, 3D acceleration +-6 g, 3D gyroscope,
3D magnetometer, 4 orientation values (invalid in this data set). Missing values are `NaN`.

Here each chosen channel's gaps (the heart rate's between beats-per-minute readings, the IMUs'
dropped packets) are interpolated within the subject's recording, transient samples are dropped,
and windows are cut from runs of one activity only, so no window crosses an activity change or
two subjects. The 12 activities become labels 0..11 in id order.

Example:
    >>> data = pamap2("~/data", channels=["ankle_acc16_x", "heart_rate"])  # doctest: +SKIP
    >>> data.x_train.shape[1:], data.classes[-1]  # doctest: +SKIP
    ((2, 512), 'rope_jumping')
"""

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainables.data.parts.cache import load_or_build
from trainables.data.parts.channels import channel_indices
from trainables.data import Dataset
from trainables.data.parts.subjects import Subjects, choose_subjects, subject_dataset
from trainables.data.parts.tables import line_error, read_table
from trainables.data.parts.windows import downsample, fill_gaps, label_runs, sliding_windows

URL = "https://archive.ics.uci.edu/dataset/231"
FOLDER = "PAMAP2_Dataset"
RATE = 100  # Hz of the IMU samples, one per line
TRANSIENT = 0
ACTIVITIES = {
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "nordic_walking",
    12: "ascending_stairs",
    13: "descending_stairs",
    16: "vacuum_cleaning",
    17: "ironing",
    24: "rope_jumping",
}
LABELS = {activity_id: label for label, activity_id in enumerate(ACTIVITIES)}  # ids -> 0..11
IMU_COLUMNS = (
    "temperature",
    *(f"{sensor}_{axis}" for sensor in ("acc16", "acc6", "gyro", "mag") for axis in "xyz"),
    *(f"orientation_{i}" for i in range(1, 5)),
)
IMUS = ("hand", "chest", "ankle")
CHANNELS = ("heart_rate", *(f"{imu}_{column}" for imu in IMUS for column in IMU_COLUMNS))
COLUMNS = ("timestamp", "activity_id", *CHANNELS)  # the 54 columns of a subject file
DEFAULT_CHANNELS = tuple(
    f"{imu}_{sensor}_{axis}"
    for imu in IMUS
    for sensor in ("acc16", "gyro")
    for axis in "xyz"
)
FIX = f"unpack the data set again from {URL}"


def pamap2(
    path: str | os.PathLike = "data",
    channels: Sequence[str] = DEFAULT_CHANNELS,
    window_seconds: float = 5.12,
    overlap: float = 0.5,
    sample_rate: float = RATE,
    train_subjects: Subjects = None,
    val_subjects: Subjects = None,
    test_subjects: Subjects = (106,),
    num_folds: int = 4,
    fold: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """PAMAP2 protocol windows [N, channels, window], split by subject, standardized on train.

    `path` is the folder holding `PAMAP2_Dataset` (or that folder, or its `Protocol` folder).
    Windows last `window_seconds` at `sample_rate` Hz (100, or 100 / k: each k samples averaged)
    and consecutive windows share `overlap` of their length. Subjects are numbered as their
    files (`subject101.dat` is 101); the subject arguments are those of
    `trainables.data.parts.subjects.choose_subjects`. The windows are cached in `cache_dir`.
    """
    files = subject_files(Path(path).expanduser())
    picked = channel_indices(channels, CHANNELS)
    factor = _downsampling(sample_rate)
    length, step = window_samples(window_seconds, overlap, RATE / factor)
    names = [CHANNELS[i] for i in picked]
    arrays = load_or_build(
        "pamap2",
        {"channels": names, "factor": factor, "length": length, "step": step},
        list(files.values()),
        cache_dir,
        lambda: read_windows(files, names, factor, length, step),
        names=("x", "y", "subject"),
    )
    split = choose_subjects(
        np.unique(arrays["subject"]),
        train_subjects=train_subjects,
        val_subjects=val_subjects,
        test_subjects=test_subjects,
        num_folds=num_folds,
        fold=fold,
    )
    classes = list(ACTIVITIES.values())
    rate = RATE / factor
    return subject_dataset(arrays["x"], arrays["y"], arrays["subject"], classes, split, names, rate)


def subject_files(path: Path) -> dict[int, Path]:
    """Subject id -> its Protocol file, for every `subject<id>.dat` in the Protocol folder."""
    for folder in (path / FOLDER / "Protocol", path / "Protocol", path):
        files = {}
        for file in sorted(folder.glob("subject*.dat")):
            match = re.fullmatch(r"subject(\d+)\.dat", file.name)
            if match and file.is_file():
                files[int(match.group(1))] = file
        if files:
            return files
    expected = path / FOLDER / "Protocol"
    if (path / f"{FOLDER}.zip").is_file():
        fix = f"unpack {path / FOLDER}.zip there (the download holds a zip inside a zip)"
    else:
        fix = f"download it from {URL}, unpack it and set data.path to the folder holding '{FOLDER}'"
    looked_for = expected / "subject101.dat"
    raise FileNotFoundError(f"data.path: no folder '{expected}' (looked for {looked_for}); {fix}")


def window_samples(window_seconds: float, overlap: float, rate: float) -> tuple[int, int]:
    """Window length and step in samples; raises ValueError naming the bad setting."""
    if not isinstance(window_seconds, (int, float)) or not window_seconds * rate >= 1:
        raise ValueError(
            f"data.window_seconds: {window_seconds!r} is shorter than one sample at {rate:g} Hz; "
            "use e.g. data.window_seconds=5.12"
        )
    if not isinstance(overlap, (int, float)) or not 0 <= overlap < 1:
        raise ValueError(
            f"data.overlap: must be in [0, 1), got {overlap!r}; e.g. data.overlap=0.5 for 50%"
        )
    length = round(window_seconds * rate)
    return length, max(1, round(length * (1 - overlap)))


def read_windows(
    files: dict[int, Path], channels: Sequence[str], factor: int, length: int, step: int
) -> dict[str, np.ndarray]:
    """Windows of every subject's protocol activities: x float32 [N, C, length], y, subject."""
    columns = [COLUMNS.index(name) for name in channels]
    parts = {"x": [], "y": [], "subject": []}
    for subject, file in files.items():
        table = read_table(file, columns=len(COLUMNS), nan_ok=True, fix=FIX)
        activity = _activities(file, table[:, 1])
        signal = fill_gaps(table[:, columns])
        empty = np.flatnonzero(np.isnan(signal).all(axis=0))
        if len(empty):
            raise ValueError(
                f"data.channels: {file} has no value for {channels[empty[0]]}; "
                "leave it out of data.channels"
            )
        for start, stop in label_runs(activity):
            if activity[start] == TRANSIENT:
                continue
            windows = sliding_windows(downsample(signal[start:stop], factor), length, step)
            parts["x"].append(windows.astype(np.float32))
            parts["y"].append(np.full(len(windows), LABELS[activity[start]], dtype=np.int64))
            parts["subject"].append(np.full(len(windows), subject, dtype=np.int64))
    if sum(map(len, parts["x"])) == 0:
        raise ValueError(
            f"data.window_seconds: a window of {length} samples is longer than every activity in "
            f"{files[min(files)].parent}; use a shorter window"
        )
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _activities(file: Path, column: np.ndarray) -> np.ndarray:
    """The activity id column as integers; raises naming the line of an id outside the protocol."""
    known = np.isin(column, [TRANSIENT, *ACTIVITIES])
    if not known.all():
        row = int(np.flatnonzero(~known)[0])
        ids = ", ".join(map(str, [TRANSIENT, *ACTIVITIES]))
        problem = f"activity id {column[row]:g} is not a protocol activity ({ids})"
        raise line_error(file, row, problem, FIX)
    return column.astype(np.int64)


def _downsampling(sample_rate: float) -> int:
    """How many 100 Hz samples make one at `sample_rate`."""
    factor = RATE / sample_rate if isinstance(sample_rate, (int, float)) and sample_rate > 0 else 0
    if factor < 1 or not math.isclose(factor, round(factor), rel_tol=1e-3):  # 33.333 Hz is 3
        raise ValueError(
            f"data.sample_rate: {sample_rate!r} Hz is not 100 Hz divided by a whole number; "
            "use 100, 50, 33.333, 25, 20, ..."
        )
    return round(factor)
