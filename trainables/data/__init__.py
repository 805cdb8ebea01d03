"""Data sets a trainable tunes on, each a function returning a `Dataset` (named by the config's
`data._target_`): the synthetic HAR set (`synthetic_har`), and loaders of recordings on disk,
one module each (`uci_har`, `pamap2`, `npz`). `parts/` holds what the loaders share: subject
splits, windowing, table reading, channel names and the cache.
"""

from trainables.data.dataset import Dataset
from trainables.data.synthetic import HAR_CLASSES, synthetic_har

__all__ = ["HAR_CLASSES", "Dataset", "synthetic_har"]
