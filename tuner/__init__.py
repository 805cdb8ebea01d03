"""tuner: Hydra configs compiled into Ray Tune runs.

The data flow follows the modules: ``space`` parses the search space, ``spec`` validates the
composed config into a run spec, ``search`` holds the searchers and schedulers, ``run`` drives
Ray Tune, ``outcome`` reads what it left, ``results`` writes and reads results folders; the
``pipeline`` puts them together for ``python -m tuner`` (``main``).
"""

from tuner.errors import ConfigError

__all__ = ["ConfigError"]
