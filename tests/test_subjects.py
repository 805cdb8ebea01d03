"""Subject-wise splits: named subjects, leave-subjects-out folds, train-only standardization."""

import numpy as np
import pytest

from trainables.data.parts.subjects import SubjectSplit, choose_subjects, subject_dataset

AVAILABLE = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_folds_cut_the_sorted_training_subjects_into_consecutive_groups():
    folds = [choose_subjects(AVAILABLE[::-1], test_subjects=[9, 10], num_folds=3, fold=k) for k in range(3)]
    assert [split.val for split in folds] == [[1, 2, 3], [4, 5, 6], [7, 8]]
    assert all(split.test == [9, 10] for split in folds)
    assert folds[1].train == [1, 2, 3, 7, 8]


def test_over_all_folds_every_training_subject_validates_exactly_once():
    vals = [s for k in range(4) for s in choose_subjects(AVAILABLE, test_subjects=[5], num_folds=4, fold=k).val]
    assert sorted(vals) == [s for s in AVAILABLE if s != 5]


def test_named_subjects_override_the_folds_and_train_subjects_leave_others_out():
    split = choose_subjects(AVAILABLE, train_subjects=[1, 2, 3], val_subjects=[4], test_subjects=7)
    assert split == SubjectSplit(train=[1, 2, 3], val=[4], test=[7])
    assert choose_subjects(AVAILABLE, val_subjects=[2, 3]).train == [1, 4, 5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"test_subjects": [11]}, "data.test_subjects: subject 11 has no windows; use ids from: 1, 2"),
        ({"val_subjects": ["a"]}, "data.val_subjects: 'a' is not a subject id"),
        ({"val_subjects": []}, "data.val_subjects: is empty"),
        ({"val_subjects": [3], "test_subjects": [3]}, "data.val_subjects: subject 3 is also in data.test"),
        ({"train_subjects": [1, 3], "test_subjects": [3]}, "data.train_subjects: subject 3 is also in data.test"),
        ({"train_subjects": [1, 3], "val_subjects": [3]}, "data.val_subjects: subject 3 is also in data.train"),
        ({"val_subjects": AVAILABLE}, "data.train_subjects: no training subject is left"),
        ({"num_folds": 1}, "data.num_folds: must be an integer >= 2"),
        ({"num_folds": 11}, "data.num_folds: 11 folds need at least 11 training subjects, there are 10"),
        ({"fold": -1}, "data.fold: must be one of 0..4"),
        ({"fold": 5}, "data.fold: must be one of 0..4"),
    ],
)
def test_a_bad_choice_is_an_error_naming_its_key(settings, message):
    with pytest.raises(ValueError) as err:
        choose_subjects(AVAILABLE, **settings)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def windows(subjects: list[int], per_subject: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two channels: the subject id, and the subject id times 10; labels alternate 0, 1."""
    ids = np.repeat(subjects, per_subject)
    x = np.stack([ids, 10 * ids], axis=1)[:, :, None].repeat(4, axis=2).astype(np.float32)
    return x, np.arange(len(ids)) % 2, ids


def test_each_split_holds_only_its_subjects_windows():
    x, y, ids = windows([1, 2, 3, 4])
    data = subject_dataset(x, y, ids, ["a", "b"], SubjectSplit(train=[1, 2], val=[3], test=[4]))
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (6, 3, 3)
    assert data.y_train.dtype == np.int64 and data.y_val.tolist() == [0, 1, 0]


def test_standardization_is_fitted_on_the_training_split_alone():
    x, y, ids = windows([1, 3, 5, 9])
    data = subject_dataset(x, y, ids, ["a", "b"], SubjectSplit(train=[1, 3], val=[5], test=[9]))
    # Train subjects 1 and 3: mean 2, std 1 on channel 0; mean 20, std 10 on channel 1.
    np.testing.assert_allclose(data.x_train[:, :, 0], [[-1, -1]] * 3 + [[1, 1]] * 3)
    np.testing.assert_allclose(data.x_val[:, :, 0], [[3, 3]] * 3)
    np.testing.assert_allclose(data.x_test[:, :, 0], [[7, 7]] * 3)
    assert data.x_train.dtype == data.x_test.dtype == np.float32


def test_the_dataset_keeps_the_statistics_that_turn_raw_windows_into_its_windows():
    x, y, ids = windows([1, 3, 5, 9])
    data = subject_dataset(x, y, ids, ["a", "b"], SubjectSplit(train=[1, 3], val=[5], test=[9]), ["id", "id10"], 25.0)
    np.testing.assert_allclose(data.mean, [[2], [20]])
    np.testing.assert_allclose(data.std, [[1], [10]])
    np.testing.assert_allclose((x[ids == 9] - data.mean) / data.std, data.x_test)
    assert (data.channels, data.sample_rate, data.window) == (["id", "id10"], 25.0, 4)


def test_a_constant_channel_is_centred_not_divided_by_zero():
    x, y, ids = windows([1, 2])
    x[:, 1] = 5.0
    data = subject_dataset(x, y, ids, ["a", "b"], SubjectSplit(train=[1], val=[2], test=[]))
    assert (data.x_train[:, 1] == 0).all() and data.x_test is None
