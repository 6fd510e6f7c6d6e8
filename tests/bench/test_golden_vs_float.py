"""benchmarks/golden_vs_float.py: its figures are those of `tsslbp eval` on both models."""

import re
import subprocess
import sys
from pathlib import Path

from test_config import CONFIGS

from tsslbp.config import load_config
from tsslbp.data import load_digits
from tsslbp.export.exporter import export_checkpoint
from tsslbp.train.loop import fit
from tsslbp.workflows import evaluate

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "golden_vs_float.py"


def test_golden_vs_float_reports_what_eval_reports_and_how_the_two_agree(tmp_path):
    cfg = load_config(CONFIGS / "digits_mlp.yaml").replace(epochs=2)
    fit(cfg, load_digits(), tmp_path / "run", progress=False)
    ckpt = tmp_path / "run" / "last.pt"
    nets = [tmp_path / "a.net", tmp_path / "b.net"]
    export_checkpoint(ckpt, nets[0], input_bits=4)
    export_checkpoint(ckpt, nets[1], input_bits=2)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(ckpt), *map(str, nets)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout
    float_acc = float(re.search(r"float ([0-9.]+)%", lines[0]).group(1))
    assert float_acc == round(100 * evaluate(ckpt).metrics.accuracy, 2)
    for net, line in zip(nets, lines[1:]):
        figures = re.search(
            r"golden ([0-9.]+)%, same prediction as float ([0-9.]+)%, mean \|count difference\| "
            r"([0-9.]+), right only in float (\d+), only in golden (\d+)",
            line,
        )
        assert figures and line.startswith(str(net)), line
        golden, same, _, only_float, only_golden = map(float, figures.groups())
        assert golden == round(100 * evaluate(net).accuracy, 2)
        n = evaluate(net).n_samples
        # golden - float = (right only in golden - right only in float) / n
        assert abs((golden - float_acc) - 100 * (only_golden - only_float) / n) < 0.011
        # A sample right in one model only has two different predictions.
        assert same <= 100 - 100 * (only_float + only_golden) / n + 0.011
