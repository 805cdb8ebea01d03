"""What the command lines share (``python -m tuner``, ``tuner.retrain``, ``tuner.results``): a
user's mistake as one line with exit code 2."""

from __future__ import annotations

import sys
from typing import NoReturn

from tuner.errors import ConfigError


def exit_with(err: ConfigError) -> NoReturn:
    """A user's mistake: one line on stderr, exit code 2, no stack trace."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
