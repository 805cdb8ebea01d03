"""UCI HAR ("Human Activity Recognition Using Smartphones"), read from its published folder.

30 subjects wore a smartphone on the waist while walking, walking up and down stairs, sitting,
standing and lying; its accelerometer and gyroscope were sampled at 50 Hz and cut into windows of
2.56 s (128 samples, 50% overlap). The raw windows are in `Inertial Signals/`: body and total
acceleration (in g) and body angular velocity (rad/s), x/y/z each, one window per line. The
published train/test split is by subject (21 and 9) and is kept; validation subjects are carved
from the training subjects.

Example:
    >>> data = uci_har("~/data", num_folds=5, fold=0)  # ~/data/UCI HAR Dataset  # doctest: +SKIP
    >>> data.x_train.shape[1:], data.classes[0]  # doctest: +SKIP
    ((9, 128), 'walking')
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainables.data.parts.cache import load_or_build
from trainables.data.parts.channels import channel_indices
from trainables.data import Dataset
from trainables.data.parts.subjects import Subjects, choose_subjects, subject_dataset
from trainables.data.parts.tables import line_error, read_table

URL = "https://archive.ics.uci.edu/dataset/240"
FOLDER = "UCI HAR Dataset"
SIGNALS = ("body_acc", "body_gyro", "total_acc")
CHANNELS = tuple(f"{signal}_{axis}" for signal in SIGNALS for axis in "xyz")
WINDOW = 128  # samples per window, as published
RATE = 50.0  # Hz
SPLITS = ("train", "test")
FIX = f"unpack the data set again from {URL}"


def uci_har(
    path: str | os.PathLike = "data",
    channels: Sequence[str] = CHANNELS,
    train_subjects: Subjects = None,
    val_subjects: Subjects = None,
    test_subjects: Subjects = None,
    num_folds: int = 5,
    fold: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """UCI HAR windows [N, channels, 128], split by subject and standardized on the train split.

    `path` is the folder holding `UCI HAR Dataset` (or that folder itself). `test_subjects` null
    keeps the published test subjects; the subject arguments are those of
    `trainables.data.parts.subjects.choose_subjects`. The parsed windows are cached in `cache_dir`.
    """
    root = find_root(Path(path).expanduser())
    picked = channel_indices(channels, CHANNELS)
    classes, activity_ids = read_activity_labels(root / "activity_labels.txt")
    arrays = load_or_build(
        "uci_har",
        {"channels": CHANNELS, "window": WINDOW},
        raw_files(root),
        cache_dir,
        lambda: read_windows(root, activity_ids),
        names=("x", "y", "subject", "test"),
    )
    subjects = arrays["subject"]
    published_test = np.unique(subjects[arrays["test"]]).tolist()
    split = choose_subjects(
        np.unique(subjects),
        train_subjects=train_subjects,
        val_subjects=val_subjects,
        test_subjects=published_test if test_subjects is None else test_subjects,
        num_folds=num_folds,
        fold=fold,
    )
    names = [CHANNELS[i] for i in picked]
    return subject_dataset(arrays["x"][:, picked], arrays["y"], subjects, classes, split, names, RATE)


def find_root(path: Path) -> Path:
    """The `UCI HAR Dataset` folder: inside `path`, or `path` itself."""
    for root in (path / FOLDER, path):
        if (root / "train" / "y_train.txt").is_file():
            return root
    expected = path / FOLDER / "train" / "y_train.txt"
    if (path / f"{FOLDER}.zip").is_file():
        fix = f"unpack {path / FOLDER}.zip there (the download holds a zip inside a zip)"
    else:
        fix = f"download it from {URL}, unpack it and set data.path to the folder holding '{FOLDER}'"
    raise FileNotFoundError(f"data.path: no folder '{path / FOLDER}' (looked for {expected}); {fix}")


def raw_files(root: Path) -> list[Path]:
    """Every file the windows are read from; raises FileNotFoundError for a missing one."""
    files = [root / "activity_labels.txt"]
    for split in SPLITS:
        signals = root / split / "Inertial Signals"
        files += [signals / f"{channel}_{split}.txt" for channel in CHANNELS]
        files += [root / split / f"y_{split}.txt", root / split / f"subject_{split}.txt"]
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"data.path: {file} is missing; {FIX}")
    return files


def read_activity_labels(file: Path) -> tuple[list[str], np.ndarray]:
    """Class names (lower case, in id order) and the sorted activity ids of `activity_labels.txt`.

    Each line is `<id> <NAME>`, e.g. `1 WALKING`.
    """
    names = {}
    with open(file, encoding="utf-8", errors="replace") as lines:
        for row, line in enumerate(lines):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[0].isdigit():
                raise line_error(file, row, f"{line.strip()[:40]!r} is not '<id> <NAME>'", FIX)
            names[int(fields[0])] = fields[1].lower()
    if len(names) < 2:
        raise ValueError(f"data.path: {file} names {len(names)} activities, expected 6; {FIX}")
    ids = sorted(names)
    return [names[i] for i in ids], np.array(ids)


def read_windows(root: Path, activity_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Every published window: x float32 [N, 9, 128], y (0-based, in id order), subject, test."""
    parts = {name: [] for name in ("x", "y", "subject", "test")}
    for split in SPLITS:
        y_file = root / split / f"y_{split}.txt"
        subject_file = root / split / f"subject_{split}.txt"
        y = read_table(y_file, columns=1, fix=FIX)[:, 0]
        subjects = read_table(subject_file, columns=1, fix=FIX)[:, 0]
        signal_files = [root / split / "Inertial Signals" / f"{c}_{split}.txt" for c in CHANNELS]
        signals = [read_table(file, columns=WINDOW, fix=FIX) for file in signal_files]
        for file, table in [(subject_file, subjects), *zip(signal_files, signals)]:
            if len(table) != len(y):
                raise ValueError(
                    f"data.path: {file} has {len(table)} lines, {y_file} has {len(y)}; {FIX}"
                )
        unknown = np.flatnonzero(~np.isin(y, activity_ids))
        if len(unknown):
            known = ", ".join(map(str, activity_ids))
            problem = f"activity {y[unknown[0]]:g} is not one of {known}"
            raise line_error(y_file, unknown[0], problem, FIX)
        odd = np.flatnonzero((subjects < 1) | (subjects != np.round(subjects)))
        if len(odd):
            problem = f"subject {subjects[odd[0]]:g} is not an id 1, 2, ..."
            raise line_error(subject_file, odd[0], problem, FIX)
        parts["x"].append(np.stack(signals, axis=1).astype(np.float32))
        parts["y"].append(np.searchsorted(activity_ids, y).astype(np.int64))
        parts["subject"].append(subjects.astype(np.int64))
        parts["test"].append(np.full(len(y), split == "test"))
    both = np.intersect1d(*parts["subject"])
    if len(both):
        raise ValueError(
            f"data.path: subject {both[0]} is in both subject_train.txt and subject_test.txt of "
            f"{root}; {FIX}"
        )
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}
