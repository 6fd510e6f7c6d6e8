"""One synapse count: ``tsslbp info`` and ``tsslbp report`` agree, on padded, strided, grouped and
dilated convolutions, and both equal a count of every in-bounds tap made by hand."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from tsslbp.config import conv_output_size
from tsslbp.export.netx import write_netx
from tsslbp.hwmodels.spec import ConvLayer, CubaNeuron, DenseLayer, FlattenLayer, NetworkSpec
from tsslbp.workflows import info, report

NEURON = CubaNeuron(i_decay=1365, v_decay=819, v_th_mant=100)


def _conv(in_shape, c_out, k, stride=1, padding=0, dilation=1, groups=1) -> ConvLayer:
    c_in, h, w = in_shape
    ho = conv_output_size(h, k, stride, padding, dilation)
    wo = conv_output_size(w, k, stride, padding, dilation)
    weight = np.full((c_out, c_in // groups, k, k), 2, dtype=np.int64)
    return ConvLayer(
        weight,
        NEURON,
        in_shape,
        (c_out, ho, wo),
        (stride, stride),
        (padding, padding),
        (dilation, dilation),
        groups,
    )


def _taps_by_hand(layer: ConvLayer) -> int:
    """Every (output neuron, input channel of its group, kernel tap) whose input pixel exists."""
    c_out, c_group, kh, kw = layer.weight.shape
    _, h, w = layer.in_shape
    _, ho, wo = layer.shape
    (sy, sx), (py, px), (dy, dx) = layer.stride, layer.padding, layer.dilation
    count = 0
    for yo, xo, ky, kx in itertools.product(range(ho), range(wo), range(kh), range(kw)):
        y, x = yo * sy - py + ky * dy, xo * sx - px + kx * dx
        count += 0 <= y < h and 0 <= x < w
    return count * c_out * c_group


CASES = {
    # (in_shape, c_out, k, stride, padding, dilation, groups)
    "padded 3x3": ((8, 6, 6), 16, 3, 1, 1, 1, 1),
    "strided 3x3": ((4, 7, 7), 8, 3, 2, 1, 1, 1),
    "grouped 3x3": ((8, 5, 5), 8, 3, 1, 1, 1, 4),
    "dilated, strided, grouped": ((6, 9, 9), 6, 3, 2, 2, 2, 3),
}


@pytest.mark.parametrize("case", CASES)
def test_info_and_report_count_the_same_synapses(case, tmp_path: Path):
    conv = _conv(*CASES[case])
    n_flat = int(np.prod(conv.shape))
    spec = NetworkSpec(
        layers=(
            conv,
            FlattenLayer(in_shape=conv.shape),
            DenseLayer(np.full((3, n_flat), 2, dtype=np.int64), NEURON),
        ),
        input_shape=conv.in_shape,
        input_message_bits=0,
    )
    path = tmp_path / "net.net"
    write_netx(spec, path)

    described = info(path)
    reported = report(path).to_dict()
    by_hand = _taps_by_hand(conv)
    if conv.padding != (0, 0):
        # Padding taps are not synapses: fewer than the naive n_out x C_in/g x kH x kW.
        assert by_hand < n_flat * int(np.prod(conv.weight.shape[1:]))
    assert [e["synapses"] for e in described.layers] == [by_hand, 0, 3 * n_flat]
    assert [e["synapses"] for e in reported["layers"]] == [by_hand, 0, 3 * n_flat]
    assert described.synapses == reported["totals"]["synapses"] == by_hand + 3 * n_flat
    assert described.neurons == reported["totals"]["neurons"]
    # The summary line (the lava-dl loader's call and the input layout follow it).
    (summary,) = [line for line in described.lines() if line.startswith(f"{path}: ")]
    assert f"{described.synapses} synapses" in summary
