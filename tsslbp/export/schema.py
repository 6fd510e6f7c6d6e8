"""The netx HDF5 schema as lava-dl 0.6's ``netx.hdf5.Network`` reads it, and Loihi's bit widths.

File layout (keys are the constants below; ``<i>`` counts from 0 without gaps)::

    layer/<i>/type            b"input" | b"dense" | b"conv" | b"flatten"  (S10, shape (1,))
    layer/<i>/shape           int, netx order: (C, H, W) or (N,); lava-dl reverses it to (W, H, C)
    layer/<i>/weight          dense: (out, in); conv: (out, in / groups, kH, kW) (a trailing axis
                              of size 1 is accepted), PyTorch orientation: lava-dl flips both
                              spatial axes and transposes to lava's (out, W, H, in) kernel, which
                              lava *convolves*, so the result is PyTorch's cross-correlation
    layer/<i>/bias            dense: (out,); conv: (out,) per channel; optional
    layer/<i>/inFeatures, outFeatures                        dense, optional
    layer/<i>/inChannels, outChannels, kernelSize (kH, kW), stride, padding, dilation ((y, x) pairs
                              or scalars), groups            conv
    layer/<i>/neuron/type     "CUBA" or "LOIHI" (same model in lava-dl)
    layer/<i>/neuron/iDecay, vDecay, vThMant, refDelay, gradedSpike
    tsslbp (group)            tsslbp's own attributes; lava-dl reads only ``layer``

The first layer of a file written by tsslbp is either an ``input`` layer with neurons, or an
``input`` layer holding only ``shape`` (lava-dl uses it as the network's input shape; a conv first
layer needs it).

What lava-dl ignores: an input layer's ``weight`` and ``bias`` (read into ``Input.transform``, never
applied), ``refDelay`` (lava's LIF has no refractory period), ``gradedSpike`` (lava's LIF always
sends 0/1). Graded input to the first synaptic layer is a constructor argument of
``netx.hdf5.Network`` (``input_message_bits``), not part of the file: tsslbp stores it in its group.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from ..hwmodels.spec import DECAY_UNITY
from ..hwmodels.weights import dense_weights_exact

__all__ = [
    "LAYER_GROUP",
    "KEY_TYPE",
    "KEY_SHAPE",
    "KEY_WEIGHT",
    "KEY_BIAS",
    "KEY_NEURON",
    "KEY_IN_FEATURES",
    "KEY_OUT_FEATURES",
    "KEY_IN_CHANNELS",
    "KEY_OUT_CHANNELS",
    "KEY_KERNEL_SIZE",
    "KEY_STRIDE",
    "KEY_PADDING",
    "KEY_DILATION",
    "KEY_GROUPS",
    "KEY_I_DECAY",
    "KEY_V_DECAY",
    "KEY_V_TH_MANT",
    "KEY_REF_DELAY",
    "KEY_GRADED_SPIKE",
    "TSSLBP_GROUP",
    "ATTR_FORMAT_VERSION",
    "ATTR_INPUT_MESSAGE_BITS",
    "ATTR_METADATA",
    "FORMAT_VERSION",
    "LayerType",
    "NeuronType",
    "DECAY_MIN",
    "DECAY_MAX",
    "VTH_MANT_MIN",
    "VTH_MANT_MAX",
    "BIAS_MANT_MIN",
    "BIAS_MANT_MAX",
    "WEIGHT_MIN",
    "WEIGHT_MAX",
    "QUANT_WEIGHT_MIN",
    "QUANT_WEIGHT_MAX",
    "QUANT_WEIGHT_STEP",
    "MESSAGE_BITS_MAX",
    "INPUT_LAYER_DEFAULT_WEIGHT",
    "INPUT_LAYER_DEFAULT_BIAS",
    "REF_DELAY_DEFAULT",
    "representable_weights",
]

# --- Key names (lava-dl netx/hdf5.py, netx/utils.py NetDict, slayer block export_hdf5) ---------
LAYER_GROUP = "layer"
KEY_TYPE = "type"
KEY_SHAPE = "shape"
KEY_WEIGHT = "weight"
KEY_BIAS = "bias"
KEY_NEURON = "neuron"
KEY_IN_FEATURES = "inFeatures"
KEY_OUT_FEATURES = "outFeatures"
KEY_IN_CHANNELS = "inChannels"
KEY_OUT_CHANNELS = "outChannels"
KEY_KERNEL_SIZE = "kernelSize"
KEY_STRIDE = "stride"
KEY_PADDING = "padding"
KEY_DILATION = "dilation"
KEY_GROUPS = "groups"
KEY_I_DECAY = "iDecay"
KEY_V_DECAY = "vDecay"
KEY_V_TH_MANT = "vThMant"
KEY_REF_DELAY = "refDelay"
KEY_GRADED_SPIKE = "gradedSpike"

# --- tsslbp's own group (ignored by lava-dl) ------------------------------------------------------
TSSLBP_GROUP = "tsslbp"
ATTR_FORMAT_VERSION = "format_version"
#: Payload bits of the network's input spikes (0: binary), ``netx.hdf5.Network(input_message_bits=)``.
ATTR_INPUT_MESSAGE_BITS = "input_message_bits"
#: ``NetworkSpec.metadata`` as a JSON string.
ATTR_METADATA = "metadata"
FORMAT_VERSION = 1


class LayerType(Enum):
    """Layer types tsslbp reads and writes (lava-dl also knows dense_rec, dense_comp and, only to
    raise NotImplementedError, pool, convT, unpool, average, concat)."""

    INPUT = "input"
    DENSE = "dense"
    CONV = "conv"
    FLATTEN = "flatten"


class NeuronType(Enum):
    """Neuron types lava-dl maps to lava-nc's LIF (``du = iDecay - 1``, ``dv = vDecay``,
    ``vth = vThMant``, ``bias_exp = 6``). tsslbp writes CUBA."""

    CUBA = "CUBA"
    LOIHI = "LOIHI"


# --- Loihi bit widths (lava-nc proc/lif/models.py precisions) --------------------------------------
#: 12-bit decays; 4096 (possible through lava's ``ds_offset`` for the current) empties the state.
DECAY_MIN = 0
DECAY_MAX = DECAY_UNITY
#: vThMant is a 17-bit unsigned field.
VTH_MANT_MIN = 0
VTH_MANT_MAX = (1 << 17) - 1
#: Bias mantissas are 13-bit signed (lava stores them in int16 and shifts them left by 6).
BIAS_MANT_MIN = -(1 << 12)
BIAS_MANT_MAX = (1 << 12) - 1
#: Stored synaptic weights: an 8-bit magnitude and a sign.
WEIGHT_MIN = -(1 << 8)
WEIGHT_MAX = (1 << 8) - 1
#: Graded spikes carry at most 24 bits.
MESSAGE_BITS_MAX = 24
#: lava-dl's defaults for a missing input-layer ``weight``/``bias`` (unused by lava-dl anyway).
INPUT_LAYER_DEFAULT_WEIGHT = 64
INPUT_LAYER_DEFAULT_BIAS = 0
#: slayer's CUBA default; lava ignores it.
REF_DELAY_DEFAULT = 1

# --- What the quantizer should target ----------------------------------------------------------
#: With both signs present in a layer, lava-dl's netx packing (``optimize_weight_bits``) followed by
#: lava-nc's fixed-point Dense applies *every* integer in [-256, 254] exactly (netx clips 255 to 254
#: for mixed-sign matrices). Step 1: odd weights are exact too, because netx lowers
#: ``num_weight_bits`` so that lava truncates only bits that are zero (passing the integers straight
#: to lava's Dense with its default 8 weight bits would drop the lowest bit of mixed-sign weights).
#: lava's Conv applies its weights unchanged. See :func:`representable_weights` for single-sign layers.
QUANT_WEIGHT_MIN = -256
QUANT_WEIGHT_MAX = 254
QUANT_WEIGHT_STEP = 1


def representable_weights(w: np.ndarray) -> bool:
    """Whether a layer's integer weights reach Lava's synapses exactly through lava-dl's netx.

    True iff the weights are integers and lava-dl 0.6's packing plus lava-nc 0.10's Dense give
    synaptic sums equal to ``w @ s`` for every input. In short: mixed-sign layers, any integers in
    [-256, 254]; all-non-negative layers, 1 <= max <= 255; all-non-positive layers, min >= -255 with
    ``|min|`` not a power of two (and no odd weight when ``max == 0`` and ``|min| > 128``); never
    all zeros (lava-dl cannot load them). Details: :func:`tsslbp.hwmodels.weights.dense_weights_exact`.
    This is the dense rule; conv layers on lava's CPU model are exact for any integers, and this
    rule is a safe target for them too.

    Args:
        w: a layer's weights (any shape, any numeric dtype).

    >>> representable_weights(np.array([[-256, 7, 254]]))
    True
    >>> representable_weights(np.array([[-3, 255]]))  # netx clips 255 in a mixed-sign layer
    False
    >>> representable_weights(np.array([[0.5, -1.0]]))
    False
    """
    arr = np.asarray(w)
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
        return False
    if not np.array_equal(arr, np.round(arr)):
        return False
    return dense_weights_exact(arr.astype(np.int64))
