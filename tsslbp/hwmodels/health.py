"""Saturation health of an integer run: where the 24-bit state hit its limits.

Loihi's current ``u`` wraps at 24 bits (a wrapped value is wrong, silently) and the voltage ``v``
saturates at +-(2**23 - 1). These counts turn both into figures a user sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["STATE_LIMIT", "NEAR_WRAP_FRACTION", "LayerHealth", "state_health"]

#: |u| and |v| stay below 2**23 (24-bit signed state).
STATE_LIMIT = 1 << 23
#: |u| at or above this fraction of the limit counts as at the edge of wrapping.
NEAR_WRAP_FRACTION = 0.99


@dataclass(frozen=True)
class LayerHealth:
    """Per neuron layer: fraction of (sample, neuron, step) values at the limits.

    Attributes:
        layer: index in the spec.
        v_saturated: fraction with |v| == 2**23 - 1 (saturated voltage).
        u_near_wrap: fraction with |u| >= 0.99 * 2**23 (a wrap is due or has happened nearby).
    """

    layer: int
    v_saturated: float
    u_near_wrap: float

    @property
    def healthy(self) -> bool:
        return self.v_saturated == 0.0 and self.u_near_wrap == 0.0


def state_health(u: list[np.ndarray | None], v: list[np.ndarray | None]) -> list[LayerHealth]:
    """Health of every neuron layer of a recorded run (layers with no state are skipped)."""
    out = []
    for i, (ui, vi) in enumerate(zip(u, v)):
        if ui is None or vi is None:
            continue
        v_sat = float(np.mean(np.abs(vi.astype(np.int64)) >= STATE_LIMIT - 1))
        u_edge = float(np.mean(np.abs(ui.astype(np.int64)) >= NEAR_WRAP_FRACTION * STATE_LIMIT))
        out.append(LayerHealth(i, v_sat, u_edge))
    return out
