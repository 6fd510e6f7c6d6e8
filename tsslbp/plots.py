"""PNG figures of a run: training curves, spike rasters (float vs fixed point), confusion matrix,
quantization health.

Every function takes plain data (numbers, arrays, lists) and a path, writes one PNG there and
returns the path. Figures are drawn on matplotlib's ``Figure`` with the Agg canvas directly: no
pyplot, no global state, no display needed. The data behind them comes from :mod:`tsslbp.workflows.analysis`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .safeio import atomic_output

__all__ = ["DPI", "training_curves", "confusion_matrix", "spike_rasters", "quant_health"]

#: Resolution of every figure: small files (tens of KB) that still read well in a README.
DPI = 100
# Colours of the float model and of the fixed-point widths (matplotlib's default cycle).
_FLOAT_COLOUR = "C0"
_FIXED_COLOURS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path


def _field(record: Any, name: str) -> float:
    """``record.name`` or ``record[name]`` (EpochMetrics or its dict form)."""
    return float(record[name] if isinstance(record, Mapping) else getattr(record, name))


def _optional_field(record: Any, name: str) -> float | None:
    """As :func:`_field`, None where the record has no such figure."""
    value = record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)
    return None if value is None else float(value)


def training_curves(
    history: Sequence[Any],
    path: str | Path,
    title: str = "",
    partial: Mapping[str, Any] | None = None,
) -> Path:
    """Loss and train/test accuracy per epoch.

    Args:
        history: per epoch, an :class:`~tsslbp.train.loop.EpochMetrics` or a mapping with
            ``epoch``, ``loss``, ``train_acc`` and ``test_acc`` (accuracies as fractions), and
            ``raw_test_acc`` when the run kept a weight average (drawn dashed beside it).
        path: PNG to write.
        title: figure title.
        partial: an interrupted epoch's progress (:class:`~tsslbp.train.loop.EpochProgress` as a
            mapping: ``epoch``, ``batches_done``, ``loss_sum``, ``correct``, ``seen``): its running
            loss and train accuracy so far, drawn hollow (there is no test figure yet).

    Raises:
        ValueError: neither a completed epoch nor a partial one with samples seen.
    """
    seen = int(partial["seen"]) if partial else 0
    if not history and not seen:
        raise ValueError("no epochs to plot")
    epochs = [_field(m, "epoch") for m in history]
    fig = Figure(figsize=(8, 3.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [_field(m, "loss") for m in history], "o-", color=_FLOAT_COLOUR, ms=3)
    ax_loss.set(xlabel="epoch", ylabel="loss per sample", title="training loss")
    ax_acc.plot(epochs, [100 * _field(m, "train_acc") for m in history], "o-", ms=3, label="train")
    raw = [(e, _optional_field(m, "raw_test_acc")) for e, m in zip(epochs, history)]
    raw = [(e, v) for e, v in raw if v is not None]
    label = "test (weight average)" if raw else "test"
    ax_acc.plot(epochs, [100 * _field(m, "test_acc") for m in history], "s-", ms=3, label=label)
    if raw:
        ax_acc.plot(
            [e for e, _ in raw], [100 * v for _, v in raw], "s--", ms=2, label="test (last weights)"
        )
    if seen:
        label = f"epoch {int(partial['epoch'])} so far ({int(partial['batches_done'])} batches)"
        x = [float(partial["epoch"])]
        hollow = {"ls": "none", "marker": "o", "mfc": "none", "ms": 6}
        ax_loss.plot(x, [float(partial["loss_sum"]) / seen], color=_FLOAT_COLOUR, **hollow)
        ax_acc.plot(x, [100 * int(partial["correct"]) / seen], color="C0", label=label, **hollow)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(
    counts: np.ndarray, path: str | Path, title: str = "", class_names: Sequence[str] | None = None
) -> Path:
    """Counts of true class (rows) against predicted class (columns), each cell labelled.

    Args:
        counts: (n_class, n_class) integers (:func:`tsslbp.workflows.analysis.confusion_counts`).
        path: PNG to write.
        title: figure title; the accuracy ``trace / total`` is appended.
        class_names: tick labels [default: 0..n_class-1].
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"counts must be a square matrix, got shape {counts.shape}")
    n = counts.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else 0.0
    fig = Figure(figsize=(0.45 * n + 2.2, 0.45 * n + 1.6))
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    # Row-normalised shading would hide class imbalance; label every non-zero cell with its count.
    threshold = counts.max() / 2 if counts.size else 0
    for (i, j), c in np.ndenumerate(counts):
        if c:
            ax.text(
                j,
                i,
                str(int(c)),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if c > threshold else "black",
            )
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set(
        xlabel="predicted",
        ylabel="true",
        title=f"{title + ': ' if title else ''}{100 * accuracy:.2f}% of {total}",
    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return _save(fig, path)


def spike_rasters(
    float_spikes: Sequence[np.ndarray],
    fixed_spikes: Sequence[np.ndarray],
    path: str | Path,
    layer_names: Sequence[str] | None = None,
    fixed_label: str = "Lava",
    title: str = "",
    float_label: str = "float",
) -> Path:
    """Spike rasters of one sample, layer by layer: float model left, fixed point right.

    Args:
        float_spikes: per layer, (neurons, T) spikes of the float model.
        fixed_spikes: per layer, (neurons, T) spikes of the fixed-point run in the same time window
            (:func:`tsslbp.workflows.analysis.fixed_layer_spikes`).
        path: PNG to write.
        layer_names: row labels [default: layer 0, 1, ...].
        fixed_label: name of the fixed-point side (``Lava`` or ``golden``).
        title: figure title.
        float_label: name of the left side (``float``; ``golden`` when the float model is not at hand).
    """
    if len(float_spikes) != len(fixed_spikes) or not float_spikes:
        raise ValueError(
            f"need the same non-zero number of layers on both sides, got {len(float_spikes)} and {len(fixed_spikes)}"
        )
    names = (
        list(layer_names)
        if layer_names is not None
        else [f"layer {i}" for i in range(len(float_spikes))]
    )
    fig = Figure(figsize=(7, 1.1 + 1.6 * len(float_spikes)))
    axes = np.asarray(fig.subplots(len(float_spikes), 2, squeeze=False))
    for row, (name, flt, fix) in enumerate(zip(names, float_spikes, fixed_spikes)):
        flt, fix = np.asarray(flt), np.asarray(fix)
        if flt.shape != fix.shape:
            raise ValueError(
                f"{name}: float spikes {flt.shape} and {fixed_label} spikes {fix.shape} differ in shape"
            )
        agree = float(np.mean(flt == fix)) if flt.size else 1.0
        for col, (side, spikes) in enumerate(((float_label, flt), (fixed_label, fix))):
            ax = axes[row, col]
            neurons, steps = np.nonzero(spikes)
            ax.scatter(
                steps,
                neurons,
                marker="|",
                s=30,
                linewidths=1.2,
                color=_FLOAT_COLOUR if col == 0 else _FIXED_COLOURS[0],
            )
            ax.set_xlim(-0.5, spikes.shape[1] - 0.5)
            ax.set_ylim(-0.5, spikes.shape[0] - 0.5)
            ax.set_xticks(range(spikes.shape[1]))
            label = f"{side}: {int(spikes.sum())} spikes"
            if col == 1:
                label += f", {100 * agree:.1f}% same"
            ax.set_title(f"{name}, {label}", fontsize=9)
            ax.set_ylabel("neuron", fontsize=8)
            if row == len(float_spikes) - 1:
                ax.set_xlabel("time step", fontsize=8)
            ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def quant_health(
    weight_bits: Sequence[int],
    accuracy: Sequence[float | None],
    float_accuracy: float,
    layer_names: Sequence[str],
    float_rates: Sequence[float],
    fixed_rates: Sequence[Sequence[float] | None],
    path: str | Path,
    title: str = "",
) -> Path:
    """Accuracy against weight width, and per-layer spike rate float vs fixed point per width.

    Args:
        weight_bits: the widths tried, e.g. (8, 6, 4).
        accuracy: golden-model accuracy per width (fraction); None where the export failed.
        float_accuracy: the float model's accuracy on the same samples.
        layer_names: neuron layer names.
        float_rates: spikes per neuron per step of each layer, float model.
        fixed_rates: per width, the same for the golden model (None where the export failed).
        path: PNG to write.
        title: figure title.
    """
    if not (len(weight_bits) == len(accuracy) == len(fixed_rates)):
        raise ValueError("weight_bits, accuracy and fixed_rates need one entry per width")
    fig = Figure(figsize=(9, 3.4))
    ax_acc, ax_rate = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    ok = [(b, a) for b, a in zip(weight_bits, accuracy) if a is not None]
    if ok:
        ax_acc.plot(
            [b for b, _ in ok],
            [100 * a for _, a in ok],
            "o-",
            color=_FIXED_COLOURS[0],
            label="fixed point (golden)",
        )
        for b, a in ok:
            ax_acc.annotate(
                f"{100 * a:.1f}",
                (b, 100 * a),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
            )
    for b, a in zip(weight_bits, accuracy):
        if a is None:
            ax_acc.axvline(b, color="grey", ls=":", lw=1)
    ax_acc.axhline(
        100 * float_accuracy,
        color=_FLOAT_COLOUR,
        ls="--",
        label=f"float {100 * float_accuracy:.1f}%",
    )
    ax_acc.set_xticks(sorted(set(weight_bits)))
    ax_acc.margins(x=0.15, y=0.15)
    ax_acc.invert_xaxis()  # narrower weights to the right
    ax_acc.set(xlabel="weight bits", ylabel="accuracy (%)", title="accuracy vs weight width")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower left", fontsize=8)

    n_layers = len(layer_names)
    series = [("float", list(float_rates), _FLOAT_COLOUR)] + [
        (f"{b} bits", list(r), _FIXED_COLOURS[i % len(_FIXED_COLOURS)])
        for i, (b, r) in enumerate(zip(weight_bits, fixed_rates))
        if r is not None
    ]
    width = 0.8 / len(series)
    x = np.arange(n_layers)
    for i, (label, rates, colour) in enumerate(series):
        if len(rates) != n_layers:
            raise ValueError(f"{label}: {len(rates)} rates for {n_layers} layers")
        ax_rate.bar(
            x + (i - (len(series) - 1) / 2) * width, rates, width, label=label, color=colour
        )
    ax_rate.set_xticks(x, list(layer_names))
    ax_rate.set(ylabel="spikes / neuron / step", title="per-layer spike rate")
    ax_rate.grid(axis="y", alpha=0.3)
    ax_rate.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
