"""Quantization-aware training (``quant_aware_epochs``) and fine-tuning from a checkpoint (``--init``)."""

import hashlib
import json

import numpy as np
import pytest
import torch
from netbuild import scaled_model
from paths import REPO

from tsslbp import workflows
from tsslbp.config import ConfigError, load_config
from tsslbp.data import load_digits
from tsslbp.export.quantize import WEIGHT_INT_MAX, WEIGHT_INT_STEP, QuantConfig, quantize_network
from tsslbp.train.layers import SpikingLinear, fake_quantize, set_weight_levels
from tsslbp.train.loop import (
    QUANT_AWARE_LEVELS,
    CheckpointError,
    evaluate,
    fit,
    initial_weights,
    load_checkpoint,
    model_from_checkpoint,
    quant_aware_levels,
)

DIGITS = REPO / "configs" / "digits_mlp.yaml"


def test_fake_quantize_rounds_to_the_grid_and_passes_gradients_straight_through():
    w = torch.tensor([0.9, -0.3, 0.011, 0.0, -0.9, 0.52], requires_grad=True)
    q = fake_quantize(w, 9)
    # Steps of max|w| / levels = 0.1; the largest |w| stays where it is.
    assert q.detach().tolist() == pytest.approx([0.9, -0.3, 0.0, 0.0, -0.9, 0.5])
    (q * torch.arange(6.0)).sum().backward()
    assert w.grad.tolist() == list(range(6))  # d q / d w taken as 1 (straight through)


def test_the_training_grid_is_the_one_the_export_realizes(rng):
    """Weights on the fake-quantization grid come out of the export unchanged: each layer whose
    scale the weights set gets integers exactly proportional to them, the largest on the top."""
    assert QUANT_AWARE_LEVELS == WEIGHT_INT_MAX // WEIGHT_INT_STEP
    layers = {
        "h": {"type": "linear", "n_inputs": 64, "n_outputs": 30},
        "o": {"type": "linear", "n_inputs": 30, "n_outputs": 10},
    }
    cfg, model = scaled_model(layers, gain=1.0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(fake_quantize(p, QUANT_AWARE_LEVELS))
    x = torch.from_numpy(rng.uniform(0, 1, size=(64, 64)))
    spec, report = quantize_network(model, cfg, x, QuantConfig(rounding="nearest"))
    weight_limited = [i for i, q in enumerate(report.layers) if q.limited_by == "weights"]
    assert weight_limited, "sanity: some layer's scale is set by its weights"
    for i in weight_limited:
        w = model.layers[i].weight.detach().numpy()
        w_int = spec.layers[i].weight
        assert np.abs(w_int).max() == WEIGHT_INT_MAX
        np.testing.assert_allclose(w_int, w * WEIGHT_INT_MAX / np.abs(w).max(), atol=1e-6)
        # The float weights alone would not give that: the grid is the training's doing.
        raw = torch.from_numpy(w) + 0.3 * float(np.abs(w).max()) / QUANT_AWARE_LEVELS
        assert not torch.equal(fake_quantize(raw, QUANT_AWARE_LEVELS), raw)


def test_set_weight_levels_switches_every_spiking_layer(rng):
    cfg, model = scaled_model({"o": {"type": "linear", "n_inputs": 64, "n_outputs": 10}})
    x = torch.from_numpy(rng.uniform(0, 1, size=(32, 64)))
    layer = model.layers[0]
    assert isinstance(layer, SpikingLinear) and layer.weight_levels is None
    exact = layer.current(x.unsqueeze(-1).expand(-1, -1, 5))
    set_weight_levels(model, 3)
    coarse = layer.current(x.unsqueeze(-1).expand(-1, -1, 5))
    assert layer.weight_levels == 3 and not torch.allclose(exact, coarse)
    set_weight_levels(model, None)
    assert torch.equal(layer.current(x.unsqueeze(-1).expand(-1, -1, 5)), exact)


def test_quant_aware_epochs_are_the_last_ones_and_checked_against_epochs():
    cfg = load_config(DIGITS).replace(epochs=5, quant_aware_epochs=2)
    assert [quant_aware_levels(cfg, e) for e in range(1, 6)] == [None] * 3 + [
        QUANT_AWARE_LEVELS
    ] * 2
    assert load_config(DIGITS).train.quant_aware_epochs == 0
    assert cfg.replace().train.quant_aware_epochs == 2  # kept through to_dict / parse_config
    for bad, expected in ((6, "at most epochs = 5"), (-1, "an integer >= 0"), (1.5, "integer")):
        with pytest.raises(ConfigError, match="quant_aware_epochs") as err:
            cfg.replace(quant_aware_epochs=bad)
        assert expected in str(err.value)


def test_quant_aware_epochs_test_the_quantized_weights(tmp_path):
    cfg = load_config(DIGITS).replace(epochs=2, quant_aware_epochs=1, ema_decay=0.9)
    data = load_digits()
    history = fit(cfg, data, tmp_path, progress=False)
    model, _, _ = model_from_checkpoint(tmp_path / "last.pt")  # the float weight average
    set_weight_levels(model, QUANT_AWARE_LEVELS)
    assert evaluate(model, data.test, cfg).accuracy == history[-1].test_acc
    # The checkpoint keeps float weights: off the grid, so the quantized pass is a different one.
    weight = model.layers[0].weight.detach()
    assert not torch.equal(fake_quantize(weight, QUANT_AWARE_LEVELS), weight)


def test_a_run_can_start_from_a_checkpoint_s_weights(tmp_path):
    cfg = load_config(DIGITS).replace(epochs=1, ema_decay=0.9)
    data = load_digits()
    fit(cfg, data, tmp_path / "first", progress=False)
    start = initial_weights(tmp_path / "first" / "last.pt", cfg)
    saved = load_checkpoint(tmp_path / "first" / "last.pt")
    for name, tensor in start.items():  # the weight average, as export and eval use
        assert torch.equal(tensor, saved["averaged"][name])
        assert not torch.equal(tensor, saved["model"][name])
    # A learning rate too small to move anything: the new run's weights are the start's.
    tuned = cfg.replace(lr=1e-30, ema_decay=0)
    fit(tuned, data, tmp_path / "second", progress=False, start_weights=start)
    after = load_checkpoint(tmp_path / "second" / "last.pt")["model"]
    for name, tensor in start.items():
        torch.testing.assert_close(after[name], tensor, rtol=0, atol=1e-12)
    # Without it the same run starts from its random initialization.
    fit(tuned, data, tmp_path / "third", progress=False)
    fresh = load_checkpoint(tmp_path / "third" / "last.pt")["model"]
    assert not torch.allclose(fresh["layers.0.weight"], start["layers.0.weight"])


def test_starting_from_another_network_s_checkpoint_is_refused(tmp_path):
    cfg = load_config(DIGITS).replace(epochs=1)
    fit(cfg, load_digits(), tmp_path, progress=False)
    other = load_config(REPO / "configs" / "digits_cnn.yaml")
    with pytest.raises(CheckpointError, match="its network is not this config's"):
        initial_weights(tmp_path / "last.pt", other)


def test_train_job_records_the_checkpoint_it_started_from(tmp_path):
    workflows.train(DIGITS, epochs=1, out=tmp_path / "first", progress=False)
    start = tmp_path / "first" / "last.pt"
    lines = []
    workflows.train(
        DIGITS, epochs=1, out=tmp_path / "second", init=start, progress=False, log=lines.append
    )
    assert f"starting from {start}" in lines[0]
    manifest = json.loads((tmp_path / "second" / "last.pt.manifest.json").read_text())
    started = [i for i in manifest["inputs"] if i["path"].endswith("first/last.pt")]
    assert (
        len(started) == 1 and started[0]["sha256"] == hashlib.sha256(start.read_bytes()).hexdigest()
    )
