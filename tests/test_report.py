"""report.html of real tuning runs: every section shows the folder's data, and the page renders
offline in a real headless Chromium without errors."""

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import sync_playwright
from plotly.offline import get_plotlyjs

from tests.conftest import NO_DATA, compose_config
from tuner.errors import ConfigError
from tuner.pipeline import tune_from_config
from tuner.results.report import write_report
from tuner.trials import TRIAL_ID_DTYPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

SMALL_DATA = ["data.num_train=240", "data.num_val=120", "logger=none"]
# The user trainable: errored and diverged trials, a categorical param and a conditional one.
QUADRATIC = [
    "trainable=tests.helpers.user_trainables.quadratic", *NO_DATA, "logger=none",
    "metric=score", "search=random", "num_samples=6", "max_epochs=2", "trial.max_failures=0", "~space",
    "+space={x: {type: uniform, low: 0.0, high: 1.0}, kind: {type: choice, values: [a, b]},"
    " y: {type: uniform, low: 0.0, high: 1.0, when: {kind: a}}}",
    "+train.x=0.5", "+train.kind=a", "+train.y=0.5", "+train.fail_above=0.6", "+train.diverge_above=0.85",
]
ONE_STAGE = ["summary", "test", "leaderboard", "curves", "stops", "parallel", "importance", "best-config"]
FILES = ("config.yaml", "summary.json", "trials.csv", "history.csv", "best_config.yaml")
# The one rule, as in .ci/run: Chromium is the `chromium` on PATH (Debian's package installs it).
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class Page(HTMLParser):
    """A report read back: per section its text, tables, <pre> text and scripts; every link."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.links: list[str] = []
        self.scripts: list[str] = []
        self._section, self._in = None, ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[a] for a in ("src", "href") if attrs.get(a)]
        if tag == "section":
            self._section = self.sections[attrs["id"]] = {"text": "", "tables": [], "pre": "", "scripts": []}
        elif tag in ("script", "pre"):
            self._in = tag
            if tag == "script":
                self.scripts.append("")
        elif self._section is not None and tag == "table":
            self._section["tables"].append([])
        elif self._section is not None and tag == "tr":
            self._section["tables"][-1].append([])
        elif self._section is not None and tag in ("td", "th"):
            self._section["tables"][-1][-1].append("")

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        elif tag == "script" and self._section is not None:
            self._section["scripts"].append(self.scripts[-1])
        if tag in ("script", "pre"):
            self._in = ""

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._section is not None:
            self._section["text"] += data
            if self._in == "pre":
                self._section["pre"] += data
            elif self._section["tables"] and self._section["tables"][-1] and self._section["tables"][-1][-1]:
                self._section["tables"][-1][-1][-1] += data.strip()

    def table(self, section: str, index: int = 0) -> pd.DataFrame:
        header, *rows = self.sections[section]["tables"][index]
        return pd.DataFrame(rows, columns=header)

    def chart(self, section: str) -> tuple[list[dict], dict]:
        """The traces and layout a section hands to Plotly.newPlot."""
        script = next(s for s in self.sections[section]["scripts"] if "Plotly.newPlot" in s)
        decoder = json.JSONDecoder()
        data, end = decoder.raw_decode(script, script.index("[", script.index("Plotly.newPlot(")))
        layout, _ = decoder.raw_decode(script, script.index("{", end))
        return data, layout


def copy_results(source: Path, target: Path) -> Path:
    """The files of a results folder, without Ray's trial folders."""
    target.mkdir(parents=True)
    for name in FILES:
        shutil.copy2(source / name, target / name)
    return target


def edit_summary(folder: Path, **changes) -> dict:
    summary = json.loads((folder / "summary.json").read_text()) | changes
    (folder / "summary.json").write_text(json.dumps(summary))
    return summary


@pytest.fixture(scope="module")
def har_run(tmp_path_factory, local_ray) -> Path:
    """Six HAR trials of up to 3 epochs under ASHA, one at a time so that which ones it stops
    depends on the seed only (with two at a time, on which result comes first): some
    completed, some early stopped."""
    storage = tmp_path_factory.mktemp("har")
    cfg = compose_config("search=asha", "num_samples=6", "max_epochs=3", "search.max_concurrent=1", *SMALL_DATA, f"storage={storage}")
    folder = Path(tune_from_config(cfg, storage / "run")["results_dir"])
    shutil.copy2(folder / "report.html", storage / "end-of-run.html")  # before the tests rewrite it
    return folder


@pytest.fixture(scope="module")
def quadratic_run(tmp_path_factory, local_ray) -> Path:
    """Six trials of the quadratic trainable: completed, errored and diverged ones."""
    storage = tmp_path_factory.mktemp("quadratic")
    return Path(tune_from_config(compose_config(*QUADRATIC, f"storage={storage}"), storage / "run")["results_dir"])


@pytest.fixture(scope="module")
def pareto_run(tmp_path_factory, local_ray) -> Path:
    """NSGA-II on val_acc (max) and the model's size (min): pareto.csv holds the front."""
    storage = tmp_path_factory.mktemp("nsga2")
    overrides = ["search=nsga2", "objectives={num_params: min}", "num_samples=6", "max_epochs=2", *SMALL_DATA]
    return Path(tune_from_config(compose_config(*overrides, f"storage={storage}"), storage / "run")["results_dir"])


@pytest.fixture(scope="module")
def two_stage_run(tmp_path_factory, local_ray) -> Path:
    """Screen four configs for one epoch, then train the best two with two seeds each."""
    storage = tmp_path_factory.mktemp("two_stage")
    overrides = [
        "stages=screen_then_train", "num_samples=4", "max_epochs=2", "stages.screen_epochs=1",
        "stages.top_k=2", "stages.seeds=2", *SMALL_DATA,
    ]
    return Path(tune_from_config(compose_config(*overrides, f"storage={storage}"), storage / "run")["results_dir"])


def report(folder: Path) -> Page:
    return Page(write_report(folder).read_text())


def test_every_section_shows_the_runs_data(har_run):
    page = report(har_run)
    summary = json.loads((har_run / "summary.json").read_text())
    trials = pd.read_csv(har_run / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert list(page.sections) == ONE_STAGE
    text = page.sections["summary"]["text"]
    for shown in (har_run.name, "asha", "val_acc (max)", f"{summary['wall_time_s']} s", "early_stopped: ", "completed: "):
        assert shown in text
    assert "incomplete" not in text

    leaderboard = page.table("leaderboard")
    best = summary["best_trial"]
    assert leaderboard.iloc[0].trial_id == best["trial_id"]
    assert leaderboard.iloc[0].best_val_acc == f"{best['val_acc']:.4g}"
    assert list(leaderboard.columns) == ["trial_id", *best["params"], "best_val_acc", "epochs", "status"]
    assert set(leaderboard.trial_id) == set(trials.trial_id)

    curves, _ = page.chart("curves")
    ranked = trials.sort_values("best_val_acc", ascending=False, kind="stable")
    assert [t["name"] for t in curves] == ranked.trial_id.head(5).tolist()

    stops, _ = page.chart("stops")
    assert {y for t in stops for y in t["y"]} == set(trials.trial_id)
    hover = [h.split("<br>")[0] for t in stops for h in t["hovertext"]]
    assert {"early_stopped", "completed"} <= set(trials.status), "seeded: ASHA stops some, not all"
    for row in trials.itertuples():
        by = " by asha" if row.status == "early_stopped" else ""
        assert f"{row.trial_id}: {row.status}{by} at epoch {row.epochs}" in hover

    (parallel,), _ = page.chart("parallel")
    labels = [d["label"] for d in parallel["dimensions"]]
    varying = [p for p in best["params"] if trials[p].nunique() > 1]
    assert [label.removesuffix(" (log10)") for label in labels] == [*varying, "best_val_acc"]
    assert "lr (log10)" in labels

    assert page.sections["best-config"]["pre"] == (har_run / "best_config.yaml").read_text()
    assert f"python -m tuner.retrain {har_run / 'best_config.yaml'}" in page.sections["best-config"]["text"]


def shown_matrix(folder: Path) -> pd.DataFrame:
    """The rows of confusion_matrix.csv of the trial summary.json's test figures are of."""
    trial = json.loads((folder / "summary.json").read_text())["test"]["trial_id"]
    matrix = pd.read_csv(folder / "confusion_matrix.csv", dtype=TRIAL_ID_DTYPE)
    return matrix[matrix.trial_id == trial].drop(columns=["trial_id", "true"])


def test_the_test_section_shows_the_chosen_models_confusion_matrix_and_per_class_figures(har_run):
    page = report(har_run)
    test = json.loads((har_run / "summary.json").read_text())["test"]
    (heatmap,), layout = page.chart("test")
    counts = shown_matrix(har_run)
    assert heatmap["x"] == heatmap["y"] == list(counts.columns) == test["classes"]
    assert heatmap["text"] == counts.values.tolist()
    np.testing.assert_allclose(heatmap["z"], counts.values / counts.values.sum(axis=1, keepdims=True))
    assert layout["yaxis"]["autorange"] == "reversed", "the first class on top, as in the table"
    metrics = pd.read_csv(har_run / "test_metrics.csv", dtype=TRIAL_ID_DTYPE)
    table = page.table("test")
    assert list(table.columns) == ["class", "precision", "recall", "f1", "support"]
    assert table["class"].tolist() == metrics["class"].tolist()
    assert table.support.tolist() == metrics.support.astype(str).tolist()
    text = page.sections["test"]["text"]
    assert f"accuracy {test['accuracy']:.4g}, macro F1 {test['macro_f1']:.4g} on {test['windows']} windows" in text
    assert f"{har_run / 'model.pt2'} (trial {test['trial_id']})" in text


def test_a_run_without_test_figures_says_why(quadratic_run):
    text = report(quadratic_run).sections["test"]["text"]
    assert "No test figures: tests.helpers.user_trainables has no predict_test_split(config, checkpoint_dir, data)." in text


def test_plotly_js_is_inlined_once_and_nothing_is_fetched(har_run):
    text = write_report(har_run).read_text()
    assert text.count(get_plotlyjs()) == 1
    assert not [link for link in Page(text).links if link.startswith(("http:", "https:", "//"))]


def test_the_report_a_run_writes_leaves_importance_to_the_report_command(har_run):
    page = Page((har_run.parent / "end-of-run.html").read_text())
    assert list(page.sections) == ONE_STAGE
    assert f"python -m tuner.results report {har_run} adds it" in page.sections["importance"]["text"]
    assert not page.sections["importance"]["scripts"], "no chart: nothing was computed"
    assert page.sections["leaderboard"] == report(har_run).sections["leaderboard"], "the rest is the whole report"


def test_importance_weighs_every_sampled_param_with_fanova(har_run):
    importance = report(har_run).table("importance")
    params = json.loads((har_run / "summary.json").read_text())["best_trial"]["params"]
    trials = pd.read_csv(har_run / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert set(importance.param) == {p for p in params if trials[p].nunique() > 1}
    values = importance.importance.astype(float)
    assert (values >= 0).all() and values.sum() == pytest.approx(1, abs=0.01)


def test_errored_and_conditional_trials(quadratic_run):
    page = report(quadratic_run)
    trials = pd.read_csv(quadratic_run / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert {"errored", "diverged", "completed"} <= set(trials.status), "seeded x falls in all three ranges"
    hover = [h for t in page.chart("stops")[0] for h in t["hovertext"]]
    for row in trials[trials.status.isin(["errored", "diverged"])].itertuples():
        assert f"{row.trial_id}: {row.status} at epoch 0: {row.error}" in hover
    (parallel,), _ = page.chart("parallel")
    kind, y = (next(d for d in parallel["dimensions"] if d["label"] == name) for name in ("kind", "y"))
    assert kind["ticktext"] == ["a", "b"] and y["ticktext"][0] == "not set"
    assert set(page.table("importance").param) == {"x", "kind"}, "y is not set in every trial"
    assert "Left out, not set in every trial: y." in page.sections["importance"]["text"]


def test_too_few_trials_for_importance_says_why(quadratic_run, tmp_path):
    folder = copy_results(quadratic_run, tmp_path / "run")
    trials = pd.read_csv(folder / "trials.csv", dtype=TRIAL_ID_DTYPE)
    kept = pd.concat([trials[trials.status != "completed"], trials[trials.status == "completed"].head(2)])
    kept.to_csv(folder / "trials.csv", index=False)
    edit_summary(folder, num_trials=len(kept))
    page = report(folder)
    assert "Only 2 finished trials with a best_score: fANOVA needs at least 3." in page.sections["importance"]["text"]
    assert not page.sections["importance"]["scripts"]


def test_pareto_section_shows_the_front_of_two_objectives(pareto_run):
    page = report(pareto_run)
    assert list(page.sections) == [*ONE_STAGE[:-1], "pareto", "best-config"]
    (everyone, front), layout = page.chart("pareto")
    assert set(everyone["text"]) == set(pd.read_csv(pareto_run / "trials.csv", dtype=TRIAL_ID_DTYPE).trial_id)
    pareto = pd.read_csv(pareto_run / "pareto.csv", dtype=TRIAL_ID_DTYPE)
    assert set(front["text"]) == set(pareto.trial_id) and len(pareto) >= 1
    assert layout["xaxis"]["title"]["text"] == "val_acc (max)"
    assert layout["yaxis"]["title"]["text"] == "num_params (min)"
    table = page.table("pareto")
    assert set(table.trial_id) == set(pareto.trial_id)
    assert list(table.columns[:3]) == ["trial_id", "last_val_acc", "last_num_params"] and "lr" in table.columns
    assert table.trial_id.tolist() == pareto.trial_id.tolist(), "best val_acc first, as pareto.csv lists it"
    assert table.last_num_params.tolist() == [str(v) for v in pareto.last_num_params]


def test_two_stage_run_shows_the_ranking_and_stage_two(two_stage_run):
    page = report(two_stage_run)
    assert list(page.sections) == ["summary", "ranking", *ONE_STAGE[1:-1], "train-curves", "best-config"]
    summary = json.loads((two_stage_run / "summary.json").read_text())
    seeds = page.table("test", 1)
    train = pd.read_csv(two_stage_run / "train" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    winner = train[train.candidate == summary["best_trial"]["candidate"]]
    assert sorted(seeds.trial_id) == sorted(winner.trial_id) and sorted(seeds.seed) == sorted(winner.seed.astype(str))
    assert "screen_then_train" in page.sections["summary"]["text"]
    assert f"candidate {summary['best_trial']['candidate']}: mean val_acc = " in page.sections["summary"]["text"]
    ranking = pd.read_csv(two_stage_run / "ranking.csv", dtype=TRIAL_ID_DTYPE)
    (bars,), _ = page.chart("ranking")
    assert bars["x"] == [f"#{r.rank} (candidate {r.candidate})" for r in ranking.itertuples()]
    assert bars["error_y"]["array"] == pytest.approx(ranking.std_val_acc.tolist())
    assert list(page.table("ranking").columns) == list(ranking.columns)
    assert set(page.table("leaderboard").trial_id) == set(pd.read_csv(two_stage_run / "screen" / "trials.csv", dtype=TRIAL_ID_DTYPE).trial_id)
    train = pd.read_csv(two_stage_run / "train" / "trials.csv", dtype=TRIAL_ID_DTYPE)
    assert len(train) == 4 and sorted(train.candidate) == [0, 0, 1, 1]
    curves, _ = page.chart("train-curves")
    candidate = dict(zip(train.trial_id, train.candidate.astype(str)))
    assert sorted(t["hovertext"].split(":")[0] for t in curves) == sorted(train.trial_id)
    assert all(t["legendgroup"] == candidate[t["hovertext"].split(":")[0]] for t in curves)
    assert sum(t["showlegend"] for t in curves) == 2, "one legend entry per candidate"
    assert page.sections["best-config"]["pre"] == (two_stage_run / "best_config.yaml").read_text()


def test_an_incomplete_run_says_how_to_resume(har_run, tmp_path):
    interrupted = copy_results(har_run, tmp_path / "interrupted")
    edit_summary(interrupted, interrupted=True)
    killed = copy_results(har_run, tmp_path / "killed")
    (killed / "summary.json").unlink()
    for folder, why in ((interrupted, "was interrupted"), (killed, "stopped before it wrote summary.json")):
        text = report(folder).sections["summary"]["text"]
        assert f"This run is incomplete: it {why}. Resume it with python -m tuner resume={folder}" in text
    assert "No trials recorded." in report(killed).sections["leaderboard"]["text"]


@pytest.mark.parametrize("damage", ["summary.json", "trials.csv"])
def test_a_damaged_folder_raises_and_leaves_the_old_report(har_run, tmp_path, damage):
    folder = copy_results(har_run, tmp_path / "run")
    before = write_report(folder).read_bytes()
    text = (folder / damage).read_bytes()
    (folder / damage).write_bytes(text[: len(text) // 2])  # cut short, as by a full disk
    with pytest.raises(ConfigError, match=damage):
        write_report(folder)
    assert (folder / "report.html").read_bytes() == before
    assert sorted(os.listdir(folder)) == sorted([*FILES, "report.html"])


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium on PATH: CI installs Debian's chromium for this test")
        pytest.skip("no chromium on PATH: apt-get install chromium to render the report")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("run", ["har_run", "pareto_run", "two_stage_run"])
def test_the_report_renders_offline_in_chromium(chromium, request, run):
    folder = request.getfixturevalue(run)
    path = write_report(folder)
    sections = list(Page(path.read_text()).sections)
    page = chromium.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_function("[...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('.main-svg'))")
    for section in sections:
        assert page.locator(f"section#{section}").is_visible(), section
    charts = page.locator(".js-plotly-plot")
    assert charts.count() == page.locator(".plotly-graph-div").count() >= 4
    assert page.locator(".js-plotly-plot .main-svg").count() >= charts.count()
    labels = page.evaluate("document.getElementById('parallel-chart').data[0].dimensions.map(d => d.label)")
    assert labels[-1] == "best_val_acc" and len(labels) >= 3
    stops = page.evaluate("document.getElementById('stops-chart').data.flatMap(t => t.y)")
    screen = folder / "screen" if (folder / "screen").is_dir() else folder
    assert set(stops) == set(pd.read_csv(screen / "trials.csv", dtype=TRIAL_ID_DTYPE).trial_id)
    counts = page.evaluate("document.getElementById('test-chart').data[0].text")
    assert counts == shown_matrix(folder).values.tolist()
    labels = "[...document.querySelectorAll('#test-chart .heatmap-label')]"
    script = f"{labels}.map(t => [...t.querySelectorAll('tspan')].map(s => s.textContent))"
    cells = {(int(count), float(rate.rstrip("%"))) for count, rate in page.evaluate(script)}
    rates = shown_matrix(folder).apply(lambda row: 100 * row / row.sum(), axis=1).values
    drawn = {(count, round(rate)) for count, rate in zip(np.ravel(counts), np.ravel(rates))}
    assert {count for count, _ in cells} == {count for count, _ in drawn}, "each cell drawn with its count"
    assert all(any(c == count and abs(r - rate) <= 1 for c, r in cells) for count, rate in drawn), "and its share of the row"
    assert not errors
    assert requests == [path.as_uri()]
    page.close()
