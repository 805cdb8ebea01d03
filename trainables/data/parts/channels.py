"""Channels named in a config (`data.channels: [hand_acc16_x, ...]`) resolved to column positions.

Example:
    >>> channel_indices(["gyro_x", "acc_x"], ["acc_x", "acc_y", "gyro_x"])
    [2, 0]
"""

import difflib
from collections.abc import Sequence


def channel_indices(requested: Sequence[str] | str, known: Sequence[str]) -> list[int]:
    """Positions of the `requested` channel names in `known`, in the requested order.

    Raises ValueError starting with `data.channels:` for an empty list, a repeated name or a name
    that is not known (with the closest known names as the fix).
    """
    if isinstance(requested, str):
        requested = [requested]
    if not requested:
        raise ValueError(f"data.channels: is empty; name at least one of: {', '.join(known)}")
    for name in requested:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise ValueError(
                f"data.channels: unknown channel {name!r}; {hint}known channels: {', '.join(known)}"
            )
        if list(requested).count(name) > 1:
            raise ValueError(f"data.channels: {name!r} is named twice; name each channel once")
    return [list(known).index(name) for name in requested]
