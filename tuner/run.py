"""Drive one Ray Tune run from a RunSpec: connect to Ray, share the data, fit."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable

import hydra
import ray
from ray import tune

from tuner import space as space_lib
from tuner.errors import ConfigError
from tuner.search import make_scheduler, make_searcher
from tuner.spec import RunSpec

log = logging.getLogger(__name__)


def run(spec: RunSpec) -> tune.ResultGrid:
    """Run the search and return Ray Tune's results; trial errors are recorded, not raised."""
    searcher = make_searcher(spec)
    scheduler = make_scheduler(spec)
    data = build_data(spec.data)
    connect(spec.cluster)
    # Keeping one checkpoint per trial makes Ray snapshot its state on each save, by design.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    trainable = tune.with_parameters(trial_function(spec), data=data)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": spec.cpus, "gpu": spec.gpus}),
        param_space=spec.param_space,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            num_samples=spec.num_samples,
            search_alg=searcher,
            scheduler=scheduler,
            trial_dirname_creator=lambda trial: trial.trial_id,
        ),
        run_config=tune.RunConfig(
            name=spec.results_dir.name,
            storage_path=str(spec.results_dir.parent),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1,
                checkpoint_score_attribute=spec.metric,
                checkpoint_score_order=spec.mode,
            ),
            verbose=1,
        ),
    )
    return tuner.fit()


def build_data(data_config: dict[str, Any]) -> Any:
    """Make or load the data once, in the driver; Ray's object store shares it with trials.

    A data function reports a bad setting by raising ValueError or OSError with a message that
    starts with the key (``data.path: no folder at ...; download it from ...``): that message
    becomes the one error line, before Ray starts.
    """
    try:
        return hydra.utils.instantiate(data_config, _convert_="all")
    except Exception as err:  # hydra wraps what the user's data function raised
        cause = err.__cause__ or err
        key, sep, problem = str(cause).partition(": ")
        if sep and key.startswith("data.") and isinstance(cause, (ValueError, OSError)):
            raise ConfigError(key, problem) from None
        raise ConfigError("data", f"building the data failed: {cause}", "fix the data.* keys") from None


def connect(cluster: dict[str, Any]) -> None:
    """Start an embedded Ray for cluster=local, unless this process already has one."""
    if ray.is_initialized():
        return
    ray.init(
        num_cpus=cluster.get("num_cpus"),
        num_gpus=cluster.get("num_gpus"),
        include_dashboard=False,
        configure_logging=True,
        logging_level=logging.WARNING,
    )


def trial_function(spec: RunSpec) -> Callable[[dict[str, Any], Any], None]:
    """Wrap the trainable: drop inactive conditional parameters, nest dotted names."""
    return functools.update_wrapper(
        functools.partial(_run_trial, spec.trainable, spec.base_config, spec.params),
        spec.trainable,
    )


def _run_trial(
    trainable: Callable[[dict[str, Any], Any], None],
    base_config: dict[str, Any],
    params: list[space_lib.Param],
    config: dict[str, Any],
    data: Any,
) -> None:
    trainable(space_lib.apply(base_config, space_lib.active(params, config)), data)
