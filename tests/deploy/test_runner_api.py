"""run_lava's argument checks (no Lava run needed), its progress bar and its timing report."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lava")

from tsslbp.deploy.runner import LavaSpecError, run_lava  # noqa: E402
from tsslbp.hwmodels.spec import ConvLayer, CubaNeuron, DenseLayer, NetworkSpec  # noqa: E402

NEURON = CubaNeuron(i_decay=1024, v_decay=512, v_th_mant=20)


def _dense(weight: np.ndarray, bias: np.ndarray | None = None, bits: int = 0) -> NetworkSpec:
    return NetworkSpec(
        layers=(DenseLayer(weight=weight, neuron=NEURON, bias=bias),),
        input_shape=(weight.shape[1],),
        input_message_bits=bits,
    )


SPEC = _dense(np.array([[2, -4, 6], [8, 10, -12]]))


@pytest.mark.parametrize(
    ("inputs", "kwargs", "message"),
    [
        (np.zeros((1, 4, 5)), {}, r"inputs must have shape \(B, 3, S\)"),
        (np.zeros((3, 5)), {}, r"inputs must have shape \(B, 3, S\)"),
        (np.zeros((0, 3, 5)), {}, "at least one sample"),
        (np.full((1, 3, 5), 0.5), {}, "must be integers"),
        (np.full((1, 3, 5), 1 << 40), {}, "int32"),
        (np.zeros((1, 3, 5)), {"steps_per_sample": 4}, r"steps_per_sample \(4\) is shorter"),
        (np.zeros((1, 3, 5)), {"reset_interval": 0}, "reset_interval must be >= 1"),
    ],
)
def test_bad_inputs_are_rejected(inputs: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_lava(SPEC, inputs, **kwargs)


def test_bias_beyond_int16_is_rejected() -> None:
    spec = _dense(np.array([[2, -4, 6]]), bias=np.array([40000]))
    with pytest.raises(LavaSpecError, match="int16"):
        run_lava(spec, np.zeros((1, 3, 4)))


def test_all_zero_dense_weights_are_rejected() -> None:
    """lava-dl's netx cannot pack an all-zero matrix, so there is no Lava network to run."""
    with pytest.raises(LavaSpecError, match="layer 0"):
        run_lava(_dense(np.zeros((2, 3), dtype=np.int64)), np.zeros((1, 3, 4)))


def test_conv_sums_beyond_float32_are_rejected() -> None:
    """Lava's Conv computes in float32: sums that could reach 2**24 would not be exact."""
    conv = ConvLayer(
        weight=np.full((1, 1, 3, 3), 1000),
        neuron=NEURON,
        in_shape=(1, 4, 4),
        shape=(1, 2, 2),
    )
    spec = NetworkSpec(layers=(conv,), input_shape=(1, 4, 4), input_message_bits=16)
    with pytest.raises(LavaSpecError, match="float32"):
        run_lava(spec, np.full((1, 4, 4, 1, 2), 65535))


@pytest.mark.lava
def test_progress_bar_and_timing(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_lava(SPEC, np.ones((4, 3, 5), dtype=np.int64), progress=True)
    err = capsys.readouterr().err
    assert "4/4" in err and "sample" in err, f"no progress bar over 4 samples in {err!r}"
    timing = result.timing
    assert (timing.n_samples, timing.n_steps) == (4, 20)
    assert timing.startup_s > 0 and timing.run_s > 0 and timing.steps_per_s > 0
    assert timing.total_s >= timing.startup_s + timing.run_s
