"""Turn a trained network into hardware layers: pooling folded into weights, dropout removed.

TSSL-BP pooling is a fixed sum of the incoming PSPs over ``k x k`` windows (stride k) times a
scale, with no neuron. It is linear and sits between a PSP and the next layer's weights, so it
folds exactly into those weights (docs/fixed-point.md, "Pooling"):

* pooling then conv (kernel K, stride s, padding p, dilation 1) = a conv with kernel ``k K``,
  stride ``k s``, padding ``k p`` whose weight repeats each entry over a k x k block, times scale;
* pooling then flatten then dense = a dense layer over the unpooled map whose weight repeats each
  column over the k x k block it pooled, times scale (rows/columns pooling dropped get weight 0).

An input normalization ``(x - m) / s`` per channel (config ``input_mean`` / ``input_std``) folds
into the first layer and one more input that is always 1: a constant last input channel for a conv
(zero in the padding, like the normalized input's padding), a constant last input for a dense
layer. The first layer's weights become ``W / s`` on the pixels and ``-sum_c m_c W_c / s_c`` on the
constant, which is exact because the synapses and the PSP filter are linear
(docs/fixed-point.md, "Input normalization").

Folding is applied from the last pooling backwards, so consecutive poolings compose. The result
is a list of :class:`FoldedConv` / :class:`FoldedDense` / :class:`FoldedFlatten` in float, which
:func:`run_folded` executes with the training code's neuron, so tests can check that the folded
network is the trained one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import conv_output_size
from ..train.functional import LIFParameters, LIFTrace, lif_forward, psp, static_psp_coefficients
from ..train.layers import SpikingConv2d, SpikingLinear, SumPooling, TimeSharedDropout
from ..train.network import TsslbpNetwork

__all__ = [
    "FoldError",
    "FoldedConv",
    "FoldedDense",
    "FoldedFlatten",
    "FoldedLayer",
    "fold_network",
    "with_constant_ones",
    "run_folded",
    "folded_traces",
]


#: Bytes of unfolded conv patches :func:`folded_traces` lets one conv call make.
_CONV_CHUNK_BYTES = 1 << 28


class FoldError(ValueError):
    """A pooling layer cannot be folded exactly into the layer after it."""


@dataclass(frozen=True)
class FoldedConv:
    """Float conv synapses + neurons. ``weight`` (out, in/groups, kH, kW), shapes (C, H, W).

    ``pooled``: the (ky, kx) sum-pooling window folded in (1, 1 when none): the weight repeats each
    entry of the original kernel over such blocks.
    """

    weight: np.ndarray
    neuron: LIFParameters
    in_shape: tuple[int, int, int]
    shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    pooled: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class FoldedDense:
    """Float dense synapses + neurons. ``weight`` (n_out, n_in); inputs flattened in (C, H, W) order.

    ``pooled``: the (ky, kx) sum-pooling window folded in (1, 1 when none): the weight repeats each
    column of the original layer over such blocks of the (C, H, W) map (0 where pooling dropped).
    """

    weight: np.ndarray
    neuron: LIFParameters
    pooled: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class FoldedFlatten:
    """(C, H, W) -> (C*H*W,) in C order (PyTorch's flatten)."""

    in_shape: tuple[int, int, int]


FoldedLayer = FoldedConv | FoldedDense | FoldedFlatten


def _fold_into_conv(
    pool: SumPooling, conv: FoldedConv, pooled_from: tuple[int, int, int], name: str
) -> FoldedConv:
    ky, kx = pool.kernel_size
    c, h, w = pooled_from
    if conv.dilation != (1, 1):
        raise FoldError(
            f"{name}: a conv with dilation {conv.dilation} after pooling cannot be folded"
        )
    if (h % ky or w % kx) and conv.padding != (0, 0):
        raise FoldError(
            f"{name}: pooling {ky}x{kx} of a {h}x{w} map drops rows/columns that a padded conv would read; "
            "use a map size divisible by the pooling window or no padding"
        )
    weight = np.repeat(np.repeat(conv.weight, ky, axis=2), kx, axis=3) * pool.scale
    folded = FoldedConv(
        weight=weight,
        neuron=conv.neuron,
        in_shape=pooled_from,
        shape=conv.shape,
        stride=(conv.stride[0] * ky, conv.stride[1] * kx),
        padding=(conv.padding[0] * ky, conv.padding[1] * kx),
        dilation=(1, 1),
        groups=conv.groups,
        pooled=(conv.pooled[0] * ky, conv.pooled[1] * kx),
    )
    out_h = conv_output_size(h, weight.shape[2], folded.stride[0], folded.padding[0], 1)
    out_w = conv_output_size(w, weight.shape[3], folded.stride[1], folded.padding[1], 1)
    if (out_h, out_w) != conv.shape[1:]:  # pragma: no cover - guarded by the checks above
        raise FoldError(f"{name}: folded conv gives {out_h}x{out_w}, expected {conv.shape[1:]}")
    return folded


def _fold_into_dense(
    pool: SumPooling, dense: FoldedDense, pooled_from: tuple[int, int, int]
) -> FoldedDense:
    ky, kx = pool.kernel_size
    c, h, w = pooled_from
    ph, pw = h // ky, w // kx
    weight = dense.weight.reshape(-1, c, ph, pw)
    expanded = np.zeros((weight.shape[0], c, h, w), dtype=weight.dtype)
    expanded[:, :, : ph * ky, : pw * kx] = (
        np.repeat(np.repeat(weight, ky, axis=2), kx, axis=3) * pool.scale
    )
    return FoldedDense(
        weight=expanded.reshape(weight.shape[0], -1),
        neuron=dense.neuron,
        pooled=(dense.pooled[0] * ky, dense.pooled[1] * kx),
    )


def with_constant_ones(x: torch.Tensor) -> torch.Tensor:
    """Static inputs (N, C, H, W) or flat (N, F) with the constant input of a normalizing
    network appended: a plane of ones as channel C, or a last column of ones."""
    ones = torch.ones_like(x[:, :1])
    return torch.cat([x, ones], dim=1)


def _fold_normalization(
    first: FoldedConv | FoldedDense, mean: np.ndarray, std: np.ndarray, name: str
) -> FoldedConv | FoldedDense:
    """The first layer on ``[x, 1]`` that computes what it computed on ``(x - mean) / std``."""
    if isinstance(first, FoldedConv):
        if first.groups != 1:
            raise FoldError(
                f"{name}: input normalization folds into a conv with groups 1, found {first.groups}"
            )
        w = first.weight / std[None, :, None, None]
        constant = -(w * mean[None, :, None, None]).sum(axis=1, keepdims=True)
        c, h, width = first.in_shape
        return dataclasses.replace(
            first, weight=np.concatenate([w, constant], axis=1), in_shape=(c + 1, h, width)
        )
    n_out = first.weight.shape[0]
    w = first.weight.reshape(n_out, len(mean), -1) / std[None, :, None]
    constant = -(w * mean[None, :, None]).sum(axis=(1, 2))
    return dataclasses.replace(
        first, weight=np.concatenate([w.reshape(n_out, -1), constant[:, None]], axis=1)
    )


def fold_network(model: TsslbpNetwork, names: list[str] | None = None) -> list[FoldedLayer]:
    """Hardware layers of ``model`` (float): conv/dense with pooling folded in, flatten before dense.

    Args:
        model: a trained network (only read).
        names: layer names for messages (default: indices).

    Raises:
        FoldError: a pooling that cannot be folded exactly, or pooling as the last weight-free step.
    """
    names = names or [str(i) for i in range(len(model.layers))]
    shape: tuple[int, ...] = tuple(model.input_shape)
    if not model.is_image_net:
        shape = (int(np.prod(shape)),)  # an MLP takes its input flat: no leading flatten layer
    # First pass: plain hardware layers, remembering where each pooling sits and what it saw.
    plain: list[object] = []
    for layer in model.layers:
        if isinstance(layer, TimeSharedDropout):
            continue
        if isinstance(layer, SumPooling):
            plain.append((layer, shape))
            c, h, w = shape
            shape = (c, h // layer.kernel_size[0], w // layer.kernel_size[1])
        elif isinstance(layer, SpikingConv2d):
            weight = layer.weight.detach().cpu().double().numpy()
            c_in, h, w = shape
            out = (
                weight.shape[0],
                conv_output_size(
                    h, weight.shape[2], layer.stride[0], layer.padding[0], layer.dilation[0]
                ),
                conv_output_size(
                    w, weight.shape[3], layer.stride[1], layer.padding[1], layer.dilation[1]
                ),
            )
            plain.append(
                FoldedConv(
                    weight,
                    layer.neuron,
                    shape,
                    out,
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    layer.groups,
                )
            )
            shape = out
        elif isinstance(layer, SpikingLinear):
            if len(shape) == 3:
                plain.append(FoldedFlatten(shape))
                shape = (int(np.prod(shape)),)
            plain.append(FoldedDense(layer.weight.detach().cpu().double().numpy(), layer.neuron))
            shape = (layer.weight.shape[0],)
    if model.input_normalization is not None:
        if not isinstance(plain[0], (FoldedConv, FoldedDense)):  # a pooling comes first
            raise FoldError(
                "input normalization folds into the first conv or linear layer; "
                "a pooling layer before it is not supported"
            )
        mean, std = (np.asarray(v, dtype=np.float64) for v in model.input_normalization)
        plain[0] = _fold_normalization(plain[0], mean, std, names[0])
    # Second pass, backwards: fold each pooling into the weight layer that follows it.
    folded: list[FoldedLayer] = []
    for index in range(len(plain) - 1, -1, -1):
        item = plain[index]
        if not isinstance(item, tuple):
            folded.insert(0, item)
            continue
        pool, pooled_from = item
        if not folded:
            raise FoldError(f"pooling layer {index}: nothing follows it to fold into")
        nxt = folded[0]
        if isinstance(nxt, FoldedFlatten):
            dense = folded[1]
            folded[0:2] = [FoldedFlatten(pooled_from), _fold_into_dense(pool, dense, pooled_from)]
        elif isinstance(nxt, FoldedConv):
            folded[0] = _fold_into_conv(pool, nxt, pooled_from, f"layer after pooling {index}")
        else:
            raise FoldError(
                f"pooling layer {index}: followed by {type(nxt).__name__}, expected conv or flatten"
            )
    return folded


@torch.no_grad()
def run_folded(
    layers: list[FoldedLayer], x: torch.Tensor, n_steps: int, tau_syn: float
) -> list[torch.Tensor]:
    """Run folded float layers on inputs ``x`` (see :func:`folded_traces`); spikes of every neuron layer."""
    return [trace.spikes for _, trace in folded_traces(layers, x, n_steps, tau_syn)]


@torch.no_grad()
def folded_traces(
    layers: list[FoldedLayer], x: torch.Tensor, n_steps: int, tau_syn: float
) -> list[tuple[torch.Tensor, LIFTrace]]:
    """(current, LIF trace) of every neuron layer of the folded float network, float64.

    ``x`` is a static input (N, C[, H, W]) repeated over the steps, or a time-varying one with a
    trailing time axis of ``n_steps`` (event frames): either way it goes through the PSP filter.
    """
    dtype = torch.float64
    if x.shape[-1] == n_steps and x.dim() in (3, 5):
        trace = psp(x.to(dtype), tau_syn)
    else:
        trace = x.to(dtype)[..., None] * static_psp_coefficients(n_steps, tau_syn, dtype=dtype)
    spikes = []
    for layer in layers:
        if isinstance(layer, FoldedFlatten):
            trace = trace.reshape(trace.shape[0], -1, n_steps)
            continue
        weight = torch.from_numpy(layer.weight).to(dtype)
        if isinstance(layer, FoldedConv):
            frames = trace.movedim(-1, 1).reshape(-1, *trace.shape[1:-1])
            # A folded conv has a large kernel (10x10 for 2x2 pooling before a 5x5 conv), and
            # torch's CPU conv unfolds every frame's patches at once: in chunks of frames the
            # unfolded patches stay near _CONV_CHUNK_BYTES (the paper's Fashion-MNIST CNN on 512
            # calibration samples: 13 GB in one call).
            patch_bytes = weight[0].numel() * frames[0, 0].numel() * frames.element_size()
            chunk = max(1, _CONV_CHUNK_BYTES // max(patch_bytes, 1))
            out = torch.cat(
                [
                    F.conv2d(
                        part,
                        weight,
                        None,
                        layer.stride,
                        layer.padding,
                        layer.dilation,
                        layer.groups,
                    )
                    for part in frames.split(chunk)
                ]
            )
            current = out.reshape(trace.shape[0], n_steps, *out.shape[1:]).movedim(1, -1)
        else:
            current = torch.einsum("oi,nit->not", weight, trace)
        lif = lif_forward(current, layer.neuron)
        spikes.append((current, lif))
        trace = psp(lif.spikes, tau_syn)
    return spikes
