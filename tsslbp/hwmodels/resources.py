"""Loihi 2 resource model: synapse counts, core packing, activity, energy and latency per inference.

Everything here works on a :class:`~tsslbp.hwmodels.spec.NetworkSpec` and, for activity, on a
recorded :class:`~tsslbp.hwmodels.golden.GoldenResult`; nothing else of tsslbp is imported.
Every constant names its source; docs/energy.md lists them with their caveats. In short:

* per-core limits are Loihi 1's published constraints (Davies et al. 2018, p. 89) except the
  neuron count, which is Loihi 2's (Intel's 2021 Loihi 2 brief); Intel has not published Loihi 2's
  per-core synaptic memory or axon limits, so Loihi 1's are used as labelled assumptions;
* energies and times per operation are Loihi 1's pre-silicon figures at 0.75 V (Davies et al.
  2018, Table 2); 23.6 pJ is a *minimum* per synaptic operation. Applying them to Loihi 2 is an
  assumption. Static/leakage power, host I/O and barrier-synchronisation energy are not included.

Counting conventions (per sample, over all ``S`` steps the sample runs):

* a synapse is one (presynaptic neuron, postsynaptic neuron) pair with a stored weight: every
  entry of a dense matrix (zeros included: they are stored), and for a conv layer every kernel tap
  that lands inside the input (taps on padding connect nothing);
* a synaptic operation (synop) is one delivery of a nonzero presynaptic message over one synapse:
  ``sum_t sum_i [s_i[t] != 0] * fan_out_i``; a graded input value counts once per synapse, like a
  binary spike;
* a neuron update is one neuron at one step; it is *active* when the neuron's current or voltage is
  nonzero or it spikes at that step, *inactive* otherwise (our reading: Davies et al. do not define
  the two);
* a spike message is one spike sent to one destination core (``spikes x destination cores``).

Synaptic memory follows the dense-compression format nengo-loihi derives for Loihi 1
(``nengo_loihi/block.py``, ``SynapseConfig.bits_per_axon``): the weights an input axon has on a core
are stored in rows of at most 64 synapses, each row ``64 x ceil((n w + 10) / 64)`` bits for ``n``
weights of ``w`` bits. Conv weights are stored per synapse (dense), not as a shared kernel: an upper
bound (Loihi 1 had shared "population" weights, and whether Loihi 2's convolution shares them is not
published). Folded pooling makes kernels ``k x k`` times larger and is counted as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .spec import ConvLayer, DenseLayer, FlattenLayer, InputLayer, Layer, NetworkSpec

__all__ = [
    "CORES_PER_CHIP",
    "NEURONS_PER_CORE",
    "SYNAPSE_MEMORY_BITS_PER_CORE",
    "IN_AXONS_PER_CORE",
    "OUT_AXONS_PER_CORE",
    "SYNAPSES_PER_ROW",
    "ROW_HEADER_BITS",
    "MEMORY_WORD_BITS",
    "E_SYNOP_PJ",
    "E_NEURON_ACTIVE_PJ",
    "E_NEURON_INACTIVE_PJ",
    "E_SPIKE_TILE_PJ",
    "T_SYNOP_NS",
    "T_NEURON_ACTIVE_NS",
    "T_NEURON_INACTIVE_NS",
    "T_BARRIER_1_TILE_NS",
    "T_BARRIER_32_TILES_NS",
    "CORES_PER_TILE",
    "CoreLimits",
    "CoreChunk",
    "LayerPacking",
    "LayerActivity",
    "ResourceReport",
    "layer_synapses",
    "fan_in",
    "fan_out",
    "weight_storage_bits",
    "row_bits",
    "pack_network",
    "layer_activity",
    "resource_report",
]

# --- Per-core and per-chip limits ---------------------------------------------------------------
#: Neuromorphic cores per chip, Loihi and Loihi 2 alike (Davies et al. 2018; Intel Loihi 2 brief 2021).
CORES_PER_CHIP = 128
#: Loihi 2: up to 8,192 neurons per core (Intel Loihi 2 brief 2021: 1 M neurons over 128 cores).
#: Loihi 1 had 1,024 (Davies et al. 2018, constraint 1).
NEURONS_PER_CORE = 8192
#: Synaptic memory per core: Loihi 1's 128 KB (Davies et al. 2018, constraint 2: "must not exceed
#: 128 KB (Nsyn x 64b)"; nengo-loihi's MAX_SYNAPSE_BITS = 1,048,576). ASSUMPTION for Loihi 2, whose
#: core memory is shared between synapses, neuron state and routing and has no published split.
SYNAPSE_MEMORY_BITS_PER_CORE = 128 * 1024 * 8
#: Input axons (distribution lists) per core: Loihi 1's 4,096 (Davies et al. 2018, constraint 4).
#: ASSUMPTION for Loihi 2.
IN_AXONS_PER_CORE = 4096
#: Core-to-core fan-out edges per core: Loihi 1's 4,096 (Davies et al. 2018, constraint 3).
#: ASSUMPTION for Loihi 2.
OUT_AXONS_PER_CORE = 4096
#: Loihi 1 dense synapse rows (nengo-loihi ``n_synapses = 63`` + 1 per row, 4 + 6 header bits,
#: rounded up to 64-bit words).
SYNAPSES_PER_ROW = 64
ROW_HEADER_BITS = 10
MEMORY_WORD_BITS = 64

# --- Energy and time per operation: Loihi 1, pre-silicon SDF/SPICE at 0.75 V (Davies 2018, Table 2)
#: Energy per synaptic spike op, a MINIMUM.
E_SYNOP_PJ = 23.6
#: Energy per neuron update, active / inactive.
E_NEURON_ACTIVE_PJ = 81.0
E_NEURON_INACTIVE_PJ = 52.0
#: Within-tile spike energy (each tile hop adds 3.0 pJ E-W or 4.0 pJ N-S: not counted, placement
#: is unknown).
E_SPIKE_TILE_PJ = 1.7
#: Time per synaptic spike op, a MAXIMUM.
T_SYNOP_NS = 3.5
#: Time per neuron update, active / inactive.
T_NEURON_ACTIVE_NS = 8.4
T_NEURON_INACTIVE_NS = 5.3
#: Mesh-wide barrier synchronisation, 1 to 32 tiles.
T_BARRIER_1_TILE_NS = 113.0
T_BARRIER_32_TILES_NS = 465.0
#: Cores per tile, inferred from Table 2's "1-32 tiles" on a 128-core chip (not stated by the paper).
CORES_PER_TILE = 4


@dataclass(frozen=True)
class CoreLimits:
    """What one core holds (defaults: the module's constants)."""

    neurons: int = NEURONS_PER_CORE
    synapse_bits: int = SYNAPSE_MEMORY_BITS_PER_CORE
    in_axons: int = IN_AXONS_PER_CORE
    out_axons: int = OUT_AXONS_PER_CORE
    cores_per_chip: int = CORES_PER_CHIP


# ------------------------------------------------------------------------------------- geometry


def _conv_taps(layer: ConvLayer) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per kernel tap (i, j): the output rows/columns whose tap lands inside the input, and the input
    rows/columns it lands on. Padding taps connect nothing."""
    _, _, k_h, k_w = layer.weight.shape
    (s_h, s_w), (p_h, p_w), (d_h, d_w) = layer.stride, layer.padding, layer.dilation
    h_in, w_in = layer.in_shape[1], layer.in_shape[2]
    y_out, x_out = np.arange(layer.shape[1]), np.arange(layer.shape[2])
    taps = []
    for i in range(k_h):
        rows = y_out * s_h - p_h + i * d_h
        ok_r = (rows >= 0) & (rows < h_in)
        for j in range(k_w):
            cols = x_out * s_w - p_w + j * d_w
            ok_c = (cols >= 0) & (cols < w_in)
            taps.append((y_out[ok_r], x_out[ok_c], rows[ok_r], cols[ok_c]))
    return taps


def _conv_pixel_fan_out(layer: ConvLayer, out_pixels: np.ndarray | None = None) -> np.ndarray:
    """(H_in, W_in) count of output pixels (of one output channel) each input pixel connects to,
    restricted to the output pixels where ``out_pixels`` (a (H_out, W_out) bool mask) is True."""
    counts = np.zeros(layer.in_shape[1:], dtype=np.int64)
    for y_o, x_o, rows, cols in _conv_taps(layer):
        if out_pixels is None:
            counts[np.ix_(rows, cols)] += 1
        else:
            # Within one tap, distinct output pixels land on distinct input pixels: no repeats.
            counts[np.ix_(rows, cols)] += out_pixels[np.ix_(y_o, x_o)]
    return counts


def layer_synapses(layer: Layer) -> int:
    """Synapses of a layer: dense ``n_out x n_in``; conv, every tap inside the input for every
    output neuron (so padding and stride make it smaller than ``n_out x C_in/g x kH x kW``).

    >>> layer_synapses(DenseLayer(np.ones((3, 4), dtype=np.int64), None))
    12
    """
    if isinstance(layer, DenseLayer):
        return int(layer.weight.size)
    if isinstance(layer, ConvLayer):
        c_out, c_in_group = layer.weight.shape[:2]
        pixel_taps = sum(len(y_o) * len(x_o) for y_o, x_o, _, _ in _conv_taps(layer))
        return int(c_out * c_in_group * pixel_taps)
    return 0


def fan_in(layer: Layer) -> int:
    """Largest number of synapses onto one neuron of the layer (0 for input/flatten layers)."""
    if isinstance(layer, DenseLayer):
        return int(layer.weight.shape[1])
    if isinstance(layer, ConvLayer):
        c_in_group = layer.weight.shape[1]
        taps = np.zeros(layer.shape[1:], dtype=np.int64)
        for y_o, x_o, _, _ in _conv_taps(layer):
            taps[np.ix_(y_o, x_o)] += 1
        return int(c_in_group * taps.max(initial=0))
    return 0


def fan_out(layer: Layer) -> np.ndarray:
    """Synapses of ``layer`` leaving each presynaptic neuron, flat in netx (C, H, W) order.

    Returns:
        (n_in,) int64; empty for input and flatten layers.
    """
    if isinstance(layer, DenseLayer):
        return np.full(layer.weight.shape[1], layer.weight.shape[0], dtype=np.int64)
    if isinstance(layer, ConvLayer):
        # Every output channel of an input channel's group sees the same pixel pattern.
        per_channel = layer.weight.shape[0] // layer.groups
        pixels = _conv_pixel_fan_out(layer) * per_channel
        return np.broadcast_to(pixels, tuple(layer.in_shape)).reshape(-1).astype(np.int64)
    return np.zeros(0, dtype=np.int64)


def weight_storage_bits(weight: np.ndarray) -> int:
    """Bits one stored weight needs: the magnitude bits of the largest weight once the factors of
    two common to all weights are taken out (netx moves them into the exponent), plus a sign bit
    when the layer has both signs.

    >>> weight_storage_bits(np.array([[-256, 254]])), weight_storage_bits(np.array([[4, 8, 12]]))
    (9, 2)
    """
    w = np.asarray(weight, dtype=np.int64)
    nonzero = w[w != 0]
    if nonzero.size == 0:
        return 1
    trailing = min(int((int(v) & -int(v)).bit_length() - 1) for v in np.unique(np.abs(nonzero)))
    magnitude = int(np.abs(nonzero).max()) >> trailing
    mixed = bool((w > 0).any() and (w < 0).any())
    return max(1, magnitude.bit_length() + int(mixed))


def row_bits(targets: np.ndarray | int, weight_bits: int) -> np.ndarray:
    """Synaptic memory of the weights input axons have on one core (Loihi 1 dense format).

    Args:
        targets: number of postsynaptic neurons on the core each input axon reaches.
        weight_bits: bits per stored weight.

    Returns:
        bits per axon, same shape as ``targets``: rows of at most 64 synapses, each with a 10-bit
        header, rounded up to 64-bit words.

    >>> row_bits(np.array([0, 1, 64, 65]), 8).tolist()
    [0, 64, 576, 640]
    """
    n = np.asarray(targets, dtype=np.int64)
    full, rem = np.divmod(n, SYNAPSES_PER_ROW)

    def words(k: np.ndarray | int) -> np.ndarray:
        return (
            -(-(np.asarray(k) * weight_bits + ROW_HEADER_BITS) // MEMORY_WORD_BITS)
            * MEMORY_WORD_BITS
        )

    return full * words(SYNAPSES_PER_ROW) + np.where(rem > 0, words(rem), 0)


# ----------------------------------------------------------------------------------- core packing


@dataclass(frozen=True)
class CoreChunk:
    """One core's share of a layer and what it uses of the core.

    Attributes:
        neurons: neurons on the core.
        synapse_bits: synaptic memory of the weights onto them.
        in_axons: distinct presynaptic neurons reaching them.
        out_axons: core-to-core edges leaving them (sum over the neurons of their destination cores).
        region: where the neurons lie, netx (C, H, W) order: ``(start, stop)`` of a flat range, or
            ``(c0, c1, y0, y1, x0, x1)`` a tile of channels x rows x columns of a conv layer.
    """

    neurons: int
    synapse_bits: int
    in_axons: int
    out_axons: int
    region: tuple[int, ...]


@dataclass(frozen=True)
class LayerPacking:
    """How a layer maps onto cores.

    Attributes:
        layer: index in the spec.
        neurons: neurons of the layer (0 for flatten).
        synapses: synapses onto the layer (:func:`layer_synapses`).
        fan_in: largest synapse count onto one neuron.
        weight_bits: bits per stored weight (0 without synapses).
        chunks: per core.
        limited_by: the limit that sets the core size ("neurons", "synapse memory", "input axons",
            "output axons", "layer size"); "" for flatten layers.
        unplaceable: True when even one neuron breaks a per-core limit.
        sources_reached: (n_in,) per presynaptic neuron, the number of this layer's cores it sends
            to; None without synapses.
    """

    layer: int
    neurons: int
    synapses: int
    fan_in: int
    weight_bits: int
    chunks: tuple[CoreChunk, ...]
    limited_by: str
    unplaceable: bool = False
    sources_reached: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def cores(self) -> int:
        return len(self.chunks)

    @property
    def max_synapse_bits(self) -> int:
        return max((c.synapse_bits for c in self.chunks), default=0)

    @property
    def max_in_axons(self) -> int:
        return max((c.in_axons for c in self.chunks), default=0)

    @property
    def max_out_axons(self) -> int:
        return max((c.out_axons for c in self.chunks), default=0)


def _tile_targets(
    layer: ConvLayer, c0: int, c1: int, y0: int, y1: int, x0: int, x1: int
) -> np.ndarray:
    """(C_in, H_in, W_in) number of neurons of the tile (output channels ``c0 .. c1 - 1``, rows
    ``y0 .. y1 - 1``, columns ``x0 .. x1 - 1``) each input neuron connects to."""
    pixels_out = np.zeros(layer.shape[1:], dtype=bool)
    pixels_out[y0:y1, x0:x1] = True
    pixels = _conv_pixel_fan_out(layer, pixels_out)
    per_group_out = layer.shape[0] // layer.groups
    c_in_group = layer.weight.shape[1]
    targets = np.zeros(tuple(layer.in_shape), dtype=np.int64)
    for g in range(c0 // per_group_out, (c1 - 1) // per_group_out + 1):
        n_channels = min(c1, (g + 1) * per_group_out) - max(c0, g * per_group_out)
        targets[g * c_in_group : (g + 1) * c_in_group] += n_channels * pixels
    return targets


def _worst_tile_out_axons(
    dest: np.ndarray | None, shape: tuple[int, ...], tile: tuple[int, int, int]
) -> int:
    """Largest sum of destination cores over the tiles of a (C, H, W) layer."""
    if dest is None:
        return 0
    padded = np.zeros(tuple(-(-n // t) * t for n, t in zip(shape, tile)), dtype=np.int64)
    padded[: shape[0], : shape[1], : shape[2]] = dest.reshape(shape)
    blocks = padded.reshape(
        padded.shape[0] // tile[0],
        tile[0],
        padded.shape[1] // tile[1],
        tile[1],
        padded.shape[2] // tile[2],
        tile[2],
    )
    return int(blocks.sum(axis=(1, 3, 5)).max())


def _split_sizes(n: int) -> list[int]:
    """The distinct block sizes ``ceil(n / k)``, k = 1..n, largest first."""
    return sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True)


def _conv_tile_size(
    layer: ConvLayer, dest: np.ndarray | None, bits: int, limits: CoreLimits
) -> tuple[tuple[int, int, int], str] | None:
    """Tile (channels, rows, columns) with the fewest cores whose interior tile fits every per-core
    limit, and the limit that tile uses most of; None when not even one neuron fits."""
    c, h, w = layer.shape
    pairs = sorted(
        ((-(-h // rb)) * (-(-w // wb)), rb, wb) for rb in _split_sizes(h) for wb in _split_sizes(w)
    )
    best: tuple[int, tuple[int, int, int], str] | None = None
    for spatial_cores, rb, wb in pairs:
        if best is not None and spatial_cores >= best[0]:
            break  # every remaining pair needs at least this many cores
        y0, x0 = (h - rb) // 2, (w - wb) // 2

        def over(cb: int) -> dict[str, float]:
            targets = _tile_targets(layer, 0, cb, y0, y0 + rb, x0, x0 + wb)
            return {
                "neurons": cb * rb * wb / limits.neurons,
                "synapse memory": float(row_bits(targets, bits).sum()) / limits.synapse_bits,
                "input axons": int(np.count_nonzero(targets)) / limits.in_axons,
                "output axons": _worst_tile_out_axons(dest, layer.shape, (cb, rb, wb))
                / limits.out_axons,
            }

        if max(over(1).values()) > 1.0:
            continue
        lo, hi = 1, c  # the largest channel block that fits (usage grows with it)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if max(over(mid).values()) <= 1.0 else (lo, mid - 1)
        cores = -(-c // lo) * spatial_cores
        # Which limit the chosen tile uses most of (the whole layer on one core: none).
        used = over(lo)
        reason = "layer size" if (lo, rb, wb) == (c, h, w) else max(used, key=used.get)
        if best is None or cores < best[0]:
            best = (cores, (lo, rb, wb), reason)
    return None if best is None else (best[1], best[2])


def _flat_chunks(
    layer: Layer, n: int, n_in: int, bits: int, dest: np.ndarray | None, limits: CoreLimits
) -> tuple[list[tuple[int, ...]], str, bool]:
    """Greedy cut of a layer into consecutive ranges as large as the per-core limits allow."""
    out_prefix = np.concatenate([[0], np.cumsum(dest)]) if dest is not None else None

    def over(start: int, m: int) -> dict[str, float]:
        if isinstance(layer, DenseLayer):
            mem, axin = int(n_in * row_bits(m, bits)), n_in
        else:  # a conv layer split below one row, or an input layer (no synapses)
            targets = _flat_targets(layer, start, start + m)
            mem, axin = int(row_bits(targets, bits).sum()), int(np.count_nonzero(targets))
        axout = int(out_prefix[start + m] - out_prefix[start]) if out_prefix is not None else 0
        return {
            "synapse memory": mem / limits.synapse_bits,
            "input axons": axin / limits.in_axons,
            "output axons": axout / limits.out_axons,
        }

    regions: list[tuple[int, ...]] = []
    reasons: list[str] = []
    unplaceable = False
    start = 0
    while start < n:
        m = min(n - start, limits.neurons)
        usage = over(start, m)
        if max(usage.values()) <= 1.0:
            reason = "neurons" if n - start > m else "layer size"
        else:
            reason = max(usage, key=usage.get)
            # Usage grows with the chunk: the largest m that fits, by bisection.
            lo, hi = 0, m - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if max(over(start, mid).values()) <= 1.0 else (lo, mid - 1)
            if lo == 0:
                unplaceable, m = True, 1
            else:
                m = lo
        regions.append((start, start + m))
        reasons.append(reason)
        start += m
    largest = max(range(len(regions)), key=lambda k: regions[k][1] - regions[k][0])
    return regions, reasons[largest], unplaceable


def _flat_targets(layer: Layer, start: int, stop: int) -> np.ndarray:
    """Per presynaptic neuron, the neurons of the flat range ``start .. stop - 1`` it reaches."""
    if isinstance(layer, DenseLayer):
        return np.full(layer.weight.shape[1], stop - start, dtype=np.int64)
    if not isinstance(layer, ConvLayer):
        return np.zeros(0, dtype=np.int64)
    n_pix = layer.shape[1] * layer.shape[2]
    targets = np.zeros(tuple(layer.in_shape), dtype=np.int64)
    per_group_out = layer.shape[0] // layer.groups
    c_in_group = layer.weight.shape[1]
    for ch in range(start // n_pix, (stop - 1) // n_pix + 1):
        mask = np.zeros(n_pix, dtype=bool)
        mask[max(start - ch * n_pix, 0) : min(stop - ch * n_pix, n_pix)] = True
        g = ch // per_group_out
        targets[g * c_in_group : (g + 1) * c_in_group] += _conv_pixel_fan_out(
            layer, mask.reshape(layer.shape[1:])
        )
    return targets.reshape(-1)


def _region_targets(layer: Layer, region: tuple[int, ...]) -> np.ndarray:
    if len(region) == 6:
        return _tile_targets(layer, *region).reshape(-1)
    return _flat_targets(layer, *region)


def _pack_layer(
    index: int, layer: Layer, dest: np.ndarray | None, limits: CoreLimits
) -> LayerPacking:
    """Pack one neuron layer; ``dest`` gives each of its neurons' destination cores (or None)."""
    n = int(np.prod(layer.shape))
    has_synapses = isinstance(layer, (DenseLayer, ConvLayer))
    bits = weight_storage_bits(layer.weight) if has_synapses else 0
    n_in = (
        int(layer.weight.shape[1])
        if isinstance(layer, DenseLayer)
        else (int(np.prod(layer.in_shape)) if isinstance(layer, ConvLayer) else 0)
    )
    tiling = _conv_tile_size(layer, dest, bits, limits) if isinstance(layer, ConvLayer) else None
    if tiling is not None:
        (cb, rb, wb), reason = tiling
        c, h, w = layer.shape
        regions = [
            (c0, min(c0 + cb, c), y0, min(y0 + rb, h), x0, min(x0 + wb, w))
            for c0 in range(0, c, cb)
            for y0 in range(0, h, rb)
            for x0 in range(0, w, wb)
        ]
        unplaceable = False
    else:
        regions, reason, unplaceable = _flat_chunks(layer, n, n_in, bits, dest, limits)
    chunks = []
    reached = np.zeros(n_in, dtype=np.int64) if has_synapses else None
    dest_chw = (
        dest.reshape(tuple(layer.shape)) if dest is not None and len(layer.shape) == 3 else dest
    )
    for region in regions:
        if len(region) == 6:
            c0, c1, y0, y1, x0, x1 = region
            size = (c1 - c0) * (y1 - y0) * (x1 - x0)
            axout = int(dest_chw[c0:c1, y0:y1, x0:x1].sum()) if dest is not None else 0
        else:
            size = region[1] - region[0]
            axout = int(dest[region[0] : region[1]].sum()) if dest is not None else 0
        if has_synapses:
            targets = _region_targets(layer, region)
            mem, axin = int(row_bits(targets, bits).sum()), int(np.count_nonzero(targets))
            reached += targets > 0
        else:
            mem, axin = 0, 0
        chunks.append(CoreChunk(size, mem, axin, axout, region))
    return LayerPacking(
        index,
        n,
        layer_synapses(layer),
        fan_in(layer),
        bits,
        tuple(chunks),
        reason,
        unplaceable,
        reached,
    )


def pack_network(spec: NetworkSpec, limits: CoreLimits = CoreLimits()) -> list[LayerPacking]:
    """Map every layer onto cores, last layer first.

    A core must hold at most ``limits.neurons`` neurons, ``limits.synapse_bits`` of weights
    (:func:`row_bits` of the weights onto its neurons), ``limits.in_axons`` distinct presynaptic
    neurons and ``limits.out_axons`` core-to-core edges (its neurons' destination cores in the next
    layer, known because the next layer is packed first). Dense and input layers are cut greedily
    into consecutive ranges; conv layers into tiles of ``cb`` channels x ``rb`` rows (all columns),
    the pair with the fewest cores that fits on an interior tile (a conv layer whose single row
    does not fit is cut like a dense one). Network inputs come from outside the chip and take no
    core; flatten layers take none either.

    Returns:
        one :class:`LayerPacking` per spec layer, in spec order.
    """
    packings: list[LayerPacking | None] = [None] * len(spec.layers)
    dest: np.ndarray | None = None
    for i in range(len(spec.layers) - 1, -1, -1):
        layer = spec.layers[i]
        if isinstance(layer, FlattenLayer):
            # netx flattens in C-order over (C, H, W): neuron indices pass through unchanged.
            packings[i] = LayerPacking(i, 0, 0, 0, 0, (), "")
            continue
        packings[i] = _pack_layer(i, layer, dest, limits)
        dest = packings[i].sources_reached
    return [p for p in packings if p is not None]


# -------------------------------------------------------------------------------------- activity


@dataclass(frozen=True)
class LayerActivity:
    """Per-sample activity of one layer in a recorded run (means over the samples).

    Attributes:
        layer: index in the spec.
        input_events: nonzero presynaptic messages per sample (graded inputs or spikes).
        output_spikes: spikes per sample.
        synops: synaptic operations per sample.
        neuron_updates_active, neuron_updates_inactive: per sample.
        spike_messages: output spikes x destination cores, per sample.
        silent_fraction: neurons that never spike over all samples and steps.
        synops_per_step: (S,) mean synops at each step (for the latency model).
        active_per_step: (S,) mean active neuron updates at each step.
    """

    layer: int
    input_events: float
    output_spikes: float
    synops: float
    neuron_updates_active: float
    neuron_updates_inactive: float
    spike_messages: float
    silent_fraction: float
    synops_per_step: np.ndarray = field(repr=False)
    active_per_step: np.ndarray = field(repr=False)


def _netx_flat(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(B, *lava_shape(shape), S) -> (B, n, S) in netx (C, H, W) order."""
    if len(shape) == 3:
        a = np.swapaxes(a, 1, 3)
    return a.reshape(a.shape[0], -1, a.shape[-1])


def layer_activity(
    spec: NetworkSpec,
    inputs: np.ndarray,
    spikes: list[np.ndarray],
    u: list[np.ndarray | None],
    v: list[np.ndarray | None],
    packings: list[LayerPacking],
) -> list[LayerActivity]:
    """Activity of every neuron layer from a recorded golden run.

    Args:
        spec: the network.
        inputs: (B, *lava_shape(input), S) what entered the network (graded values or spikes).
        spikes, u, v: the run's recordings (:class:`~tsslbp.hwmodels.golden.GoldenResult` fields).
        packings: :func:`pack_network` of the spec (destination cores of each neuron's spikes).

    Returns:
        one :class:`LayerActivity` per neuron layer (flatten layers are skipped).
    """
    out = []
    batch = inputs.shape[0]
    first = spec.layers[0]
    pre = _netx_flat(
        np.asarray(inputs),
        tuple(first.shape if isinstance(first, InputLayer) else spec.input_shape),
    )
    dest_cores = _destination_cores(spec, packings)
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, FlattenLayer):
            continue  # its input spikes pass on unchanged (same C-order)
        events = pre != 0
        if isinstance(layer, (DenseLayer, ConvLayer)):
            synops_t = np.einsum(
                "bns,n->bs", events.astype(np.float64), fan_out(layer).astype(np.float64)
            )
        else:
            synops_t = np.zeros((batch, events.shape[-1]))
        s = _netx_flat(spikes[i], tuple(layer.shape)).astype(bool)
        active = s.copy()
        if u[i] is not None and v[i] is not None:
            active |= _netx_flat(u[i], tuple(layer.shape)) != 0
            active |= _netx_flat(v[i], tuple(layer.shape)) != 0
        n_updates = s.shape[1] * s.shape[2]
        n_active = active.sum(axis=(1, 2)).mean()
        spikes_per_neuron = s.sum(axis=(0, 2))
        out.append(
            LayerActivity(
                layer=i,
                input_events=float(events.sum() / batch),
                output_spikes=float(s.sum() / batch),
                synops=float(synops_t.sum() / batch),
                neuron_updates_active=float(n_active),
                neuron_updates_inactive=float(n_updates - n_active),
                spike_messages=float((spikes_per_neuron * dest_cores[i]).sum() / batch)
                if dest_cores[i] is not None
                else 0.0,
                silent_fraction=float(np.mean(spikes_per_neuron == 0)),
                synops_per_step=synops_t.mean(axis=0),
                active_per_step=active.sum(axis=1).mean(axis=0).astype(np.float64),
            )
        )
        pre = s.astype(np.int64)
    return out


def _destination_cores(spec: NetworkSpec, packings: list[LayerPacking]) -> list[np.ndarray | None]:
    """Per layer: (n,) cores of the next synaptic layer each neuron's spikes go to (None for the last
    neuron layer, whose spikes leave the chip)."""
    dest: list[np.ndarray | None] = [None] * len(spec.layers)
    nxt: np.ndarray | None = None
    for i in range(len(spec.layers) - 1, -1, -1):
        if isinstance(spec.layers[i], FlattenLayer):
            continue
        dest[i] = nxt
        nxt = packings[i].sources_reached
    return dest


# --------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ResourceReport:
    """Counts, cores, energy and latency per inference of a network on a batch of samples.

    Attributes:
        packings: per spec layer.
        activity: per neuron layer (empty without a recorded run).
        steps_per_sample: S.
        samples: B.
        energy_pj: per inference, by term ("synops", "neurons active", "neurons inactive",
            "spike messages") and "total"; empty without a run.
        latency_ns: per inference (mean over samples); None without a run.
    """

    packings: list[LayerPacking]
    activity: list[LayerActivity]
    steps_per_sample: int
    samples: int
    energy_pj: dict[str, float]
    latency_ns: float | None

    @property
    def cores(self) -> int:
        return sum(p.cores for p in self.packings)

    @property
    def chips(self) -> int:
        return max(1, math.ceil(self.cores / CORES_PER_CHIP))

    def to_dict(self) -> dict[str, Any]:
        act = {a.layer: a for a in self.activity}
        layers = []
        for p in self.packings:
            entry: dict[str, Any] = {
                "layer": p.layer,
                "neurons": p.neurons,
                "synapses": p.synapses,
                "fan_in": p.fan_in,
                "weight_bits": p.weight_bits,
                "cores": p.cores,
                "limited_by": p.limited_by,
                "max_synapse_bits_per_core": p.max_synapse_bits,
                "max_in_axons_per_core": p.max_in_axons,
                "max_out_axons_per_core": p.max_out_axons,
            }
            if p.layer in act:
                a = act[p.layer]
                entry.update(
                    input_events_per_sample=a.input_events,
                    spikes_per_sample=a.output_spikes,
                    synops_per_sample=a.synops,
                    neuron_updates_active_per_sample=a.neuron_updates_active,
                    neuron_updates_inactive_per_sample=a.neuron_updates_inactive,
                    spike_messages_per_sample=a.spike_messages,
                    silent_fraction=a.silent_fraction,
                )
            layers.append(entry)
        return {
            "samples": self.samples,
            "steps_per_sample": self.steps_per_sample,
            "layers": layers,
            "totals": {
                "neurons": sum(p.neurons for p in self.packings),
                "synapses": sum(p.synapses for p in self.packings),
                "cores": self.cores,
                "chips": self.chips,
                "spikes_per_sample": sum(a.output_spikes for a in self.activity),
                "synops_per_sample": sum(a.synops for a in self.activity),
                "energy_pj_per_inference": dict(self.energy_pj),
                "latency_ns_per_inference": self.latency_ns,
            },
        }


def _barrier_ns(cores: int) -> float:
    """Barrier sync time, linear in tiles between Table 2's 1-tile and 32-tile figures (more than a
    chip: the 32-tile figure, a lower bound)."""
    tiles = min(max(1, math.ceil(cores / CORES_PER_TILE)), 32)
    return T_BARRIER_1_TILE_NS + (T_BARRIER_32_TILES_NS - T_BARRIER_1_TILE_NS) * (tiles - 1) / 31


def resource_report(
    spec: NetworkSpec,
    inputs: np.ndarray | None = None,
    spikes: list[np.ndarray] | None = None,
    u: list[np.ndarray | None] | None = None,
    v: list[np.ndarray | None] | None = None,
    limits: CoreLimits = CoreLimits(),
) -> ResourceReport:
    """Cores for a spec, and with a recorded run also activity, energy and latency per inference.

    Energy per inference = synops x 23.6 pJ + active neuron updates x 81 pJ + inactive ones x 52 pJ
    + spike messages x 1.7 pJ (tile hops, static power and host I/O excluded).

    Latency per inference = sum over steps of (the slowest core's work + barrier sync), a core's
    work at a step being its share of its layer's synops x 3.5 ns plus its neurons' updates x 8.4 ns
    (active) or 5.3 ns (inactive); cores run in parallel, steps one after the other.

    Args:
        spec: the network.
        inputs: (B, *lava_shape(input), S) the run's inputs; omit (with the recordings) for counts only.
        spikes, u, v: the golden run's recordings (``run_golden(..., record=True)``).
        limits: per-core limits.
    """
    packings = pack_network(spec, limits)
    if inputs is None or spikes is None:
        return ResourceReport(packings, [], 0, 0, {}, None)
    if u is None or v is None:
        u = v = [None] * len(spec.layers)
    activity = layer_activity(spec, inputs, spikes, u, v, packings)
    energy = {
        "synops": sum(a.synops for a in activity) * E_SYNOP_PJ,
        "neurons active": sum(a.neuron_updates_active for a in activity) * E_NEURON_ACTIVE_PJ,
        "neurons inactive": sum(a.neuron_updates_inactive for a in activity) * E_NEURON_INACTIVE_PJ,
        "spike messages": sum(a.spike_messages for a in activity) * E_SPIKE_TILE_PJ,
    }
    energy["total"] = sum(energy.values())
    steps = int(np.asarray(inputs).shape[-1])
    per_layer_ns = []
    for a in activity:
        p = packings[a.layer]
        n = p.neurons
        active = a.active_per_step
        neuron_ns = active * T_NEURON_ACTIVE_NS + (n - active) * T_NEURON_INACTIVE_NS
        per_layer_ns.append((a.synops_per_step * T_SYNOP_NS + neuron_ns) / max(p.cores, 1))
    step_ns = np.max(np.stack(per_layer_ns), axis=0) + _barrier_ns(sum(p.cores for p in packings))
    return ResourceReport(
        packings, activity, steps, int(np.asarray(inputs).shape[0]), energy, float(step_ns.sum())
    )
