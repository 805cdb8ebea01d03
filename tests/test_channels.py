"""Channel names from a config resolved to columns, with a suggestion for a misspelt name."""

import pytest

from trainables.data.parts.channels import channel_indices

KNOWN = ["hand_acc16_x", "hand_acc16_y", "hand_gyro_x", "heart_rate"]


def test_channels_keep_the_requested_order():
    assert channel_indices(["heart_rate", "hand_acc16_x"], KNOWN) == [3, 0]
    assert channel_indices("hand_gyro_x", KNOWN) == [2]


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (["hand_acc_x"], "data.channels: unknown channel 'hand_acc_x'; did you mean hand_acc16_x"),
        (["pulse"], "data.channels: unknown channel 'pulse'; known channels: hand_acc16_x, "),
        (["heart_rate", "heart_rate"], "data.channels: 'heart_rate' is named twice"),
        ([], "data.channels: is empty; name at least one of: hand_acc16_x"),
    ],
)
def test_a_bad_channel_list_is_an_error_naming_data_channels(requested, message):
    with pytest.raises(ValueError) as err:
        channel_indices(requested, KNOWN)
    assert str(err.value).startswith(message)
