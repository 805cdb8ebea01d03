"""`python -m tuner.retrain <results>/best_config.yaml [key=value ...]`: retrain one config alone.

``best_config.yaml`` is a complete config whose space holds the best trial's values as
constants, so retraining is the same pipeline with one trial and no early stopping; overrides
such as ``max_epochs=30``, ``trial.gpus=1`` or ``logger=none`` apply on top. It leaves its own results folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf

from tuner import storage
from tuner.cli import GROUPS, exit_with, group_option
from tuner.errors import ConfigError
from tuner.pipeline import tune_from_config


def retrain(config_path: Path | str, overrides: Sequence[str] = ()) -> dict:
    """Run the config at ``config_path`` (a path, or a URI in a bucket) as a single trial and
    return the run's summary."""
    cfg = OmegaConf.create(read_config(str(config_path)))
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "model":
            raise ConfigError("model", "a retrain trains the model its config names", "set model.* keys instead")
        if key in GROUPS:  # logger=none: the option's file replaces the group, as Hydra would
            cfg[key] = group_option(key, value)
        else:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([override]))
    return tune_from_config(cfg)


def read_config(location: str) -> str:
    """The text of a config file on disk or in a bucket."""
    fix = "give the path or URI of a best_config.yaml"
    if storage.is_uri(location):
        storage.check_bucket(location, key="config")
        if storage.exists(location):
            return storage.read_text(location)
    elif Path(location).is_file():
        return Path(location).read_text()
    raise ConfigError("config", f"no file at {location}", fix)


def main(argv: Sequence[str]) -> None:
    if not argv or argv[0].startswith("-"):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        sys.exit(2)
    try:
        retrain(argv[0], argv[1:])
    except ConfigError as err:
        exit_with(err)


if __name__ == "__main__":
    main(sys.argv[1:])
