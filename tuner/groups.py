"""The config groups of conf/ (search, model, data, ...) and their options, one YAML file each:
what the command lines check a ``group=option`` against, and where a search space that chooses
between models finds each model's own settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from tuner.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("search", "model", "data", "logger", "cluster", "stages")


def options(group: str) -> list[str]:
    """The options of a group: the names of its files."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_group_options(overrides: Sequence[str]) -> None:
    """Reject `group=option` overrides naming a file that does not exist, before Hydra runs."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or "(" in value:
            continue
        known = options(key)
        for option in value.split(","):
            if option not in known:
                raise ConfigError(key, f"unknown option '{option}'", f"choose one of: {', '.join(known)}")


def group_option(group: str, option: str) -> DictConfig:
    """conf/<group>/<option>.yaml, its name checked."""
    check_group_options([f"{group}={option}"])
    return OmegaConf.load(CONF_DIR / group / f"{option}.yaml")


def option_section(group: str, option: Any) -> dict[str, Any] | None:
    """The settings an option of a trial-config group puts under its name (``model=cnn_bilstm``
    -> cnn_bilstm's ``model:`` keys), or None when no file of the group is named ``option``."""
    if not isinstance(option, str) or option not in options(group):
        return None
    section = OmegaConf.load(CONF_DIR / group / f"{option}.yaml").get(group)
    return OmegaConf.to_container(section) if isinstance(section, DictConfig) else None
