"""Subject-wise splits: which subjects train, validate and test, and the Dataset they make.

A subject's windows are in one split only, so validation and test scores say how a model does
on people it has never seen. Test subjects are set aside first; validation subjects are carved
from the remaining (training) subjects, either named (`val_subjects`) or as one fold of a
leave-subjects-out split (`num_folds`, `fold`). Every split is standardized per channel with the
mean and standard deviation of the training split alone.

Example:
    >>> split = choose_subjects([1, 2, 3, 4, 5, 6], test_subjects=[6], num_folds=5, fold=1)
    >>> split.train, split.val, split.test
    ([1, 3, 4, 5], [2], [6])
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trainables.data import Dataset

Subjects = Sequence[int] | int | None  # how a config names subjects: a list, one id, or null


@dataclass(frozen=True)
class SubjectSplit:
    """The subject ids of each split, sorted; `test` may be empty."""

    train: list[int]
    val: list[int]
    test: list[int]


def choose_subjects(
    available: Sequence[int],
    *,
    train_subjects: Subjects = None,
    val_subjects: Subjects = None,
    test_subjects: Subjects = None,
    num_folds: int = 5,
    fold: int = 0,
) -> SubjectSplit:
    """Split the `available` subjects (those with windows) as the config asks.

    `test_subjects` null means none. `train_subjects` null means every available subject not in
    test; named, it is the pool validation is carved from (others are left out). `val_subjects`
    null means fold `fold` of `num_folds`: the pool, sorted, cut into `num_folds` consecutive
    groups of (nearly) equal size, group `fold` validating. Raises ValueError naming the key.
    """
    available = sorted(int(s) for s in available)
    test = _named("data.test_subjects", test_subjects, available)
    pool = _named("data.train_subjects", train_subjects, available)
    if train_subjects is None:
        pool = sorted(set(available) - set(test))
    _disjoint("data.train_subjects", pool, "data.test_subjects", test)
    if val_subjects is None:
        val = _fold(pool, num_folds, fold)
    else:
        val = _named("data.val_subjects", val_subjects, available)
        if not val:
            raise ValueError(
                "data.val_subjects: is empty; name at least one subject, or null to use data.fold"
            )
        _disjoint("data.val_subjects", val, "data.test_subjects", test)
        if train_subjects is not None:
            _disjoint("data.val_subjects", val, "data.train_subjects", pool)
    train = sorted(set(pool) - set(val))
    if not train:
        raise ValueError(
            f"data.train_subjects: no training subject is left (validation: {_ids(val)}, "
            f"test: {_ids(test)}); leave more subjects for training"
        )
    return SubjectSplit(train=train, val=val, test=test)


def subject_dataset(
    x: np.ndarray,
    y: np.ndarray,
    subjects: np.ndarray,
    classes: list[str],
    split: SubjectSplit,
    channels: list[str] | None = None,
    sample_rate: float | None = None,
) -> Dataset:
    """The windows of each split's subjects, standardized with the training split's statistics,
    which the Dataset keeps (with the channel names and sample rate) for a deployed model."""
    parts = {}
    for name in ("train", "val", "test"):
        chosen = np.isin(subjects, getattr(split, name))
        parts[name] = (x[chosen], y[chosen].astype(np.int64))
    mean, std = channel_stats(parts["train"][0])
    x_train, y_train = parts["train"]
    x_val, y_val = parts["val"]
    x_test, y_test = parts["test"] if split.test else (None, None)
    return Dataset(
        standardize(x_train, mean, std),
        y_train,
        standardize(x_val, mean, std),
        y_val,
        list(classes),
        None if x_test is None else standardize(x_test, mean, std),
        y_test,
        channels=None if channels is None else list(channels),
        sample_rate=sample_rate,
        mean=mean,
        std=std,
    )


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of windows [N, channels, window], as [channels, 1].

    A constant channel gets a deviation of 1, so standardizing only centres it.
    """
    mean = x.mean(axis=(0, 2), dtype=np.float64)[:, None]
    std = x.std(axis=(0, 2), dtype=np.float64)[:, None]
    return mean, np.where(std > 0, std, 1.0)


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per channel, as float32."""
    return ((x - mean) / std).astype(np.float32)


def _named(key: str, subjects: Subjects, available: list[int]) -> list[int]:
    if subjects is None:
        return []
    if isinstance(subjects, (int, np.integer)):
        subjects = [subjects]
    chosen, known = set(), set(available)
    for subject in subjects:
        if isinstance(subject, bool) or not isinstance(subject, (int, np.integer)):
            raise ValueError(
                f"{key}: {subject!r} is not a subject id; use ids from: {_ids(available)}"
            )
        if subject not in known:
            raise ValueError(
                f"{key}: subject {subject} has no windows; use ids from: {_ids(available)}"
            )
        chosen.add(int(subject))
    return sorted(chosen)


def _disjoint(key: str, subjects: list[int], other_key: str, others: list[int]) -> None:
    shared = sorted(set(subjects) & set(others))
    if shared:
        raise ValueError(
            f"{key}: subject {shared[0]} is also in {other_key}; each subject belongs to one split"
        )


def _fold(pool: list[int], num_folds: int, fold: int) -> list[int]:
    if isinstance(num_folds, bool) or not isinstance(num_folds, int) or num_folds < 2:
        raise ValueError(
            f"data.num_folds: must be an integer >= 2, got {num_folds!r}; e.g. data.num_folds=5"
        )
    if num_folds > len(pool):
        raise ValueError(
            f"data.num_folds: {num_folds} folds need at least {num_folds} training subjects, "
            f"there are {len(pool)}; use fewer folds or name data.val_subjects"
        )
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < num_folds:
        raise ValueError(
            f"data.fold: must be one of 0..{num_folds - 1} (data.num_folds={num_folds}), "
            f"got {fold!r}"
        )
    return [int(s) for s in np.array_split(np.array(pool), num_folds)[fold]]


def _ids(subjects: list[int]) -> str:
    """Subject ids for a message, short even for thousands of ids."""
    if not subjects:
        return "none"
    if len(subjects) > 12:
        return f"{', '.join(map(str, subjects[:10]))}, ... ({len(subjects)} subjects)"
    return ", ".join(map(str, subjects))
