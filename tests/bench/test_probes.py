"""The measurements behind the scripts in benchmarks/ (tsslbp.bench.probes), on small inputs."""

from tsslbp.bench.probes import train_step_lines, train_step_vs_numpy_loop
from tsslbp.bench.suites import CONFIGS


def test_train_step_vs_numpy_loop_times_both_and_prints_the_ratio():
    result = train_step_vs_numpy_loop(CONFIGS / "digits_mlp.yaml", batch=8, repeats=2)
    assert result["sizes"] == [64, 200, 10] and result["batch"] == 8
    ms = result["ms_per_step"]
    assert set(ms) == {"tsslbp", "plain loop"} and all(v > 0 for v in ms.values()), ms
    lines = train_step_lines(result)
    assert lines[0].startswith("training step (forward + backward), 64-200-10, T=5, batch 8")
    assert lines[-1] == f"  speed-up    {ms['plain loop'] / ms['tsslbp']:8.2f}x"
