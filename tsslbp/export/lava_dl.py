"""What a user of lava-dl's own loader needs to run a netx file: the exact call, and how to feed
and read it.

lava-dl's ``netx.hdf5.Network`` does not read the input width from the file: its default
``input_message_bits=0`` treats every input as a binary spike, so a tsslbp file with graded input
then gives no output spikes at all, silently. ``tsslbp export`` and ``tsslbp info`` print
:func:`lava_dl_call`, and :func:`lava_dl_usage` adds the input layout and the readout window.
"""

from __future__ import annotations

import os

from ..hwmodels.spec import NetworkSpec, lava_shape

__all__ = ["lava_dl_call", "lava_dl_usage"]


def lava_dl_call(path: str | os.PathLike[str], spec: NetworkSpec) -> str:
    """The ``netx.hdf5.Network(...)`` expression that loads ``path`` in lava-dl with the file's
    input width, e.g. ``netx.hdf5.Network(net_config='model.net', input_message_bits=5)``.

    >>> spec = NetworkSpec(layers=(), input_shape=(64,), input_message_bits=5)
    >>> lava_dl_call("runs/demo/model.net", spec)
    "netx.hdf5.Network(net_config='runs/demo/model.net', input_message_bits=5)"
    """
    return (
        f"netx.hdf5.Network(net_config={os.fspath(path)!r}, "
        f"input_message_bits={int(spec.input_message_bits)})"
    )


def lava_dl_usage(path: str | os.PathLike[str], spec: NetworkSpec) -> list[str]:
    """Lines telling a lava-dl user how to load, feed and read ``path`` (the call first)."""
    bits = int(spec.input_message_bits)
    shape = ", ".join(map(str, lava_shape(spec.input_shape)))
    what = (
        f"graded values 0..{(1 << bits) - 1}"
        if bits
        else "0/1 spikes (binary input: input_message_bits=0)"
    )
    meta = spec.metadata
    encode = " (`tsslbp encode` writes one sample)" if "config" in meta else ""
    lines = [
        f"lava-dl: net = {lava_dl_call(path, spec)}",
        f"  input: ({shape}, steps) {what} per step into net.inp, e.g. from io.source.RingBuffer"
        + encode,
    ]
    if spec.input_ones:
        last = "channel" if len(spec.input_shape) == 3 else "input"
        lines.append(
            f"  its last input {last} is a constant {(1 << bits) - 1} (1.0) at every input step: the "
            "network was trained on normalized input, folded into its first layer"
        )
    if "readout_offset" in meta and "n_steps" in meta:
        offset, n_steps = int(meta["readout_offset"]), int(meta["n_steps"])
        lines.append(
            f"  output: net.out spikes; the class is the neuron with most spikes in steps "
            f"{offset}..{offset + n_steps - 1} of each {meta.get('steps_per_sample')}-step sample"
        )
    return lines
