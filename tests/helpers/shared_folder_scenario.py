"""The shared-folder check on real nodes: a head and two worker raylets see the folder; then a
raylet in its own mount namespace, where an empty folder hides the driver's, must be refused.

Run as `python -m tests.helpers.shared_folder_scenario <folder>` (its own process: it needs its own Ray).
Prints `checked <n> nodes of <alive>` and then the refusal as `refused: <message>`.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from tuner.errors import ConfigError
from tuner.run import check_shared_folder

BIN = Path(sys.executable).parent


def alive() -> list[str]:
    return sorted(node["NodeID"] for node in ray.nodes() if node["Alive"])


def start_blind_node(address: str, folder: Path, empty: Path) -> subprocess.Popen:
    """A raylet that joins the cluster but, in its own mount namespace, finds an empty folder
    where the driver's is: a node that does not share the driver's disk."""
    command = f"mount --bind {empty} {folder} && exec {BIN / 'ray'} start --address={address} --num-cpus=1 --block"
    return subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder.parent / "empty"
    empty.mkdir(exist_ok=True)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    checked = check_shared_folder(folder)
    print(f"checked {len(checked)} nodes of {len(alive())}: {'all' if sorted(checked) == alive() else 'not all'}")

    blind = start_blind_node(cluster.address, folder, empty)
    try:
        deadline = time.monotonic() + 90
        while len(alive()) < 4:
            assert time.monotonic() < deadline and blind.poll() is None, "the blind node never joined"
            time.sleep(0.5)
        try:
            check_shared_folder(folder)
            print("not refused")
        except ConfigError as err:
            print(f"refused: {err}")
    finally:
        os.killpg(blind.pid, signal.SIGKILL)
        blind.wait(timeout=30)
    print(f"left in the folder: {sorted(p.name for p in folder.iterdir())}", flush=True)
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
