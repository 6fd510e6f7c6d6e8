"""Saturation health of an integer run: where the 24-bit state hit its limits.

Loihi's current ``u`` wraps at 24 bits (a wrapped value is wrong, silently) and the voltage ``v``
saturates at +-(2**23 - 1). These counts turn both into figures a user sees. The two ends of ``v``
differ: at the top a spike is due anyway and the saturation is a sign of a too large scale; at the
bottom (the floor) sits deep inhibition, which the export lets reach the floor by design (its scale
bounds the current and the membrane's positive side only; docs/fixed-point.md, "Choosing the
scale"). The float membrane keeps falling there; the two differ in spikes only if the neuron later
climbs back through the whole range.
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
        v_saturated: fraction with v == 2**23 - 1 (voltage saturated at the top).
        u_near_wrap: fraction with |u| >= 0.99 * 2**23 (a wrap is due or has happened nearby).
        v_floor: fraction with v == -(2**23 - 1) (deep inhibition held at the floor).
    """

    layer: int
    v_saturated: float
    u_near_wrap: float
    v_floor: float = 0.0

    @property
    def healthy(self) -> bool:
        """No saturation at the top and no wrap (the floor is expected: see the module docstring)."""
        return self.v_saturated == 0.0 and self.u_near_wrap == 0.0


def state_health(u: list[np.ndarray | None], v: list[np.ndarray | None]) -> list[LayerHealth]:
    """Health of every neuron layer of a recorded run (layers with no state are skipped)."""
    out = []
    for i, (ui, vi) in enumerate(zip(u, v)):
        if ui is None or vi is None:
            continue
        v_top = _fraction(vi, lambda v: v >= STATE_LIMIT - 1)
        v_floor = _fraction(vi, lambda v: v <= -(STATE_LIMIT - 1))
        u_edge = _fraction(ui, lambda u: np.abs(u) >= NEAR_WRAP_FRACTION * STATE_LIMIT)
        out.append(LayerHealth(i, v_top, u_edge, v_floor))
    return out


def _fraction(values: np.ndarray, test, rows: int = 64) -> float:
    """Fraction of ``values`` for which ``test`` holds, taken ``rows`` samples at a time in int64
    (a recorded CNN run is gigabytes: no whole-array copies)."""
    if values.size == 0:
        return 0.0
    hits = sum(
        int(np.count_nonzero(test(values[start : start + rows].astype(np.int64))))
        for start in range(0, len(values), rows)
    )
    return hits / values.size
