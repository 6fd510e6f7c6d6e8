"""Training on the embedded digits: learns, is repeatable, and resumes without loss."""

import pytest
import torch
from test_config import CONFIGS

from tsslbp.config import load_config, parse_config
from tsslbp.train.data import load_digits
from tsslbp.train.loop import CheckpointError, evaluate, fit, load_checkpoint, model_from_checkpoint


@pytest.fixture(scope="module")
def digits():
    return load_digits()  # immutable data: safe to share


@pytest.fixture
def cfg():
    return load_config(CONFIGS / "digits_mlp.yaml")


def _weights(path):
    return load_checkpoint(path)["model"]


def _maybe_with_dropout(cfg, with_dropout):
    """The digits MLP, or the same with time-shared dropout (p 0.3) between its two layers."""
    if not with_dropout:
        return cfg
    raw = cfg.to_dict()
    layers = list(raw["Layers"].items())
    raw["Layers"] = dict([layers[0], ("drop", {"type": "dropout", "p": 0.3}), layers[1]])
    return parse_config(raw)


def test_two_epochs_on_digits_beat_chance_clearly(tmp_path, digits, cfg):
    history = fit(cfg.replace(epochs=2), digits, tmp_path, progress=False)
    assert len(history) == 2
    assert history[-1].test_acc > 0.5, (
        f"expected > 50% test accuracy (chance 10%), found {history[-1].test_acc:.3f}"
    )
    model, loaded_cfg, state = model_from_checkpoint(tmp_path / "last.pt")
    assert loaded_cfg == cfg.replace(epochs=2) and state["epoch"] == 2
    again = evaluate(model, digits.test, loaded_cfg)
    assert again.accuracy == history[-1].test_acc, (
        "a reloaded checkpoint must score what training reported"
    )


def test_same_seed_same_weights_other_seed_differs(tmp_path, digits, cfg):
    one = cfg.replace(epochs=1)
    fit(one, digits, tmp_path / "a", progress=False)
    fit(one, digits, tmp_path / "b", progress=False)
    fit(one.replace(seed=1), digits, tmp_path / "c", progress=False)
    a, b, c = (_weights(tmp_path / d / "last.pt") for d in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed must give bit-identical weights"
    assert not all(torch.equal(a[k], c[k]) for k in a), "another seed must give other weights"


@pytest.mark.parametrize("with_dropout", [False, True])
def test_resumed_run_ends_with_the_uninterrupted_weights(tmp_path, digits, cfg, with_dropout):
    three = _maybe_with_dropout(cfg, with_dropout).replace(epochs=3)
    fit(three, digits, tmp_path / "full", progress=False)
    fit(three.replace(epochs=1), digits, tmp_path / "part", progress=False)
    resumed = fit(three, digits, tmp_path / "part", resume=True, progress=False)
    assert [m.epoch for m in resumed] == [1, 2, 3]
    full, part = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert all(torch.equal(full[k], part[k]) for k in full), (
        "resume must reproduce the uninterrupted run exactly"
    )


def test_checkpoint_holds_weights_config_and_metrics(tmp_path, digits, cfg):
    fit(cfg.replace(epochs=1), digits, tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "best.pt")
    assert set(state) >= {
        "model",
        "config",
        "metrics",
        "seed",
        "epoch",
        "optimizer",
        "tsslbp_version",
    }
    assert state["config"]["Network"]["epochs"] == 1 and len(state["metrics"]) == 1


def test_foreign_and_newer_checkpoints_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a tsslbp checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"format": "tsslbp-checkpoint", "format_version": 99}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer than this tsslbp"):
        load_checkpoint(tmp_path / "new.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable tsslbp checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


@pytest.mark.parametrize("stop_after", [1, 7, 45])
def test_interrupted_mid_epoch_resumes_to_the_same_weights(tmp_path, digits, cfg, stop_after):
    from tsslbp.config import parse_config
    from tsslbp.train.loop import TrainingInterrupted

    raw = cfg.to_dict()
    layers = list(raw["Layers"].items())
    raw["Layers"] = dict([layers[0], ("drop", {"type": "dropout", "p": 0.3}), layers[1]])
    two = parse_config(raw).replace(epochs=2)
    fit(two, digits, tmp_path / "full", progress=False)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] == stop_after  # 45 batches per epoch: 45 stops at an epoch's last batch

    with pytest.raises(TrainingInterrupted, match="continue with --resume"):
        fit(two, digits, tmp_path / "part", progress=False, should_stop=stop)
    state = load_checkpoint(tmp_path / "part" / "last.pt")
    if stop_after < 45:
        assert state["partial"]["batches_done"] == stop_after and state["epoch"] == 0
    else:  # stopped on the epoch's last batch: the epoch is saved complete
        assert "partial" not in state and state["epoch"] == 1
    resumed = fit(two, digits, tmp_path / "part", resume=True, progress=False)
    assert [m.epoch for m in resumed] == [1, 2]
    full, part = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert all(torch.equal(full[k], part[k]) for k in full), (
        "mid-epoch resume must reproduce the run exactly"
    )
    a = load_checkpoint(tmp_path / "full" / "last.pt")["metrics"]
    b = load_checkpoint(tmp_path / "part" / "last.pt")["metrics"]
    assert [(m["loss"], m["train_acc"], m["test_acc"]) for m in a] == [
        (m["loss"], m["train_acc"], m["test_acc"]) for m in b
    ]


class _Crash(BaseException):
    """Stands in for a process dying mid-epoch: nothing after the raise runs, no handler saves."""


@pytest.mark.parametrize("with_dropout", [False, True])
def test_crash_mid_epoch_resumes_from_the_periodic_checkpoint_exactly(
    tmp_path, digits, cfg, with_dropout, monkeypatch
):
    two = _maybe_with_dropout(cfg, with_dropout).replace(epochs=2)
    fit(two, digits, tmp_path / "full", progress=False)

    # Die during batch 17 of epoch 2 (after its forward pass, before its update), with a
    # checkpoint saved after every batch: last.pt then holds epoch 2's first 16 batches.
    calls = {"n": 0}
    n_batches = -(-len(digits.train) // two.train.batch_size)
    real_step = torch.optim.Adam.step

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n_batches + 17:
            raise _Crash
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", dying_step)
    with pytest.raises(_Crash):
        fit(two, digits, tmp_path / "part", progress=False, checkpoint_seconds=0)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    saved = load_checkpoint(tmp_path / "part" / "last.pt")
    assert (saved["epoch"], saved["partial"]["batches_done"]) == (1, 16), (
        "expected a checkpoint after batch 16 of epoch 2"
    )

    resumed = fit(two, digits, tmp_path / "part", resume=True, progress=False)
    assert [m.epoch for m in resumed] == [1, 2]
    full, part = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert all(torch.equal(full[k], part[k]) for k in full), (
        "a run resumed after a crash must end with the uninterrupted weights"
    )


def test_no_periodic_checkpoint_when_disabled(tmp_path, digits, cfg, monkeypatch):
    from tsslbp.train import loop

    saves = []
    real_save = loop.save_checkpoint
    monkeypatch.setattr(
        loop,
        "save_checkpoint",
        lambda path, state: (saves.append(state.get("partial")), real_save(path, state)),
    )
    fit(cfg.replace(epochs=1), digits, tmp_path / "none", progress=False, checkpoint_seconds=None)
    assert all(p is None for p in saves), "checkpoint_seconds=None must save only at epoch ends"
    saves.clear()
    fit(cfg.replace(epochs=1), digits, tmp_path / "each", progress=False, checkpoint_seconds=0)
    n_batches = -(-len(digits.train) // cfg.train.batch_size)
    partial = [p["batches_done"] for p in saves if p is not None]
    assert partial == list(range(1, n_batches)), (
        f"expected a mid-epoch save after every batch but the last, found {partial}"
    )
