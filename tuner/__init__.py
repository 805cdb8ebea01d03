"""tuner: Hydra configs compiled into Ray Tune runs.

The data flow follows the modules: ``space`` compiles the search space, ``spec`` validates the
composed config into a run spec, ``run`` drives Ray Tune, ``results`` writes the results folder.
"""

from tuner.errors import ConfigError

__all__ = ["ConfigError"]
