"""``python -m tuner [overrides]``: compose the Hydra config and hand it to the pipeline; a
user's mistake is one line and exit code 2."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from tuner.cli import CONF_DIR, check_group_options, exit_with
from tuner.errors import ConfigError
from tuner.pipeline import tune_from_config


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    try:
        tune_from_config(cfg)
    except ConfigError as err:
        exit_with(err)
    except KeyboardInterrupt:  # a second Ctrl-C: Ray already saved its state at the first
        print("\nstopped at once; the state of the last snapshot can be resumed", file=sys.stderr)
        sys.exit(130)


def main() -> None:
    try:
        check_group_options(sys.argv[1:])
    except ConfigError as err:
        exit_with(err)
    hydra_main()
