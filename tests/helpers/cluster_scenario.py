"""A tuning run across a head and two worker raylets, results in a bucket; one worker is removed
mid-run.

Run as `python -m tests.helpers.cluster_scenario <storage>` (its own process: it needs its own Ray).
Prints the results folder on a line `results folder: <location>`.
"""

import contextlib
import io
import os
import signal
import sys
import threading
import time

import pandas as pd
import ray
from ray.cluster_utils import Cluster

from tests.conftest import compose_config
from tuner import storage as store
from tuner.pipeline import tune_from_config
from tuner.trials import NODE_KEY

RUN = [
    "search=fifo", "num_samples=4", "max_epochs=8", "name=nodes", "trial.max_failures=3",
    "data.num_train=1200", "data.num_val=300", "logger=none",
]
KILLER_DEADLINE_S = 300


def progress_of_trials(storage: str) -> dict[str, pd.DataFrame]:
    """Each trial's progress.csv as the storage holds it now (not yet there, or caught created
    but not yet written: left out)."""
    progress = {}
    for results in store.list_folders(storage):
        for trial in store.list_folders(results):
            with contextlib.suppress(FileNotFoundError, pd.errors.EmptyDataError):
                progress[store.name(trial)] = pd.read_csv(io.StringIO(store.read_text(store.join(trial, "progress.csv"))))
    return progress


def remove_worker_once_it_holds_a_checkpointed_trial(
    cluster: Cluster, workers: list, storage: str, stop: threading.Event
) -> None:
    """Take away the worker running a trial that has checkpointed two epochs: its raylet and
    the trial's process (a raylet's death alone can leave its workers running for seconds,
    long enough for a short trial to finish on a node that is gone). Gives up when ``stop`` is
    set (the run is over) or after KILLER_DEADLINE_S seconds."""
    node_ids = {w.node_id: w for w in workers}
    deadline = time.monotonic() + KILLER_DEADLINE_S
    while not stop.is_set() and time.monotonic() < deadline:
        for trial_id, progress in progress_of_trials(storage).items():
            node, epochs = progress[NODE_KEY].iloc[-1], len(progress)
            if 2 <= epochs <= 4 and node in node_ids:
                print(f"removing node {node} running {trial_id} at epoch {epochs}", flush=True)
                cluster.remove_node(node_ids[node], allow_graceful=False)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(progress.pid.iloc[-1]), signal.SIGKILL)
                return
        time.sleep(0.1)
    print(f"no node removed: no trial held 2 to 4 checkpointed epochs (run over, or {KILLER_DEADLINE_S} s)", flush=True)


def main(storage: str) -> None:
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
    main(sys.argv[1])
