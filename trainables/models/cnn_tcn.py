"""A temporal convolutional network: dilated residual convolutions over the window."""

from torch import Tensor, nn

from trainables.models.layers import conv_front


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
