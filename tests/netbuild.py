"""Small networks for tests: a config from a ``Layers`` mapping, its model with scaled weights."""

import torch

from tsslbp.config import parse_config
from tsslbp.train.network import TsslbpNetwork


def scaled_model(raw_layers, seed=0, gain=2.0, dataset="digits", **network):
    """(config, float64 eval-mode model) with the given layers, weights times ``gain``."""
    raw = {"Network": {"dataset": dataset, "n_steps": 5, **network}, "Layers": raw_layers}
    cfg = parse_config(raw)
    torch.manual_seed(seed)
    model = TsslbpNetwork(cfg).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return cfg, model
