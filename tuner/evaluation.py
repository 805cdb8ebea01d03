"""What a run leaves to take away: the chosen model's figures on the held-out test split and the
model itself, exported as one file. Both come from the trainable's own module, called with the
chosen trial's checkpoint once the search has chosen it, so the test split never takes part in
choosing anything. tuner knows nothing of the model: it looks for two functions beside the
trainable (as it looks for ``METRICS``)::

    def predict_test_split(config, checkpoint_dir, data) -> dict | None
        # {"labels": [...], "predictions": [...], "classes": [...]}: class indices per test
        # window; None when the data has no test split
    def export_model(config, checkpoint_dir, data, folder) -> dict
        # writes one file into folder; returns what it holds, its name under "file"

``config`` is what the trial's ``train(config, data)`` got, ``checkpoint_dir`` a local folder
holding its best checkpoint (fetched when it is in a bucket). tuner scores the predictions itself
(tuner.results.confusion). A trainable without such a function gets a line saying so, and no
test files or model file.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from ray import tune

from tuner import space as space_lib
from tuner import storage
from tuner.errors import ConfigError, first_line
from tuner.results.confusion import Confusion, summary_figures, write_test_files
from tuner.results.write import trial_config, write_summary
from tuner.spec import RunSpec, import_function, trial_base_config
from tuner.trials import COMPLETED

PREDICT, EXPORT = "predict_test_split", "export_model"
INCOMPLETE = "the run is incomplete: its best trial is scored and exported when it ends (resume it)"


@dataclass(frozen=True)
class Chosen:
    """A trial to evaluate: its id, the config its trainable got, where its best checkpoint is."""

    trial_id: str
    config: dict[str, Any]
    checkpoint: str  # a path or a bucket URI; "" when the trial kept none


def chosen_trial(spec: RunSpec, row: dict[str, Any]) -> Chosen:
    """A row of trials.csv as a trial to evaluate."""
    config = trial_settings(trial_config(spec.config, spec.params, row, spec.name))
    checkpoint = row.get("checkpoint")
    return Chosen(str(row["trial_id"]), config, checkpoint if isinstance(checkpoint, str) else "")


def trial_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What ``train(config, data)`` got in the one trial that a config with a constant space
    describes (best_config.yaml, or any trial's config from trial_config)."""
    values = {p.name: p.args["value"] for p in space_lib.parse_space(config.get("space") or {})}
    return space_lib.apply(trial_base_config(config), values)


def evaluate_best(spec: RunSpec, data: Any, trials: pd.DataFrame, summary: dict[str, Any]) -> dict[str, Any]:
    """A one-search run's best trial on the test split, and exported; summary.json rewritten
    with both. Returns the summary."""
    best = summary.get("best_trial")
    if summary["interrupted"] or not best:
        why = INCOMPLETE if summary["interrupted"] else "no trial reported the metric"
        added = {"test": {"skipped": why}, "model": {"skipped": why}}
    else:
        chosen = chosen_trial(spec, trials[trials["trial_id"] == best["trial_id"]].iloc[0].to_dict())
        added = take_away(spec.config["trainable"], data, [chosen], chosen, spec.results_dir)
    summary = summary | added
    write_summary(spec.results_dir, summary)
    return summary


def evaluate_winner(
    spec: RunSpec, data: Any, train_trials: pd.DataFrame, summary: dict[str, Any], folder: Path
) -> dict[str, Any]:
    """A two-stage run's winner: each of its seeds on the test split, the best seed (the
    summary's best trial) exported into the run's folder; summary.json rewritten. ``spec`` is
    stage two's."""
    best = summary.get("best_trial")
    if summary["interrupted"] or not best:
        why = INCOMPLETE if summary["interrupted"] else "no candidate trained to max_epochs"
        added = {"test": {"skipped": why}, "model": {"skipped": why}}
    else:
        seeds = train_trials[(train_trials["candidate"] == best["candidate"]) & (train_trials["status"] == COMPLETED)]
        chosen = [chosen_trial(spec, row) for row in seeds.to_dict("records")]
        exported = next(c for c in chosen if c.trial_id == best["trial_id"])
        seed_of = dict(zip(seeds["trial_id"].astype(str), seeds["seed"].astype(int)))
        added = take_away(spec.config["trainable"], data, chosen, exported, folder, seed_of)
    summary = summary | added
    write_summary(folder, summary)
    return summary


def take_away(
    trainable: str,
    data: Any,
    chosen: list[Chosen],
    exported: Chosen,
    folder: Path,
    seeds: dict[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Score the chosen trials on the test split (test_metrics.csv, confusion_matrix.csv) and
    export one of them into ``folder``; summary.json's "test" and "model", each saying why it was
    skipped when it was."""
    _, module = import_function(trainable, "trainable", "fix the trainable's import path")
    return {
        "test": _test(module, data, chosen, exported, folder, seeds),
        "model": _export(module, data, exported, folder),
    }


def _test(
    module: Any, data: Any, chosen: list[Chosen], exported: Chosen, folder: Path, seeds: dict[str, int] | None
) -> dict[str, Any]:
    predict = getattr(module, PREDICT, None)
    if predict is None:
        return {"skipped": f"{module.__name__} has no {PREDICT}(config, checkpoint_dir, data)"}
    scores = {}
    for trial in chosen:
        if not trial.checkpoint:
            return {"skipped": f"trial {trial.trial_id} kept no checkpoint"}
        try:
            with local_checkpoint(trial.checkpoint) as directory:
                predicted = predict(trial.config, directory, data)
            if predicted is None:
                return {"skipped": "the data has no test split"}
            scores[trial.trial_id] = Confusion.of(predicted["labels"], predicted["predictions"], predicted["classes"])
        except Exception as err:  # a user's function failing costs its figures, not the run
            return _failed(PREDICT, err)
    write_test_files(folder, scores)
    return summary_figures(scores, exported.trial_id, seeds)


def _export(module: Any, data: Any, exported: Chosen, folder: Path) -> dict[str, Any]:
    export = getattr(module, EXPORT, None)
    if export is None:
        return {"skipped": f"{module.__name__} has no {EXPORT}(config, checkpoint_dir, data, folder)"}
    if not exported.checkpoint:
        return {"skipped": f"trial {exported.trial_id} kept no checkpoint"}
    try:
        with local_checkpoint(exported.checkpoint) as directory:
            return {"trial_id": exported.trial_id, **export(exported.config, directory, data, str(folder))}
    except Exception as err:  # as above: the run's results stand without the model file
        return _failed(EXPORT, err)


def _failed(function: str, err: Exception) -> dict[str, str]:
    return {"skipped": f"{function} failed ({type(err).__name__}: {first_line(err)})"}


@contextlib.contextmanager
def local_checkpoint(location: str) -> Iterator[str]:
    """A trial's checkpoint as a local folder: its own path, or a temporary copy of one in a
    bucket, removed afterwards."""
    if storage.is_uri(location):
        fs, path = storage.filesystem(location)
        checkpoint = tune.Checkpoint(path, filesystem=fs)
    else:
        checkpoint = tune.Checkpoint(location)
    with checkpoint.as_directory() as directory:
        yield directory


def export_saved_run(
    config: dict[str, Any], best_config: dict[str, Any], best: dict[str, Any], folder: Path
) -> dict[str, Any]:
    """``python -m tuner.results export``: the best trial of a saved run exported into ``folder``,
    its data built again from the run's config (for the statistics the model needs)."""
    from tuner.run import build_data  # Hydra's instantiate: only this verb needs it

    _, module = import_function(config["trainable"], "trainable", "fix the trainable's import path in config.yaml")
    if getattr(module, EXPORT, None) is None:
        fix = f"add {EXPORT}(config, checkpoint_dir, data, folder) to it (README: Your own trainable and data)"
        raise ConfigError("trainable", f"{module.__name__} has no {EXPORT}", fix)
    checkpoint = best.get("checkpoint") or ""
    if not checkpoint:
        raise ConfigError("checkpoint", f"trial {best['trial_id']} kept no checkpoint", "retrain it, with checkpoints")
    exported = Chosen(str(best["trial_id"]), trial_settings(best_config), checkpoint)
    model = _export(module, build_data(config["data"]), exported, folder)
    if "skipped" in model:
        raise ConfigError("export", model["skipped"], "fix the trainable's export_model")
    return model
