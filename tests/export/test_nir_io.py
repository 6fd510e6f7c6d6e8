"""NIR exchange: exact tsslbp -> NIR -> tsslbp round trips, snnTorch-made graphs, refusals."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tsslbp.cli import main
from tsslbp.config import load_config
from tsslbp.export.netx import read_netx, write_netx
from tsslbp.export.nir_io import NirError, nir_to_spec, read_nir, spec_to_nir, write_nir
from tsslbp.export.quantize import QuantConfig, quantize_network
from tsslbp.hwmodels.golden import run_golden
from tsslbp.hwmodels.spec import (
    ConvLayer,
    CubaNeuron,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    NetworkSpec,
)
from tsslbp.manifest import manifest_path
from tsslbp.train.network import TsslbpNetwork

ROOT = Path(__file__).resolve().parents[2]
NIR_DATA = ROOT / "tests" / "data" / "nir"
SNNTORCH_DT = 1e-4  # snnTorch's export writes tau = dt / (1 - beta) with this dt
SNNTORCH_GRAPHS = ["snntorch_mlp_leaky", "snntorch_mlp_synaptic", "snntorch_cnn_avgpool"]


def _assert_same_spec(a: NetworkSpec, b: NetworkSpec) -> None:
    """Every layer field, array (values and shape), input field and the metadata (with key order)."""
    assert a.input_shape == b.input_shape and a.input_message_bits == b.input_message_bits
    assert json.dumps(a.metadata) == json.dumps(b.metadata)
    assert [type(x) for x in a.layers] == [type(x) for x in b.layers]
    for i, (x, y) in enumerate(zip(a.layers, b.layers)):
        for name in x.__dataclass_fields__:
            u, v = getattr(x, name), getattr(y, name)
            if isinstance(u, np.ndarray) or isinstance(v, np.ndarray):
                assert np.array_equal(u, v) and np.shape(u) == np.shape(v), (
                    f"layer {i} {name}: {u} vs {v}"
                )
            else:
                assert u == v, f"layer {i} {name}: expected {u}, found {v}"


def _round_trip_files(spec: NetworkSpec, tmp: Path) -> tuple[NetworkSpec, NetworkSpec]:
    """netx -> NIR file -> spec -> netx; both netx files read back."""
    write_netx(spec, tmp / "a.net")
    original = read_netx(tmp / "a.net")
    write_nir(spec_to_nir(original), tmp / "a.nir")
    write_netx(nir_to_spec(read_nir(tmp / "a.nir")), tmp / "b.net")
    return original, read_netx(tmp / "b.net")


def _digits_spec(config: str) -> NetworkSpec:
    cfg = load_config(ROOT / "configs" / f"{config}.yaml")
    torch.manual_seed(1)
    model = TsslbpNetwork(cfg)
    spec, _ = quantize_network(model, cfg, torch.rand(24, 64), QuantConfig(input_bits=6))
    return spec


# ------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("config", ["digits_mlp", "digits_cnn"])
def test_exported_digits_network_round_trips_exactly(config, tmp_path):
    spec = _digits_spec(config)
    original, back = _round_trip_files(spec, tmp_path)
    _assert_same_spec(original, back)
    if config == "digits_cnn":
        assert [type(x) for x in back.layers] == [ConvLayer, ConvLayer, FlattenLayer, DenseLayer]
        assert back.layers[1].stride == (2, 2), "sanity: pooling folded into the second conv"


def test_nir_file_loads_with_nir_read_and_holds_the_integers(tmp_path):
    spec = _digits_spec("digits_cnn")
    write_nir(spec_to_nir(spec), tmp_path / "g.nir")
    graph = nir.read(tmp_path / "g.nir")
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {
        "input": "Input",
        "conv0": "Conv2d",
        "cuba0": "CubaLIF",
        "conv1": "Conv2d",
        "cuba1": "CubaLIF",
        "flatten2": "Flatten",
        "dense3": "Linear",
        "cuba3": "CubaLIF",
        "output": "Output",
    }
    assert np.array_equal(graph.nodes["conv1"].metadata["tsslbp"]["weight"], spec.layers[1].weight)
    cuba = graph.nodes["cuba3"]
    assert int(cuba.metadata["tsslbp"]["v_th_mant"]) == spec.layers[3].neuron.v_th_mant
    # The float form: dt/tau_syn = iDecay/4096, w_in = tau_syn/dt, v_threshold = vThMant (module docstring).
    assert np.allclose(1e-3 / cuba.tau_syn, spec.layers[3].neuron.i_decay / 4096)
    assert np.allclose(cuba.w_in * 1e-3 / cuba.tau_syn, 1.0) and np.allclose(
        cuba.r * 1e-3 / cuba.tau_mem, 1.0
    )
    assert np.all(cuba.v_threshold == spec.layers[3].neuron.v_th_mant)
    # Graded input: the graph takes x in [0, 1], so the first layer's floats carry 2**bits - 1.
    assert np.array_equal(graph.nodes["conv0"].weight, spec.layers[0].weight * 63.0)


def _random_neuron(draw) -> CubaNeuron:
    return CubaNeuron(
        i_decay=draw(st.integers(1, 4096)),
        v_decay=draw(st.integers(1, 4096)),
        v_th_mant=draw(st.integers(0, (1 << 17) - 1)),
        ref_delay=draw(st.integers(0, 3)),
        graded_spike=draw(st.booleans()),
    )


@st.composite
def _specs(draw) -> NetworkSpec:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def weights(shape):
        w = rng.integers(-256, 255, size=shape)
        w.flat[0], w.flat[-1] = -256, 254  # both signs: every integer in range is exact (schema.py)
        return w

    def bias(n):
        return rng.integers(-4096, 4096, size=n) if draw(st.booleans()) else None

    layers: list = []
    if draw(st.booleans()):  # image input: conv, optional second conv, flatten
        c, h, w = draw(st.integers(1, 3)), draw(st.integers(3, 7)), draw(st.integers(3, 7))
        input_shape = (c, h, w)
        k, out_c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        stride, pad = (
            (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
            (draw(st.integers(0, 1)), draw(st.integers(0, 1))),
        )
        oh, ow = (h + 2 * pad[0] - k) // stride[0] + 1, (w + 2 * pad[1] - k) // stride[1] + 1
        layers.append(
            ConvLayer(
                weight=weights((out_c, c, k, k)),
                neuron=_random_neuron(draw),
                in_shape=input_shape,
                shape=(out_c, oh, ow),
                stride=stride,
                padding=pad,
                bias=bias(out_c),
            )
        )
        layers.append(FlattenLayer(in_shape=(out_c, oh, ow)))
        n_in = out_c * oh * ow
    elif draw(st.booleans()):  # a lava-dl input layer first
        n_in = draw(st.integers(1, 6))
        input_shape = (n_in,)
        layers.append(
            InputLayer(
                shape=(n_in,),
                neuron=_random_neuron(draw),
                weight=draw(st.integers(-5, 70)),
                bias=np.array([draw(st.integers(-9, 9))]),
            )
        )
    else:
        n_in = draw(st.integers(1, 8))
        input_shape = (n_in,)
    for _ in range(draw(st.integers(1, 3))):
        n_out = draw(st.integers(1, 7))
        layers.append(
            DenseLayer(weight=weights((n_out, n_in)), neuron=_random_neuron(draw), bias=bias(n_out))
        )
        n_in = n_out
    bits = 0 if isinstance(layers[0], InputLayer) else draw(st.integers(0, 12))
    metadata = draw(
        st.dictionaries(
            st.text(min_size=1, max_size=5),
            st.one_of(st.integers(-5, 5), st.text(max_size=4)),
            max_size=3,
        )
    )
    return NetworkSpec(
        layers=tuple(layers), input_shape=input_shape, input_message_bits=bits, metadata=metadata
    )


@settings(max_examples=25, deadline=None)
@given(_specs())
def test_random_specs_round_trip_exactly(spec):
    with tempfile.TemporaryDirectory() as tmp:
        original, back = _round_trip_files(spec, Path(tmp))
    _assert_same_spec(original, back)


def test_graph_without_metadata_requantizes_to_the_same_integers():
    """Stripping tsslbp's metadata leaves a float graph; when the largest weight is 254 and all are
    even, quantizing it (scale set by the weights) gives back the same integers."""
    w = np.array([[254, -100, 6], [-2, 40, 0]])
    spec = NetworkSpec(
        layers=(DenseLayer(weight=w, neuron=CubaNeuron(1365, 819, 300)),), input_shape=(3,)
    )
    graph = spec_to_nir(spec, dt=1e-3)
    graph.metadata = {}
    back = nir_to_spec(graph, dt=1e-3)
    assert (
        np.array_equal(back.layers[0].weight, w) and back.layers[0].neuron == spec.layers[0].neuron
    )
    assert back.metadata["layer_scales"] == [64.0] and back.metadata["readout_offset"] == 1


# ---------------------------------------------------------------------------------- snnTorch graphs


def _euler(graph: nir.NIRGraph, x: np.ndarray, dt: float) -> list[np.ndarray]:
    """Float re-simulation of a NIR chain, forward Euler with step dt, no delays (snnTorch's discrete
    dynamics): the spikes (B, *shape, T) of every neuron node."""
    from tsslbp.export.nir_io import _chain

    def t64(a):
        return torch.from_numpy(np.asarray(a, dtype=np.float64))

    def framewise(h, fn):
        frames = h.movedim(-1, 1).reshape(-1, *h.shape[1:-1])
        out = fn(frames)
        return out.reshape(h.shape[0], h.shape[-1], *out.shape[1:]).movedim(1, -1)

    h, out = t64(x), []
    for _, node in _chain(graph)[1:-1]:
        if isinstance(node, nir.Linear):
            h = torch.einsum("oi,bit->bot", t64(node.weight), h)
        elif isinstance(node, nir.Conv2d):
            h = framewise(
                h,
                lambda f: torch.nn.functional.conv2d(
                    f,
                    t64(node.weight),
                    None,
                    tuple(int(s) for s in node.stride),
                    tuple(int(p) for p in node.padding),
                ),
            )
        elif isinstance(node, nir.AvgPool2d):
            h = framewise(
                h,
                lambda f: torch.nn.functional.avg_pool2d(
                    f, int(np.asarray(node.kernel_size).reshape(-1)[0])
                ),
            )
        elif isinstance(node, nir.Flatten):
            h = h.reshape(h.shape[0], -1, h.shape[-1])
        else:
            if isinstance(node, nir.CubaLIF):
                d_syn, g_syn, tau_mem = (
                    t64(dt / node.tau_syn),
                    t64(dt * node.w_in / node.tau_syn),
                    node.tau_mem,
                )
            else:
                d_syn, g_syn, tau_mem = 1.0, 1.0, node.tau
            d_mem, g_mem = t64(dt / tau_mem), t64(dt * node.r / tau_mem)
            current = torch.zeros(h.shape[:-1], dtype=torch.float64)
            v, spikes = torch.zeros_like(current), []
            for t in range(h.shape[-1]):
                current = (1 - d_syn) * current + g_syn * h[..., t]
                v = (1 - d_mem) * v + d_mem * t64(node.v_leak) + g_mem * current
                z = v > t64(node.v_threshold)
                v = torch.where(z, t64(node.v_reset), v)
                spikes.append(z.double())
            h = torch.stack(spikes, -1)
            out.append(h.numpy())
    return out


@pytest.fixture(params=SNNTORCH_GRAPHS)
def snntorch_graph(request):
    graph = read_nir(NIR_DATA / f"{request.param}.nir")
    recorded = dict(np.load(NIR_DATA / f"{request.param}.npz"))
    return graph, recorded


def test_euler_reading_of_the_snntorch_graphs_is_snntorchs_own_output(snntorch_graph):
    """The file's NIR parameters, read as forward Euler with snnTorch's dt, give exactly the spikes
    snnTorch computed (tests/data/make_nir_snntorch.py): the reference below is snnTorch's dynamics."""
    graph, recorded = snntorch_graph
    floats = _euler(graph, recorded["x"], SNNTORCH_DT)
    for i, spikes in enumerate(floats):
        assert np.array_equal(spikes, recorded[f"spikes{i}"]), f"spiking layer {i}"
    assert all(s.sum() > 0 for s in floats), "sanity: every layer spikes"


def _golden_vs_snntorch(spec: NetworkSpec, recorded: dict) -> list[tuple[float, int, int]]:
    """(agreement, golden count, snnTorch count) per spiking layer, golden shifted by its delays."""
    x = recorded["x"].astype(np.int64)
    n_steps, delay = x.shape[-1], spec.metadata["readout_offset"]
    padded = np.zeros(x.shape[:-1] + (n_steps + delay,), dtype=np.int64)
    padded[..., :n_steps] = x
    if padded.ndim == 5:
        padded = np.swapaxes(padded, 1, 3)  # Lava's (W, H, C) order
    golden = run_golden(spec, padded, record=False)
    results, k = [], 0
    for layer, spikes in zip(spec.layers, golden.spikes):
        if isinstance(layer, FlattenLayer):
            continue
        # The k-th synaptic layer is k + 1 steps late on Loihi.
        ours = spikes[..., k + 1 : k + 1 + n_steps]
        if ours.ndim == 5:
            ours = np.swapaxes(ours, 1, 3)
        theirs = recorded[f"spikes{k}"]
        results.append((float((ours == theirs).mean()), int(ours.sum()), int(theirs.sum())))
        k += 1
    return results


def test_imported_snntorch_graph_spikes_like_snntorch(snntorch_graph):
    """Criterion: in every spiking layer the golden model's spikes (shifted by Loihi's one step per
    synaptic layer) equal snnTorch's on >= 97% of (sample, neuron, step) entries and the spike
    counts differ by <= 10% (measured: 98.2..100% agreement, counts within 5%)."""
    graph, recorded = snntorch_graph
    spec = nir_to_spec(graph, dt=SNNTORCH_DT)
    assert spec.input_message_bits == 0 and spec.metadata["input_encoding"] == "binary"
    for i, (agreement, ours, theirs) in enumerate(_golden_vs_snntorch(spec, recorded)):
        assert agreement >= 0.97, f"layer {i}: {agreement:.4f} of entries agree"
        assert abs(ours - theirs) <= max(2, 0.1 * theirs), (
            f"layer {i}: golden {ours} spikes, snnTorch {theirs}"
        )


def test_snntorch_neuron_types_map_to_the_expected_decays():
    leaky = nir_to_spec(read_nir(NIR_DATA / "snntorch_mlp_leaky.nir"), dt=SNNTORCH_DT)
    synaptic = nir_to_spec(read_nir(NIR_DATA / "snntorch_mlp_synaptic.nir"), dt=SNNTORCH_DT)
    # LIF = instantaneous synapse: the current empties every step. beta 0.8 -> vDecay 4096 * 0.2.
    assert leaky.layers[0].neuron.i_decay == 4096 and leaky.layers[0].neuron.v_decay == 819
    # Synaptic(alpha 0.6): iDecay = round(4096 * 0.4).
    assert synaptic.layers[0].neuron.i_decay == 1638 and synaptic.layers[0].neuron.v_decay == 819
    cnn = nir_to_spec(read_nir(NIR_DATA / "snntorch_cnn_avgpool.nir"), dt=SNNTORCH_DT)
    assert [type(x) for x in cnn.layers] == [ConvLayer, FlattenLayer, DenseLayer]
    assert cnn.layers[2].weight.shape == (5, 4 * 6 * 6), "AvgPool2d folded into the dense weights"


@pytest.mark.lava
def test_imported_snntorch_graph_runs_on_lava_bit_exact_with_golden():
    pytest.importorskip("lava")
    from tsslbp.deploy.runner import run_lava
    from tsslbp.deploy.verify import compare_runs

    spec = nir_to_spec(read_nir(NIR_DATA / "snntorch_mlp_synaptic.nir"), dt=SNNTORCH_DT)
    x = np.load(NIR_DATA / "snntorch_mlp_synaptic.npz")["x"][:2].astype(np.int64)
    x = np.concatenate([x, np.zeros(x.shape[:-1] + (2,), dtype=np.int64)], axis=-1)
    layers, first = compare_runs(run_golden(spec, x, record=True), run_lava(spec, x, record=True))
    assert first is None, first.line()
    assert all(m.golden_spikes > 0 for m in layers), "sanity: every layer spikes"


# ------------------------------------------------------------------------------------------ errors


def _chain_graph(*nodes, metadata=None) -> nir.NIRGraph:
    graph = nir.NIRGraph.from_list(*nodes)
    graph.metadata = metadata or {}
    return graph


def _lif(n: int, **overrides) -> nir.LIF:
    params = dict(
        tau=np.full(n, 5e-3),
        r=np.full(n, 5.0),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
    )
    params.update(overrides)
    return nir.LIF(**params)


def test_unsupported_node_is_refused_by_name_and_type():
    graph = _chain_graph(nir.Linear(weight=np.ones((3, 2))), nir.Threshold(threshold=np.ones(3)))
    with pytest.raises(NirError, match=r"node 'threshold' \(Threshold\): unsupported node type"):
        nir_to_spec(graph, dt=1e-3)


def test_recurrent_edge_is_refused():
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2])}),
        "w": nir.Linear(weight=np.ones((3, 2))),
        "lif": _lif(3),
        "w_rec": nir.Linear(weight=np.eye(3)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "w"), ("w", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    with pytest.raises(
        NirError,
        match=r"edge '(lif|w_rec)' -> '(lif|w_rec)' closes a cycle \(a recurrent connection",
    ):
        nir_to_spec(graph, dt=1e-3)


def test_snntorch_recurrent_layer_is_refused():
    """snnTorch exports RLeaky as a subgraph; nirtorch inlines it as nodes '1.lif', '1.w_rec'."""
    with pytest.raises(
        NirError,
        match=r"edge '1.w_rec' -> '1.lif' closes a cycle \(a recurrent connection into node '1.lif' \(LIF\)",
    ):
        nir_to_spec(read_nir(NIR_DATA / "snntorch_rleaky.nir"), dt=SNNTORCH_DT)


def test_subgraph_node_is_refused():
    inner = _chain_graph(nir.Linear(weight=np.ones((3, 2))), _lif(3))
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "sub": inner,
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "sub"), ("sub", "output")],
        type_check=False,
    )
    with pytest.raises(NirError, match=r"node 'sub' \(NIRGraph\): subgraphs .* are not supported"):
        nir_to_spec(graph, dt=1e-3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"v_reset": np.full(3, 0.5)},
            r"node 'lif' \(LIF\): v_reset = 0.5; Loihi resets v to 0 only",
        ),
        ({"v_leak": np.full(3, 0.1)}, r"node 'lif' \(LIF\): v_leak = 0.1"),
        ({"tau": np.array([5e-3, 5e-3, 6e-3])}, r"node 'lif' \(LIF\): tau differs between neurons"),
        ({"tau": np.full(3, 1e-4)}, r"tau = 0.0001 s is shorter than dt"),
    ],
)
def test_neuron_rules_are_enforced(overrides, message):
    graph = _chain_graph(nir.Linear(weight=np.ones((3, 2))), _lif(3, **overrides))
    with pytest.raises(NirError, match=message):
        nir_to_spec(graph, dt=1e-3)


def test_bias_is_refused_and_dt_is_required():
    graph = _chain_graph(nir.Affine(weight=np.ones((3, 2)), bias=np.ones(3)), _lif(3))
    with pytest.raises(NirError, match=r"node 'affine' \(Affine\): nonzero bias"):
        nir_to_spec(graph, dt=1e-3)
    with pytest.raises(NirError, match="no tsslbp metadata: give the producer's time step dt"):
        nir_to_spec(graph)


def test_missing_metadata_field_is_named(tmp_path):
    graph = spec_to_nir(_digits_spec("digits_mlp"))
    del graph.nodes["cuba1"].metadata["tsslbp"]["v_th_mant"]
    with pytest.raises(
        NirError, match=r"node 'cuba1' \(CubaLIF\): 'tsslbp' metadata lacks 'v_th_mant'"
    ):
        nir_to_spec(graph)
    graph = spec_to_nir(_digits_spec("digits_mlp"))
    del graph.metadata["tsslbp"]["netx_metadata"]
    with pytest.raises(NirError, match="graph metadata 'tsslbp' lacks 'netx_metadata'"):
        nir_to_spec(graph)


def test_floats_edited_after_export_are_detected():
    graph = spec_to_nir(_digits_spec("digits_mlp"))
    graph.nodes["dense1"].weight[0, 0] += 3.0
    with pytest.raises(
        NirError, match=r"node 'dense1' \(Linear\): weight disagrees with its tsslbp metadata"
    ):
        nir_to_spec(graph)


def test_unreadable_file_is_one_line(tmp_path):
    (tmp_path / "x.nir").write_text("not hdf5")
    with pytest.raises(NirError, match=r"x.nir: not a NIR graph nir .* can read") as info:
        read_nir(tmp_path / "x.nir")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------- CLI


def test_cli_nir_export_then_import_is_exact_and_simulates(tmp_path):
    write_netx(_digits_spec("digits_mlp"), tmp_path / "m.net")
    runner = CliRunner()
    result = runner.invoke(
        main, ["nir-export", str(tmp_path / "m.net"), "-o", str(tmp_path / "m.nir")]
    )
    assert result.exit_code == 0, result.output
    assert (
        "5 NIR nodes (Input -> Linear -> CubaLIF -> Linear -> CubaLIF -> Output)"
        not in result.output
    )
    assert (
        "6 NIR nodes (Input -> Linear -> CubaLIF -> Linear -> CubaLIF -> Output)" in result.output
    )
    result = runner.invoke(
        main, ["nir-import", str(tmp_path / "m.nir"), "-o", str(tmp_path / "back.net")]
    )
    assert result.exit_code == 0, result.output
    assert "exact (tsslbp metadata)" in result.output
    assert "reset assumed: v = 0 after a spike" in result.output and not result.stderr
    _assert_same_spec(read_netx(tmp_path / "m.net"), read_netx(tmp_path / "back.net"))
    for artifact in ("m.nir", "back.net"):
        record = json.loads(manifest_path(tmp_path / artifact).read_text())
        assert record["outputs"][0]["path"].endswith(artifact) and record["inputs"]
    # Graded payloads of the 6-bit input port: 0..63 (values beyond are refused, issue 15).
    np.save(tmp_path / "x.npy", np.full((64, 8), 60, dtype=np.int64))
    result = runner.invoke(
        main,
        [
            "simulate",
            str(tmp_path / "back.net"),
            "--input",
            str(tmp_path / "x.npy"),
            "--output",
            str(tmp_path / "y.npy"),
        ],
    )
    assert result.exit_code == 0, result.output


def test_cli_nir_import_of_a_foreign_graph_and_its_errors(tmp_path):
    runner = CliRunner()
    src = NIR_DATA / "snntorch_mlp_leaky.nir"
    result = runner.invoke(main, ["nir-import", str(src), "-o", str(tmp_path / "s.net")])
    assert result.exit_code == 1 and "give the producer's time step dt" in result.stderr
    result = runner.invoke(
        main, ["nir-import", str(src), "-o", str(tmp_path / "s.net"), "--dt", "1e-4"]
    )
    assert result.exit_code == 0, result.output
    assert "quantized from floats (dt 0.0001 s, binary input)" in result.output
    # Issue 16 point 9: snnTorch writes v_reset = 0 whatever its reset; say so, and what we assume.
    assert "reset assumed: v = 0 after a spike" in result.output
    assert "looks like snnTorch's export" in result.stderr and "'subtract'" in result.stderr
    assert [type(x) for x in read_netx(tmp_path / "s.net").layers] == [DenseLayer, DenseLayer]
    result = runner.invoke(
        main,
        [
            "nir-import",
            str(NIR_DATA / "snntorch_rleaky.nir"),
            "-o",
            str(tmp_path / "r.net"),
            "--dt",
            "1e-4",
        ],
    )
    assert (
        result.exit_code == 1
        and "closes a cycle" in result.stderr
        and not (tmp_path / "r.net").exists()
    )


def test_snntorch_signature_is_recognised_and_only_there():
    from tsslbp.export.nir_reset import looks_like_snntorch, reset_notes

    for name in ("snntorch_mlp_leaky", "snntorch_mlp_synaptic", "snntorch_cnn_avgpool"):
        graph = nir.read(NIR_DATA / f"{name}.nir")
        assert looks_like_snntorch(graph), name
        line, warnings = reset_notes(graph, exact=False)
        assert "v = 0" in line and len(warnings) == 1
        assert reset_notes(graph, exact=True)[1] == []
    # tsslbp's own export (r = tau_mem/dt with dt 1e-3, tsslbp metadata) is not snnTorch's.
    spec = NetworkSpec(
        layers=(DenseLayer(weight=np.full((2, 3), 2), neuron=CubaNeuron(1365, 819, 60)),),
        input_shape=(3,),
    )
    assert not looks_like_snntorch(spec_to_nir(spec))
    # Another producer's reset value or time constants break the signature.
    graph = nir.read(NIR_DATA / "snntorch_mlp_leaky.nir")
    lif = graph.nodes["1"]
    graph.nodes["1"] = nir.LIF(
        tau=lif.tau,
        r=lif.r * 2,
        v_leak=lif.v_leak,
        v_threshold=lif.v_threshold,
        v_reset=lif.v_reset,
    )
    assert not looks_like_snntorch(graph)
