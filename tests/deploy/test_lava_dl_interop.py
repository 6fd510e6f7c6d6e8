"""A netx file written by tsslbp runs the same in lava-dl's own netx.hdf5.Network and in run_lava.

lava-dl's ``lava.lib.dl.netx`` imports slayer, whose object-detection helpers import torchvision
(no CPU build exists here) and cv2 at import time; netx never uses them. Empty stand-in modules make
it import. They live in a temporary directory on the PYTHONPATH of a subprocess that runs lava-dl,
so neither this test process nor the package ever sees them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lava")
netx = pytest.importorskip("tsslbp.export.netx")

from tsslbp.configs import CONFIG_DIR  # noqa: E402
from tsslbp.deploy.runner import run_lava  # noqa: E402
from tsslbp.hwmodels.spec import CubaNeuron, DenseLayer, NetworkSpec  # noqa: E402

pytestmark = pytest.mark.lava

# Stand-ins for what lava-dl's slayer imports but netx never calls.
STUB_FILES = (
    "torchvision/__init__.py",
    "torchvision/ops.py",
    "torchvision/transforms.py",
    "cv2.py",
)

LAVA_DL_SCRIPT = textwrap.dedent(
    """\
    import sys

    import numpy as np

    import tsslbp.deploy  # the Python 3.11 import hook, before lava loads
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    # The loader call as a user would type it, e.g. netx.hdf5.Network(net_config=..., input_message_bits=5)
    call, input_path, output_path = sys.argv[1], sys.argv[2], sys.argv[3]
    x = np.load(input_path)
    net = eval(call, {"netx": netx})
    source = io.source.RingBuffer(data=x)
    sink = io.sink.RingBuffer(shape=net.out.shape, buffer=x.shape[-1])
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=x.shape[-1]), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        np.save(output_path, sink.data.get())
    finally:
        net.stop()
    """
)


def _graded_dense_spec(rng: np.random.Generator) -> NetworkSpec:
    """A quantizer-like net: even mixed-sign weights in [-256, 254], 8-bit graded input."""
    return NetworkSpec(
        layers=(
            DenseLayer(
                weight=2 * rng.integers(-20, 21, (12, 10)), neuron=CubaNeuron(1365, 819, 60)
            ),
            DenseLayer(
                weight=2 * rng.integers(-128, 128, (4, 12)), neuron=CubaNeuron(1365, 819, 40)
            ),
        ),
        input_shape=(10,),
        input_message_bits=8,
    )


def _run_in_lava_dl(
    tmp_path: Path, net_path: Path, x: np.ndarray, bits: int, call: str | None = None
) -> np.ndarray:
    """Output spikes of lava-dl's own netx.hdf5.Network on one sample x (*input shape, S), loaded
    with ``call`` (a ``netx.hdf5.Network(...)`` expression) or else with the given input width."""
    call = call or f"netx.hdf5.Network(net_config={str(net_path)!r}, input_message_bits={bits})"
    np.save(tmp_path / "x.npy", x.astype(np.int32))
    stubs = tmp_path / "stubs"
    for name in STUB_FILES:
        (stubs / name).parent.mkdir(parents=True, exist_ok=True)
        (stubs / name).write_text('"""Stand-in: lava-dl imports it, netx never uses it."""\n')
    (tmp_path / "run_lava_dl.py").write_text(LAVA_DL_SCRIPT)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(stubs), os.environ.get("PYTHONPATH")])),
    )
    done = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "run_lava_dl.py"),
            call,
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"lava-dl run failed:\n{done.stderr[-3000:]}"
    return np.load(tmp_path / "y.npy").astype(np.int64)


def test_tsslbp_netx_file_runs_identically_in_lava_dl(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    net_path = tmp_path / "net.net"
    netx.write_netx(_graded_dense_spec(rng), net_path)
    x = rng.integers(0, 256, (10, 12)) * (rng.random((10, 12)) < 0.7)
    x[:, -2:] = 0  # the last two steps let the input reach the output layer
    expected = _run_in_lava_dl(tmp_path, net_path, x, 8)

    spec = netx.read_netx(net_path)
    assert spec.input_message_bits == 8, "the file should carry the graded input width"
    found = run_lava(spec, x[None]).output[0].astype(np.int64)
    assert expected.sum() > 0, "lava-dl's output should spike"
    assert np.array_equal(found, expected), f"lava-dl's netx\n{expected}\nrun_lava\n{found}"


def test_exported_pooled_cnn_runs_identically_in_lava_dl(tmp_path: Path) -> None:
    """The digits CNN, quantized by tsslbp with its pooling folded into conv/dense weights."""
    import torch

    from tsslbp.config import load_config
    from tsslbp.export.quantize import QuantConfig, quantize_network
    from tsslbp.hwmodels.readout import encode_for_spec
    from tsslbp.train.network import TsslbpNetwork

    cfg = load_config(CONFIG_DIR / "digits_cnn.yaml")
    torch.manual_seed(1)
    model = TsslbpNetwork(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # an untrained net with enough activity to reach the output
    calib = torch.rand(32, 64)
    spec, _ = quantize_network(model, cfg, calib, QuantConfig(input_bits=6))
    net_path = tmp_path / "cnn.net"
    netx.write_netx(spec, net_path)
    x = encode_for_spec(calib[:1].numpy(), spec)[0]  # (8, 8, 1, S) in Lava order
    expected = _run_in_lava_dl(tmp_path, net_path, x, 6)
    found = run_lava(netx.read_netx(net_path), x[None]).output[0].astype(np.int64)
    assert expected.sum() > 0, "lava-dl's output should spike"
    assert np.array_equal(found, expected), f"lava-dl's netx\n{expected}\nrun_lava\n{found}"


@pytest.mark.parametrize("config", ["digits_mlp", "digits_cnn"])
def test_lava_dl_loader_given_the_printed_call_gives_the_golden_spikes(
    tmp_path: Path, config: str
) -> None:
    """`tsslbp info` prints the lava-dl call; lava-dl's loader run with exactly that call gives the
    golden model's output spikes (lava-dl's default, input_message_bits=0, reads graded input as binary)."""
    import torch
    from click.testing import CliRunner

    from tsslbp.cli import main
    from tsslbp.config import load_config
    from tsslbp.export.quantize import QuantConfig, quantize_network
    from tsslbp.hwmodels.golden import run_golden
    from tsslbp.hwmodels.readout import encode_for_spec
    from tsslbp.train.network import TsslbpNetwork

    cfg = load_config(CONFIG_DIR / f"{config}.yaml")
    torch.manual_seed(1)
    model = TsslbpNetwork(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # an untrained net with enough activity to reach the output
    calib = torch.rand(32, 64)
    spec, _ = quantize_network(model, cfg, calib, QuantConfig(input_bits=5))
    net_path = tmp_path / "model.net"
    netx.write_netx(spec, net_path)

    result = CliRunner().invoke(main, ["info", str(net_path)])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if "netx.hdf5.Network(" in line]
    call = line.split("net = ", 1)[1]
    assert call == f"netx.hdf5.Network(net_config={str(net_path)!r}, input_message_bits=5)"

    x = encode_for_spec(calib[:1].numpy(), spec)[0]
    found = _run_in_lava_dl(tmp_path, net_path, x, -1, call=call)
    expected = run_golden(netx.read_netx(net_path), x[None], record=False).output[0]
    assert expected.sum() > 0, "the golden model's output should spike"
    assert np.array_equal(found, expected.reshape(found.shape)), (
        f"lava-dl\n{found}\ngolden\n{expected}"
    )
