"""The benchmarks' own pieces: the test function, the budget arithmetic, one tuner run cut at its
budget, and the two training loops throughput compares. Seconds, not the benchmarks themselves."""

import itertools
import math
import time

import pandas as pd
import pytest
import torch

from benchmarks import curves, search_efficiency, throughput
from trainables.data import synthetic_har
from trainables.har import make_optimizer
from trainables.models import build_model

CONFIG = {
    "lr": 3e-4, "weight_decay": 1e-5, "dropout": 0.1, "batch_size": 64,
    "model": {"channels": 32, "levels": 3}, "seed": 0,
}


def test_curve_is_seeded_learns_with_epochs_and_stays_below_its_optimum():
    assert curves.val_acc(CONFIG, 5) == curves.val_acc(CONFIG, 5)
    assert curves.val_acc(CONFIG, 5) != curves.val_acc({**CONFIG, "seed": 1}, 5)
    assert curves.val_acc(CONFIG, 1) < curves.val_acc(CONFIG, 10)
    best = curves.optimum(10, resolution=11)
    grid = [
        curves.curve(curves.unit_cube(lr, 1e-4, 0.1, batch, channels, 3), 10)
        for lr, batch, channels in itertools.product(*search_efficiency.GRID.values())
    ]
    assert curves.CHANCE < max(grid) < best <= curves.CEILING


def test_crossing_curves_rank_fast_starters_first_after_one_epoch_and_last_after_ten():
    slow, fast = CONFIG, {**CONFIG, "lr": 3e-2}
    assert curves.val_acc(fast, 1, "crossing") > curves.val_acc(slow, 1, "crossing") + 0.2
    assert curves.val_acc(fast, 10, "crossing") < curves.val_acc(slow, 10, "crossing") - 0.1
    assert curves.val_acc(slow, 10, "crossing") < curves.optimum(10, resolution=11, shape="crossing") <= curves.CEILING


def test_summary_gives_medians_quartiles_and_the_seeds_on_target():
    per_seed = pd.DataFrame({
        "task": "curve", "method": "random", "seed": range(5), "epochs": 180, "wall_s": 1.0, "ending": "finished",
        "best@10%_epochs": [0.1, 0.2, 0.3, 0.4, 0.5], "best": 0.5,
        "reach_epochs_share": [0.1, 0.2, 0.5, math.inf, math.inf], "reach_time_share": 0.5,
    })
    row = search_efficiency.summarize(per_seed).iloc[0]
    assert (row["best@10%_epochs"], row["best@10%_epochs_q25"], row["best@10%_epochs_q75"]) == (0.3, 0.2, 0.4)
    assert row.reach_epochs_share == 0.5 and row.reach_epochs_share_q75 == math.inf
    assert row.reached == "3/5" and row.on_target == "2/5"


def test_best_after_a_budget_counts_epochs_in_the_order_they_were_reported():
    events = pd.DataFrame({"time_s": [0.5, 1.0, 2.0, 4.0], "trial": [0, 1, 0, 1], "epoch": [1, 1, 2, 2],
                           "val_acc": [0.3, 0.6, 0.5, 0.9]})
    assert search_efficiency.best_after_epochs(events, 1) == 0.3
    assert search_efficiency.best_after_epochs(events, 3) == 0.6
    assert search_efficiency.best_after_epochs(events, 10) == 0.9  # fewer epochs run than the budget
    assert search_efficiency.best_after_time(events, 2.0) == 0.6
    assert math.isnan(search_efficiency.best_after_time(events, 0.1))
    assert search_efficiency.to_reach(events, 0.9) == (4.0, 4.0)
    assert search_efficiency.to_reach(events, 0.604) == (2.0, 1.0)  # within 0.5 pt
    assert search_efficiency.to_reach(events, 0.95) == (math.inf, math.inf)


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_a_tuner_run_is_cut_when_it_has_trained_the_budget(tmp_path):
    task = next(t for t in search_efficiency.tasks(quick=True) if t.name == "curve")
    events, ending = search_efficiency.run_tuner(task, 0, "asha", 12, tmp_path)
    assert ending == "budget" and len(events) == 12
    assert events.time_s.is_monotonic_increasing and events.val_acc.between(0, 1).all()


@pytest.fixture
def one_thread():
    """Torch on one thread: two threads on two busy cores make these steps seconds long."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("loop", throughput.LOOPS)
def test_both_throughput_loops_train_a_model_on_the_same_tensors(loop):
    data = synthetic_har(num_train=96, num_val=60, seed=0)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    torch.manual_seed(0)
    model = build_model(throughput.MODELS["cnn_tcn"], x.shape[1], 6, dropout=0.1)
    optimizer = make_optimizer(model, 1e-3, 1e-4)
    before = [p.detach().clone() for p in model.parameters()]
    generator = torch.Generator().manual_seed(0)
    losses = [throughput.LOOPS[loop](model, optimizer, x, y, 32, generator)[0] for _ in range(3)]
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "every weight was trained"
    assert losses[-1] < losses[0], losses
    started = time.perf_counter()
    seconds = throughput.timed_epoch(loop, throughput.MODELS["cnn_tcn"], x, y, batch_size=32, seed=0)
    assert 0 < seconds < time.perf_counter() - started, "the epoch's time, without building the model"
