"""Write the lock of the tested environment: every package tuner needs at run time, at the
version installed here. `make lock` runs it after the test suite passed in this environment;
every cluster node installs from the file it writes (cluster.yaml, cluster-onprem.yaml).

    python .ci/lock.py conf/cluster/requirements.lock
"""

from __future__ import annotations

import platform
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent

HEADER = """\
# The environment the test suite passed in, written by `make lock`: every package tuner needs
# at run time (not the dev tools), made on {machine} with Python {python}.
# Every node of cluster.yaml and cluster-onprem.yaml installs from it; `make install` takes it
# as constraints. torch is pinned without a local build tag such as +cpu: a GPU node gets the
# CUDA build of the same version from PyPI, whose nvidia-* libraries torch itself pins.
# python: {python}
"""


def runtime_closure(requirements: list[str]) -> dict[str, str]:
    """Name -> installed version of these requirements, their requirements, and so on, with
    the extras each was asked for and the markers evaluated for this interpreter."""
    versions: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(line) for line in requirements]
    while todo:
        req = todo.pop()
        extras = frozenset(req.extras)
        if (canonicalize_name(req.name), extras) in seen:
            continue
        seen.add((canonicalize_name(req.name), extras))
        dist = distribution(req.name)
        versions[dist.metadata["Name"]] = dist.version
        wanted = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        for line in dist.requires or []:
            child = Requirement(line)
            if child.marker is None or any(child.marker.evaluate(env) for env in wanted):
                todo.append(child)
    return versions


def lock_text() -> str:
    """The lock of the run-time dependencies pyproject.toml names, as installed here (the
    project itself is not in it: it travels with each job)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    versions = runtime_closure(project["dependencies"])
    header = HEADER.format(
        machine=f"{platform.system()} {platform.machine()}",
        python=platform.python_version(),
    )
    pins = [f"{name}=={Version(v).public}" for name, v in sorted(versions.items(), key=lambda kv: kv[0].lower())]
    return header + "\n".join(pins) + "\n"


def main(path: Path) -> None:
    new = path.with_suffix(".new")
    new.write_text(lock_text())
    new.replace(path)  # never a half-written lock
    print(f"wrote {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
