"""Cutting recordings into windows: runs of one label, whole windows only, gaps, lower rates."""

import numpy as np

from trainables.data.parts.windows import downsample, fill_gaps, label_runs, sliding_windows


def test_label_runs_split_at_every_change():
    assert label_runs(np.array([0, 0, 3, 3, 3, 0, 5])) == [(0, 2), (2, 5), (5, 6), (6, 7)]
    assert label_runs(np.array([], dtype=int)) == []


def test_windows_start_at_each_step_and_only_whole_windows_are_kept():
    signal = np.stack([np.arange(10.0), -np.arange(10.0)], axis=1)  # [time, channels]
    windows = sliding_windows(signal, length=4, step=3)
    assert windows.shape == (3, 2, 4)  # starts 0, 3, 6; 9 + 4 > 10
    np.testing.assert_array_equal(windows[1, 0], [3, 4, 5, 6])
    np.testing.assert_array_equal(windows[2, 1], [-6, -7, -8, -9])
    assert sliding_windows(signal, length=10, step=5).shape == (1, 2, 10)
    assert sliding_windows(signal, length=11, step=5).shape == (0, 2, 11)


def test_windows_are_copies_not_views_of_the_recording():
    signal = np.zeros((8, 1))
    windows = sliding_windows(signal, length=4, step=4)
    signal[:] = 1
    assert windows.sum() == 0 and windows.flags.owndata


def test_downsampling_averages_each_block_and_drops_the_rest():
    signal = np.arange(7.0)[:, None]
    np.testing.assert_array_equal(downsample(signal, 2)[:, 0], [0.5, 2.5, 4.5])
    assert downsample(signal, 1) is signal


def test_gaps_are_interpolated_and_held_at_the_ends():
    signal = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, 3.0], [4.0, np.nan], [np.nan, np.nan]])
    filled = fill_gaps(signal)
    np.testing.assert_array_equal(filled[:, 0], [2, 2, 3, 4, 4])
    np.testing.assert_array_equal(filled[:, 1], [1, 2, 3, 3, 3])
    assert np.isnan(signal[0, 0]), "the input is left as it was"


def test_a_channel_without_values_stays_nan():
    assert np.isnan(fill_gaps(np.array([[np.nan, 1.0], [np.nan, 2.0]]))[:, 0]).all()
