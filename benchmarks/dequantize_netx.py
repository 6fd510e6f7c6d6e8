"""Turn a netx file that tsslbp exported back into a float training checkpoint.

    python benchmarks/dequantize_netx.py models/fmnist_cnn.net runs/cnn/dequantized.pt

The netx file holds each layer's integer weights as the export folded them (pooling scale and input
normalization folded in, pooling expanded into blocks), and in its tsslbp metadata the config, the
input width and each layer's scale. This script divides the integers by the weight gain the
export used, undoes the folding and writes a checkpoint of the same network whose float weights
are the realized 8-bit ones: what `tsslbp train CONFIG --init` can fine-tune from when the
original float checkpoint is gone. The first layer's constant-input
weights (the folded input mean) are not kept: the float network recomputes them from its own
weights, so they differ from the file's by the rounding of those few weights.

It also prints, per layer, how far the rebuilt network folded again lands from the file's
integers (max |difference| in integer units; 0 where the inversion is exact).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tsslbp.config import parse_config
from tsslbp.export.fold import FoldedFlatten, fold_network
from tsslbp.export.netx import read_netx
from tsslbp.hwmodels.fixed_point import ACT_SHIFT
from tsslbp.train.layers import SpikingConv2d, SpikingLinear
from tsslbp.train.loop import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, save_checkpoint
from tsslbp.train.network import TsslbpNetwork


def _unfold(
    folded_int: np.ndarray,
    shape: tuple[int, ...],
    pooled: tuple[int, int],
    map_shape: tuple[int, int, int] | None,
    gain: float,
    pool_scale: float,
    std: np.ndarray | None,
) -> torch.Tensor:
    """A layer's float weights (``shape``) from its folded integer ones (tsslbp.export.fold)."""
    ky, kx = pooled
    w = folded_int.astype(np.float64) / gain
    if std is not None and w.ndim == 4:  # (x - mean) / std per channel, then the ones channel
        w = w[:, : shape[1]] * std[None, :, None, None]
    elif std is not None:  # (x - mean) / std per channel, then the constant-ones input
        w = (w[:, :-1].reshape(len(w), len(std), -1) * std[None, :, None]).reshape(len(w), -1)
    if (ky, kx) != (1, 1) and w.ndim == 4:
        w = w[:, :, ::ky, ::kx] / pool_scale
    elif (ky, kx) != (1, 1):
        c, h, width = map_shape
        full = w.reshape(len(w), c, h, width)[:, :, : h // ky * ky : ky, : width // kx * kx : kx]
        w = full.reshape(len(w), -1) / pool_scale
    if tuple(w.shape) != shape:
        raise SystemExit(f"cannot unfold a {folded_int.shape} layer into {shape}: got {w.shape}")
    return torch.from_numpy(np.ascontiguousarray(w)).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("netx", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    spec = read_netx(args.netx)
    meta = spec.metadata
    if "config" not in meta or "layer_scales" not in meta:
        raise SystemExit(f"{args.netx}: no tsslbp config and layer scales in its metadata")
    cfg = parse_config(meta["config"], f"{args.netx} (embedded config)")
    scales = meta["layer_scales"]
    # Graded input codes x * input_scale (event input: binary spikes, scale 1).
    input_max = meta.get("input_scale", 1)
    integer_layers = [layer for layer in spec.layers if hasattr(layer, "weight")]

    model = TsslbpNetwork(cfg)
    spiking = [m for m in model.layers if isinstance(m, (SpikingLinear, SpikingConv2d))]
    names = [c.name for c in cfg.layers if c.is_spiking]
    # Each weight layer's pooling scale (the product of the poolings folded into it).
    pool_scales, scale_before = [], 1.0
    for layer in model.layers:
        if isinstance(layer, (SpikingLinear, SpikingConv2d)):
            pool_scales.append(scale_before)
            scale_before = 1.0
        elif hasattr(layer, "scale"):
            scale_before *= layer.scale
    std = np.asarray(cfg.input_normalization[1]) if cfg.input_normalization else None
    gains = [
        scale / (cfg.neuron.tau_s * (1 << ACT_SHIFT) * (float(input_max) if i == 0 else 1.0))
        for i, scale in enumerate(scales)
    ]

    def weight_layers() -> list[tuple[object, tuple[int, int, int] | None]]:
        """The folded weight layers of ``model``, each with its flattened input map (dense)."""
        items, map_shape = [], None
        for item in fold_network(model):
            if isinstance(item, FoldedFlatten):
                map_shape = item.in_shape
            else:
                items.append((item, map_shape))
        return items

    with torch.no_grad():
        for i, (layer, (item, map_shape), integer) in enumerate(
            zip(spiking, weight_layers(), integer_layers, strict=True)
        ):
            layer.weight.copy_(
                _unfold(
                    integer.weight,
                    tuple(layer.weight.shape),
                    item.pooled,
                    map_shape,
                    gains[i],
                    pool_scales[i],
                    std if i == 0 else None,
                )
            )
    # The rebuilt network folded again, against the file's integers.
    for i, (item, _) in enumerate(weight_layers()):
        diff = np.abs(item.weight * gains[i] - integer_layers[i].weight)
        if i == 0 and std is not None:
            diff = diff[:, :-1]  # the constant-ones input, recomputed (see above)
        print(f"{names[i]}: max |refolded - file| {diff.max():.3g} integer units")
    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "config": cfg.to_dict(),
        "seed": cfg.train.seed,
        "epoch": 0,
        "model": model.state_dict(),
        "metrics": [],
        "best": None,
        "dequantized_from": str(args.netx),
        "source_sha256": meta.get("source_sha256"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.out, state)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
