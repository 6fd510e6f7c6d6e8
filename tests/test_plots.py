"""Each figure is written as a valid PNG of sensible size; bad inputs are refused."""

import dataclasses
import struct

import numpy as np
import pytest

from tsslbp import plots
from tsslbp.train.loop import EpochMetrics
from tsslbp.workflows.analysis import confusion_counts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG (starts with {data[:8]!r})"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def check_png(path, min_bytes=8_000, max_bytes=150_000):
    width, height = png_size(path)
    size = path.stat().st_size
    assert min_bytes < size < max_bytes, (
        f"{path.name}: {size} bytes, expected {min_bytes}..{max_bytes}"
    )
    assert width >= 300 and height >= 200, f"{path.name}: {width}x{height}"
    return width, height


def test_training_curves_from_metrics_or_dicts(tmp_path):
    history = [EpochMetrics(e, 1.0 / e, 0.5 + 0.04 * e, 0.45 + 0.04 * e, 1.0) for e in range(1, 11)]
    path = plots.training_curves(history, tmp_path / "curves.png", title="digits")
    assert path == tmp_path / "curves.png"
    assert check_png(path) == (800, 320)
    path2 = plots.training_curves([vars(m) for m in history], tmp_path / "c2.png")
    check_png(path2)
    with pytest.raises(ValueError, match="no epochs"):
        plots.training_curves([], tmp_path / "empty.png")


def test_training_curves_draw_the_last_weights_beside_a_weight_average(tmp_path):
    plain = [EpochMetrics(e, 1.0 / e, 0.5 + 0.04 * e, 0.45 + 0.04 * e, 1.0) for e in range(1, 11)]
    averaged = [dataclasses.replace(m, raw_test_acc=0.4 + 0.04 * m.epoch) for m in plain]
    old = [{k: v for k, v in vars(m).items() if k != "raw_test_acc"} for m in plain]
    a = plots.training_curves(plain, tmp_path / "plain.png")
    b = plots.training_curves(averaged, tmp_path / "averaged.png")
    c = plots.training_curves(old, tmp_path / "old.png")  # metrics saved before the field existed
    check_png(b)
    assert a.read_bytes() == c.read_bytes()
    assert a.read_bytes() != b.read_bytes(), "the last weights' test curve is missing"


def test_confusion_matrix(tmp_path, rng):
    labels = rng.integers(0, 10, 300)
    preds = np.where(rng.random(300) < 0.8, labels, rng.integers(0, 10, 300))
    check_png(
        plots.confusion_matrix(
            confusion_counts(labels, preds, 10), tmp_path / "sub" / "cm.png", title="float"
        )
    )
    with pytest.raises(ValueError, match="square"):
        plots.confusion_matrix(np.zeros((2, 3)), tmp_path / "bad.png")


def test_spike_rasters(tmp_path, rng):
    flt = [rng.integers(0, 2, (40, 5)), rng.integers(0, 2, (10, 5))]
    fix = [a.copy() for a in flt]
    fix[0][0] = 1 - fix[0][0]
    w, h = check_png(plots.spike_rasters(flt, fix, tmp_path / "raster.png", ["hidden", "output"]))
    assert h > w / 2, "one row per layer"
    with pytest.raises(ValueError, match="differ in shape"):
        plots.spike_rasters(flt, [fix[0], fix[1][:5]], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="same non-zero number of layers"):
        plots.spike_rasters(flt, fix[:1], tmp_path / "bad.png")


def test_quant_health_with_a_failed_width(tmp_path):
    path = plots.quant_health(
        [8, 6, 4, 2],
        [0.97, 0.96, 0.88, None],
        0.98,
        ["hidden", "output"],
        [0.25, 0.08],
        [[0.25, 0.08], [0.24, 0.08], [0.26, 0.06], None],
        tmp_path / "qh.png",
        title="digits",
    )
    check_png(path)
    with pytest.raises(ValueError, match="3 rates for 2 layers"):
        plots.quant_health(
            [8], [0.9], 0.9, ["a", "b"], [0.1, 0.2], [[0.1, 0.2, 0.3]], tmp_path / "bad.png"
        )
