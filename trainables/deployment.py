"""A trained model as one file that classifies raw sensor windows without tuner or trainables.

`save_program` writes a `torch.export` program (`.pt2`): the model in eval mode behind the
standardization the training data had, so it takes windows as the sensors give them, with the
batch size free. What inference needs to feed it rides inside the same file as the extra file
`inference.json`: class names, channel names and order, window length, sample rate, and the
mean and standard deviation it standardizes with.

Example (plain PyTorch, nothing of this project imported):
    >>> extra = {"inference.json": ""}
    >>> model = torch.export.load("model.pt2", extra_files=extra).module()  # doctest: +SKIP
    >>> info = json.loads(extra["inference.json"])  # doctest: +SKIP
    >>> info["classes"][model(windows).argmax(dim=1)[0]]  # doctest: +SKIP
    'walking'
"""

import json
import os
import warnings

import numpy as np
import torch
from torch import Tensor, nn

FILE = "model.pt2"
INFO = "inference.json"  # the extra file inside FILE


class RawWindowClassifier(nn.Module):
    """`model` behind per-channel standardization: raw windows [batch, channels, window] in,
    logits [batch, classes] out."""

    def __init__(self, model: nn.Module, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean) / self.std)


def save_program(model: nn.Module, folder: str | os.PathLike, info: dict) -> dict:
    """Write `folder`/model.pt2 from a model that takes standardized windows; `info` holds
    classes, channels, window, sample_rate, mean and std ([channels] lists, or None when the
    windows were never standardized). Returns `info` as the file holds it, with its name."""
    channels = len(info["channels"])
    identity = info["mean"] is None
    mean = np.zeros(channels) if identity else np.asarray(info["mean"], dtype=np.float64)
    std = np.ones(channels) if identity else np.asarray(info["std"], dtype=np.float64)
    wrapped = RawWindowClassifier(model.cpu().eval(), mean, std).eval()
    example = torch.zeros(2, channels, info["window"])
    with warnings.catch_warnings():  # the LSTM's flattened weights: a note for torch's developers
        warnings.simplefilter("ignore")
        program = torch.export.export(
            wrapped, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}}
        )
    saved = {
        "file": FILE,
        "format": "torch.export",
        "input": "raw windows, float32 [batch, channels, window]; the model standardizes them itself",
        "output": "logits [batch, classes]; argmax indexes classes",
        **info,
        "mean": mean.tolist(),
        "std": std.tolist(),
    }
    torch.export.save(program, os.path.join(folder, FILE), extra_files={INFO: json.dumps(saved, indent=2)})
    return saved
