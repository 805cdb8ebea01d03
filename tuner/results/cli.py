"""`python -m tuner.results <verb>`: read results folders back from the command line.

``list`` the runs under a storage folder, ``show`` one, ``compare`` several side by side, print
the ``best`` config of one or many, rebuild a run's HTML ``report``, ``export`` its best model as
one file, or ``retrain`` its best trials. A RUN is a results folder's path, or its name under
``--storage``. Only ``report`` (report.html), ``export`` (the model file) and ``retrain --top``
(retrain/<trial>.yaml) write into a results folder, and only into one that reads back whole.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, Sequence

from omegaconf import OmegaConf

from tuner import storage as buckets
from tuner.cli import exit_with
from tuner.errors import ConfigError
from tuner.results import read
from tuner.results.read import SavedRun
from tuner.results.confusion import confusions
from tuner.results.tables import cell, leaderboard_table, model_text, scores_text, text_table
from tuner.trials import better, is_missing

PROG = "python -m tuner.results"
NO_RUNS_FIX = "run python -m tuner first, or give --storage <folder or bucket URI>"
_COPIES: tempfile.TemporaryDirectory | None = None  # local copies of runs in a bucket


def main(argv: Sequence[str] | None = None) -> None:
    """SavedRun one verb; a user's mistake ends as one ``error:`` line and exit code 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and (args.verb != "retrain" or any(e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:  # overrides after an option: argparse ends a positional list at the first option
        args.overrides += extra
    if args.verb is None:
        parser.print_help(sys.stderr)
        sys.exit(2)
    try:
        args.handler(args)
    except ConfigError as err:
        exit_with(err)


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage mistakes read like every other tuner error."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {ConfigError(self.prog, message, f'see {self.prog} --help')}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--storage", default="outputs", help="the folder or bucket URI holding the results folders (default: outputs)"
    )
    parser = _Parser(prog=PROG, description="Read results folders back: a RUN is a folder path, or a name under --storage.")
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>")

    verb = verbs.add_parser("list", parents=[common], help="the runs under --storage, newest first")
    verb.set_defaults(handler=lambda a: print(list_runs(a.storage)))
    verb = verbs.add_parser("show", parents=[common], help="one run: what it was, its leaderboard")
    verb.add_argument("run", metavar="RUN")
    verb.add_argument("--top", type=_positive, default=10, help="leaderboard rows (default: 10)")
    verb.set_defaults(handler=lambda a: print(show(_load(a.run, a.storage), a.top)))
    verb = verbs.add_parser("compare", parents=[common], help="runs side by side, one column each")
    verb.add_argument("runs", metavar="RUN", nargs="+")
    verb.set_defaults(handler=lambda a: print(compare([_load(r, a.storage) for r in a.runs])))
    verb = verbs.add_parser("best", parents=[common], help="the best config as YAML, of one run or across runs")
    verb.add_argument("runs", metavar="RUN", nargs="*", help="default: every run under --storage")
    verb.add_argument("--metric", help="pick on another reported metric (default: the runs' own)")
    verb.add_argument("--mode", choices=("min", "max"), help="needed with a --metric the runs did not optimise")
    verb.set_defaults(handler=lambda a: print(best(a.runs, a.storage, a.metric, a.mode), end=""))
    verb = verbs.add_parser("report", parents=[common], help="rebuild RUN/report.html")
    verb.add_argument("run", metavar="RUN")
    verb.set_defaults(handler=lambda a: print(f"report: {report(_load(a.run, a.storage))}"))
    verb = verbs.add_parser("export", parents=[common], help="write the best model as one file that runs without tuner")
    verb.add_argument("run", metavar="RUN")
    verb.set_defaults(handler=lambda a: print(f"model: {export(_load(a.run, a.storage))}"))
    verb = verbs.add_parser("retrain", parents=[common], help="train the best config (or the top K) alone, each anew")
    verb.add_argument("run", metavar="RUN")
    verb.add_argument("--top", type=_positive, help="retrain the K best trials, one after another")
    verb.add_argument("overrides", metavar="key=value", nargs="*", help="applied on top, e.g. max_epochs=30")
    verb.set_defaults(handler=lambda a: retrain(_load(a.run, a.storage), a.top, a.overrides))
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, got '{text}'")
    return int(text)


def _load(name: str, storage: str) -> SavedRun:
    """A RUN argument: a folder path or URI, else a name under storage."""
    if buckets.is_uri(name) or buckets.is_uri(storage):
        uri = name if buckets.is_uri(name) else buckets.join(storage, name)
        buckets.check_bucket(uri, key=name)
        if buckets.exists(uri):
            return _read_run(_fetch(uri), uri)
    else:
        for path in (Path(name), Path(storage) / name):
            if path.is_dir():
                return read.load_run(path)
    fix = f"give a folder path, or a name that `{PROG} list` shows"
    raise ConfigError(name, f"no results folder here or under {storage}", fix)


def _fetch(uri: str) -> Path:
    """A local copy of the results files at a URI, in a folder removed when the command ends."""
    global _COPIES
    if _COPIES is None:
        _COPIES = tempfile.TemporaryDirectory(prefix="tuner-results-")
    return buckets.download(uri, Path(tempfile.mkdtemp(dir=_COPIES.name)) / buckets.name(uri), read.OWN_FOLDERS)


def _find_runs(storage: str) -> list[tuple[Path, str | None]]:
    """The results folders under storage, each as (its local path or copy, its URI or None)."""
    if not buckets.is_uri(storage):
        return [(path, None) for path in read.find_runs(Path(storage))]
    buckets.check_bucket(storage, key="storage")
    copies = [(_fetch(uri), uri) for uri in buckets.list_folders(storage)]
    return [(path, uri) for path, uri in copies if read.is_run(path)]


def _read_run(path: Path, location: str | None) -> SavedRun:
    """A results folder read back; a copy of one in a bucket remembers its URI."""
    run = read.load_run(path)
    return dataclasses.replace(run, location=location) if location else run


def list_runs(storage: str) -> str:
    """One line per run, newest first; a damaged folder is a line saying why, not an error."""
    found = _find_runs(storage)
    if not found:
        raise ConfigError("storage", f"no results folders under {storage}", NO_RUNS_FIX)
    lines = []
    for path, location in found:
        try:
            run = _read_run(path, location)
        except ConfigError as err:
            started = datetime.fromtimestamp(path.stat().st_mtime)
            reason = str(err).replace(f"{path.resolve()}/", "")
            lines.append((started, {"run": path.name, "started": f"{started:%Y-%m-%d %H:%M}", "status": f"damaged: {reason}"}))
            continue
        summary = run.summary or {}
        lines.append((run.started, {
            "run": run.name,
            "started": f"{run.started:%Y-%m-%d %H:%M}",
            "search": run.search + (", two-stage" if run.stages else ""),
            "trials": summary.get("num_trials", "-"),
            "best": _best_value(run),
            "status": status(run),
        }))
    lines.sort(key=lambda line: line[0], reverse=True)
    columns = ("run", "started", "search", "trials", "best", "status")
    return text_table([{c: row.get(c, "-") for c in columns} for _, row in lines])


def status(run: SavedRun) -> str:
    """complete, or how the run ended early and the command that continues it."""
    resume = f"(resume: python -m tuner resume={run.where})"
    if run.summary is None:
        return f"killed before its summary {resume}"
    return f"interrupted {resume}" if run.summary.get("interrupted") else "complete"


def show(run: SavedRun, top: int) -> str:
    """What the run was and how it ended, then its leaderboard (and ranking, Pareto front)."""
    summary = run.summary or {}
    lines = [
        f"run:       {run.name}  ({run.where})",
        f"search:    {run.search}, scheduler {run.scheduler}" + (f", stages {summary.get('stages')}" if run.stages else ""),
        f"started:   {run.started:%Y-%m-%d %H:%M:%S}",
        f"trials:    {summary.get('num_trials', 'none recorded')}  {_counts(summary.get('status_counts', {}))}".rstrip(),
        f"wall time: {_wall_time(run)}",
        f"best:      {_best_value(run)}" + (f", {_best_label(run)}" if run.best else ""),
        f"status:    {status(run)}",
    ]
    if run.summary is None:
        return "\n".join([*lines, "warning:   incomplete run: no trials recorded; resume it to see them"])
    lines += [f"test:      {scores_text(run.test)}", f"model:     {model_text(run.model, run.where)}"]
    if not run.complete:
        lines.append("warning:   incomplete run: the trials below are those recorded before it stopped")
    if run.ranking is not None:
        lines += ["", f"Ranking (mean {run.metric} over seeds, {run.mode}):", _ranking(run)]
    if len(run.objectives) > 1 and run.pareto is not None:
        names = ", ".join(f"{o['metric']} {o['mode']}" for o in run.objectives)
        lines += ["", f"Pareto front ({names}):", _pareto(run)]
    if run.test and "skipped" not in run.test and run.test_metrics is not None and run.confusion is not None:
        lines += ["", *_test_split(run)]
    title = "Stage one (screen) leaderboard" if run.stages else "Leaderboard"
    lines += ["", f"{title} ({run.metric}, {run.mode}), top {min(top, len(run.trials))} of {len(run.trials)}:"]
    return "\n".join([*lines, _leaderboard(run, top) if len(run.trials) else "no trials ran"])


def _leaderboard(run: SavedRun, top: int) -> str:
    column = read.metric_column(run, run.metric)
    return leaderboard_table(run.trials, read.param_names(run), column, run.mode, top)


def _ranking(run: SavedRun) -> str:
    """Each candidate of stage two with its mean ± std over seeds."""
    metric, ranking = run.metric, run.ranking.copy()
    ranking[f"{metric} (mean ± std)"] = [
        f"{mean:.4g} ± {std:.2g}" for mean, std in zip(ranking[f"mean_{metric}"], ranking[f"std_{metric}"])
    ]
    ranking = ranking.drop(columns=[f"mean_{metric}", f"std_{metric}"])
    for name in read.param_names(run):
        if name in ranking:
            ranking[name] = ranking[name].map(cell)
    return ranking.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def _test_split(run: SavedRun) -> list[str]:
    """The exported model's per-class figures and confusion matrix on the test split."""
    trial = str(run.test["trial_id"])
    per_class = run.test_metrics[run.test_metrics["trial_id"].astype(str) == trial].drop(columns=["trial_id"])
    confusion = confusions(run.confusion)[trial]
    rows = zip(confusion.classes, confusion.matrix.tolist())
    matrix = [{"true": name, **dict(zip(confusion.classes, counts))} for name, counts in rows]
    return [
        f"Test split, per class (trial {trial}):",
        per_class.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
        "",
        "Confusion matrix (rows: true class, columns: predicted class):",
        text_table(matrix),
    ]


def _pareto(run: SavedRun) -> str:
    """The non-dominated trials: their params and the objectives' columns."""
    metrics = [o["metric"] for o in run.objectives]
    scores = [c for c in run.pareto.columns if c in metrics or c.removeprefix("best_").removeprefix("last_") in metrics]
    params = [p for p in read.param_names(run) if p in run.pareto]
    table = run.pareto[[c for c in ("trial_id", *params, *scores) if c in run.pareto]].copy()
    for name in params:
        table[name] = table[name].map(cell)
    return table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def compare(compared: list[SavedRun]) -> str:
    """One column per run: how it searched, how it ended, its best value and params."""
    params = list(dict.fromkeys(p for run in compared for p in read.param_names(run)))
    rows: dict[str, dict[str, Any]] = {}
    for run in compared:
        summary, best_trial = run.summary or {}, run.best or {}
        values = {
            "search": run.search,
            "scheduler": run.scheduler,
            "trials": summary.get("num_trials", "-"),
            "status": _counts(summary.get("status_counts", {})) or "-",
            "metric": ", ".join(f"{o['metric']} ({o['mode']})" for o in run.objectives),
            "best": _best_value(run, named=False),
            "best trial": _best_id(run),
            "test accuracy": _test_figure(run, "accuracy"),
            "test macro F1": _test_figure(run, "macro_f1"),
            **{p: cell(best_trial.get("params", {}).get(p)) for p in params},
            "epochs": best_trial.get("epochs", "-"),
            "wall time": _wall_time(run),
            "complete": "yes" if run.complete else "no: " + status(run).partition(" (")[0],
        }
        for label, value in values.items():
            rows.setdefault(label, {"": label})[run.name] = value
    return text_table(list(rows.values()))


def best(names: Sequence[str], storage: str, metric: str | None, mode: str | None) -> str:
    """The best config as YAML, after a comment naming its run, trial and value. Across several
    runs (every run under storage when none is named) the best of their bests."""
    chosen, skipped = ([_load(name, storage) for name in names], []) if names else _readable_runs(storage)
    metric, mode = _objective(chosen, metric, mode)
    picks = [pick for run in chosen if (pick := _best_of(run, metric, mode, required=bool(names)))]
    if not picks:
        raise ConfigError("metric", f"no trial under {storage} reported {metric}", "give runs that did, or another --metric")
    pick = better(mode)(picks, key=lambda pick: pick.value)
    for note in skipped:
        print(f"note: skipped {note}", file=sys.stderr)
    among = f"; best of {len(chosen)} runs" if len(chosen) > 1 else ""
    incomplete = f"; incomplete: {status(pick.run)}" if not pick.run.complete else ""
    comment = f"# {pick.run.name}, {pick.trial}: {metric}={pick.value:.6g} ({pick.column}, {mode}{among}){incomplete}"
    return f"{comment}\n{pick.config}"


def _readable_runs(storage: str) -> tuple[list[SavedRun], list[str]]:
    """Every run under storage that reads back with trials, and why each other one does not."""
    found, skipped = [], []
    for path, location in _find_runs(storage):
        try:
            run = _read_run(path, location)
        except ConfigError as err:
            skipped.append(f"{path.name}, damaged: {err}")
            continue
        if run.trials.empty:
            skipped.append(f"{path.name}, no trials recorded: {status(run)}")
            continue
        found.append(run)
    if not found:
        raise ConfigError("storage", f"no results folders with trials under {storage}", NO_RUNS_FIX)
    return found, skipped


def _objective(chosen: list[SavedRun], metric: str | None, mode: str | None) -> tuple[str, str]:
    """The metric and mode to pick on: the runs' own, or --metric with --mode."""
    if metric is None:
        metrics = sorted({run.metric for run in chosen})
        if len(metrics) > 1:
            different = f"the runs optimise different metrics ({', '.join(metrics)})"
            raise ConfigError("metric", different, "pick one with --metric and --mode")
        metric = metrics[0]
    if mode is None:
        modes = {run.mode if run.metric == metric else None for run in chosen}
        if None in modes:
            needed = f"is needed with --metric {metric}, which not every run optimised"
            raise ConfigError("mode", needed, "add --mode min or --mode max")
        if len(modes) > 1:
            raise ConfigError("mode", f"the runs optimise {metric} in opposite directions", "add --mode min or --mode max")
        mode = modes.pop()
    return metric, mode


class _Pick(NamedTuple):
    value: float
    run: SavedRun
    trial: str  # "trial <id>", or a two-stage run's winning candidate
    column: str  # where the value comes from
    config: str  # YAML


def _best_of(run: SavedRun, metric: str, mode: str, required: bool) -> _Pick | None:
    """The run's best trial on the metric: its best_config.yaml for the run's own metric."""
    if run.trials.empty and not required:
        return None
    _check_trials(run)
    if (metric, mode) == (run.metric, run.mode) and run.best:
        read.read_best_config(run)  # a damaged file is an error, never printed
        column = "mean over seeds" if run.stages else f"best_{metric}"
        return _Pick(run.best[metric], run, _best_label(run), column, (run.path / "best_config.yaml").read_text())
    column = read.metric_column(run, metric)
    row = read.ranked(run, metric, mode).iloc[0]
    if is_missing(row[column]):
        return None
    config = read.trial_config(run, row.to_dict(), f"{run.config['name']}-best")
    trial = f"{'screen trial' if run.stages else 'trial'} {row['trial_id']}"
    return _Pick(float(row[column]), run, trial, column, _yaml(config))


def _check_trials(run: SavedRun) -> None:
    if run.trials.empty:
        raise ConfigError(run.name, f"has no trials recorded: {status(run)}", "resume it with the command above")


def _test_figure(run: SavedRun, name: str) -> str:
    test = run.test or {}
    return f"{test[name]:.4g}" if name in test else "-"


def report(run: SavedRun) -> str:
    """Rebuild the run's report.html (in its bucket too, for a run in one); returns where it is."""
    from tuner.results.report import write_report  # plotly's import is slow: only this verb needs it

    page = write_report(run.path)
    if not run.location:
        return str(page)
    buckets.upload(page, buckets.join(run.location, page.name))
    return buckets.join(run.location, page.name)


def export(run: SavedRun) -> str:
    """Write the run's best model as one file beside its results (in its bucket too, for a run in
    one), from its best trial's checkpoint; returns where the file is."""
    from tuner.evaluation import export_saved_run  # Ray, the trainable and its data: only this verb needs them

    _check_trials(run)
    if not run.best:
        raise ConfigError(run.name, f"has no best trial ({run.metric} was never reported)", "rerun the search")
    model = export_saved_run(run.config, read.read_best_config(run), run.best, run.path)
    if not run.location:
        return str(run.path / model["file"])
    buckets.upload(run.path / model["file"], buckets.join(run.location, model["file"]))
    return buckets.join(run.location, model["file"])


def retrain(run: SavedRun, top: int | None, overrides: Sequence[str]) -> list[dict[str, Any]]:
    """Train the best config alone (or the ``top`` best trials' configs, one after another) with
    the overrides on top, each into a new results folder; returns their summaries."""
    from tuner.retrain import retrain as train_config  # Ray's start: only this verb needs it

    for override in overrides:
        if "=" not in override:
            raise ConfigError(override, "is not key=value", "give overrides such as max_epochs=30")
    _check_trials(run)
    if not run.complete:
        print(f"note: {run.name} is incomplete, {status(run)}: retraining the best of the trials it recorded")
    if top is None:
        read.read_best_config(run)
        configs = [(_best_label(run), Path("best_config.yaml"))]
    else:
        configs = [(label, _write_trial_config(run, name, row)) for label, name, row in _top_trials(run, top)]
    summaries = []
    for number, (label, path) in enumerate(configs, start=1):
        print(f"\nretrain {number}/{len(configs)}: {label}, from {_where(run, path)}")
        summaries.append(train_config(run.path / path, overrides))
    print(f"\nretrained {len(summaries)} config(s) of {run.name}:")
    for (label, _), summary in zip(configs, summaries):
        print(f"  {label}: {summary['results_dir']}")
    return summaries


def _top_trials(run: SavedRun, top: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, file name, row) of the ``top`` best trials that have a value of the metric;
    a two-stage run's are its candidates, by rank."""
    if run.ranking is not None:
        ranking = run.ranking.sort_values("rank").head(top).to_dict("records")
        return [(f"candidate {row['candidate']}", f"candidate-{row['candidate']}", row) for row in ranking]
    column = read.metric_column(run, run.metric)
    scored = read.ranked(run, run.metric, run.mode).dropna(subset=[column]).head(top)
    return [(f"trial {row['trial_id']}", row["trial_id"], row) for row in scored.to_dict("records")]


def _write_trial_config(run: SavedRun, name: str, row: dict[str, Any]) -> Path:
    """RUN/retrain/<name>.yaml, written once: an existing different file is never replaced.
    Returns its path inside the run's folder."""
    text = _yaml(read.trial_config(run, row, f"{run.config['name']}-{name}"))
    inside = Path("retrain", f"{name}.yaml")
    path = run.path / inside
    if path.exists() and path.read_text() != text:
        fix = f"move it away, or retrain it with python -m tuner.retrain {_where(run, inside)}"
        raise ConfigError(_where(run, inside), "exists and is not this trial's config", fix)
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    if run.location:
        buckets.upload(path, buckets.join(run.location, *inside.parts))
    return inside


def _where(run: SavedRun, inside: Path) -> str:
    """A file of the run's folder as the user finds it: in the bucket, or on disk."""
    return buckets.join(run.location, *inside.parts) if run.location else str(run.path / inside)


def _best_value(run: SavedRun, named: bool = True) -> str:
    if not run.best:
        return "-"
    value = f"{run.best[run.metric]:.4g}" + (f" ± {run.best['std']:.2g}" if "std" in run.best else "")
    return f"{run.metric}={value}" if named else value


def _best_label(run: SavedRun) -> str:
    return _best_id(run) if run.stages else f"trial {_best_id(run)}"


def _best_id(run: SavedRun) -> str:
    """The best trial's id; a two-stage run's winner is a candidate, trained with several seeds."""
    best_trial = run.best or {}
    trial_id = str(best_trial.get("trial_id", "-"))
    return f"candidate {best_trial['candidate']} (best seed: {trial_id})" if "candidate" in best_trial else trial_id


def _wall_time(run: SavedRun) -> str:
    return f"{run.summary['wall_time_s']} s" if run.summary and "wall_time_s" in run.summary else "-"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _yaml(config: dict[str, Any]) -> str:
    """YAML as OmegaConf.save writes best_config.yaml."""
    return OmegaConf.to_yaml(OmegaConf.create(config))
