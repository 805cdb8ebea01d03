"""What the models share: the convolutional front that lifts raw sensor channels to features."""

from torch import nn


def conv_front(in_channels: int, channels: int, kernel_size: int) -> nn.Sequential:
    """Lift the raw sensor channels to `channels` local features, keeping the window length."""
    return nn.Sequential(
        nn.Conv1d(in_channels, channels, kernel_size, padding="same"),
        nn.BatchNorm1d(channels),
        nn.ReLU(),
    )
