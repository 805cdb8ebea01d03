"""Two standard classifiers for windows of multichannel time series, chosen by `model.name`.

Both take [batch, channels, window] and return [batch, num_classes] logits.
"""

import inspect

from torch import Tensor, nn


def conv_front(in_channels: int, channels: int, kernel_size: int) -> nn.Sequential:
    """Lift the raw sensor channels to `channels` local features, keeping the window length."""
    return nn.Sequential(
        nn.Conv1d(in_channels, channels, kernel_size, padding="same"),
        nn.BatchNorm1d(channels),
        nn.ReLU(),
    )


class TemporalBlock(nn.Module):
    """Two dilated convolutions with a residual connection; the window length is kept."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size, padding="same", dilation=dilation),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, kernel_size, padding="same", dilation=dilation),
            nn.BatchNorm1d(channels),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(nn.functional.relu(x + self.body(x)))


class CnnTcn(nn.Module):
    """Convolutional front, `levels` residual blocks with dilation 1, 2, 4, ..., and a linear head.

    The receptive field grows exponentially with `levels`, so a few levels see a whole gait cycle.

    Example:
        >>> import torch
        >>> CnnTcn(in_channels=6, num_classes=6)(torch.zeros(8, 6, 64)).shape
        torch.Size([8, 6])
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 32,
        levels: int = 3,
        kernel_size: int = 5,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.front = conv_front(in_channels, channels, kernel_size)
        self.blocks = nn.Sequential(
            *(TemporalBlock(channels, kernel_size, 2**i, dropout) for i in range(levels))
        )
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        features = self.blocks(self.front(x))  # [batch, channels, window]
        return self.head(features.mean(dim=2))


class CnnBiLstm(nn.Module):
    """Convolutional front, then a bidirectional LSTM over time, mean-pooled, and a linear head.

    Example:
        >>> import torch
        >>> CnnBiLstm(in_channels=6, num_classes=6)(torch.zeros(8, 6, 64)).shape
        torch.Size([8, 6])
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 32,
        hidden: int = 64,
        num_layers: int = 1,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.front = conv_front(in_channels, channels, kernel_size=5)
        # nn.LSTM applies its dropout only between stacked layers, so one layer gets none there.
        self.lstm = nn.LSTM(
            channels,
            hidden,
            num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        features = self.front(x).transpose(1, 2)  # [batch, window, channels]
        outputs, _ = self.lstm(features)  # [batch, window, 2 * hidden]
        return self.head(self.dropout(outputs.mean(dim=1)))


MODELS = {"cnn_tcn": CnnTcn, "cnn_bilstm": CnnBiLstm}


def build_model(model_cfg: dict, in_channels: int, num_classes: int, dropout: float) -> nn.Module:
    """Build the model a config names, e.g. {"name": "cnn_tcn", "channels": 32, "levels": 3}.

    The keys besides `name` are architecture arguments; keys only another architecture takes
    are left out, so one search space can choose between models (cnn_tcn's `levels` is
    ignored when a trial picks cnn_bilstm). Keys no architecture takes are refused. `dropout`
    is passed separately because it is a training knob tuned like the learning rate.
    """
    kwargs = dict(model_cfg)
    name = kwargs.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"model.name is {name!r}; choose one of {sorted(MODELS)}")
    unknown = set(kwargs) - set().union(*(_arguments(m) for m in MODELS.values()))
    if unknown:
        raise ValueError(f"model has unknown keys {sorted(unknown)}; no architecture takes them")
    accepted = _arguments(MODELS[name])
    own = {key: value for key, value in kwargs.items() if key in accepted}
    return MODELS[name](in_channels, num_classes, dropout=dropout, **own)


def _arguments(model: type[nn.Module]) -> set[str]:
    return set(inspect.signature(model).parameters) - {"in_channels", "num_classes", "dropout"}
