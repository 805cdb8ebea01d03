"""What tuner tunes: a PyTorch trainable for human-activity recognition (`har`), its models
(`models/`) and its data sets (`data/`, with the loaders' shared parts in `data/parts/`).

Plain PyTorch; the only Ray Tune calls are the per-epoch report and checkpoint in `har.train`.
"""

# The loaders' modules as they were named before data/ held them, so configs that name
# trainables.uci_har.uci_har, trainables.pamap2.pamap2 or trainables.npz.npz_windows still load.
from trainables.data import npz, pamap2, uci_har

__all__ = ["npz", "pamap2", "uci_har"]
