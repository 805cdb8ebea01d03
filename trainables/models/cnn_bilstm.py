"""A convolutional front followed by a bidirectional LSTM over the window."""

from torch import Tensor, nn

from trainables.models.layers import conv_front


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
