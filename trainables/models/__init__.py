"""The classifiers for windows of multichannel time series, chosen by `model.name`, one module
each. Each takes [batch, channels, window] and returns [batch, num_classes] logits; a new model
is a module here and one entry in MODELS.
"""

import inspect

from torch import nn

from trainables.models.cnn_bilstm import CnnBiLstm
from trainables.models.cnn_tcn import CnnTcn

MODELS = {"cnn_tcn": CnnTcn, "cnn_bilstm": CnnBiLstm}


def build_model(model_cfg: dict, in_channels: int, num_classes: int, dropout: float) -> nn.Module:
    """Build the model a config names, e.g. {"name": "cnn_tcn", "channels": 32, "levels": 3}.

    The keys besides `name` are architecture arguments; keys only another architecture takes
    are left out, so one search space can choose between models (cnn_tcn's `levels` is
    ignored when a trial picks cnn_bilstm). Keys no architecture takes are refused. `dropout`
    is passed separately because it is a training knob tuned like the learning rate.
    """
    kwargs = dict(model_cfg)
    name = kwargs.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"model.name is {name!r}; choose one of {sorted(MODELS)}")
    unknown = set(kwargs) - set().union(*(_arguments(m) for m in MODELS.values()))
    if unknown:
        raise ValueError(f"model has unknown keys {sorted(unknown)}; no architecture takes them")
    accepted = _arguments(MODELS[name])
    own = {key: value for key, value in kwargs.items() if key in accepted}
    return MODELS[name](in_channels, num_classes, dropout=dropout, **own)


def _arguments(model: type[nn.Module]) -> set[str]:
    return set(inspect.signature(model).parameters) - {"in_channels", "num_classes", "dropout"}
