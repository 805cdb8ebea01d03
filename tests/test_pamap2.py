"""PAMAP2 from small Protocol files in the published format: windows, NaNs, subjects, cache, errors."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import compose_config
from trainables.data.pamap2 import ACTIVITIES, COLUMNS, pamap2, read_windows, subject_files
from tuner.pipeline import tune_from_config

# Per subject, the protocol as (activity id, rows at 100 Hz); 0 is a transient between activities.
PROTOCOL = [(0, 15), (1, 45), (0, 10), (4, 30), (24, 25), (0, 7)]
SUBJECTS = (101, 102, 103, 104, 105)
WINDOW = {"window_seconds": 0.2, "overlap": 0.5}  # 20 samples, a new window every 10


def published_line(values: np.ndarray) -> str:
    """One line as the Protocol files have it: space-separated, `NaN` for a missing value."""
    return " ".join("NaN" if np.isnan(v) else f"{v:.6g}" for v in values) + "\n"


def write_pamap2(folder: Path, subjects=SUBJECTS, protocol=PROTOCOL) -> Path:
    """`PAMAP2_Dataset/Protocol/subject<id>.dat` under `folder`, one 100 Hz sample per line.

    Heart rate is measured on every 10th line only (NaN between) and rises 0.1 bpm per line; the
    hand IMU drops lines 20-22 (all NaN). Each IMU's temperature is the activity id, the chest
    acc16_x the subject id, and the other channels noise around a per-subject offset.
    """
    protocol_dir = folder / "PAMAP2_Dataset" / "Protocol"
    protocol_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for subject in subjects:
        activity = np.concatenate([np.full(n, a) for a, n in protocol])
        rows = len(activity)
        table = subject / 100 + rng.normal(0, 1, (rows, len(COLUMNS)))
        table[:, COLUMNS.index("timestamp")] = 5.64 + np.arange(rows) / 100
        table[:, COLUMNS.index("activity_id")] = activity
        heart_rate = 100 + np.arange(rows) / 10
        table[:, COLUMNS.index("heart_rate")] = np.where(np.arange(rows) % 10 == 0, heart_rate, np.nan)
        for imu in ("hand", "chest", "ankle"):
            table[:, COLUMNS.index(f"{imu}_temperature")] = activity
        table[:, COLUMNS.index("chest_acc16_x")] = subject
        table[20:23, COLUMNS.index("hand_temperature") :COLUMNS.index("chest_temperature")] = np.nan
        (protocol_dir / f"subject{subject}.dat").write_text("".join(map(published_line, table)))
    return protocol_dir


@pytest.fixture
def pamap2_folder(tmp_path: Path) -> Path:
    write_pamap2(tmp_path / "data")
    return tmp_path / "data"


def load(folder: Path, tmp_path: Path, **settings):
    settings = {"test_subjects": [105], "num_folds": 2, **WINDOW, "cache_dir": tmp_path / "cache", **settings}
    return pamap2(folder, **settings)


def subjects_by_split(data, channel: int) -> dict[str, set[int]]:
    """Which subjects each split holds, read back from `channel` (the subject id, standardized by
    one affine map), when every subject is in some split."""
    means = {name: getattr(data, f"x_{name}")[:, channel].mean(axis=1) for name in ("train", "val", "test")}
    levels = np.sort(np.concatenate(list(means.values())))
    starts = levels[np.r_[True, np.diff(levels) > 0.1]]
    assert len(starts) == len(SUBJECTS)
    return {
        name: {SUBJECTS[np.searchsorted(starts, m, side="right") - 1] for m in values}
        for name, values in means.items()
    }


def test_windows_have_the_chosen_channels_and_the_twelve_protocol_classes(pamap2_folder, tmp_path):
    channels = ["hand_acc16_x", "chest_gyro_y", "ankle_acc16_z", "heart_rate"]
    data = load(pamap2_folder, tmp_path, channels=channels)
    assert data.x_train.shape[1:] == (4, 20) and data.x_train.dtype == np.float32
    assert data.classes == list(ACTIVITIES.values()) and len(data.classes) == 12
    assert data.classes[:3] == ["lying", "sitting", "standing"] and data.classes[11] == "rope_jumping"
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_val).all() and np.isfinite(data.x_test).all()
    assert data.channels == channels and data.sample_rate == 100


def test_default_windows_are_512_samples_of_the_eighteen_imu_channels(tmp_path):
    write_pamap2(tmp_path / "data", subjects=(101, 102, 106), protocol=[(0, 5), (5, 1100)])
    data = pamap2(tmp_path / "data", num_folds=2, cache_dir=tmp_path / "cache")
    # 1100 samples: windows start at 0, 256, 512 (768 + 512 > 1100).
    assert data.x_train.shape == (3, 18, 512) and data.x_test.shape == (3, 18, 512)
    assert set(data.y_train) == {4}


def test_windows_never_cross_an_activity_or_the_transients_between(pamap2_folder, tmp_path):
    raw = read_windows(subject_files(pamap2_folder), ["hand_temperature"], factor=1, length=20, step=10)
    # Runs of 45, 30 and 25 samples give (n - 20) // 10 + 1 windows each; transients none.
    per_subject = [0] * 3 + [3] * 2 + [11] * 1
    assert raw["y"].tolist() == per_subject * len(SUBJECTS)
    assert (raw["x"].min(axis=2) == raw["x"].max(axis=2)).all(), "one activity per window"
    ids = np.array(list(ACTIVITIES))[raw["y"]]
    assert (raw["x"][:, 0, 0] == ids).all()
    assert raw["subject"].tolist() == [s for s in SUBJECTS for _ in per_subject]


def test_missing_heart_rate_and_dropped_imu_samples_are_interpolated(pamap2_folder):
    raw = read_windows(subject_files(pamap2_folder), ["heart_rate", "hand_temperature"], 1, length=20, step=10)
    # Lying starts on line 16 (0-based 15): the heart rate is 100 + line / 10 on every sample.
    first = raw["x"][0]
    np.testing.assert_allclose(first[0], 100 + np.arange(15, 35) / 10, rtol=1e-6)
    np.testing.assert_array_equal(first[1], 1.0)  # the dropped hand lines 20-22, filled


def test_a_lower_sample_rate_averages_samples(pamap2_folder, tmp_path):
    raw = read_windows(subject_files(pamap2_folder), ["heart_rate"], factor=2, length=10, step=5)
    np.testing.assert_allclose(raw["x"][0, 0], 100 + (np.arange(15, 35, 2) + 0.5) / 10, rtol=1e-6)
    assert load(pamap2_folder, tmp_path, sample_rate=50).x_train.shape[2] == 10
    third = load(pamap2_folder, tmp_path, sample_rate=33.333)
    assert third.x_train.shape[2] == 7 and third.sample_rate == 100 / 3  # 0.2 s


def test_a_subjects_windows_are_in_one_split_and_folds_rotate_the_validation_subjects(pamap2_folder, tmp_path):
    chest_x = ["chest_acc16_x"]
    assert subjects_by_split(load(pamap2_folder, tmp_path, channels=chest_x, fold=0), 0) == {
        "train": {103, 104}, "val": {101, 102}, "test": {105},
    }
    assert subjects_by_split(load(pamap2_folder, tmp_path, channels=chest_x, fold=1), 0) == {
        "train": {101, 102}, "val": {103, 104}, "test": {105},
    }
    named = load(pamap2_folder, tmp_path, channels=chest_x, test_subjects=[], val_subjects=[103])
    assert named.x_test is None and len(named.x_val) == 6 and len(named.x_train) == 24


def test_normalization_uses_the_training_split_only(pamap2_folder, tmp_path):
    data = load(pamap2_folder, tmp_path, channels=["chest_acc16_x", "hand_acc16_y"])
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=(0, 2)), 1, atol=1e-4)
    # Train subjects 103, 104 have chest_acc16_x = 103.5 +- 0.5, so subject 105 is at +3 std.
    np.testing.assert_allclose(data.x_test[:, 0], 3.0, rtol=1e-4)


def test_the_cache_is_reused_and_a_changed_setting_or_file_rebuilds_it(pamap2_folder, tmp_path, monkeypatch):
    first = load(pamap2_folder, tmp_path)
    parses = []
    monkeypatch.setattr("trainables.data.pamap2.read_windows", lambda *a: parses.append(a) or read_windows(*a))
    again = load(pamap2_folder, tmp_path, fold=1)  # the split is not part of the cache key
    assert parses == [] and len(again.x_train) == len(first.x_val)
    load(pamap2_folder, tmp_path, overlap=0.25)
    assert len(parses) == 1
    file = pamap2_folder / "PAMAP2_Dataset" / "Protocol" / "subject102.dat"
    file.write_text(file.read_text())  # same content, new modification time
    load(pamap2_folder, tmp_path)
    assert len(parses) == 2
    assert len(list((tmp_path / "cache").glob("pamap2-*.npz"))) == 3


def test_a_missing_folder_names_data_path_the_file_and_the_download_page(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        pamap2(tmp_path)
    expected = tmp_path / "PAMAP2_Dataset" / "Protocol"
    looked_for = expected / "subject101.dat"
    assert str(err.value).startswith(f"data.path: no folder '{expected}' (looked for {looked_for})")
    assert "https://archive.ics.uci.edu/dataset/231" in str(err.value)


def test_a_zip_not_yet_unpacked_is_pointed_out(tmp_path):
    (tmp_path / "PAMAP2_Dataset.zip").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"; unpack .*PAMAP2_Dataset\.zip there"):
        pamap2(tmp_path)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda v: v[:-1], "53 values, expected 54"),
        (lambda v: v + ["0.5"], "55 values, expected 54"),
        (lambda v: v[:7] + ["1,5"] + v[8:], "'1,5' is not a number"),
        (lambda v: v[:1] + ["9"] + v[2:], "activity id 9 is not a protocol activity"),
    ],
)
def test_a_malformed_line_is_an_error_naming_the_file_and_line(pamap2_folder, tmp_path, edit, problem):
    file = pamap2_folder / "PAMAP2_Dataset" / "Protocol" / "subject103.dat"
    lines = file.read_text().splitlines()
    lines[40] = " ".join(edit(lines[40].split()))
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as err:
        load(pamap2_folder, tmp_path)
    assert str(err.value).startswith(f"data.path: {file} line 41: {problem}")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"channels": ["hand_acc_x"]}, "data.channels: unknown channel 'hand_acc_x'; did you mean hand_acc6_x"),
        ({"channels": []}, "data.channels: is empty"),
        ({"window_seconds": 0.001}, "data.window_seconds: 0.001 is shorter than one sample"),
        ({"window_seconds": 10}, "data.window_seconds: a window of 1000 samples is longer than every activity"),
        ({"overlap": 1.0}, "data.overlap: must be in [0, 1)"),
        ({"sample_rate": 30}, "data.sample_rate: 30 Hz is not 100 Hz divided by a whole number"),
        ({"fold": 2}, "data.fold: must be one of 0..1"),
        ({"num_folds": 5}, "data.num_folds: 5 folds need at least 5 training subjects, there are 4"),
        ({"val_subjects": [105]}, "data.val_subjects: subject 105 is also in data.test_subjects"),
        ({"test_subjects": [110]}, "data.test_subjects: subject 110 has no windows; use ids from: 101, 102"),
    ],
)
def test_a_bad_setting_is_an_error_naming_its_key(pamap2_folder, tmp_path, settings, message):
    with pytest.raises(ValueError) as err:
        load(pamap2_folder, tmp_path, **settings)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_channel_without_any_value_is_an_error(tmp_path):
    protocol_dir = write_pamap2(tmp_path / "data", subjects=(101, 102, 103))
    file = protocol_dir / "subject102.dat"
    column = COLUMNS.index("ankle_mag_z")
    lines = [line.split() for line in file.read_text().splitlines()]
    file.write_text("".join(" ".join(v[:column] + ["NaN"] + v[column + 1 :]) + "\n" for v in lines))
    with pytest.raises(ValueError, match=f"^data.channels: {file} has no value for ankle_mag_z; leave it out"):
        load(tmp_path / "data", tmp_path, channels=["ankle_mag_z"], test_subjects=[])


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_a_tiny_tuning_run_on_pamap2(pamap2_folder, tmp_path):
    overrides = [
        "data=pamap2", f"data.path={pamap2_folder}", f"data.cache_dir={tmp_path / 'cache'}",
        "data.window_seconds=0.2", "data.test_subjects=[105]", "data.num_folds=2",
        "search=fifo", "num_samples=1", "max_epochs=1", "model.levels=1", "model.channels=8",
    ]
    summary = tune_from_config(compose_config(*overrides), tmp_path / "run")
    assert summary["status_counts"] == {"completed": 1}
    assert 0 <= summary["best_trial"]["val_acc"] <= 1
