"""A user's own windows from an .npz: with or without subjects, class names, and every error."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import compose_config
from trainables.data.npz import npz_windows
from tuner.pipeline import tune_from_config


def save(tmp_path: Path, **arrays) -> Path:
    file = tmp_path / "windows.npz"
    np.savez(file, **arrays)
    return file


def recordings(subjects: int = 6, per_subject: int = 10, channels: int = 3, samples: int = 16) -> dict:
    """Windows whose channel 0 is the subject id and labels 1, 2, 3 cycling (not starting at 0)."""
    rng = np.random.default_rng(0)
    subject = np.repeat(np.arange(1, subjects + 1) * 7, per_subject)
    x = rng.normal(0, 1, (len(subject), channels, samples))
    x[:, 0] = subject[:, None]
    return {"X": x, "y": np.arange(len(subject)) % 3 + 1, "subject": subject}


def test_windows_are_split_by_subject(tmp_path):
    arrays = recordings()
    data = npz_windows(save(tmp_path, **arrays), test_subjects=[42], num_folds=5, fold=0)
    assert data.x_train.shape == (40, 3, 16) and data.x_train.dtype == np.float32
    assert (len(data.x_val), len(data.x_test)) == (10, 10)
    levels = {name: set(np.round(getattr(data, f"x_{name}")[:, 0, 0], 4)) for name in ("train", "val", "test")}
    assert len(levels["train"]) == 4 and len(levels["val"]) == len(levels["test"]) == 1
    assert not (levels["train"] & levels["val"]) and not (levels["train"] & levels["test"])


def test_labels_become_classes_named_after_their_values_unless_names_are_given(tmp_path):
    file = save(tmp_path, **recordings())
    data = npz_windows(file)
    assert data.classes == ["1", "2", "3"] and set(data.y_train) == {0, 1, 2}
    arrays = recordings()
    arrays["y"] -= 1
    named = npz_windows(save(tmp_path, **arrays, classes=["walk", "sit", "lie"]))
    assert named.classes == ["walk", "sit", "lie"] and set(named.y_train) == {0, 1, 2}
    assert npz_windows(file, classes=["none", "a", "b", "c"]).classes == ["none", "a", "b", "c"]


def test_without_subjects_validation_windows_are_drawn_at_random_by_seed(tmp_path):
    arrays = recordings()
    del arrays["subject"]
    file = save(tmp_path, **arrays)
    first, again, other = (npz_windows(file, num_folds=4, seed=s) for s in (0, 0, 1))
    assert len(first.x_val) == 15 and len(first.x_train) == 45 and first.x_test is None
    np.testing.assert_array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)
    folds = [npz_windows(file, num_folds=4, fold=k).y_val for k in range(4)]
    assert sum(map(len, folds)) == 60


def test_channels_are_standardized_on_the_training_split(tmp_path):
    data = npz_windows(save(tmp_path, **recordings()), test_subjects=[42])
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=(0, 2)), 1, atol=1e-4)


def test_channel_names_and_sample_rate_come_from_the_file_when_it_has_them(tmp_path):
    arrays = recordings()
    unnamed = npz_windows(save(tmp_path, **arrays))
    assert unnamed.channels is None and unnamed.sample_rate is None
    named = npz_windows(save(tmp_path, **arrays, channels=["id", "a", "b"], sample_rate=20))
    assert named.channels == ["id", "a", "b"] and named.sample_rate == 20.0


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (lambda a: a.pop("y"), "data.path", "has no array 'y' (it has: X, subject)"),
        (lambda a: a.update(X=a["X"][:, :, 0]), "data.path", "X must be numbers [windows, channels, samples]"),
        (lambda a: a["X"].__setitem__((5, 1, 2), np.nan), "data.path", "X window 5 has a NaN or infinite"),
        (lambda a: a.update(y=a["y"] + 0.5), "data.path", "y must be 60 whole numbers"),
        (lambda a: a.update(subject=a["subject"][:-1]), "data.path", "subject must be 60 whole numbers"),
        (lambda a: a.update(classes=np.array(["a", "b"])), "data.classes", "y[1] is 2, but 2 class names"),
        (lambda a: a.update(channels=np.array(["a", "b"])), "data.path", "channels names 2 channels, X has 3"),
        (lambda a: a.update(sample_rate=np.array([0.0])), "data.path", "sample_rate must be one number of Hz above 0"),
    ],
)
def test_a_bad_file_is_an_error_naming_the_key(tmp_path, change, key, problem):
    arrays = recordings()
    change(arrays)
    file = save(tmp_path, **arrays)
    with pytest.raises(ValueError) as err:
        npz_windows(file)
    assert str(err.value).startswith(f"{key}: {file} {problem}") and "\n" not in str(err.value)


def test_naming_subjects_without_a_subject_array_is_an_error(tmp_path):
    arrays = recordings()
    del arrays["subject"]
    with pytest.raises(ValueError, match="^data.test_subjects: .* has no 'subject' array"):
        npz_windows(save(tmp_path, **arrays), test_subjects=[7])


def test_a_missing_or_unreadable_file_names_data_path(tmp_path):
    missing = tmp_path / "none.npz"
    with pytest.raises(FileNotFoundError, match=f"^data.path: no file '{missing}'; save your windows"):
        npz_windows(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_text("not numpy")
    with pytest.raises(ValueError, match="^data.path: .*bad.npz is not a readable .npz"):
        npz_windows(tmp_path / "bad.npz")


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_a_tiny_tuning_run_on_an_npz(tmp_path):
    file = save(tmp_path, **recordings())
    overrides = [
        "data=numpy", f"data.path={file}", "data.test_subjects=[42]",
        "search=fifo", "num_samples=1", "max_epochs=1", "model.levels=1", "model.channels=8",
    ]
    summary = tune_from_config(compose_config(*overrides), tmp_path / "run")
    assert summary["status_counts"] == {"completed": 1}
