"""Your own windows from one `.npz` file, so tuning on your recordings needs no code.

The file holds `X` (windows [N, channels, window], numbers), `y` (N integer labels) and, best,
`subject` (N integer ids of who or which recording each window came from), plus optionally
`classes` (the class names, label i named `classes[i]`), `channels` (the channel names, in the
order of X's axis 1) and `sample_rate` (Hz), which an exported model carries:

    np.savez("windows.npz", X=windows, y=labels, subject=subject_ids, classes=["walk", "sit"],
             channels=["acc_x", "acc_y", "acc_z"], sample_rate=50)

With `subject`, splits are by subject as for the public data sets. Without it, every window is
its own "subject": validation windows are drawn at random (seeded), which overestimates accuracy
when windows overlap or come from the people also trained on.

Example:
    >>> data = npz_windows("windows.npz", num_folds=5, fold=0)  # doctest: +SKIP
"""

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainables.data import Dataset
from trainables.data.parts.subjects import Subjects, choose_subjects, subject_dataset

EXAMPLE = "np.savez(path, X=windows, y=labels, subject=subject_ids)"


def npz_windows(
    path: str | os.PathLike = "data/windows.npz",
    classes: Sequence[str] | None = None,
    train_subjects: Subjects = None,
    val_subjects: Subjects = None,
    test_subjects: Subjects = None,
    num_folds: int = 5,
    fold: int = 0,
    seed: int = 0,
) -> Dataset:
    """The file's windows, split by subject and standardized on the train split.

    Class names come from `classes`, else the file's `classes`; then labels must lie in
    [0, len(classes)). Without names, the distinct labels, sorted, become classes 0, 1, ...
    named after their values. The subject arguments are those of
    `trainables.data.parts.subjects.choose_subjects`; `seed` draws the random split of a file without
    `subject`.
    """
    file = Path(path).expanduser()
    arrays = read_npz(file)
    x = _windows(file, arrays["X"])
    labels = _integers(file, "y", arrays["y"], len(x))
    classes = classes if classes is not None else arrays.get("classes")
    names, y = _classes(file, labels, classes)
    if "subject" in arrays:
        subjects = _integers(file, "subject", arrays["subject"], len(x))
    else:
        named = {"train": train_subjects, "val": val_subjects, "test": test_subjects}
        for key, value in named.items():
            if value is not None and np.size(value) > 0:
                raise ValueError(
                    f"data.{key}_subjects: {file} has no 'subject' array, so there are no subjects "
                    f"to name; save one ({EXAMPLE}) or set data.{key}_subjects=null"
                )
        subjects = np.random.default_rng(seed).permutation(len(x))
    split = choose_subjects(
        np.unique(subjects),
        train_subjects=train_subjects,
        val_subjects=val_subjects,
        test_subjects=test_subjects,
        num_folds=num_folds,
        fold=fold,
    )
    channels = _channel_names(file, arrays.get("channels"), x.shape[1])
    rate = _sample_rate(file, arrays.get("sample_rate"))
    return subject_dataset(x, y, subjects, names, split, channels, rate)


def read_npz(file: Path) -> dict[str, np.ndarray]:
    """Every array in the file; raises FileNotFoundError / ValueError starting with `data.path`."""
    if not file.is_file():
        raise FileNotFoundError(
            f"data.path: no file '{file}'; save your windows with {EXAMPLE} and set data.path"
        )
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"data.path: {file} is not a readable .npz ({type(err).__name__}: {err}); "
            f"save it with {EXAMPLE}"
        ) from None
    for key in ("X", "y"):
        if key not in arrays:
            raise ValueError(
                f"data.path: {file} has no array '{key}' (it has: {', '.join(arrays) or 'none'}); "
                f"save it with {EXAMPLE}"
            )
    return arrays


def _windows(file: Path, x: np.ndarray) -> np.ndarray:
    if x.ndim != 3 or len(x) == 0 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(
            f"data.path: {file} X must be numbers [windows, channels, samples], got {x.dtype} "
            f"{list(x.shape)}; e.g. X.shape == (1000, 6, 128)"
        )
    x = x.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=(1, 2)))
    if len(bad):
        raise ValueError(
            f"data.path: {file} X window {bad[0]} has a NaN or infinite value "
            f"({len(bad)} windows do); fill or drop them before saving"
        )
    return x


def _integers(file: Path, key: str, values: np.ndarray, count: int) -> np.ndarray:
    numbers = np.issubdtype(values.dtype, np.number) and np.all(values == np.round(values))
    if values.shape != (count,) or not numbers:
        raise ValueError(
            f"data.path: {file} {key} must be {count} whole numbers (one per window of X), got "
            f"{values.dtype} {list(values.shape)}; save it with {EXAMPLE}"
        )
    return values.astype(np.int64)


def _classes(
    file: Path, labels: np.ndarray, classes: Sequence[str] | np.ndarray | None
) -> tuple[list[str], np.ndarray]:
    """The class names and the labels 0..K-1 they index."""
    if classes is None:
        values, y = np.unique(labels, return_inverse=True)
        return [str(v) for v in values], y.astype(np.int64)
    names = [str(name) for name in np.asarray(classes).reshape(-1)]
    outside = np.flatnonzero((labels < 0) | (labels >= len(names)))
    if len(outside):
        raise ValueError(
            f"data.classes: {file} y[{outside[0]}] is {labels[outside[0]]}, but {len(names)} class "
            f"names give labels 0..{len(names) - 1}; name one class per label"
        )
    return names, labels


def _channel_names(file: Path, channels: np.ndarray | None, count: int) -> list[str] | None:
    if channels is None:
        return None
    names = [str(name) for name in np.asarray(channels).reshape(-1)]
    if len(names) != count:
        raise ValueError(
            f"data.path: {file} channels names {len(names)} channels, X has {count}; "
            "name each channel once, in X's order"
        )
    return names


def _sample_rate(file: Path, rate: np.ndarray | None) -> float | None:
    if rate is None:
        return None
    values = np.asarray(rate).reshape(-1)
    if len(values) != 1 or not np.issubdtype(values.dtype, np.number) or not values[0] > 0:
        raise ValueError(
            f"data.path: {file} sample_rate must be one number of Hz above 0, got {values.tolist()}; "
            "e.g. sample_rate=50"
        )
    return float(values[0])
