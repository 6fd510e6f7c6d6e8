"""lava-dl's reference networks on Lava through run_lava reproduce their ground truth.

Fixture files: ../shared/fixtures/lava-dl-netx (lava-dl's test suite, BSD-3-Clause; README there).

* tiny.net: lava-dl's own test runs 17 + 3 steps with the input layer's bias set to an image, resets
  neuron layer ``i`` before step ``i`` (every 17 steps) and requires
  ``output[..., 2:17] == gt[..., 1:]`` with zero spike error.
* pilotnet_lif: lava-dl's hardware test builds the net with ``reset_interval=16``, runs 15 steps
  and compares ``u`` at step 14 with a Loihi 2 recording.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lava")
netx = pytest.importorskip("tsslbp.export.netx")

from tsslbp.deploy.runner import run_lava  # noqa: E402

pytestmark = pytest.mark.lava

from paths import FIXTURES_MISSING  # noqa: E402
from paths import LAVA_DL_FIXTURES as FIXTURES  # noqa: E402

if FIXTURES_MISSING:
    pytest.skip(FIXTURES_MISSING, allow_module_level=True)

# pilotnet_lif recordings per entry of spec.layers (None: the flatten layer). The input layer and
# conv-0 have no u recording; fc-3 has no spike recording.
PILOTNET_NAMES = (
    "input",
    "conv-0",
    "conv-1",
    "conv-2",
    "conv-3",
    "conv-4",
    None,
    "fc-0",
    "fc-1",
    "fc-2",
    "fc-3",
)
PILOTNET_STEPS = 15


def _repeat(image: np.ndarray, steps: int) -> np.ndarray:
    """One sample whose input layer gets ``image`` (Lava order) as bias_mant at every step."""
    return np.repeat(image.astype(np.int64)[None, ..., None], steps, axis=-1)


def test_tinynet_reproduces_lava_dl_ground_truth() -> None:
    spec = netx.read_netx(FIXTURES / "tiny.net")
    image = np.load(FIXTURES / "tinynet_input_bias.npy")
    found = run_lava(spec, _repeat(image, 20), reset_interval=17).output[0]
    expected = np.load(FIXTURES / "tinynet_output.npy")[0].transpose(2, 1, 0, 3)[..., 1:]
    assert expected.sum() > 0, "the ground truth should hold spikes"
    error = int(np.abs(found[..., 2:17] - expected).sum())
    assert error == 0, (
        f"spike error {error}: expected\n{expected.squeeze()}\nfound\n{found[..., 2:17].squeeze()}"
    )


@pytest.fixture(scope="module")
def pilotnet_run():
    """PilotNet on Lava for 15 steps, u recorded (immutable results shared by the tests below)."""
    spec = netx.read_netx(FIXTURES / "pilotnet_lif" / "network.net")
    image = np.load(FIXTURES / "pilotnet_lif" / "image.npy")
    assert len(spec.layers) == len(PILOTNET_NAMES), f"unexpected layers {spec.layers}"
    return run_lava(spec, _repeat(image, PILOTNET_STEPS), record=True, reset_interval=16)


def _recording(name: str) -> np.ndarray | None:
    path = FIXTURES / "pilotnet_lif" / f"{name}.npy"
    return np.load(path) if path.is_file() else None


def test_pilotnet_u_at_step_14_equals_loihi2_recording(pilotnet_run) -> None:
    checked = []
    for index, name in enumerate(PILOTNET_NAMES):
        expected = None if name is None else _recording(f"{name}-u")
        if expected is None:
            continue
        found = pilotnet_run.u[index][0][..., 14].reshape(expected.shape[:-1])
        bad = int((found != expected[..., 14]).sum())
        assert bad == 0, (
            f"{name}: u at step 14 differs from Loihi 2 in {bad} of {found.size} neurons"
        )
        checked.append(name)
    assert checked == ["conv-1", "conv-2", "conv-3", "conv-4", "fc-0", "fc-1", "fc-2", "fc-3"]


def test_pilotnet_spikes_and_u_equal_loihi2_at_every_step(pilotnet_run) -> None:
    """Beyond lava-dl's check: within the first 15 steps (before the hardware's reset at step 16)
    spikes match at every step for every recorded layer, and u for every recorded layer but fc-3,
    whose recording has another format (25 float steps)."""
    spike_files = {"input": "input"} | {n: n for n in PILOTNET_NAMES[1:] if n not in (None, "fc-3")}
    for index, name in enumerate(PILOTNET_NAMES):
        if name is None:
            continue
        checks = [
            (
                "spikes",
                pilotnet_run.spikes,
                _recording(spike_files[name]) if name in spike_files else None,
            )
        ]
        if name != "fc-3":
            checks.append(("u", pilotnet_run.u, _recording(f"{name}-u")))
        for what, arrays, expected in checks:
            if expected is None:
                continue
            found = arrays[index][0].reshape(expected.shape[:-1] + (PILOTNET_STEPS,))
            differ = [
                t
                for t in range(PILOTNET_STEPS)
                if not np.array_equal(found[..., t], expected[..., t])
            ]
            assert not differ, f"{name} {what}: differs from Loihi 2 at steps {differ}"
