"""What the command lines share (``python -m tuner``, ``tuner.retrain``, ``tuner.results``): the
config groups and their options, and a user's mistake as one line with exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn, Sequence

from omegaconf import DictConfig, OmegaConf

from tuner.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("search", "model", "data", "logger", "cluster", "stages")


def check_group_options(overrides: Sequence[str]) -> None:
    """Reject `group=option` overrides naming a file that does not exist, before Hydra runs."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or "(" in value:
            continue
        known = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
        for option in value.split(","):
            if option not in known:
                raise ConfigError(key, f"unknown option '{option}'", f"choose one of: {', '.join(known)}")


def group_option(group: str, option: str) -> DictConfig:
    """conf/<group>/<option>.yaml, its name checked."""
    check_group_options([f"{group}={option}"])
    return OmegaConf.load(CONF_DIR / group / f"{option}.yaml")


def exit_with(err: ConfigError) -> NoReturn:
    """A user's mistake: one line on stderr, exit code 2, no stack trace."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
