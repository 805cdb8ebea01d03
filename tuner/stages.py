"""Two-stage search (``stages=screen_then_train``): screen many configs on a short budget, then
train the best few fully with several seeds each and rank them by the mean of the metric.

The pieces ``tuner.pipeline`` puts together: the config of each stage, the spec of stage two
(its trials are the top-k configs of stage one crossed with the seeds), the ranking, and the files
at the top of the run's folder (``ranking.csv``, ``best_config.yaml``, ``summary.json``). Each
stage is an ordinary results folder: ``screen/`` and ``train/``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from tuner import space as space_lib
from tuner.errors import ConfigError, check_count
from tuner.results.read import STAGES
from tuner.results.tables import plain
from tuner.results.write import best_config, run_summary, write_summary
from tuner.search import NO_SEARCH
from tuner.spec import RunSpec
from tuner.trials import COMPLETED, TRIAL_ID_DTYPE, best_label, is_missing

KINDS = ("single", "screen_then_train")
SCREEN, TRAIN = STAGES


def check_stages(cfg: DictConfig) -> str:
    """The stages kind, its settings checked against the run's."""
    stages = OmegaConf.to_container(cfg.stages, resolve=True) if "stages" in cfg else {"kind": "single"}
    kind = stages.get("kind")
    if kind not in KINDS:
        raise ConfigError("stages.kind", f"unknown kind {kind!r}", f"use stages={' or stages='.join(KINDS)}")
    if kind == "single":
        return kind
    for key in ("screen_epochs", "top_k", "seeds"):
        check_count(stages.get(key), f"stages.{key}")
    if stages.get("screen_samples") is not None:
        check_count(stages["screen_samples"], "stages.screen_samples")
    if stages["screen_epochs"] > cfg.max_epochs:
        raise ConfigError(
            "stages.screen_epochs",
            f"is {stages['screen_epochs']}, more than max_epochs ({cfg.max_epochs}) of stage two",
            "lower it or raise max_epochs",
        )
    if "seed" in (cfg.get("space") or {}):
        raise ConfigError("space.seed", "stage two sets each trial's seed itself", "remove seed from the space")
    return kind


def screen_config(cfg: DictConfig) -> DictConfig:
    """Stage one: the run's search on the short budget."""
    stages = cfg.stages
    screen = OmegaConf.merge(
        cfg, {"max_epochs": stages.screen_epochs, "name": f"{cfg.name}-{SCREEN}", "stages": {"kind": "single"}}
    )
    if stages.screen_samples is not None:
        screen.num_samples = stages.screen_samples
    return screen


def train_config(cfg: DictConfig) -> DictConfig:
    """Stage two: every trial to max_epochs, no early stopping, no sampling (the trials are set)."""
    train = OmegaConf.merge(cfg, {"name": f"{cfg.name}-{TRAIN}", "num_samples": 1, "stages": {"kind": "single"}})
    train.search = dict(NO_SEARCH)
    return train


def seeds(cfg: DictConfig) -> list[int]:
    """Stage two's seeds: the run's seed, then the next ones."""
    return [cfg.seed + i for i in range(cfg.stages.seeds)]


def top_candidates(screen_spec: RunSpec, screen_trials: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """Stage one's best ``top_k`` distinct configs (one row each: its params and its metric)."""
    column = f"best_{screen_spec.metric}"
    names = space_lib.sampled_names(screen_spec.params)
    ranked = screen_trials.dropna(subset=[column]).sort_values(
        column, ascending=screen_spec.mode == "min", kind="stable"
    )
    distinct = ranked.drop_duplicates(subset=names) if names else ranked.head(1)
    return distinct.head(top_k)[["trial_id", *names, column]].reset_index(drop=True)


def candidate_values(candidates: pd.DataFrame, spec: RunSpec) -> list[dict[str, Any]]:
    """Each candidate's active parameter values, as plain Python values."""
    names = space_lib.sampled_names(spec.params)
    return [
        {n: plain(row[n]) for n in names if not is_missing(row[n])}
        for _, row in candidates.iterrows()
    ]


def train_spec(spec: RunSpec, candidates: list[dict[str, Any]], seed_values: list[int]) -> RunSpec:
    """Stage two's spec: one trial per candidate and seed, each with its candidate's values."""
    seed_param = space_lib.parse_space({"seed": {"type": "grid", "values": seed_values}})[0]
    trials = [{**candidate, "seed": seed} for candidate in candidates for seed in seed_values]
    return dataclasses.replace(
        spec, params=[*spec.params, seed_param], candidates=trials, num_samples=1, expected_trials=len(trials),
    )


def label_candidates(train_dir: Path, top: pd.DataFrame, screen_spec: RunSpec) -> pd.DataFrame:
    """Stage two's trials.csv with each trial's candidate: the row of ``top`` its values equal
    (the candidates are distinct; trials a Ctrl-C kept from starting have their values too)."""
    trials = pd.read_csv(train_dir / "trials.csv", dtype=TRIAL_ID_DTYPE)
    if "candidate" not in trials:
        names = space_lib.sampled_names(screen_spec.params)
        keys = top[names].assign(candidate=range(len(top)))
        trials = trials.merge(keys, on=names, how="left", validate="many_to_one")
        trials.insert(1, "candidate", trials.pop("candidate"))
        trials.to_csv(train_dir / "trials.csv", index=False)
    return trials


def rank(
    spec: RunSpec, candidates: pd.DataFrame, train_trials: pd.DataFrame
) -> pd.DataFrame:
    """One row per candidate: its params, stage one's value, and the mean and std over seeds of
    stage two's best value of the metric; best mean first. Only trials that ran to max_epochs
    count (``seeds`` says how many): a Ctrl-C leaves some part-trained."""
    column = f"best_{spec.metric}"
    completed = train_trials[train_trials["status"] == COMPLETED].dropna(subset=[column])
    by_candidate = completed.groupby("candidate")[column]
    ranking = candidates.drop(columns=["trial_id"]).rename(columns={column: f"screen_{spec.metric}"})
    ranking.insert(0, "candidate", range(len(ranking)))
    ranking[f"mean_{spec.metric}"] = ranking["candidate"].map(by_candidate.mean())
    ranking[f"std_{spec.metric}"] = ranking["candidate"].map(by_candidate.std(ddof=0))
    ranking["seeds"] = ranking["candidate"].map(by_candidate.count()).fillna(0).astype(int)
    ranking = ranking.sort_values(
        f"mean_{spec.metric}", ascending=spec.mode == "min", na_position="last", kind="stable"
    )
    ranking.insert(0, "rank", range(1, len(ranking) + 1))
    return ranking.reset_index(drop=True)


def write_top(
    results_dir: Path,
    location: str,
    name: str,
    specs: dict[str, RunSpec],
    summaries: dict[str, dict[str, Any]],
    ranking: pd.DataFrame | None,
    train_trials: pd.DataFrame | None,
    wall_time_s: float,
) -> dict[str, Any]:
    """ranking.csv, best_config.yaml (stage two's winner) and summary.json at the run's top,
    ``location`` being where the results folder is (a bucket URI or its path)."""
    train_spec = specs[TRAIN]
    summary = run_summary(
        specs[SCREEN],
        started=summaries[SCREEN]["started"],
        num_trials=sum(s["num_trials"] for s in summaries.values()),
        status_counts=_add_counts(s["status_counts"] for s in summaries.values()),
        interrupted=any(s["interrupted"] for s in summaries.values()) or TRAIN not in summaries,
        errors={k: v for s in summaries.values() for k, v in s["errors"].items()},
        best=None,
        wall_time_s=wall_time_s,
    ) | {"name": name, "stages": "screen_then_train", "results_dir": location}
    if ranking is not None and not ranking.empty and not is_missing(ranking.iloc[0][f"mean_{train_spec.metric}"]):
        ranking.to_csv(results_dir / "ranking.csv", index=False)
        summary["best_trial"] = _winner(results_dir, name, train_spec, ranking.iloc[0], train_trials)
    write_summary(results_dir, summary)
    return summary


def _winner(
    results_dir: Path, name: str, spec: RunSpec, winner: pd.Series, train_trials: pd.DataFrame
) -> dict[str, Any]:
    """The winning candidate, its best seed's checkpoint, and best_config.yaml."""
    column = f"best_{spec.metric}"
    runs = train_trials[(train_trials["candidate"] == winner["candidate"]) & (train_trials["status"] == COMPLETED)]
    runs = runs.dropna(subset=[column])
    best_seed = runs.loc[best_label(runs[column], spec.mode)]
    config = best_config(spec, best_seed.to_dict())
    config["seed"] = int(best_seed["seed"])
    config["name"] = f"{name}-best"
    OmegaConf.save(OmegaConf.create(config), results_dir / "best_config.yaml")
    params = {n: v for n, v in config["space"].items() if n in winner.index}
    return {
        "candidate": int(winner["candidate"]),
        "trial_id": best_seed["trial_id"],
        spec.metric: float(winner[f"mean_{spec.metric}"]),
        "std": float(winner[f"std_{spec.metric}"]),
        "seeds": int(winner["seeds"]),
        "params": params,
        "epochs": int(best_seed["epochs"]),
        "checkpoint": best_seed["checkpoint"] if isinstance(best_seed["checkpoint"], str) else "",
    }


def _add_counts(counts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for status, n in count.items():
            total[status] = total.get(status, 0) + n
    return total
