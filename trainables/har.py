"""The trainable tuner runs: train one config on a `Dataset`, report every epoch, checkpoint.

`train(config, data)` is the only function that talks to Ray Tune; the pieces it is built from
(`train_one_epoch`, `evaluate`, `save_checkpoint`, ...) are plain PyTorch and run without Ray.
Once the search has chosen a trial, tuner calls `predict_test_split` and `export_model` with its
checkpoint: the held-out test split is only ever seen there.
"""

import math
import os
import tempfile
import time
import warnings
from typing import Callable

import numpy as np
import torch
from ray import tune
from torch import Tensor, nn

from trainables.data import Dataset
from trainables.deployment import save_program
from trainables.models import build_model

METRICS = (
    "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "epoch_time",
    "num_params", "latency_ms", "train_time_s",  # costs a multi-objective search can trade off
)
CHECKPOINT_FILE = "checkpoint.pt"

Scheduler = torch.optim.lr_scheduler.LRScheduler | None  # None for lr_schedule "none"


def train(config: dict, data: Dataset, report: Callable[..., None] = tune.report) -> None:
    """Train `config["model"]` for `config["max_epochs"]` epochs, reporting METRICS after each one.

    Resumes from Ray Tune's checkpoint when there is one, so a paused or retried trial carries on
    at the next epoch; PBT's mutated lr and weight decay replace the checkpoint's. `report` is
    Ray Tune's, or the one tuner hands in (it adds the node and a weighted score).
    """
    torch.set_num_threads(config["threads"])
    device = resolve_device(config["device"])
    torch.manual_seed(config["seed"])
    model = build_model(config["model"], data.num_channels, data.num_classes, config["dropout"])
    model.to(device)
    optimizer = make_optimizer(model, config["lr"], config["weight_decay"])
    scheduler = make_lr_scheduler(optimizer, config["lr_schedule"], config["max_epochs"])
    scaler = torch.amp.GradScaler("cuda") if config["amp"] and device.type == "cuda" else None
    x_train, y_train = as_tensor(data.x_train, device), as_tensor(data.y_train, device)
    x_val, y_val = as_tensor(data.x_val, device), as_tensor(data.y_val, device)

    num_params = sum(p.numel() for p in model.parameters())
    finished, train_time_s = 0, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            finished, train_time_s = load_checkpoint(directory, model, optimizer, scheduler, scaler)
        set_lr_and_weight_decay(optimizer, scheduler, config["lr"], config["weight_decay"])

    for epoch in range(finished + 1, config["max_epochs"] + 1):
        start = time.perf_counter()
        # Seeding per epoch makes a resumed trial shuffle and drop out exactly as an unbroken one.
        epoch_seed = config["seed"] * 100_003 + epoch
        torch.manual_seed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_one_epoch(
            model,
            optimizer,
            x_train,
            y_train,
            config["batch_size"],
            generator,
            config["grad_clip"],
            scaler,
            device,
        )
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"diverged at epoch {epoch}: train_loss={train_loss}")
        val_loss, val_acc, val_f1 = evaluate(model, x_val, y_val, config["batch_size"], device)
        step_lr_scheduler(scheduler, val_loss)
        epoch_time = time.perf_counter() - start
        train_time_s += epoch_time
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "val_f1": val_f1,
            "epoch_time": epoch_time,
            "lr": lr,
            "num_params": num_params,
            "latency_ms": window_latency_ms(model, x_val[:1]),
            "train_time_s": train_time_s,
        }
        if epoch % config["checkpoint_every"] == 0 or epoch == config["max_epochs"]:
            with tempfile.TemporaryDirectory() as directory:
                save_checkpoint(directory, model, optimizer, scheduler, epoch, scaler, train_time_s)
                report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            report(metrics)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    batch_size: int,
    generator: torch.Generator,
    grad_clip: float,
    scaler: torch.amp.GradScaler | None,
    device: torch.device,
) -> tuple[float, float]:
    """One pass over (x, y) in an order drawn from `generator`; returns mean loss and accuracy.

    `grad_clip` > 0 clips the gradient norm; a `scaler` turns on float16 autocast (CUDA only).
    """
    model.train()
    order = torch.randperm(len(x), generator=generator).to(x.device)
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        batch = order[i : i + batch_size]
        xb, yb = x[batch], y[batch]
        with torch.autocast(device.type, dtype=torch.float16, enabled=scaler is not None):
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            if grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        total_loss += loss.item() * len(batch)
        correct += (logits.argmax(dim=1) == yb).sum().item()
    return total_loss / len(x), correct / len(x)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: Tensor, y: Tensor, batch_size: int, device: torch.device
) -> tuple[float, float, float]:
    """Mean loss, accuracy and macro F1 of the model on (x, y), in eval mode."""
    model.eval()
    batches = (x[i : i + batch_size].to(device) for i in range(0, len(x), batch_size))
    logits = torch.cat([model(batch) for batch in batches])
    y = y.to(device)
    loss = nn.functional.cross_entropy(logits, y).item()
    predictions = logits.argmax(dim=1)
    accuracy = (predictions == y).float().mean().item()
    return loss, accuracy, macro_f1(predictions, y, num_classes=logits.shape[1])


@torch.no_grad()
def window_latency_ms(model: nn.Module, window: Tensor, repeats: int = 20) -> float:
    """Median milliseconds the model takes to classify one window: the cost of deploying it."""
    model.eval()
    model(window)  # warm-up: first-call allocations are not the model's cost
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(window)
        if window.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def macro_f1(predictions: Tensor, targets: Tensor, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes seen in targets or predictions (as sklearn).

    Example:
        >>> macro_f1(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), num_classes=3)
        0.666...
    """
    confusion = torch.bincount(targets * num_classes + predictions, minlength=num_classes**2)
    # Rows are targets, columns predictions.
    confusion = confusion.reshape(num_classes, num_classes).double()
    true_positives = confusion.diagonal()
    support = confusion.sum(dim=1) + confusion.sum(dim=0)  # 2 TP + FP + FN
    present = support > 0
    return (2 * true_positives[present] / support[present]).mean().item()


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; records lr as `initial_lr` so a restored checkpoint can be moved to a new lr."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for group in optimizer.param_groups:
        group["initial_lr"] = lr
    return optimizer


def make_lr_scheduler(
    optimizer: torch.optim.Optimizer, lr_schedule: str, max_epochs: int
) -> Scheduler:
    """The per-epoch learning-rate schedule named `lr_schedule`: none, step, plateau or cosine."""
    schedulers = torch.optim.lr_scheduler
    if lr_schedule == "none":
        return None
    if lr_schedule == "step":
        return schedulers.StepLR(optimizer, step_size=max(1, max_epochs // 3), gamma=0.3)
    if lr_schedule == "plateau":
        return schedulers.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)
    if lr_schedule == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=max_epochs)
    raise ValueError(f"lr_schedule is {lr_schedule!r}; choose one of none, step, plateau, cosine")


def step_lr_scheduler(scheduler: Scheduler, val_loss: float) -> None:
    """Advance the schedule by one epoch; the plateau schedule watches the validation loss."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    elif scheduler is not None:
        scheduler.step()


def set_lr_and_weight_decay(
    optimizer: torch.optim.Optimizer, scheduler: Scheduler, lr: float, weight_decay: float
) -> None:
    """Let the config, not a restored checkpoint, decide lr and weight decay.

    PBT continues a better trial's checkpoint under a mutated config; loading the optimizer state
    would silently undo the mutation. The current lr is scaled by the change of base lr, so a
    schedule keeps its progress; with an unchanged config nothing changes.
    """
    for group in optimizer.param_groups:
        group["lr"] *= lr / group["initial_lr"]
        group["initial_lr"] = lr
        group["weight_decay"] = weight_decay
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [lr] * len(optimizer.param_groups)


def save_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
    train_time_s: float = 0.0,
) -> None:
    """Write everything needed to continue training after `epoch` to `directory`/checkpoint.pt."""
    state = {
        "epoch": epoch,
        "train_time_s": train_time_s,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
    }
    torch.save(state, os.path.join(directory, CHECKPOINT_FILE))


def load_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[int, float]:
    """Restore what `save_checkpoint` wrote into the given objects; returns the finished epoch
    and the training time spent up to it."""
    state = torch.load(os.path.join(directory, CHECKPOINT_FILE), map_location="cpu")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    return state["epoch"], state["train_time_s"]


def load_model(config: dict, checkpoint_dir: str | os.PathLike, data: Dataset) -> nn.Module:
    """The model of a trial's checkpoint, on the CPU in eval mode."""
    model = build_model(config["model"], data.num_channels, data.num_classes, config["dropout"])
    state = torch.load(os.path.join(checkpoint_dir, CHECKPOINT_FILE), map_location="cpu")
    model.load_state_dict(state["model"])
    return model.eval()


@torch.no_grad()
def predict_test_split(config: dict, checkpoint_dir: str | os.PathLike, data: Dataset) -> dict | None:
    """The checkpoint's predicted class for every window of the test split, beside the true
    labels and the class names (what tuner scores); None when the data has no test split."""
    if data.x_test is None:
        return None
    model = load_model(config, checkpoint_dir, data)
    x = torch.from_numpy(data.x_test)
    logits = torch.cat([model(x[i : i + 512]) for i in range(0, len(x), 512)])
    return {"labels": data.y_test, "predictions": logits.argmax(dim=1).numpy(), "classes": list(data.classes)}


def export_model(config: dict, checkpoint_dir: str | os.PathLike, data: Dataset, folder: str | os.PathLike) -> dict:
    """Write the checkpoint's model into `folder` as one file that classifies raw windows without
    this project (see trainables.deployment); returns what the file holds besides the model."""
    info = {
        "model": config["model"],
        "classes": list(data.classes),
        "channels": list(data.channels or [f"channel_{i}" for i in range(data.num_channels)]),
        "window": data.window,
        "sample_rate": data.sample_rate,
        "mean": None if data.mean is None else np.ravel(data.mean).tolist(),
        "std": None if data.std is None else np.ravel(data.std).tolist(),
    }
    return save_program(load_model(config, checkpoint_dir, data), folder, info)


def resolve_device(device: str) -> torch.device:
    """"auto" means CUDA when this worker has a GPU, else CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def as_tensor(array: np.ndarray, device: torch.device) -> Tensor:
    """Wrap a NumPy array without copying it on CPU."""
    with warnings.catch_warnings():
        # Ray's object store hands trials read-only arrays; the tensors are never written to.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array).to(device)
