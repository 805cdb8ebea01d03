"""Search efficiency: how good a config each method finds for a given compute budget.

    python -m benchmarks.search_efficiency           # har: 5 seeds; curve, crossing: 10 seeds each (~50 min)
    python -m benchmarks.search_efficiency --quick   # har: 1 seed, less data; curve, crossing: 3 seeds (~8 min)

Times on 2 cores: the full run took 2984 s with the test suite running beside it part of the
time; the --quick run took 500 s under similar load (before har had 5 seeds).

Same trainable, same search space (conf/model/cnn_tcn.yaml's), same budget, counted in training
epochs: the budget is what a hand-written grid costs, GRID's 18 points x max_epochs (10) =
180 epochs. Methods:

- grid: a plain Python loop of full trainings over GRID (the sweep users write by hand),
- random: random configs of the space, trained in full, in a Python loop,
- optuna: Optuna on its own, TPESampler + HyperbandPruner, `trial.report` per epoch,
- tuner asha / hyperband / optuna, no prior / optuna (default) / median:
  `tuner.pipeline.tune_from_config` with search=asha (random sampling), search=hyperband,
  search=optuna search.prior=false (tuner's Optuna searcher with ASHA: every epoch reaches TPE,
  a stopped trial is told PRUNED), search=optuna (tuner's default: the same, starting at the
  train: defaults with a decaying share of trials drawn around them), and search=median.

The in-process loops call trainables.har's plain PyTorch pieces (build_model, train_one_epoch,
evaluate), one torch thread, one trial at a time; tuner runs its trials on the embedded Ray,
two at a time (2 CPUs, trial.cpus=1). "best after B" is the best val_acc among all epochs
reported by the time B epochs in total had been trained, epochs ordered by when they were
reported (for tuner: as its driver received them, by a Ray Tune callback). Three tasks:

- har: trainables.har.train on the synthetic HAR data, 800 training and 400 validation windows
  (480/240 with --quick; the default data has 2400/600), so the comparison fits in minutes,
- curve: benchmarks.curves, a Hartmann-6 learning-curve test function on the same space with a
  known optimum; cheap, so it runs many seeds,
- crossing: the same function with learning curves that cross (benchmarks.curves.crossing_curve:
  a high lr leads after one epoch and ends worse), where stopping on one epoch misleads.

Each tuner run gets num_samples = the budget and is cut once it has trained the budget (what it
would do next is not counted). The table gives, per task and method, the median over seeds
[and interquartile range] of: best val_acc after 10/20/50/100% of the grid's epochs and of the
grid's wall time, and the share of the grid's epochs (and wall time) needed to come within 0.5
points of the grid's best; and how many seeds got there at all and within 20% of the epochs.
Then whether each target is met: tuner's default within 0.5 points of the grid's best with at
most 20% of the grid's epochs (median over seeds), and at least standalone Optuna's median at
every budget, on every task. Writes benchmarks/results/search_efficiency.{csv,json} (every
seed's figures are in the JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import optuna
import pandas as pd
import ray
import torch
from hydra import compose, initialize_config_dir
from ray import tune

from benchmarks import curves
from benchmarks.report import describe, machine, save
from trainables.data import Dataset
from trainables.har import evaluate, make_optimizer, make_lr_scheduler, step_lr_scheduler, train_one_epoch
from trainables.models import build_model
import tuner.run
from tuner import space as space_lib
from tuner.groups import CONF_DIR
from tuner.pipeline import tune_from_config
from tuner.run import build_data
from tuner.search.optuna_space import OptunaSpace
from tuner.spec import build_spec

ROOT = Path(__file__).resolve().parent.parent
# The hand-written sweep: 3 learning rates x 3 batch sizes x 2 widths; the rest at the config's
# defaults (weight_decay 1e-4, dropout 0.1, model.levels 3).
GRID = {"lr": [3e-4, 1e-3, 3e-3], "batch_size": [32, 64, 128], "model.channels": [16, 32]}
FRACTIONS = (0.10, 0.20, 0.50, 1.00)
WITHIN = 0.005  # "within 0.5 points of the grid's best"
TARGET_SHARE = 0.20  # tuner's default search reaches the grid's best with <= 20% of its compute
# Each tuner search worth comparing: the method's name -> search= and any further overrides.
TUNER_SEARCHES = {
    "tuner asha": ("asha",),
    "tuner hyperband": ("hyperband",),
    "tuner optuna, no prior": ("optuna", "search.prior=false"),
    "tuner optuna (default)": ("optuna",),
    "tuner median": ("median",),
}
DEFAULT_METHOD = "tuner optuna (default)"
STALL_S = 20  # seconds with only paused trials left before a tuner run counts as stalled


@dataclass
class Task:
    """One trainable to search: the Hydra overrides that run it under tuner, and the same
    training as a plain Python generator of per-epoch val_acc for the in-process methods."""

    name: str
    overrides: list[str]
    epochs: Callable[[dict[str, Any], Any], Iterator[float]]
    seeds: list[int]
    known_optimum: float | None = None


@dataclass
class Recorder:
    """Every reported epoch of one search, in the order they were reported."""

    started: float = field(default_factory=time.time)
    rows: list[tuple[float, Any, int, float]] = field(default_factory=list)

    def add(self, trial: Any, epoch: int, value: float) -> None:
        self.rows.append((time.time() - self.started, trial, epoch, value))

    @property
    def epochs(self) -> int:
        return len(self.rows)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["time_s", "trial", "epoch", "val_acc"])


def har_epochs(config: dict[str, Any], data: Dataset) -> Iterator[float]:
    """trainables.har.train's loop without Ray: what a user writes around the same pieces."""
    torch.set_num_threads(config["threads"])
    device = torch.device("cpu")
    torch.manual_seed(config["seed"])
    model = build_model(config["model"], data.num_channels, data.num_classes, config["dropout"])
    optimizer = make_optimizer(model, config["lr"], config["weight_decay"])
    scheduler = make_lr_scheduler(optimizer, config["lr_schedule"], config["max_epochs"])
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_val, y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
    for epoch in range(1, config["max_epochs"] + 1):
        epoch_seed = config["seed"] * 100_003 + epoch
        torch.manual_seed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        loss, _ = train_one_epoch(
            model, optimizer, x, y, config["batch_size"], generator, config["grad_clip"], None, device
        )
        if not math.isfinite(loss):
            return  # diverged: har.train raises here and reports nothing more
        val_loss, val_acc, _ = evaluate(model, x_val, y_val, config["batch_size"], device)
        step_lr_scheduler(scheduler, val_loss)
        yield val_acc


def curve_epochs(config: dict[str, Any], data: None, shape: str = "hartmann") -> Iterator[float]:
    """benchmarks.curves.train (or train_crossing) without Ray."""
    for epoch in range(1, config["max_epochs"] + 1):
        time.sleep(curves.SLEEP_S)
        yield curves.val_acc(config, epoch, shape)


def crossing_epochs(config: dict[str, Any], data: None) -> Iterator[float]:
    return curve_epochs(config, data, "crossing")


def compose_task(task: Task, seed: int, *overrides: str) -> Any:
    """The config `python -m tuner` would run for this task and seed, plus `overrides`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*task.overrides, f"seed={seed}", "logger=none", *overrides])


# ---------------------------------------------------------------- the in-process methods


def run_grid(task: Task, seed: int, data: Any, budget: int) -> pd.DataFrame:
    """Full trainings of every GRID point, one after the other."""
    spec = build_spec(compose_task(task, seed), Path(tempfile.gettempdir()))
    recorder = Recorder()
    for number, point in enumerate(itertools.product(*GRID.values())):
        config = space_lib.apply(spec.base_config, dict(zip(GRID, point)))
        for epoch, value in enumerate(task.epochs(config, data), 1):
            recorder.add(number, epoch, value)
    assert recorder.epochs <= budget
    return recorder.frame()


def run_optuna(task: Task, seed: int, data: Any, budget: int, sampler: Any, pruner: Any) -> pd.DataFrame:
    """An Optuna study over the space, each trial reporting per epoch, until `budget` epochs."""
    spec = build_spec(compose_task(task, seed), Path(tempfile.gettempdir()))
    space = OptunaSpace(spec.params)
    recorder = Recorder()
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        config = space_lib.apply(spec.base_config, space_lib.active(spec.params, space(trial)))
        value = float("nan")
        for epoch, value in enumerate(task.epochs(config, data), 1):
            recorder.add(trial.number, epoch, value)
            if recorder.epochs >= budget:
                study.stop()
                break
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective)
    return recorder.frame()


# ---------------------------------------------------------------- tuner


class BudgetSpent(Exception):
    """The run has trained the budget: what it would do next is not counted, so it ends here."""


class Stalled(RuntimeError):
    """Ray Tune holds only PAUSED trials that its scheduler will never resume."""


class ReportClock(tune.Callback):
    """Records each result as the driver receives it, in that order, and ends the run when the
    budget is spent.

    Also ends a run that can no longer progress (only paused trials left, nothing running or
    pending, for STALL_S), which Ray's synchronous HyperBand sometimes leaves behind.
    """

    def __init__(self, recorder: Recorder, budget: int) -> None:
        self.recorder = recorder
        self.budget = budget
        self.stuck_since: float | None = None

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if self.recorder.epochs < self.budget:
            self.recorder.add(trial.trial_id, result["epoch"], result["val_acc"])

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        # Raised here, between steps, Ray Tune lets the exception end the run as it is.
        if self.recorder.epochs >= self.budget:
            raise BudgetSpent()
        states = {trial.status for trial in trials}
        if "PAUSED" not in states or states & {"RUNNING", "PENDING"}:
            self.stuck_since = None
        elif self.stuck_since is None:
            self.stuck_since = time.time()
        elif time.time() - self.stuck_since > STALL_S:
            paused = [trial.trial_id for trial in trials if trial.status == "PAUSED"]
            raise Stalled(f"only paused trials left ({', '.join(paused)}), none resumed for {STALL_S} s")


def run_tuner(
    task: Task, seed: int, search: str, budget: int, storage: Path, *overrides: str
) -> tuple[pd.DataFrame, str]:
    """One tuner run, cut when it has trained `budget` epochs; its epochs in order of report,
    and how it ended (budget, finished, or stalled).

    num_samples = budget: every trial trains at least one epoch, so the run never runs out of
    trials first. The clock joins the callbacks tuner gives Ray Tune; nothing else changes.
    """
    cfg = compose_task(task, seed, f"search={search}", f"num_samples={budget}", f"storage={storage}", *overrides)
    folder = storage / f"{task.name}-{search}-{seed}-{len(list(storage.iterdir()))}"
    stock = tuner.run.trial_callbacks
    recorder = Recorder()
    tuner.run.trial_callbacks = lambda spec: [*stock(spec), ReportClock(recorder, budget)]
    ending = "finished"
    try:
        with open(storage / "tuner.log", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            tune_from_config(cfg, folder)
    except BudgetSpent:
        ending = "budget"
    except Stalled as err:
        ending = f"stalled: {err}"
    finally:
        tuner.run.trial_callbacks = stock
    return recorder.frame(), ending


# ---------------------------------------------------------------- scoring


def best_after_epochs(events: pd.DataFrame, epochs: float) -> float:
    """Best val_acc among the first `epochs` reported epochs (all of them if fewer were run)."""
    return float(events.val_acc.iloc[: max(1, int(round(epochs)))].max())


def best_after_time(events: pd.DataFrame, seconds: float) -> float:
    """Best val_acc reported within `seconds` of the search's start (NaN if none yet)."""
    return float(events.val_acc[events.time_s <= seconds].max())


def to_reach(events: pd.DataFrame, target: float) -> tuple[float, float]:
    """Epochs and seconds until the best so far first came within WITHIN of `target` (inf: never)."""
    reached = np.flatnonzero(events.val_acc.cummax().to_numpy() >= target - WITHIN)
    if not len(reached):
        return math.inf, math.inf
    return float(reached[0] + 1), float(events.time_s.iloc[reached[0]])


def score(events: pd.DataFrame, grid: pd.DataFrame, budget: int) -> dict[str, float]:
    """One search's figures against the grid's budget (epochs and wall time) and best value."""
    wall = float(grid.time_s.iloc[-1])
    epochs, seconds = to_reach(events, float(grid.val_acc.max()))
    figures = {"epochs": len(events), "wall_s": float(events.time_s.iloc[-1])}
    for share in FRACTIONS:
        figures[f"best@{share:.0%}_epochs"] = best_after_epochs(events, share * budget)
    for share in FRACTIONS:
        figures[f"best@{share:.0%}_time"] = best_after_time(events, share * wall)
    figures["reach_epochs_share"] = epochs / budget
    figures["reach_time_share"] = seconds / wall
    figures["best"] = float(events.val_acc.max())
    return figures


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Median and interquartile range over seeds per task and method; how many seeds came within
    0.5 pt of the grid's best at all and within TARGET_SHARE of its epochs, and how many stalled."""
    columns = [c for c in per_seed.columns if c.startswith("best@")]
    rows = []
    for (task, method), group in per_seed.groupby(["task", "method"], sort=False):
        row = {"task": task, "method": method, "seeds": len(group)}
        for c in columns:  # NaN: nothing reported yet
            row[c] = round(float(group[c].median()), 4)
            row[f"{c}_q25"], row[f"{c}_q75"] = (round(float(group[c].quantile(q)), 4) for q in (0.25, 0.75))
        for kind in ("epochs", "time"):
            share = float(np.median(group[f"reach_{kind}_share"]))  # inf when most never reach
            row[f"reach_{kind}_share"] = round(share, 3) if math.isfinite(share) else math.inf
        row["reach_epochs_share_q25"], row["reach_epochs_share_q75"] = (
            float(np.quantile(group.reach_epochs_share, q, method="lower" if q < 0.5 else "higher")) for q in (0.25, 0.75)
        )
        row["reached"] = f"{int(np.isfinite(group.reach_epochs_share).sum())}/{len(group)}"
        row["on_target"] = f"{int((group.reach_epochs_share <= TARGET_SHARE).sum())}/{len(group)}"
        row["best"] = round(float(group.best.median()), 4)
        row["epochs_run"] = int(group.epochs.median())
        row["wall_s"] = round(float(group.wall_s.median()), 1)
        row["stalled"] = int(group.ending.str.startswith("stalled").sum())
        rows.append(row)
    return pd.DataFrame(rows)


def targets(table: pd.DataFrame) -> list[str]:
    """The issue's two targets, per task: met, or missed by how much (medians over seeds)."""
    lines = []
    for task, rows in table.groupby("task", sort=False):
        rows = rows.set_index("method")
        ours, standalone = rows.loc[DEFAULT_METHOD], rows.loc["optuna"]
        share = ours.reach_epochs_share
        if share <= TARGET_SHARE:
            verdict = "met"
        elif math.isfinite(share):
            verdict = f"MISSED by {100 * (share - TARGET_SHARE):.0f} points of the grid's budget"
        else:
            verdict = "MISSED: not within 0.5 pt of the grid's best within the budget in most seeds"
        lines.append(
            f"[{task}] tuner's default search within 0.5 pt of the grid's best after "
            f"{_share(share)} of the grid's epochs (target <= {TARGET_SHARE:.0%}; "
            f"{ours.on_target} seeds did): {verdict}"
        )
        gaps = {f: ours[f"best@{f:.0%}_epochs"] - standalone[f"best@{f:.0%}_epochs"] for f in FRACTIONS}
        worst = min(gaps.values())
        text = ", ".join(f"{f:.0%}: {100 * g:+.2f}" for f, g in gaps.items())
        verdict = "met" if worst >= 0 else f"MISSED by up to {-100 * worst:.2f} pt"
        lines.append(
            f"[{task}] best at budget, tuner's default - standalone Optuna (pt), {text} "
            f"(target >= 0 at every budget): {verdict}"
        )
    return lines


def _share(value: float) -> str:
    return f"{value:.0%}" if math.isfinite(value) else ">100%"


def printable(table: pd.DataFrame, kind: str) -> str:
    """The by-epochs or by-wall-time half of the summary: medians with their interquartile range
    (by epochs), shares as percentages."""
    columns = ["task", "method", *(f"best@{f:.0%}_{kind}" for f in FRACTIONS), f"reach_{kind}_share"]
    columns += ["reached", "on_target", "stalled"] if kind == "epochs" else ["wall_s"]
    shown = table[columns].copy()
    shown[f"reach_{kind}_share"] = shown[f"reach_{kind}_share"].map(_share)
    best = [c for c in shown.columns if c.startswith("best@")]
    shown[best] = shown[best].map(lambda v: "-" if math.isnan(v) else f"{v:.4f}")
    if kind == "epochs":
        for c in best:
            shown[c] += " [" + table[f"{c}_q25"].map("{:.3f}".format) + "," + table[f"{c}_q75"].map("{:.3f}".format) + "]"
        low, high = table.reach_epochs_share_q25.map(_share), table.reach_epochs_share_q75.map(_share)
        shown[f"reach_{kind}_share"] += " [" + low + "," + high + "]"
    shown.columns = [c.replace(f"_{kind}", "").replace("reach_share", "to_reach") for c in shown.columns]
    return shown.to_string(index=False)


# ---------------------------------------------------------------- the benchmark


def tasks(quick: bool) -> list[Task]:
    har_data = ["data.num_train=480", "data.num_val=240"] if quick else ["data.num_train=800", "data.num_val=400"]
    no_data = [
        "data._target_=benchmarks.curves.no_data",
        "~data.num_train", "~data.num_val", "~data.num_test", "~data.window", "~data.seed",
    ]
    cheap_seeds = list(range(3 if quick else 10))
    return [
        Task("har", har_data, har_epochs, [0] if quick else [0, 1, 2, 3, 4]),
        Task("curve", ["trainable=benchmarks.curves.train", *no_data], curve_epochs, cheap_seeds, curves.optimum(10)),
        Task(
            "crossing", ["trainable=benchmarks.curves.train_crossing", *no_data], crossing_epochs, cheap_seeds,
            curves.optimum(10, shape="crossing"),
        ),
    ]


def run_seed(task: Task, seed: int, storage: Path) -> list[dict[str, Any]]:
    """Every method on one task and seed; returns one row of figures per method."""
    data = build_data(compose_task(task, seed).data)
    max_epochs = compose_task(task, seed).max_epochs
    budget = math.prod(len(v) for v in GRID.values()) * max_epochs
    runs: dict[str, pd.DataFrame] = {}
    notes: dict[str, str] = {}
    runs["grid"] = run_grid(task, seed, data, budget)
    _progress(task, seed, "grid", runs["grid"])
    runs["random"] = run_optuna(
        task, seed, data, budget, optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    )
    _progress(task, seed, "random", runs["random"])
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=3)
    runs["optuna"] = run_optuna(task, seed, data, budget, optuna.samplers.TPESampler(seed=seed), pruner)
    _progress(task, seed, "optuna", runs["optuna"])
    for method, (search, *overrides) in TUNER_SEARCHES.items():
        runs[method], notes[method] = run_tuner(task, seed, search, budget, storage, *overrides)
        _progress(task, seed, method, runs[method], notes[method])
    rows = []
    for method, events in runs.items():
        row = {"task": task.name, "seed": seed, "method": method, **score(events, runs["grid"], budget)}
        rows.append(row | {"ending": notes.get(method, "finished")})
    return rows


def _progress(task: Task, seed: int, method: str, events: pd.DataFrame, ending: str = "") -> None:
    print(
        f"  {task.name} seed {seed} {method:>20}: {len(events):4d} epochs, {events.time_s.iloc[-1]:6.1f} s, "
        f"best {events.val_acc.max():.4f} {ending if ending.startswith('stalled') else ''}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="HAR on 1 small seed, each test function on 3 seeds")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    info = machine()
    # A Ray of its own: never a cluster that `ray start` left running on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    # A run cut at its budget can lose a race with Ray's last save of its state: harmless here.
    logging.getLogger("ray.tune.execution.experiment_state").setLevel(logging.CRITICAL)
    started = time.time()
    rows = []
    all_tasks = tasks(args.quick)
    with tempfile.TemporaryDirectory() as storage:
        for task in all_tasks:
            for seed in task.seeds:
                rows += run_seed(task, seed, Path(storage))
    ray.shutdown()
    per_seed = pd.DataFrame(rows)
    table = summarize(per_seed)
    lines = targets(table)
    points = math.prod(len(v) for v in GRID.values())
    seeds = ", ".join(f"{t.name}: {len(t.seeds)}" for t in all_tasks)
    print(
        f"\nSearch efficiency ({'quick' if args.quick else 'full'}): budget = the grid's {points} points "
        f"x 10 epochs = {points * 10} epochs; medians [interquartile range] over seeds ({seeds}).\n{describe(info)}."
    )
    print(
        "\nBest val_acc after 10/20/50/100% of the grid's epochs; share of them needed to come within "
        f"0.5 pt of the grid's best; seeds that got there at all (reached) and within {TARGET_SHARE:.0%} (on_target):"
    )
    print(printable(table, "epochs"))
    print("\nhar, by wall time: best val_acc after 10/20/50/100% of the grid's wall time (-: nothing reported yet):")
    print(printable(table[table.task == "har"], "time"))
    optima = ", ".join(f"{t.name} {t.known_optimum:.4f}" for t in all_tasks if t.known_optimum is not None)
    print(
        f"\nKnown optima after 10 epochs (noise-free): {optima}. Their epochs cost "
        f"{curves.SLEEP_S * 1000:g} ms, so their wall times measure overhead alone (benchmarks/overhead.py)."
    )
    print("\n" + "\n".join(lines))
    print(f"\ntotal time: {time.time() - started:.0f} s")
    details = {
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "grid": GRID,
        "budget_epochs": points * 10,
        "within": WITHIN,
        "tasks": {
            t.name: {"overrides": t.overrides, "seeds": t.seeds, "known_optimum": t.known_optimum}
            for t in all_tasks
        },
        "targets": lines,
        "per_seed": per_seed.to_dict("records"),
    }
    csv_path, json_path = save("search_efficiency", table, details)
    print(f"wrote {csv_path.relative_to(ROOT)} and {json_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
