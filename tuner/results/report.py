"""One self-contained HTML page per results folder: what ran, what won, and why.

``write_report(folder)`` reads the folder back with ``load_run`` and writes
``<folder>/report.html``: a summary, the leaderboard, learning curves, when and why trials
stopped, parallel coordinates, fANOVA parameter importance (on request: the report a run writes
at its end leaves it out for its cost), the Pareto front (several objectives), the ranking of a
two-stage run, the chosen model on the held-out test split (a confusion matrix and per-class
figures), and the best config. plotly.js is inlined once, so the page opens offline.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.offline import get_plotlyjs

from tuner import space as space_lib
from tuner.results import read
from tuner.results.confusion import confusions
from tuner.results.read import SavedRun, load_run
from tuner.results.tables import cell, model_text, plain, scores_text
from tuner.trials import COMPLETED, DIVERGED, ERRORED, STOPPED, UNFINISHED, is_missing

TOP_TABLE, TOP_CURVES = 20, 5
NOT_SET = "not set"
STATUS_COLORS = {
    COMPLETED: "#2ca02c", STOPPED: "#1f77b4", ERRORED: "#d62728", DIVERGED: "#9467bd", UNFINISHED: "#7f7f7f",
}
_LOG_TYPES = ("loguniform", "qloguniform")
Section = tuple[str, str, str]  # id, h2 title, inner HTML
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
nav a { margin-right: 1em; }
section { margin: 2.5em 0; }
table { border-collapse: collapse; font-size: 0.9em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.warning { background: #fff3cd; border: 1px solid #e0b000; padding: 0.8em; }
"""


def write_report(results_dir: Path, importance: bool = True) -> Path:
    """Write ``<results_dir>/report.html`` from the folder alone and return its path.

    A damaged folder raises ConfigError before anything is written; the page replaces an
    earlier report.html only once it is complete.
    """
    run = load_run(Path(results_dir))
    page = _render(run, importance)
    target = run.path / "report.html"
    temporary = run.path / f".report.html.{os.getpid()}.tmp"
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def _render(run: SavedRun, importance: bool) -> str:
    screen = run.stages.get("screen", run)
    sections = [_summary(run)]
    if run.ranking is not None:
        sections.append(_ranking(run))
    sections.append(_test_split(run))
    sections += [_leaderboard(screen), _curves(screen), _stops(screen), _parallel(screen), _importance(screen, importance)]
    if len(run.objectives) >= 2:
        sections.append(_pareto(run))
    if "train" in run.stages:
        sections.append(_train_curves(run.stages["train"]))
    sections.append(_best_config(run))
    nav = " ".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title, _ in sections)
    body = "\n".join(
        f'<section id="{key}">\n<h2>{html.escape(title)}</h2>\n{content}\n</section>' for key, title, content in sections
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>tuner report: {html.escape(run.name)}</title>\n<style>{_STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>\n<body>\n'
        f"<h1>tuner report: {html.escape(run.name)}</h1>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


def _summary(run: SavedRun) -> Section:
    summary = run.summary or {}
    counts = summary.get("status_counts") or {}
    rows = {
        "run": run.name,
        "folder": str(run.path),
        "search": run.search,
        "scheduler": run.scheduler,
        "started": run.started.isoformat(sep=" ", timespec="seconds"),
        "trials": summary.get("num_trials", len(run.trials)),
        "status": ", ".join(f"{status}: {n}" for status, n in counts.items()) or "no trials recorded",
        "wall time": f"{summary['wall_time_s']} s" if "wall_time_s" in summary else "-",
    }
    objectives = [f"{o['metric']} ({o['mode']})" for o in run.objectives]
    rows["metric" if len(objectives) == 1 else "objectives"] = ", ".join(objectives)
    if summary.get("weights"):
        rows["weights"] = ", ".join(f"{metric}: {weight}" for metric, weight in summary["weights"].items())
    if summary.get("score"):
        rows["score"] = summary["score"]
    if run.stages:
        rows["stages"] = str(summary.get("stages", " then ".join(run.stages)))
    if run.best:
        rows["best"] = _best_text(run, run.best)
    content = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows.items())
    content = f"<dl>{content}</dl>"
    if not run.complete:
        why = "was interrupted" if run.summary else "stopped before it wrote summary.json"
        content = (
            f'<p class="warning">This run is incomplete: it {why}. Resume it with '
            f"<code>python -m tuner resume={html.escape(str(run.path))}</code></p>\n{content}"
        )
    return "summary", "Summary", content


def _best_text(run: SavedRun, best: dict[str, Any]) -> str:
    value = f"{run.metric} = {_cell(best.get(run.metric))}"
    if "candidate" in best:  # two-stage: stage two's winner, its mean over the seeds
        seeds = f"± {_cell(best.get('std'))} over {best.get('seeds')} seeds"
        return f"candidate {best['candidate']}: mean {value} {seeds} (best seed: trial {best.get('trial_id')})"
    return f"trial {best.get('trial_id')}: {value}"


def _leaderboard(run: SavedRun) -> Section:
    if run.trials.empty:
        return "leaderboard", "Leaderboard", "<p>No trials recorded.</p>"
    column = _best_column(run)
    columns = ["trial_id", *_param_names(run), column, "epochs", "status"]
    top = _ranked(run).head(TOP_TABLE)
    intro = f"<p>The {len(top)} best of {len(run.trials)} trials by {column} ({run.mode}).</p>"
    return "leaderboard", "Leaderboard", intro + _table(top, [c for c in columns if c in top])


def _curves(run: SavedRun) -> Section:
    column = _best_column(run)
    top = _ranked(run).dropna(subset=[column]).head(TOP_CURVES)["trial_id"].tolist() if column in run.trials else []
    if not top or run.metric not in run.history:
        return "curves", "Learning curves", f"<p>No {html.escape(run.metric)} was reported per epoch.</p>"
    fig = go.Figure()
    for trial_id in top:
        frame = _epochs(run.history[run.history["trial_id"] == trial_id])
        fig.add_trace(go.Scatter(x=frame["epoch"], y=frame[run.metric], mode="lines+markers", name=trial_id))
    fig.update_layout(xaxis_title="epoch", yaxis_title=run.metric, legend_title="trial")
    _epoch_ticks(fig)
    intro = f"<p>{run.metric} per epoch of the {len(top)} best trials.</p>"
    return "curves", "Learning curves", intro + _chart(fig, "curves")


def _train_curves(run: SavedRun) -> Section:
    """Stage two of a two-stage run: each candidate trained with several seeds."""
    if run.trials.empty or run.metric not in run.history:
        return "train-curves", "Stage two: learning curves", "<p>Stage two recorded no epochs.</p>"
    ids = run.trials["trial_id"]
    candidates = dict(zip(ids, run.trials["candidate"] if "candidate" in run.trials else ids))
    seeds = dict(zip(ids, run.trials["seed"])) if "seed" in run.trials else {}
    palette = qualitative.Plotly
    colors = {c: palette[i % len(palette)] for i, c in enumerate(dict.fromkeys(candidates.values()))}
    fig, shown = go.Figure(), set()
    for trial_id, frame in run.history.groupby("trial_id", sort=False):
        candidate = candidates.get(trial_id, "?")
        frame = _epochs(frame)
        fig.add_trace(go.Scatter(
            x=frame["epoch"], y=frame[run.metric], mode="lines", name=f"candidate {candidate}",
            legendgroup=str(candidate), showlegend=candidate not in shown, line_color=colors.get(candidate),
            hovertext=f"{trial_id}: candidate {candidate}, seed {_cell(seeds.get(trial_id))}", hoverinfo="text+y",
        ))
        shown.add(candidate)
    fig.update_layout(xaxis_title="epoch", yaxis_title=run.metric)
    _epoch_ticks(fig)
    intro = f"<p>{run.metric} per epoch of every stage-two trial, one colour per candidate.</p>"
    return "train-curves", "Stage two: learning curves", intro + _chart(fig, "train-curves")


def _epoch_ticks(fig: go.Figure) -> None:
    """Whole epochs on the x axis, about ten ticks at most."""
    last = max((max(trace.x, default=0) for trace in fig.data if trace.x is not None), default=1)
    fig.update_xaxes(tick0=0, dtick=max(1, math.ceil(last / 10)))


def _epochs(frame: pd.DataFrame) -> pd.DataFrame:
    """A trial's history with an epoch column: a trainable that reports none counts its reports."""
    if "epoch" in frame:
        return frame
    return frame.assign(epoch=np.arange(1, len(frame) + 1))


def _stops(run: SavedRun) -> Section:
    if run.trials.empty:
        return "stops", "When trials stopped", "<p>No trials recorded.</p>"
    trials, scheduler, column = run.trials, run.scheduler, _best_column(run)
    fig = go.Figure()
    for status, color in STATUS_COLORS.items():
        rows = trials[trials["status"] == status]
        if rows.empty:
            continue
        hover = [f"{r['trial_id']}: {_stop_reason(r, scheduler)}" + _best_line(r, column) for _, r in rows.iterrows()]
        common = {"x": rows["epochs"], "y": rows["trial_id"], "hovertext": hover, "hoverinfo": "text"}
        common["legendgroup"] = status
        fig.add_trace(go.Bar(orientation="h", name=status, marker_color=color, width=0.5, **common))
        # the end of each bar marked, so a trial that failed before its first epoch shows too
        fig.add_trace(go.Scatter(mode="markers", marker={"color": color, "size": 10}, showlegend=False, **common))
    max_epochs = run.config.get("max_epochs")
    if isinstance(max_epochs, (int, float)):
        fig.add_vline(x=max_epochs, line_dash="dash", annotation_text="max_epochs")
    fig.update_layout(xaxis_title="epochs reached", yaxis_title="trial", barmode="overlay")
    first_on_top = trials["trial_id"].tolist()[::-1]
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=first_on_top)
    _epoch_ticks(fig)
    height = max(300, 22 * len(trials) + 120)
    intro = f"<p>The epochs each trial reached, by how it ended (scheduler: {html.escape(scheduler)}).</p>"
    return "stops", "When trials stopped", intro + _chart(fig, "stops", height)


def _stop_reason(row: pd.Series, scheduler: str) -> str:
    status, epochs = row["status"], int(row["epochs"])
    if status == STOPPED:
        return f"{status} by {scheduler} at epoch {epochs}"
    if status in (ERRORED, DIVERGED):
        error = row.get("error")
        return f"{status} at epoch {epochs}" + ("" if is_missing(error) else f": {error}")
    return f"{status} at epoch {epochs}"


def _best_line(row: pd.Series, column: str) -> str:
    value = row.get(column)
    return "" if is_missing(value) else f"<br>{column} {_cell(value)}"


def _parallel(run: SavedRun) -> Section:
    column = _best_column(run)
    trials = run.trials[run.trials[column].notna()] if column in run.trials else run.trials.iloc[0:0]
    dimensions = [d for name, param in _searched(run).items() if (d := _dimension(trials[name], param)) is not None]
    if trials.empty or not dimensions:
        return "parallel", "Parallel coordinates", "<p>No trial has both varying params and a metric value.</p>"
    values = trials[column].astype(float)
    dimensions.append({"label": column, "values": values.tolist()})
    fig = go.Figure(go.Parcoords(
        dimensions=dimensions,
        line={"color": values.tolist(), "colorscale": "Viridis", "reversescale": run.mode == "min", "showscale": True},
    ))
    intro = f"<p>One line per trial with a {column}, coloured by it; constant params are left out.</p>"
    return "parallel", "Parallel coordinates", intro + _chart(fig, "parallel")


def _dimension(values: pd.Series, param: space_lib.Param) -> dict[str, Any] | None:
    """A parcoords axis: log params on a log10 scale, text params as integer codes, and the
    trials a conditional param was not set in on a "not set" tick of their own."""
    present, name, unset = values.dropna(), str(values.name), bool(values.isna().any())
    if present.nunique() < 2:
        return None
    if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        labels = sorted({str(v) for v in present}) + [NOT_SET] * unset
        codes = [labels.index(NOT_SET if is_missing(v) else str(v)) for v in values]
        return {"label": name, "values": codes, "tickvals": list(range(len(labels))), "ticktext": labels}
    numbers = values.astype(float)
    if param.type in _LOG_TYPES and (present > 0).all():
        numbers, name = np.log10(numbers), f"{name} (log10)"
    if not unset:
        return {"label": name, "values": numbers.tolist()}
    low, high = numbers.min(), numbers.max()
    below, ticks = low - (high - low) / 10, np.linspace(low, high, 5)
    return {
        "label": name, "values": numbers.fillna(below).tolist(),
        "tickvals": [below, *ticks], "ticktext": [NOT_SET, *(f"{t:.3g}" for t in ticks)],
    }


def _importance(run: SavedRun, computed: bool) -> Section:
    if not computed:
        command = f"python -m tuner.results report {run.where}"
        text = f"Parameter importance (Optuna's fANOVA) is left out of the report a run writes, for its cost; {command} adds it."
        return "importance", "Parameter importance", f"<p>{html.escape(text)}</p>"
    from tuner.results.importance import importances  # scikit-learn's import takes a second

    result = importances(run.trials, _best_column(run), run.mode, _searched(run))
    if isinstance(result, str):
        return "importance", "Parameter importance", f"<p>{html.escape(result)}</p>"
    weights, left_out = result
    ordered = sorted(weights.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in ordered], y=[k for k, _ in ordered], orientation="h"))
    fig.update_layout(xaxis_title="importance (fANOVA, sums to 1)", yaxis_title="param")
    intro = f"<p>How much of the variance of {_best_column(run)} each param explains (Optuna's fANOVA).</p>"
    if left_out:
        intro += f"<p>Left out, not set in every trial: {html.escape(', '.join(left_out))}.</p>"
    chart = _chart(fig, "importance", max(250, 40 * len(ordered) + 120))
    table = pd.DataFrame(ordered[::-1], columns=["param", "importance"])
    return "importance", "Parameter importance", intro + chart + _table(table, ["param", "importance"])


def _pareto(run: SavedRun) -> Section:
    objectives = run.objectives
    columns = [f"last_{o['metric']}" for o in objectives]
    missing = [c for c in columns if c not in run.trials]
    if run.trials.empty or missing:
        return "pareto", "Pareto front", f"<p>trials.csv has no {html.escape(', '.join(missing) or 'trials')}.</p>"
    front_ids = [] if run.pareto is None or run.pareto.empty else run.pareto["trial_id"].tolist()
    listed = pd.DataFrame({"trial_id": front_ids}).merge(run.trials, on="trial_id")  # pareto.csv's order
    front = listed.sort_values(columns[0])
    (x, y), (ox, oy) = columns[:2], objectives[:2]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=run.trials[x], y=run.trials[y], mode="markers", name="trials", marker_color="#9e9e9e",
        text=run.trials["trial_id"], hoverinfo="text+x+y",
    ))
    fig.add_trace(go.Scatter(
        x=front[x], y=front[y], mode="lines+markers", name="Pareto front", marker={"color": "#d62728", "size": 10},
        text=front["trial_id"], hoverinfo="text+x+y",
    ))
    fig.update_layout(xaxis_title=f"{ox['metric']} ({ox['mode']})", yaxis_title=f"{oy['metric']} ({oy['mode']})")
    intro = f"<p>Every trial on its last {ox['metric']} and {oy['metric']};"
    intro += " the non-dominated ones (pareto.csv) joined in red"
    intro += "; the table lists every objective.</p>" if len(objectives) > 2 else ".</p>"
    if run.pareto is None:
        table = "<p>pareto.csv is missing.</p>"
    else:
        empty = "<p>No trial ended normally: the front is empty.</p>"
        table = _table(listed, ["trial_id", *columns, *_param_names(run)]) if front_ids else empty
    return "pareto", "Pareto front", intro + _chart(fig, "pareto") + table


def _ranking(run: SavedRun) -> Section:
    ranking, metric = run.ranking.sort_values("rank"), run.metric
    mean, std = f"mean_{metric}", f"std_{metric}"
    labels = [f"#{int(r)} (candidate {c})" for r, c in zip(ranking["rank"], ranking["candidate"])]
    fig = go.Figure(go.Bar(
        x=labels, y=ranking[mean], error_y={"type": "data", "array": ranking[std].fillna(0).tolist()}, name=mean,
    ))
    fig.update_layout(xaxis_title="candidate (rank)", yaxis_title=f"{metric}, mean ± std over seeds")
    fig.update_xaxes(type="category")
    intro = f"<p>Stage two: each screened candidate retrained with several seeds, ranked by mean {metric} ({run.mode}).</p>"
    table = _table(ranking, list(ranking.columns))
    return "ranking", "Ranking of the candidates", intro + _chart(fig, "ranking") + table


def _test_split(run: SavedRun) -> Section:
    """The exported model's confusion matrix (counts, coloured by the share of each true class)
    and per-class figures on the test split; a two-stage winner's seeds side by side."""
    title = "Test set"
    test = run.test
    if not test or "skipped" in test:
        why = test["skipped"] if test else "this results folder holds none"
        return "test", title, f"<p>No test figures: {html.escape(why)}.</p>"
    if run.confusion is None or run.test_metrics is None:
        return "test", title, "<p>confusion_matrix.csv or test_metrics.csv is missing.</p>"
    trial = str(test["trial_id"])
    confusion = confusions(run.confusion)[trial]
    intro = (
        f"<p>The exported model on the held-out test split: {html.escape(scores_text(test))}.</p>"
        f"<p>The test split took no part in the search: "
        f"the chosen model was scored on it once, after the search had ended. "
        f"Exported model: {html.escape(model_text(run.model, str(run.path)))}.</p>"
    )
    rates = confusion.rates()
    fig = go.Figure(go.Heatmap(
        z=np.where(np.isnan(rates), None, rates).tolist(), x=confusion.classes, y=confusion.classes,
        text=confusion.matrix.tolist(), texttemplate="%{text}<br>%{z:.0%}", colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": {"text": "share of row"}},
        hovertemplate="true %{y}, predicted %{x}: %{text} windows (%{z:.1%} of the row)<extra></extra>",
    ))
    fig.update_xaxes(title_text="predicted class", type="category")
    fig.update_yaxes(title_text="true class", type="category", autorange="reversed")
    chart = _chart(fig, "test", max(400, 45 * len(confusion.classes) + 200))
    per_class = run.test_metrics[run.test_metrics["trial_id"].astype(str) == trial]
    content = intro + chart + _table(per_class, ["class", "precision", "recall", "f1", "support"])
    if "seeds" in test:
        seeds = pd.DataFrame(test["seeds"])
        content += "<p>Each seed of the winning candidate on the test split:</p>" + _table(seeds, list(seeds.columns))
    return "test", title, content


def _best_config(run: SavedRun) -> Section:
    path = run.path / "best_config.yaml"
    if not path.is_file():
        return "best-config", "Best config", "<p>best_config.yaml is missing: no trial reported the metric.</p>"
    command = f"python -m tuner.retrain {path}"
    return "best-config", "Best config", (
        f"<p>Retrain it with <code>{html.escape(command)}</code></p>\n"
        f"<pre>{html.escape(path.read_text())}</pre>"
    )


def _best_column(run: SavedRun) -> str:
    return f"best_{run.metric}"


def _ranked(run: SavedRun) -> pd.DataFrame:
    return read.ranked(run, run.metric, run.mode)


def _param_names(run: SavedRun) -> list[str]:
    return list(_searched(run))


def _searched(run: SavedRun) -> dict[str, space_lib.Param]:
    """The space's searched params that trials.csv has a column for, by name."""
    params = read.space_params(run)
    return {p.name: p for p in params if p.name in space_lib.sampled_names(params) and p.name in run.trials}


def _cell(value: Any) -> str:
    return cell(value, digits=4)


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in columns) + "</tr>"
        for _, row in frame.iterrows()
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>{rows}</tbody>\n</table>"


def _chart(fig: go.Figure, name: str, height: int = 450) -> str:
    fig.update_layout(height=height, template="plotly_white", margin={"t": 40})
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=f"{name}-chart", default_height=f"{height}px",
        config={"displaylogo": False, "responsive": True},
    )
