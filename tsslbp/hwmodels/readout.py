"""Feeding and reading exported TSSL-BP networks: graded input encoding and spike-count readout.

Pure numpy on plain arrays; shared by the golden model and the Lava runner paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .spec import NetworkSpec

__all__ = ["encode_graded", "encode_for_spec", "window_counts", "predict_counts"]


def encode_graded(x: np.ndarray, n_steps: int, total_steps: int, input_bits: int = 8) -> np.ndarray:
    """Graded input spikes for a batch of analog inputs in [0, 1].

    Args:
        x: (B, C) analog values in [0, 1].
        n_steps: T: the value is sent at steps 0..T-1 (the TSSL-BP window), 0 afterwards.
        total_steps: S >= T, the steps each sample runs (T plus one per synaptic layer).
        input_bits: payload width; the value sent is ``round(x * (2**bits - 1))``.

    Returns:
        (B, C, S) int64.

    >>> encode_graded(np.array([[0.0, 0.5, 1.0]]), 2, 3)[0]
    array([[  0,   0,   0],
           [128, 128,   0],
           [255, 255,   0]])
    """
    values = np.asarray(x, dtype=np.float64)
    if total_steps < n_steps:
        raise ValueError(f"total_steps ({total_steps}) must be >= n_steps ({n_steps})")
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(
            f"inputs must lie in [0, 1] for graded encoding, found {values.min():g}..{values.max():g}"
        )
    q = np.round(values * ((1 << input_bits) - 1)).astype(np.int64)
    out = np.zeros(q.shape + (total_steps,), dtype=np.int64)
    out[..., :n_steps] = q[..., None]
    return out


def encode_for_spec(x: np.ndarray, spec: NetworkSpec) -> np.ndarray:
    """Inputs (B, ...) as the input spikes of a tsslbp-exported spec.

    Analog inputs in [0, 1] become graded spikes (T, steps per sample and input bits from the
    metadata), with the constant input of 1 appended for specs with ``input_ones``; event frames
    (B, ..., T) of specs with ``input_encoding: binary`` are sent as they are. Returns
    (B, *lava_shape(input_shape), S), Lava's (W, H, C) order for images.
    """
    meta = spec.metadata
    n_steps, total = int(meta["n_steps"]), int(meta["steps_per_sample"])
    if meta.get("input_encoding") == "binary":
        # Event frames (B, ..., T): frame t is sent at step t, zeros after.
        frames = np.asarray(x).reshape(len(x), *spec.input_shape, n_steps)
        spikes = np.zeros(frames.shape[:-1] + (total,), dtype=np.int64)
        spikes[..., :n_steps] = frames != 0
    else:
        values = np.asarray(x).reshape(len(x), *spec.data_shape)
        if spec.input_ones:  # the constant input of a network trained on normalized data
            values = np.concatenate([values, np.ones_like(values[:, :1])], axis=1)
        spikes = encode_graded(values, n_steps, total, int(spec.input_message_bits))
    return np.swapaxes(spikes, 1, 3) if len(spec.input_shape) == 3 else spikes


def window_counts(spikes: np.ndarray, offset: int, n_steps: int) -> np.ndarray:
    """Spike counts over steps ``offset .. offset + n_steps - 1`` of (B, N, S) spikes -> (B, N)."""
    if spikes.shape[-1] < offset + n_steps:
        raise ValueError(
            f"the run has {spikes.shape[-1]} steps, the readout needs {offset + n_steps}"
        )
    return spikes[..., offset : offset + n_steps].astype(np.int64).sum(-1)


def predict_counts(spikes: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    """Predicted classes (B,) from the output layer's spikes (B, ..., S): most spikes in the readout
    window given by the spec's metadata (lowest index on ties, as in training)."""
    spikes = spikes.reshape(spikes.shape[0], -1, spikes.shape[-1])
    counts = window_counts(spikes, int(metadata["readout_offset"]), int(metadata["n_steps"]))
    return counts.argmax(-1)
