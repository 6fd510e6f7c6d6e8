"""The float -> integer map: decays, weight set, scale bounds, threshold, metadata."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from tsslbp.config import parse_config
from tsslbp.export.fold import fold_network, folded_traces
from tsslbp.export.quantize import (
    STATE_LIMIT,
    V_TH_MANT_MAX,
    WEIGHT_INT_MAX,
    WEIGHT_INT_MIN,
    WEIGHT_RANGES,
    QuantConfig,
    QuantizationError,
    decay_constant,
    quantize_network,
    quantize_weights,
    weight_grid,
)
from tsslbp.hwmodels.spec import DenseLayer
from tsslbp.train.functional import psp
from tsslbp.train.network import TsslbpNetwork


def _cfg(threshold=1.0, n_hidden=20):
    return parse_config(
        {
            "Network": {"dataset": "digits", "n_steps": 5, "tau_m": 5, "tau_s": 3},
            "Layers": {
                "hidden": {
                    "type": "linear",
                    "n_inputs": 64,
                    "n_outputs": n_hidden,
                    "threshold": threshold,
                },
                "drop": {"type": "dropout", "p": 0.2},
                "output": {
                    "type": "linear",
                    "n_inputs": n_hidden,
                    "n_outputs": 10,
                    "threshold": threshold,
                },
            },
        }
    )


@pytest.mark.parametrize(
    "tau,expected", [(1.0, 4096), (2.0, 2048), (3.0, 1365), (5.0, 819), (4.0, 1024)]
)
def test_decay_constant(tau, expected):
    assert decay_constant(tau) == expected


def test_weights_land_on_even_integers_in_range(rng):
    w = rng.normal(0, 1, size=(50, 40))
    q, clipped = quantize_weights(w, 254 / np.abs(w).max())
    assert clipped == 0
    assert q.dtype == np.int64 and np.all(q % 2 == 0)
    assert q.min() >= WEIGHT_INT_MIN and q.max() <= WEIGHT_INT_MAX
    assert np.abs(q - w * 254 / np.abs(w).max()).max() <= 1.0 + 1e-9, (
        "nearest even integer: error <= 1"
    )


def test_clipping_is_counted():
    q, clipped = quantize_weights(np.array([300.0, -300.0, 10.0]), 1.0)
    assert q.tolist() == [254, -256, 10] and clipped == 2


def _quantize(cfg, rng, qcfg=QuantConfig()):
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    x = torch.from_numpy(rng.uniform(0, 1, size=(64, 64)).astype(np.float32))
    return model, quantize_network(model, cfg, x, qcfg, metadata={"note": "test"})


def test_spec_matches_the_model_and_documented_map(rng):
    cfg = _cfg()
    # Nearest rounding is the documented map's; compensated rounding moves weights further.
    model, (spec, report) = _quantize(cfg, rng, QuantConfig(rounding="nearest"))
    assert [type(layer) for layer in spec.layers] == [DenseLayer, DenseLayer], (
        "dropout has no hardware layer"
    )
    assert spec.input_shape == (64,) and spec.input_message_bits == 8
    assert spec.metadata["readout_offset"] == 2 and spec.metadata["steps_per_sample"] == 7
    assert spec.metadata["note"] == "test" and spec.metadata["config"] == cfg.to_dict()
    weights = [m.weight.detach().double().numpy() for m in model.layers if hasattr(m, "weight")]
    for layer, q, w, input_gain in zip(spec.layers, report.layers, weights, (255.0, 1.0)):
        assert layer.neuron.i_decay == 1365 and layer.neuron.v_decay == 819
        assert (
            np.all(layer.weight % 2 == 0)
            and layer.weight.min() >= -256
            and layer.weight.max() <= 254
        )
        # w_int = W * S / (tau_s * 64 * g), to the nearest even integer.
        expected = w * q.scale / (3.0 * 64 * input_gain)
        assert np.abs(layer.weight - expected).max() <= 1.0 + 1e-6
        assert layer.neuron.v_th_mant == round(1.0 * q.scale / 64)
        assert layer.neuron.v_th_mant <= V_TH_MANT_MAX
        # The bound covers the current and the membrane's positive side; inhibition may go lower.
        assert q.scale * max(q.float_max_abs_current, q.float_max_u) <= 0.5 * STATE_LIMIT * (
            1 + 1e-9
        )
        assert 0 < q.float_max_u <= q.float_max_abs_u
    assert report.layers[0].name == "hidden" and report.layers[1].name == "output"


def test_each_bound_can_be_the_limit(rng):
    _, (_, report) = _quantize(_cfg(), rng)
    assert {q.limited_by for q in report.layers} <= {"weights", "state range", "threshold width"}
    # A huge threshold with full headroom makes the 17-bit threshold field the binding limit
    # (131071 * 64 < 2**23: the threshold field is just narrower than the voltage).
    _, (spec, report) = _quantize(
        _cfg(threshold=4000.0), rng, QuantConfig(headroom=1.0, input_bits=1)
    )
    assert report.layers[1].limited_by == "threshold width"
    assert spec.layers[1].neuron.v_th_mant == V_TH_MANT_MAX
    # A small headroom makes the state range bind.
    _, (_, report) = _quantize(_cfg(), rng, QuantConfig(headroom=0.1, input_bits=4))
    assert report.layers[0].limited_by == "state range"
    # A tiny one leaves no weight bits at all: refused rather than exported as zeros.
    with pytest.raises(
        QuantizationError,
        match="layer hidden: every weight rounds to 0 .* limited by the state range",
    ):
        _quantize(_cfg(), rng, QuantConfig(headroom=1e-6))


def test_quantization_does_not_change_the_model(rng):
    cfg = _cfg()
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantize_network(model, cfg, torch.rand(8, 64))
    assert model.training, "the model's mode is restored"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_quant_config():
    with pytest.raises(ValueError, match="input_bits must be in 1..16"):
        QuantConfig(input_bits=0)
    with pytest.raises(ValueError, match="headroom"):
        QuantConfig(headroom=2.0)
    with pytest.raises(ValueError, match="weight_range must be one of search, max"):
        QuantConfig(weight_range="p99")


@pytest.mark.parametrize("bits,step,top", [(8, 2, 254), (6, 8, 248), (4, 32, 224), (2, 128, 128)])
def test_weight_bits_give_a_coarser_grid_over_the_same_range(rng, bits, step, top):
    assert weight_grid(bits) == (-256, top, step)
    w = rng.normal(0, 1, size=(30, 40))
    q, clipped = quantize_weights(w, top / np.abs(w).max(), bits)
    assert clipped == 0
    assert np.all(q % step == 0) and q.min() >= -256 and q.max() <= top
    assert len(np.unique(q)) <= 1 << bits, (
        f"{bits} bits allow at most {1 << bits} levels, found {len(np.unique(q))}"
    )
    assert np.abs(q - w * top / np.abs(w).max()).max() <= step / 2 + 1e-9, (
        "nearest grid point: error <= step / 2"
    )


def test_weight_bits_in_the_exported_spec(rng):
    cfg = _cfg()
    # 2-bit input leaves the first layer's weights most of the 8-bit range (8-bit input would leave
    # it about 2 bits, which a 4-bit grid rounds to all zeros).
    _, (spec8, report8) = _quantize(cfg, rng, QuantConfig(input_bits=2, weight_bits=8))
    _, (spec4, report4) = _quantize(cfg, rng, QuantConfig(input_bits=2, weight_bits=4))
    assert spec4.metadata["weight_bits"] == 4 and spec8.metadata["weight_bits"] == 8
    assert [q.weight_bits for q in report4.layers] == [4, 4]
    for layer8, layer4, q8, q4 in zip(spec8.layers, spec4.layers, report8.layers, report4.layers):
        assert np.all(layer4.weight % 32 == 0) and layer4.weight.max() <= 224
        assert len(np.unique(layer4.weight)) <= 16 < len(np.unique(layer8.weight))
        assert q4.weight_rmse > q8.weight_rmse, "a coarser grid has a larger weight error"


def test_bad_weight_bits():
    for bits in (1, 9):
        with pytest.raises(ValueError, match="weight_bits must be in 2..8"):
            QuantConfig(weight_bits=bits)


def test_inhibition_does_not_set_the_scale(rng):
    """A hidden layer driven far below zero (most neurons inhibited by every pixel): the state
    bound uses the current and the membrane's positive side, so the deep negative membrane (held
    at Lava's voltage floor if it gets there) costs the weights no resolution."""
    cfg = _cfg(n_hidden=20)
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    with torch.no_grad():
        model.layers[0].weight.fill_(-0.5)
        model.layers[0].weight[:5] = 0.5
    x = torch.from_numpy(rng.uniform(0, 1, size=(64, 64)).astype(np.float32))
    _, report = quantize_network(model, cfg, x, QuantConfig(input_bits=4, headroom=0.5))
    q = report.layers[0]
    assert q.limited_by == "state range"
    assert q.float_max_abs_u > 2 * max(q.float_max_u, q.float_max_abs_current), (
        "the test needs deep inhibition"
    )
    assert q.scale == pytest.approx(
        0.5 * STATE_LIMIT / max(q.float_max_abs_current, q.float_max_u, 1.0)
    )


def test_compensated_rounding_keeps_the_scale_and_cuts_the_first_layer_current_error(rng):
    cfg = _cfg()
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    x = torch.from_numpy(rng.uniform(0, 1, size=(64, 64)).astype(np.float32))
    near, near_report = quantize_network(model, cfg, x, QuantConfig(rounding="nearest"))
    comp, comp_report = quantize_network(model, cfg, x, QuantConfig(rounding="compensated"))
    assert [q.scale for q in comp_report.layers] == [q.scale for q in near_report.layers]
    first = comp.layers[0].weight
    assert np.all(first % 2 == 0) and first.min() >= -256 and first.max() <= 254
    # Error of the first layer's input current on the calibration batch, in integer units
    # (the graded input codes times the weights; the PSP filter is the same linear map for both).
    w = model.layers[0].weight.detach().double().numpy() * comp_report.layers[0].weight_gain
    codes = np.round(x.double().numpy() * 255)
    err = {
        name: float(np.linalg.norm((w - spec.layers[0].weight) @ codes.T))
        for name, spec in (("nearest", near), ("compensated", comp))
    }
    assert err["compensated"] < 0.7 * err["nearest"], err


def _outlier_model(cfg):
    """A network whose output layer has one weight far above the others, as long training leaves
    a few (the Fashion-MNIST CNN's hidden layer: largest 0.84, 99.99th percentile 0.40)."""
    torch.manual_seed(0)
    model = TsslbpNetwork(cfg)
    with torch.no_grad():
        w = model.layers[-1].weight
        w[3, 2] = 6 * w.abs().max()  # an input that rarely fires
    return model


def _output_current_error(model, cfg, x, spec, report):
    """||(W_realized - W) a|| / ||W a|| of the output layer on x, from the float traces."""
    traces = folded_traces(fold_network(model), x, cfg.n_steps, cfg.neuron.tau_s)
    a = psp(traces[0][1].spikes, cfg.neuron.tau_s)  # (N, hidden, T): the output layer's input
    w = model.layers[-1].weight.detach().double()
    realized = torch.from_numpy(spec.layers[-1].weight / report.layers[-1].weight_gain)
    exact, moved = (torch.einsum("oi,nit->not", m, a) for m in (w, realized))
    return float(torch.linalg.norm(moved - exact) / torch.linalg.norm(exact))


@pytest.mark.parametrize("rounding", ["nearest", "compensated"])
def test_weight_range_search_clips_a_lone_outlier_for_a_finer_grid(rng, rounding):
    cfg = _cfg()
    model = _outlier_model(cfg)
    x = torch.from_numpy(rng.uniform(0, 1, size=(64, 64)).astype(np.float32))
    qcfg = QuantConfig(input_bits=4, rounding=rounding, weight_range="search")
    at_max_spec, at_max = quantize_network(model, cfg, x, replace(qcfg, weight_range="max"))
    spec, searched = quantize_network(model, cfg, x, qcfg)
    assert QuantConfig().weight_range == "max", (
        "the default keeps the grid top at the largest weight"
    )
    before, after = at_max.layers[-1], searched.layers[-1]
    assert before.limited_by == after.limited_by == "weights" and before.weight_range == 1.0
    assert after.weight_range in WEIGHT_RANGES and after.weight_range < 1.0
    assert after.scale == pytest.approx(before.scale / after.weight_range)
    # The outlier is clipped on purpose: counted apart, no warning, --strict still passes.
    assert after.n_range_clipped >= 1 and after.n_clipped == 0 and not searched.warnings()
    assert spec.layers[-1].weight[3, 2] == WEIGHT_INT_MAX
    # The reported current error is the output current's, and the search lowered it.
    for s, r in ((at_max_spec, at_max), (spec, searched)):
        assert r.layers[-1].current_error == pytest.approx(
            _output_current_error(model, cfg, x, s, r), rel=1e-6
        )
    assert after.current_error < before.current_error
    # The finer grid stays inside the state range and the threshold field.
    assert after.scale * max(after.float_max_abs_current, after.float_max_u) <= 0.5 * STATE_LIMIT
    assert spec.layers[-1].neuron.v_th_mant <= V_TH_MANT_MAX


def test_weight_range_search_stays_inside_the_state_range(rng):
    """With headroom just above what the largest weight needs, no smaller range fits: the search
    keeps the grid's top at the largest weight."""
    cfg = _cfg()
    model = _outlier_model(cfg)
    x = torch.from_numpy(rng.uniform(0, 1, size=(64, 64)).astype(np.float32))
    _, free = quantize_network(model, cfg, x, QuantConfig(input_bits=4, weight_range="max"))
    out = free.layers[-1]
    # The headroom at which the state range allows 1.05 x the weights' scale, and no more.
    tight = 1.05 * out.scale * max(out.float_max_abs_current, out.float_max_u, 1.0) / STATE_LIMIT
    _, report = quantize_network(
        model, cfg, x, QuantConfig(input_bits=4, headroom=tight, weight_range="search")
    )
    assert report.layers[-1].limited_by == "weights" and report.layers[-1].weight_range == 1.0
