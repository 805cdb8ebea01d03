"""Command-line overrides checked before Hydra composes them: a ``key=value`` for a key the config
does not have (``lrr=0.1``, ``train.lrr=0.1``, ``search.schedular.grace_period=2``) is one error
line with a did-you-mean, where Hydra would print its own message and advise ``+key=value``,
which adds a key that nothing reads.

The config is composed the way Hydra will compose it (the group options chosen, the added and
removed keys applied), only without the changed keys; each of those must then exist in it.
"""

from __future__ import annotations

from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from tuner import space as space_lib
from tuner.errors import ConfigError, did_you_mean
from tuner.groups import CONF_DIR, GROUPS

MISSING = object()


def check_override_keys(args: Sequence[str]) -> None:
    """Refuse ``key=value`` for a key the composed config does not have; anything Hydra itself
    refuses for another reason (a syntax error, a bad value) is left to Hydra's message."""
    overrides = [arg for arg in args if not arg.startswith("-") and ("=" in arg or arg.startswith("~"))]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return
    changes = [o for o in parsed if o.type == OverrideType.CHANGE and not _is_group(o) and not o.key_or_group.startswith("hydra.")]
    if not changes:
        return
    config = _compose([_as_composed(o) for o in parsed if o not in changes])
    if config is None:
        return
    check_keys_exist(config, [override.key_or_group for override in changes])


def check_keys_exist(config: DictConfig, keys: Sequence[str]) -> None:
    """Each dotted key is in the config; the first that is not is a ConfigError naming it, with
    the closest keys that are."""
    for key in keys:
        if OmegaConf.select(config, key, default=MISSING) is MISSING:
            leaves = list(space_lib.flatten(OmegaConf.to_container(config)))
            raise ConfigError(key, "is not a key of the config", did_you_mean(key, leaves) or "python -m tuner --cfg job shows every key")


def _is_group(override: Override) -> bool:
    return override.key_or_group in GROUPS or "/" in override.key_or_group or override.package is not None


def _as_composed(override: Override) -> str:
    """An override as the one composition takes it: a group sweep (``model=a,b``) as its first
    option, as Hydra's first job runs."""
    if override.is_sweep_override() and _is_group(override):
        first = next(iter(override.sweep_string_iterator()))
        return f"{override.get_key_element()}={first}"
    return override.input_line


def _compose(overrides: list[str]) -> DictConfig | None:
    """The config Hydra composes from conf/ with these overrides; None when it cannot."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=overrides)
    except Exception:  # Hydra reports it, its own way, when it composes the run
        return None

