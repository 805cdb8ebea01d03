"""The layers import downward: reading results needs neither Ray nor W&B nor Hydra, validating a
config needs neither Ray nor W&B, and no module imports the entry point."""

import ast
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = {"ray", "wandb", "hydra"}


def imported(*args: str) -> set[str]:
    """The top-level packages a fresh Python loads for ``python -X importtime <args>``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    lines = [line.split("|")[-1] for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.strip().split(".")[0] for line in lines[1:]}


@pytest.mark.parametrize("module", ["tuner.results", "tuner.results.cli", "tuner.results.read", "tuner.results.report"])
def test_reading_results_loads_neither_ray_nor_wandb_nor_hydra(module):
    loaded = imported("-c", f"import {module}")
    assert "tuner" in loaded, "the import ran"
    assert not loaded & HEAVY


def test_python_m_tuner_results_list_loads_neither_ray_nor_wandb_nor_hydra(tmp_path):
    loaded = imported("-m", "tuner.results", "list", "--storage", str(tmp_path))
    assert "pandas" in loaded, "the command ran"
    assert not loaded & HEAVY


@pytest.mark.parametrize("module", ["tuner.spec", "tuner.space", "tuner.search", "tuner.sweep"])
def test_validating_a_config_loads_neither_ray_nor_wandb(module):
    loaded = imported("-c", f"import {module}")
    assert "tuner" in loaded, "the import ran"
    assert not loaded & {"ray", "wandb"}


def tuner_imports(path) -> set[str]:
    """The tuner modules a file imports, by name (``from tuner import x`` counts as tuner.x)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("tuner")}


def test_no_module_imports_the_entry_point():
    importers = [p for p in (ROOT / "tuner").rglob("*.py") if p.name != "__main__.py" and "tuner.main" in tuner_imports(p)]
    assert importers == []


def test_the_results_package_imports_nothing_that_runs_a_search():
    above = {
        "tuner.main", "tuner.pipeline", "tuner.retrain", "tuner.run", "tuner.outcome", "tuner.wandb_logger",
        "tuner.stages", "tuner.evaluation",
    }
    for path in (ROOT / "tuner" / "results").glob("*.py"):
        imports = tuner_imports(path)
        verbs = {"tuner.retrain", "tuner.evaluation"}  # the retrain and export verbs, imported when used
        allowed = verbs if path.name == "cli.py" else set()
        assert not (imports & above) - allowed, path.name
