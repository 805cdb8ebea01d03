"""The HAR trainable: synthetic data, models, training, checkpoints, metrics and the exported
model, all without Ray."""

import json

import numpy as np
import pytest
import torch

from trainables.data import HAR_CLASSES, Dataset, synthetic_har
from trainables.data.parts.subjects import channel_stats, standardize
from trainables.har import (
    evaluate,
    export_model,
    load_checkpoint,
    macro_f1,
    make_optimizer,
    make_lr_scheduler,
    predict_test_split,
    save_checkpoint,
    set_lr_and_weight_decay,
    step_lr_scheduler,
    train,
    train_one_epoch,
)
from trainables.models import build_model

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Keep timings stable on small CI machines and leave the thread count as it was."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_har() -> Dataset:
    return synthetic_har(num_train=600, num_val=300, seed=1)


def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(x), torch.from_numpy(y)


def fit(model_cfg: dict, data: Dataset, epochs: int, lr: float = 3e-3) -> tuple[list, list]:
    """Train from a fixed seed; returns the train losses and val accuracies per epoch."""
    torch.manual_seed(0)
    model = build_model(model_cfg, data.num_channels, data.num_classes, dropout=0.1)
    optimizer = make_optimizer(model, lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)
    x, y = tensors(data.x_train, data.y_train)
    x_val, y_val = tensors(data.x_val, data.y_val)
    losses, accuracies = [], []
    for _ in range(epochs):
        loss, _ = train_one_epoch(model, optimizer, x, y, 64, generator, 1.0, None, CPU)
        _, accuracy, _ = evaluate(model, x_val, y_val, 128, CPU)
        losses.append(loss)
        accuracies.append(accuracy)
    return losses, accuracies


# Data


def test_synthetic_har_is_identical_for_the_same_seed():
    a = synthetic_har(num_train=100, num_val=50, num_test=20, seed=3)
    b = synthetic_har(num_train=100, num_val=50, num_test=20, seed=3)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_synthetic_har_differs_across_seeds():
    a = synthetic_har(num_train=100, num_val=50, seed=0)
    b = synthetic_har(num_train=100, num_val=50, seed=1)
    assert not np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, b.y_train)


def test_synthetic_har_has_requested_shapes_dtypes_and_six_activities():
    data = synthetic_har(num_train=120, num_val=60, num_test=30, channels=9, window=48)
    assert data.x_train.shape == (120, 9, 48) and data.x_train.dtype == np.float32
    assert data.y_train.shape == (120,) and data.y_train.dtype == np.int64
    assert data.x_val.shape == (60, 9, 48) and data.x_test.shape == (30, 9, 48)
    assert data.classes == HAR_CLASSES and data.num_classes == 6 and data.num_channels == 9
    assert set(np.unique(data.y_train)) == set(range(6))
    assert np.isfinite(data.x_train).all()


def test_synthetic_har_has_no_test_split_unless_asked():
    data = synthetic_har(num_train=60, num_val=30)
    assert data.x_test is None and data.y_test is None


def test_synthetic_test_windows_leave_the_train_and_validation_windows_as_they_were():
    plain, held_out = synthetic_har(num_train=60, num_val=30), synthetic_har(num_train=60, num_val=30, num_test=30)
    for name in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(held_out, name))
    assert not any(np.array_equal(held_out.x_test[:1], plain.x_train[i : i + 1]) for i in range(60))


def test_synthetic_windows_are_raw_with_named_channels_at_50_hz():
    data = synthetic_har(num_train=60, num_val=30, channels=8)
    assert data.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "acc_x_2", "acc_y_2"]
    assert data.sample_rate == 50.0 and data.mean is None and data.std is None


def test_synthetic_har_is_not_linearly_separable_from_raw_samples():
    """A linear model on raw samples stays well below what the temporal models reach (>0.85)."""
    data = synthetic_har(num_train=1200, num_val=600, seed=2)
    torch.manual_seed(0)
    linear = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(data.num_channels * 64, data.num_classes)
    )
    optimizer = torch.optim.AdamW(linear.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    x, y = tensors(data.x_train, data.y_train)
    for _ in range(20):
        train_one_epoch(linear, optimizer, x, y, 64, generator, 0.0, None, CPU)
    _, accuracy, _ = evaluate(linear, *tensors(data.x_val, data.y_val), 600, CPU)
    assert accuracy < 0.75


def valid_arrays() -> dict:
    x = np.zeros((4, 3, 16), dtype=np.float32)
    y = np.array([0, 1, 0, 1], dtype=np.int64)
    return dict(x_train=x, y_train=y, x_val=x, y_val=y, classes=["a", "b"])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(x_train=[[[0.0] * 16] * 3] * 4), "x_train must be a float32 array"),
        (dict(x_train=np.zeros((4, 16), dtype=np.float32)), "x_train must be a float32 array"),
        (dict(x_train=np.zeros((4, 3, 16))), "x_train must be a float32 array"),
        (dict(y_val=np.array([0, 1, 0, 1], dtype=np.int32)), "y_val must be an int64 array"),
        (dict(y_train=np.array([0, 1, 0], dtype=np.int64)), "same, non-zero length"),
        (dict(x_val=np.zeros((4, 3, 20), dtype=np.float32)), "x_val windows are"),
        (dict(y_train=np.array([0, 1, 2, 1], dtype=np.int64)), "labels must lie in [0, 2)"),
        (dict(x_test=np.zeros((4, 3, 16), dtype=np.float32)), "both x_test and y_test"),
        (dict(classes=["only"]), "at least 2 classes"),
        (dict(channels=["a", "b"]), "channels names 2 channels, x_train has 3"),
        (dict(mean=np.zeros((3, 1)), std=None), "both mean and std"),
        (dict(mean=np.zeros(3), std=np.ones(3)), "mean must be [channels, 1] = [3, 1]"),
    ],
)
def test_dataset_rejects_malformed_arrays_with_a_clear_message(change, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        Dataset(**{**valid_arrays(), **change})


def test_dataset_accepts_well_formed_arrays():
    data = Dataset(**valid_arrays())
    assert (data.num_channels, data.num_classes) == (3, 2)


# Models


@pytest.mark.parametrize(
    "model_cfg",
    [
        {"name": "cnn_tcn", "channels": 16, "levels": 2, "kernel_size": 3},
        {"name": "cnn_bilstm", "channels": 16, "hidden": 8, "num_layers": 2},
    ],
)
def test_models_return_one_logit_per_class(model_cfg, small_har):
    model = build_model(model_cfg, small_har.num_channels, small_har.num_classes, dropout=0.2)
    logits = model(torch.from_numpy(small_har.x_train[:5]))
    assert logits.shape == (5, small_har.num_classes)


def test_build_model_passes_architecture_keys_to_the_model():
    model = build_model({"name": "cnn_tcn", "channels": 8, "levels": 4}, 6, 6, dropout=0.3)
    assert len(model.blocks) == 4 and model.head.in_features == 8
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and set(dropouts) == {0.3}


def test_build_model_leaves_out_keys_of_the_other_architecture():
    config = {"name": "cnn_bilstm", "channels": 8, "hidden": 16, "levels": 4, "kernel_size": 3}
    model = build_model(config, 6, 6, dropout=0.1)
    assert model.lstm.hidden_size == 16
    with pytest.raises(ValueError, match=r"unknown keys \['depth'\]"):
        build_model({"name": "cnn_tcn", "depth": 3}, 6, 6, dropout=0.1)


def test_build_model_rejects_an_unknown_name_and_lists_the_options():
    with pytest.raises(ValueError, match=r"'transformer'.*\['cnn_bilstm', 'cnn_tcn'\]"):
        build_model({"name": "transformer"}, 6, 6, dropout=0.1)


# Training


def test_cnn_tcn_learns_synthetic_har(small_har):
    losses, accuracies = fit({"name": "cnn_tcn", "channels": 16, "levels": 3}, small_har, epochs=6)
    assert losses[-1] < 0.6 * losses[0]
    assert accuracies[-1] > 0.6  # chance is 1/6


def test_cnn_bilstm_learns_synthetic_har(small_har):
    model_cfg = {"name": "cnn_bilstm", "channels": 16, "hidden": 16}
    losses, accuracies = fit(model_cfg, small_har, epochs=4, lr=1e-2)
    assert losses[-1] < 0.6 * losses[0]
    assert accuracies[-1] > 0.5


def test_train_raises_when_the_loss_diverges(small_har):
    config = {
        "lr": 1e30,
        "weight_decay": 0.0,
        "dropout": 0.0,
        "batch_size": 100,
        "lr_schedule": "none",
        "grad_clip": 0.0,
        "max_epochs": 3,
        "seed": 0,
        "checkpoint_every": 1,
        "threads": 1,
        "device": "cpu",
        "amp": False,
        "model": {"name": "cnn_tcn", "channels": 8, "levels": 1},
    }
    with pytest.warns(UserWarning, match="only be called inside"):  # no Ray Tune session here
        with pytest.raises(FloatingPointError, match="diverged at epoch 1: train_loss=nan"):
            train(config, small_har)


@pytest.mark.parametrize("lr_schedule", ["none", "step", "plateau", "cosine"])
def test_a_restored_checkpoint_continues_exactly_like_the_original(
    lr_schedule, small_har, tmp_path
):
    x, y = tensors(small_har.x_train[:256], small_har.y_train[:256])
    x_val, y_val = tensors(small_har.x_val, small_har.y_val)

    def setup():
        model = build_model({"name": "cnn_tcn", "channels": 8, "levels": 2}, 6, 6, dropout=0.1)
        optimizer = make_optimizer(model, 3e-3, weight_decay=1e-2)
        return model, optimizer, make_lr_scheduler(optimizer, lr_schedule, max_epochs=3)

    def run_epoch(model, optimizer, scheduler, seed):
        torch.manual_seed(seed)  # dropout
        generator = torch.Generator().manual_seed(seed)
        train_one_epoch(model, optimizer, x, y, 64, generator, 1.0, None, CPU)
        step_lr_scheduler(scheduler, evaluate(model, x_val, y_val, 300, CPU)[0])

    torch.manual_seed(0)
    model, optimizer, scheduler = setup()
    for epoch in (1, 2):
        run_epoch(model, optimizer, scheduler, seed=epoch)
    save_checkpoint(tmp_path, model, optimizer, scheduler, epoch=2, train_time_s=1.5)

    torch.manual_seed(99)
    restored, restored_optimizer, restored_scheduler = setup()
    assert load_checkpoint(tmp_path, restored, restored_optimizer, restored_scheduler) == (2, 1.5)
    assert list(model.state_dict()) == list(restored.state_dict())
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        assert torch.equal(a, b)
    assert restored_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert len(restored_optimizer.state) == len(optimizer.state) == len(list(model.parameters()))
    for state, restored_state in zip(optimizer.state.values(), restored_optimizer.state.values()):
        assert state.keys() == restored_state.keys() and all(torch.equal(state[k], restored_state[k]) for k in state)

    run_epoch(model, optimizer, scheduler, seed=3)
    run_epoch(restored, restored_optimizer, restored_scheduler, seed=3)
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        assert torch.equal(a, b)
    assert restored_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_a_mutated_lr_rescales_a_restored_schedule_and_weight_decay_is_replaced():
    """What PBT needs: the new config's lr and weight decay win over the checkpoint's."""
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=1e-4)
    scheduler = make_lr_scheduler(optimizer, "step", max_epochs=3)  # step_size 1, gamma 0.3
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)

    set_lr_and_weight_decay(optimizer, scheduler, lr=1e-3, weight_decay=1e-4)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)  # same config: nothing changes

    set_lr_and_weight_decay(optimizer, scheduler, lr=2e-3, weight_decay=0.05)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(6e-4)
    assert optimizer.param_groups[0]["weight_decay"] == 0.05
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.8e-4)


# Metrics


def test_macro_f1_matches_a_hand_computed_example():
    targets = torch.tensor([0, 0, 0, 1, 1, 2])
    predictions = torch.tensor([0, 0, 1, 1, 2, 2])
    # class 0: P 2/2, R 2/3 -> F1 0.8; class 1: P 1/2, R 1/2 -> 0.5; class 2: P 1/2, R 1/1 -> 2/3
    assert macro_f1(predictions, targets, num_classes=4) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_macro_f1_is_one_for_perfect_predictions():
    labels = torch.tensor([2, 0, 1, 2])
    assert macro_f1(labels, labels, num_classes=3) == 1.0


# The chosen model: its test predictions and its export


def standardized(raw: Dataset) -> Dataset:
    """``raw`` as a loader hands it over: standardized with its training split's statistics."""
    mean, std = channel_stats(raw.x_train)
    x_train, x_val, x_test = (standardize(x, mean, std) for x in (raw.x_train, raw.x_val, raw.x_test))
    return Dataset(
        x_train, raw.y_train, x_val, raw.y_val, raw.classes, x_test, raw.y_test,
        channels=raw.channels, sample_rate=raw.sample_rate, mean=mean, std=std,
    )


SMALL_MODELS = [{"name": "cnn_tcn", "channels": 8, "levels": 2}, {"name": "cnn_bilstm", "channels": 8, "hidden": 8}]


@pytest.mark.parametrize("model_cfg", SMALL_MODELS, ids=lambda m: m["name"])
def test_the_exported_model_classifies_raw_windows_as_the_checkpoint_does_standardized_ones(tmp_path, model_cfg):
    raw = synthetic_har(num_train=120, num_val=30, num_test=40, seed=4)
    raw.x_train[:, 3] = raw.x_train[:, 3] * 5 + 2  # a channel far from mean 0, std 1
    data = standardized(raw)
    config = {"model": model_cfg, "dropout": 0.1}
    torch.manual_seed(0)
    model = build_model(model_cfg, data.num_channels, data.num_classes, dropout=0.1)
    optimizer = make_optimizer(model, 3e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    train_one_epoch(model, optimizer, *tensors(data.x_train, data.y_train), 32, generator, 0.0, None, CPU)
    save_checkpoint(tmp_path, model, optimizer, None, epoch=1)

    info = export_model(config, tmp_path, data, tmp_path)
    extra = {"inference.json": ""}
    program = torch.export.load(tmp_path / info["file"], extra_files=extra).module()
    with torch.no_grad():
        exported = program(torch.from_numpy(raw.x_test))
        checkpointed = model.eval()(torch.from_numpy(data.x_test))
    torch.testing.assert_close(exported, checkpointed, rtol=1e-4, atol=1e-5)
    predicted = predict_test_split(config, tmp_path, data)
    np.testing.assert_array_equal(predicted["predictions"], exported.argmax(dim=1).numpy())
    assert predicted["labels"] is data.y_test and predicted["classes"] == HAR_CLASSES
    assert json.loads(extra["inference.json"]) == info
    assert info["classes"] == HAR_CLASSES and info["channels"] == raw.channels
    assert (info["window"], info["sample_rate"], info["model"]) == (64, 50.0, model_cfg)
    np.testing.assert_allclose(info["mean"], data.mean.ravel())
    np.testing.assert_allclose(info["std"], data.std.ravel())


def test_without_a_test_split_there_is_nothing_to_predict(tmp_path, small_har):
    assert predict_test_split({"model": {"name": "cnn_tcn"}, "dropout": 0.1}, tmp_path, small_har) is None
