"""A tuning run across a head and two worker raylets; one worker is removed mid-run.

Run as `python -m tests.cluster_scenario <storage>` (its own process: it needs its own Ray).
Prints the results folder on a line `results folder: <path>`.
"""

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import ray
from ray.cluster_utils import Cluster

from tests.conftest import compose_config
from tuner.main import tune_from_config
from tuner.run import read_nodes

RUN = [
    "search=fifo", "num_samples=4", "max_epochs=8", "name=nodes", "trial.max_failures=3",
    "data.num_train=1200", "data.num_val=300",
]


def remove_worker_once_it_holds_a_checkpointed_trial(
    cluster: Cluster, workers: list, storage: Path, stop: threading.Event, timeout: float = 300
) -> None:
    """Take away the worker running a trial that has checkpointed two epochs: its raylet and
    the trial's process (a raylet's death alone can leave its workers running for seconds,
    long enough for a short trial to finish on a node that is gone). Gives up when ``stop`` is
    set (the run is over) or after ``timeout`` seconds."""
    node_ids = {w.node_id: w for w in workers}
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        for results_dir in storage.glob("nodes-*"):
            for trial_id, nodes in read_nodes(results_dir).items():
                progress = results_dir / trial_id / "progress.csv"
                epochs = len(progress.read_text().splitlines()) - 1 if progress.exists() else 0
                if 2 <= epochs <= 4 and nodes[-1] in node_ids:
                    print(f"removing node {nodes[-1]} running {trial_id} at epoch {epochs}", flush=True)
                    pid = int(pd.read_csv(progress).pid.iloc[-1])
                    cluster.remove_node(node_ids[nodes[-1]], allow_graceful=False)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    return
        time.sleep(0.1)


def main(storage: Path) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    stop = threading.Event()
    killer = threading.Thread(
        target=remove_worker_once_it_holds_a_checkpointed_trial,
        args=(cluster, workers, storage, stop),
        daemon=True,
    )
    killer.start()
    summary = tune_from_config(compose_config(*RUN, f"storage={storage}"))
    stop.set()
    killer.join(timeout=30)
    print(f"results folder: {summary['results_dir']}", flush=True)
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
