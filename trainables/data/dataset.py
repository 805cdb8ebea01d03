"""The data a trainable receives: windows of multichannel time series and their labels.

To tune on your own data, write a function that returns a `Dataset` and point the config's
`data._target_` at it; tuner loads it once and shares it with every trial. What a deployed model
needs to read raw sensor windows travels with it: the channel names, the sample rate, and the
per-channel mean and standard deviation the windows were standardized with.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    """Windows of multichannel time series with one class label each.

    Example:
        >>> x = np.zeros((8, 3, 32), dtype=np.float32)
        >>> y = np.array([0, 1] * 4, dtype=np.int64)
        >>> Dataset(x, y, x, y, classes=["rest", "move"]).num_channels
        3
    """

    x_train: np.ndarray  # float32 [N, channels, window]
    y_train: np.ndarray  # int64 [N], values in [0, len(classes))
    x_val: np.ndarray
    y_val: np.ndarray
    classes: list[str]
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    channels: list[str] | None = None  # the channel names, in the order of axis 1
    sample_rate: float | None = None  # Hz
    mean: np.ndarray | None = None  # [channels, 1]: x = (raw - mean) / std; None: x is raw
    std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise ValueError(f"Dataset needs at least 2 classes, got {self.classes!r}")
        if (self.x_test is None) != (self.y_test is None):
            raise ValueError("Dataset: give both x_test and y_test, or neither")
        if (self.mean is None) != (self.std is None):
            raise ValueError("Dataset: give both mean and std, or neither")
        splits = {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val)}
        if self.x_test is not None:
            splits["test"] = (self.x_test, self.y_test)
        for name, (x, y) in splits.items():
            _check_split(name, x, y, len(self.classes))
            if x.shape[1:] != self.x_train.shape[1:]:
                raise ValueError(
                    f"Dataset.x_{name} windows are [channels, window] = {list(x.shape[1:])}, "
                    f"but x_train's are {list(self.x_train.shape[1:])}"
                )
        if self.channels is not None and len(self.channels) != self.num_channels:
            raise ValueError(
                f"Dataset.channels names {len(self.channels)} channels, x_train has {self.num_channels}"
            )
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (self.num_channels, 1):
                raise ValueError(
                    f"Dataset.{name} must be [channels, 1] = [{self.num_channels}, 1], "
                    f"got {list(np.shape(value))}"
                )

    @property
    def num_channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def window(self) -> int:
        """Samples per window."""
        return self.x_train.shape[2]


def _check_split(name: str, x: np.ndarray, y: np.ndarray, num_classes: int) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 3:
        raise ValueError(
            f"Dataset.x_{name} must be a float32 array [N, channels, window], got "
            f"{type(x).__name__} {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}; "
            "use np.asarray(x, dtype=np.float32)"
        )
    if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
        raise ValueError(
            f"Dataset.y_{name} must be an int64 array [N], got "
            f"{type(y).__name__} {getattr(y, 'dtype', '')} {getattr(y, 'shape', '')}; "
            "use np.asarray(y, dtype=np.int64)"
        )
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(
            f"Dataset.x_{name} and y_{name} need the same, non-zero length: {len(x)} vs {len(y)}"
        )
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"Dataset.y_{name} labels must lie in [0, {num_classes}) (one per class name), "
            f"got [{y.min()}, {y.max()}]"
        )
