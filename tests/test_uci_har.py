"""UCI HAR from small files in its published layout: shapes, labels, subject splits, cache, errors."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import compose_config
from trainables.data.uci_har import CHANNELS, uci_har
from tuner.errors import ConfigError
from tuner.pipeline import tune_from_config
from tuner.run import build_data

LABELS = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
# Subject -> windows; the published split puts subjects 2, 4, 9, ... in test.
TRAIN = {1: 6, 3: 6, 5: 6, 6: 6, 7: 6}
TEST = {2: 6, 4: 6}


def published_number(value: float) -> str:
    """A value as UCI HAR prints it: width 16, 7 decimals, three-digit exponent (`-1.2e-003`)."""
    mantissa, exponent = f"{value:.7e}".split("e")
    return f"{mantissa}e{int(exponent):+04d}".rjust(16)


def write_uci_har(folder: Path, train: dict = TRAIN, test: dict = TEST, window: int = 128) -> Path:
    """A small `UCI HAR Dataset` under `folder`: channel c of a window of subject s holds
    s + c/10 plus noise, and the labels cycle through 1..6, so tests can tell who is where."""
    root = folder / "UCI HAR Dataset"
    (root / "activity_labels.txt").parent.mkdir(parents=True)
    (root / "activity_labels.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(LABELS, 1)))
    rng = np.random.default_rng(0)
    for split, windows in (("train", train), ("test", test)):
        subjects = [s for s, n in windows.items() for _ in range(n)]
        labels = [i % 6 + 1 for i in range(len(subjects))]
        (root / split / "Inertial Signals").mkdir(parents=True)
        (root / split / f"subject_{split}.txt").write_text("".join(f"{s}\n" for s in subjects))
        (root / split / f"y_{split}.txt").write_text("".join(f"{y}\n" for y in labels))
        for c, channel in enumerate(CHANNELS):
            values = np.array(subjects)[:, None] + c / 10 + rng.normal(0, 0.01, (len(subjects), window))
            lines = ("".join(published_number(v) for v in row) + "\n" for row in values)
            (root / split / "Inertial Signals" / f"{channel}_{split}.txt").write_text("".join(lines))
    return root


@pytest.fixture
def uci_folder(tmp_path: Path) -> Path:
    write_uci_har(tmp_path / "data")
    return tmp_path / "data"


def load(folder: Path, tmp_path: Path, **settings) -> object:
    return uci_har(folder, cache_dir=tmp_path / "cache", num_folds=settings.pop("num_folds", 2), **settings)


def subjects_by_split(data) -> dict[str, set[int]]:
    """Which subjects each split holds, read back from channel 0 (subject id + noise, standardized
    by one affine map), when every subject is in some split."""
    means = {name: getattr(data, f"x_{name}")[:, 0].mean(axis=1) for name in ("train", "val", "test")}
    levels = np.sort(np.concatenate(list(means.values())))
    starts = levels[np.r_[True, np.diff(levels) > 0.1]]  # subjects lie >= 0.3 apart, noise << 0.1
    ids = sorted(TRAIN | TEST)
    assert len(starts) == len(ids)
    return {
        name: {ids[np.searchsorted(starts, m, side="right") - 1] for m in values}
        for name, values in means.items()
    }


def test_windows_are_nine_channels_of_128_with_the_six_published_classes(uci_folder, tmp_path):
    data = load(uci_folder, tmp_path)
    assert data.x_train.shape[1:] == (9, 128) and data.x_train.dtype == np.float32
    assert data.classes == [name.lower() for name in LABELS]
    assert data.x_test.shape == (12, 9, 128) and sorted(np.bincount(data.y_test)) == [2] * 6
    assert len(data.x_train) + len(data.x_val) == sum(TRAIN.values())


def test_published_test_subjects_stay_test_and_validation_is_a_fold_of_training_subjects(uci_folder, tmp_path):
    # The training subjects 1, 3, 5, 6, 7 in two folds: [1, 3, 5] and [6, 7].
    fold_0 = subjects_by_split(load(uci_folder, tmp_path, fold=0))
    fold_1 = subjects_by_split(load(uci_folder, tmp_path, fold=1))
    assert fold_0 == {"train": {6, 7}, "val": {1, 3, 5}, "test": {2, 4}}
    assert fold_1 == {"train": {1, 3, 5}, "val": {6, 7}, "test": {2, 4}}


def test_named_subjects_choose_each_split(uci_folder, tmp_path):
    data = load(uci_folder, tmp_path, test_subjects=[1, 2], val_subjects=[7])
    assert subjects_by_split(data) == {"train": {3, 4, 5, 6}, "val": {7}, "test": {1, 2}}
    data = load(uci_folder, tmp_path, test_subjects=[1, 2], val_subjects=[7], train_subjects=[3, 4, 5])
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (18, 6, 12)


def test_channels_are_standardized_with_training_statistics_only(uci_folder, tmp_path):
    data = load(uci_folder, tmp_path)
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(data.x_train.std(axis=(0, 2)), 1, atol=1e-3)
    assert abs(data.x_test.mean(axis=(0, 2))).max() > 0.1, "test subjects differ, so their mean is not 0"
    assert data.channels == list(CHANNELS) and data.sample_rate == 50.0 and data.mean.shape == (9, 1)


def test_channels_can_be_picked_by_name(uci_folder, tmp_path):
    data = load(uci_folder, tmp_path, channels=["total_acc_z", "body_gyro_x"])
    full = load(uci_folder, tmp_path)
    assert data.num_channels == 2
    np.testing.assert_allclose(data.x_train, full.x_train[:, [8, 3]], atol=1e-5)


def test_a_folder_pointing_at_the_data_set_itself_works(uci_folder, tmp_path):
    assert load(uci_folder / "UCI HAR Dataset", tmp_path).x_train.shape[1:] == (9, 128)


def test_the_second_load_reads_the_cache_and_a_changed_file_rebuilds_it(uci_folder, tmp_path, monkeypatch):
    load(uci_folder, tmp_path)
    assert len(list((tmp_path / "cache").glob("uci_har-*.npz"))) == 1

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed the raw files although the cache is valid")

    monkeypatch.setattr("trainables.data.uci_har.read_windows", no_parsing)
    load(uci_folder, tmp_path)
    y_file = uci_folder / "UCI HAR Dataset" / "train" / "y_train.txt"
    y_file.write_text(y_file.read_text().replace("1\n", "2\n", 1))
    with pytest.raises(AssertionError, match="parsed the raw files"):
        load(uci_folder, tmp_path)


def test_a_missing_folder_names_data_path_the_file_and_the_download_page(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        uci_har(tmp_path / "nowhere")
    message = str(err.value)
    assert message.startswith(f"data.path: no folder '{tmp_path / 'nowhere' / 'UCI HAR Dataset'}'")
    assert str(tmp_path / "nowhere" / "UCI HAR Dataset" / "train" / "y_train.txt") in message
    assert "https://archive.ics.uci.edu/dataset/240" in message and "\n" not in message


def test_a_zip_not_yet_unpacked_is_pointed_out(tmp_path):
    (tmp_path / "UCI HAR Dataset.zip").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"; unpack .*UCI HAR Dataset\.zip there"):
        uci_har(tmp_path)


def test_a_missing_file_is_named(uci_folder, tmp_path):
    gone = uci_folder / "UCI HAR Dataset" / "test" / "Inertial Signals" / "body_gyro_y_test.txt"
    gone.unlink()
    with pytest.raises(FileNotFoundError, match=f"^data.path: {gone} is missing; unpack"):
        load(uci_folder, tmp_path)


@pytest.mark.parametrize(
    ("file", "line", "edit", "problem"),
    [
        ("train/Inertial Signals/total_acc_x_train.txt", 3, lambda l: l[:-16], "127 values, expected 128"),
        ("train/Inertial Signals/body_acc_y_train.txt", 2, lambda l: l.replace("e", "x", 1), "is not a number"),
        ("test/y_test.txt", 5, lambda l: "7", "activity 7 is not one of 1, 2, 3, 4, 5, 6"),
        ("train/subject_train.txt", 4, lambda l: "1.5", "subject 1.5 is not an id"),
        ("activity_labels.txt", 2, lambda l: "2", "'2' is not '<id> <NAME>'"),
    ],
)
def test_a_malformed_file_is_an_error_naming_the_file_and_line(uci_folder, tmp_path, file, line, edit, problem):
    path = uci_folder / "UCI HAR Dataset" / file
    lines = path.read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as err:
        load(uci_folder, tmp_path)
    assert str(err.value).startswith(f"data.path: {path} line {line}: ")
    assert problem in str(err.value)


def test_files_of_different_lengths_are_an_error(uci_folder, tmp_path):
    path = uci_folder / "UCI HAR Dataset" / "train" / "subject_train.txt"
    path.write_text(path.read_text() + "7\n")
    with pytest.raises(ValueError, match=f"^data.path: {path} has 31 lines, .*y_train.txt has 30"):
        load(uci_folder, tmp_path)


def test_the_tuner_reports_a_missing_folder_as_one_config_error(tmp_path):
    config = compose_config("data=uci_har", f"data.path={tmp_path}")
    with pytest.raises(ConfigError) as err:
        build_data(dict(config.data))
    assert err.value.key == "data.path" and "dataset/240" in str(err.value)


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_a_tiny_tuning_run_on_uci_har(uci_folder, tmp_path):
    overrides = [
        "data=uci_har", f"data.path={uci_folder}", f"data.cache_dir={tmp_path / 'cache'}", "data.num_folds=2",
        "search=fifo", "num_samples=1", "max_epochs=1", "model.levels=1", "model.channels=8",
    ]
    summary = tune_from_config(compose_config(*overrides), tmp_path / "run")
    assert summary["status_counts"] == {"completed": 1}
    assert 0 <= summary["best_trial"]["val_acc"] <= 1
