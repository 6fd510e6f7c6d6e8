"""Training on the embedded digits: learns, is repeatable, and resumes without loss."""

import math

import pytest
import torch
from test_config import CONFIGS

from tsslbp.config import load_config, parse_config
from tsslbp.data import load_digits
from tsslbp.train.loop import (
    CheckpointError,
    average_lag_note,
    evaluate,
    fit,
    load_checkpoint,
    model_from_checkpoint,
)


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


# --- Recipe options: learning-rate schedule, weight decay, crop augmentation ----------------------


def _run_whole_and_interrupted(cfg, digits, tmp_path, stop_after=30):
    """``cfg`` trained into tmp_path/full in one go, and into tmp_path/part stopped after
    ``stop_after`` batches, then resumed to the end."""
    from tsslbp.train.loop import TrainingInterrupted

    fit(cfg, digits, tmp_path / "full", progress=False)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] == stop_after

    with pytest.raises(TrainingInterrupted):
        fit(cfg, digits, tmp_path / "part", progress=False, should_stop=stop)
    fit(cfg, digits, tmp_path / "part", resume=True, progress=False)


def test_cosine_schedule_starts_at_lr_halves_midway_and_ends_near_zero(cfg):
    from tsslbp.train.loop import learning_rate

    constant = cfg.replace(epochs=4, lr=0.01)
    assert {learning_rate(constant, e, b, 10) for e in (1, 4) for b in (0, 9)} == {0.01}
    cosine = constant.replace(lr_schedule="cosine")
    assert learning_rate(cosine, 1, 0, 10) == 0.01
    assert abs(learning_rate(cosine, 3, 0, 10) - 0.005) < 1e-15, "half the run done: lr / 2"
    last = learning_rate(cosine, 4, 9, 10)  # 39 of 40 batches done: lr * sin(pi / 80)**2
    assert math.isclose(last, 0.01 * math.sin(math.pi / 80) ** 2, rel_tol=1e-12), last
    lrs = [learning_rate(cosine, e, b, 10) for e in range(1, 5) for b in range(10)]
    assert all(a > b for a, b in zip(lrs, lrs[1:])), "cosine must decrease batch by batch"


def test_weight_decay_selects_adamw_and_shrinks_unused_weights(cfg):
    from tsslbp.train.loop import make_optimizer

    assert type(make_optimizer(torch.nn.Linear(2, 2), cfg)) is torch.optim.Adam
    layer = torch.nn.Linear(2, 2, bias=False)
    opt = make_optimizer(layer, cfg.replace(weight_decay=0.5, lr=0.1))
    assert type(opt) is torch.optim.AdamW
    before = layer.weight.detach().clone()
    layer.weight.grad = torch.zeros_like(layer.weight)
    opt.step()  # zero gradient: only the decoupled decay moves the weights, by lr * decay
    torch.testing.assert_close(layer.weight.detach(), before * (1 - 0.1 * 0.5))


def test_recipe_options_resume_mid_epoch_to_the_same_weights(tmp_path, digits, cfg):
    two = cfg.replace(
        epochs=2, lr_schedule="cosine", weight_decay=0.01, kernel_target="twice", predict_on="psp"
    )
    _run_whole_and_interrupted(two, digits, tmp_path)
    full, part = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert all(torch.equal(full[k], part[k]) for k in full), "resume must follow the same schedule"
    state = load_checkpoint(tmp_path / "full" / "last.pt")
    network = state["config"]["Network"]
    assert (network["kernel_target"], network["predict_on"], network["lr_schedule"]) == (
        "twice",
        "psp",
        "cosine",
    ), "the checkpoint must record the definitions it was trained with"


def test_idx_crop_augment_shifts_flat_images_without_mirroring():
    from tsslbp.data.cifar10 import CropFlipAugment

    gen = torch.Generator().manual_seed(3)
    images = torch.rand(16, 1 * 6 * 7, generator=gen)
    crop = CropFlipAugment(seed=5, padding=2, flip=False, image_shape=(1, 6, 7))
    out = crop(images, epoch=1, batch=0)
    assert out.shape == images.shape
    assert torch.equal(out, crop(images, epoch=1, batch=0)), "same (seed, epoch, batch): same crop"
    padded = torch.nn.functional.pad(images.reshape(16, 1, 6, 7), (2, 2, 2, 2))
    shifts = {
        (dy, dx): padded[:, :, dy : dy + 6, dx : dx + 7].reshape(16, -1)
        for dy in range(5)
        for dx in range(5)
    }
    for n in range(16):
        assert any(torch.equal(out[n], s[n]) for s in shifts.values()), (
            f"sample {n} is not a plain shift of its padded image (mirrored?)"
        )
    assert any(not torch.equal(out[n], images[n]) for n in range(16)), "no sample was shifted"


# --- Weight averaging (ema_decay) -------------------------------------------------------------


def _record_saves(monkeypatch):
    """A copy of every checkpoint state fit saves, in order (the saves still happen)."""
    import copy

    from tsslbp.train import loop

    saves = []
    real_save = loop.save_checkpoint

    def save(path, state):
        saves.append(copy.deepcopy(state))  # state dicts hold the live tensors
        real_save(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", save)
    return saves


def test_weight_average_follows_every_step_and_is_what_the_checkpoint_hands_on(
    tmp_path, digits, cfg, monkeypatch
):
    decay = 0.9
    one = cfg.replace(epochs=1, ema_decay=decay)
    saves = _record_saves(monkeypatch)
    history = fit(one, digits, tmp_path / "ema", progress=False, checkpoint_seconds=0)
    partial = [s for s in saves if s.get("partial")]  # one after every batch but the last
    assert len(partial) >= 40 and partial[0]["averaged_steps"] == 1
    first = partial[0]
    assert all(torch.equal(first["averaged"][k], first["model"][k]) for k in first["model"]), (
        "the average starts at the weights after the first step"
    )
    for before, after in zip(partial, partial[1:]):
        assert after["averaged_steps"] == before["averaged_steps"] + 1
        for k, w in after["model"].items():
            expected = decay * before["averaged"][k] + (1 - decay) * w
            torch.testing.assert_close(after["averaged"][k], expected, rtol=1e-5, atol=1e-6)

    last = load_checkpoint(tmp_path / "ema" / "last.pt")
    assert not all(torch.equal(last["averaged"][k], last["model"][k]) for k in last["model"])
    model, _, _ = model_from_checkpoint(tmp_path / "ema" / "last.pt")
    assert all(torch.equal(v, last["averaged"][k]) for k, v in model.state_dict().items()), (
        "eval and export must get the averaged weights"
    )
    assert evaluate(model, digits.test, one).accuracy == history[-1].test_acc
    raw, _, _ = model_from_checkpoint(tmp_path / "ema" / "last.pt")
    raw.load_state_dict(last["model"])
    assert evaluate(raw, digits.test, one).accuracy == history[-1].raw_test_acc
    assert "(EMA; raw" in history[-1].line(1)

    # Averaging only watches: the run without it trains to the same last weights.
    fit(one.replace(ema_decay=0), digits, tmp_path / "plain", progress=False)
    plain = load_checkpoint(tmp_path / "plain" / "last.pt")
    assert "averaged" not in plain and plain["metrics"][-1]["raw_test_acc"] is None
    assert all(torch.equal(plain["model"][k], last["model"][k]) for k in last["model"])


def test_weight_average_resumes_mid_epoch_exactly(tmp_path, digits, cfg):
    two = cfg.replace(epochs=2, ema_decay=0.95)
    _run_whole_and_interrupted(two, digits, tmp_path)
    full = load_checkpoint(tmp_path / "full" / "last.pt")
    part = load_checkpoint(tmp_path / "part" / "last.pt")
    assert full["averaged_steps"] == part["averaged_steps"] == 90
    for entry in ("model", "averaged"):
        assert all(torch.equal(full[entry][k], part[entry][k]) for k in full[entry]), entry
    figures = [[(m["test_acc"], m["raw_test_acc"]) for m in s["metrics"]] for s in (full, part)]
    assert figures[0] == figures[1]


def test_a_weight_average_too_slow_for_the_run_is_named():
    cnn = load_config(CONFIGS / "fmnist_cnn.yaml")  # 1,200 steps per epoch
    assert cnn.train.ema_decay == 0.9998 and average_lag_note(cnn, 60000) is None  # 60 epochs
    note = average_lag_note(cnn.replace(epochs=1), 60000)
    # 0.9998 ** 600 = 0.887: the first 600 steps hold 89% of the average.
    assert note is not None and "89%" in note and "5,000 steps" in note and "1,200" in note
    assert "9%" in average_lag_note(cnn.replace(epochs=20), 60000)  # 0.9998 ** 12000 = 0.091
    assert average_lag_note(cnn.replace(epochs=30), 60000) is None  # 2.7%
    assert average_lag_note(cnn.replace(ema_decay=0.0, epochs=1), 60000) is None


def test_a_run_too_short_for_its_weight_average_says_so(tmp_path, digits, cfg):
    # One digits epoch is 45 steps: 0.99 (memory 100 steps) is too slow for it, 0.8 is not.
    for decay, note in ((0.99, "ema_decay 0.99 averages over about 100 steps"), (0.8, None)):
        said = []
        fit(
            cfg.replace(epochs=1, ema_decay=decay),
            digits,
            tmp_path / str(decay),
            progress=False,
            announce=said.append,
        )
        noted = [line for line in said if "ema_decay" in line]
        assert (noted and note in noted[0]) if note else not noted, said


def test_weight_average_can_start_on_a_resumed_run_that_had_none(tmp_path, digits, cfg):
    plain = cfg.replace(epochs=2)
    fit(plain, digits, tmp_path / "full", progress=False)
    fit(plain.replace(epochs=1), digits, tmp_path / "part", progress=False)
    said = []
    history = fit(
        plain.replace(ema_decay=0.9),
        digits,
        tmp_path / "part",
        resume=True,
        progress=False,
        announce=said.append,
    )
    assert any("starts here" in line for line in said), said
    assert history[0].raw_test_acc is None and history[1].raw_test_acc is not None
    full = load_checkpoint(tmp_path / "full" / "last.pt")
    part = load_checkpoint(tmp_path / "part" / "last.pt")
    assert part["averaged_steps"] == 45, "averaged over the resumed epoch's steps only"
    assert all(torch.equal(full["model"][k], part["model"][k]) for k in full["model"])


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda s: s["averaged"].popitem(), "weight average does not fit"),
        (lambda s: s.update(averaged=[1, 2]), "'averaged' entry is not a dict of tensors"),
        (lambda s: next(iter(s["averaged"].values())).fill_(float("nan")), "averaged"),
        (lambda s: s.update(averaged_steps=-1), "'averaged_steps' must be an integer"),
        (lambda s: s.pop("averaged_steps"), "'averaged_steps' must be an integer"),
    ],
)
def test_a_spoilt_weight_average_is_refused(tmp_path, digits, cfg, spoil, message):
    from tsslbp.train.loop import save_checkpoint

    fit(cfg.replace(epochs=1, ema_decay=0.9), digits, tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "last.pt")
    spoil(state)
    save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(CheckpointError, match=message):
        model_from_checkpoint(tmp_path / "bad.pt")
