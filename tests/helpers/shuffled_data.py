"""A data function for the test that the test split takes no part in choosing: the synthetic set
with its test labels shuffled, everything a search sees left as it was."""

import numpy as np

from trainables.data import Dataset, synthetic_har


def shuffled_test_labels(**settings) -> Dataset:
    data = synthetic_har(**settings)
    data.y_test = np.random.default_rng(0).permutation(data.y_test)
    return data
