"""The one Lava process tsslbp adds: lava-nc's ``LIFReset`` with per-sample isolation and tracing.

Several samples run back to back in one Lava run, ``S`` steps each. Each must behave as if it ran
alone from zero state, as the golden model (:func:`tsslbp.hwmodels.golden.run_golden`) runs every
sample of a batch. Lava's step order (``lava/proc/lif/models.py`` ``PyLifResetModelBitAcc``,
``lava/proc/dense/models.py``, ``lava/proc/conv/models.py``) in step ``t`` (``time_step``, from 1):

1. Dense/Conv *send* the sum they accumulated in step ``t - 1``, then accumulate the spikes of step
   ``t``: one step of delay per synaptic layer. Nothing ever resets that buffer.
2. ``LIFReset`` receives the sum and, when ``t % reset_interval == reset_offset``, zeroes ``u`` and
   ``v``, *then* integrates the sum it received and its bias, thresholds and sends.

So ``LIFReset`` alone, reset at the first step of every sample (``reset_interval=S``,
``reset_offset=1``), still integrates in that step the synaptic sum of the previous sample's last
step: the previous sample leaks in through the message in flight. Staggering the reset offsets per
layer does not help: whatever step a layer resets at, it integrates what its input layer sent one
step earlier, and that layer is silent then only if nothing drives it (no bias, no input), which
needs padding steps between samples and still fails for any layer with a bias.

:class:`SampleResetLIF` keeps lava-nc's ``LIFReset`` process model and its arithmetic unchanged
(the fixed-point decay, wrap, clip, threshold and reset of ``PyLifResetModelBitAcc``), resets at the
first step of every sample, and adds, through the model's own hooks:

* ``drop_input_at_sample_start``: in that first step the synaptic input received is replaced by
  zeros before integration: a run from zero state receives zeros there (a Dense/Conv buffer starts
  empty). With every layer reset so, each sample runs exactly as it would alone.
* ``bias_from_input``: lava-dl's input layer has no synapse and is driven through ``bias_mant``;
  here the message received each step *is* that step's ``bias_mant`` (stored as int16, like the
  Var) and the synaptic input is zero, the golden model's convention for input layers.
* ``netx_reset``: lava-dl's ``netx.hdf5.Network(reset_interval=R, reset_offset=o)`` schedule,
  counted within each sample: zero ``u`` and ``v`` before integrating step ``k`` (0-based) of a
  sample when ``(k + 1) % R == phase % R`` (netx gives the ``i``-th neuron layer ``phase = o + 1 +
  i``). The in-flight input then belongs to the current sample and is kept.
* ``trace_paths``: ``u``, ``v`` (after the spike reset: what ``Var.get`` or a ``Monitor`` reads at
  the end of the step) and the spikes sent are written every step into ``.npy`` memory maps that the
  parent process reads after the run. ``Var.get`` moves one element per message (about 15 us), so
  Monitor read-outs would dominate the cost of a recorded run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from lava.magma.core.decorator import implements
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import PyLifResetModelBitAcc
from lava.proc.lif.process import LIFReset

__all__ = ["TRACE_NAMES", "SampleResetLIF", "PySampleResetLifModel"]

#: Per-step traces a :class:`SampleResetLIF` can write.
TRACE_NAMES = ("spikes", "u", "v")


class SampleResetLIF(LIFReset):
    """``LIFReset`` reset at the first step of every ``steps_per_sample``-step sample.

    Args:
        shape: neuron shape in Lava's (W, H, C) / (N,) order.
        du: lava-nc's current decay (netx ``iDecay - 1``; the model adds ``ds_offset = 1``).
        dv: voltage decay.
        vth: threshold mantissa; spike when ``v > vth << 6``.
        bias_mant: bias mantissa, scalar or array of ``shape``.
        bias_exp: bias exponent (netx uses 6).
        steps_per_sample: S, the interval of the sample reset.
        drop_input_at_sample_start: zero the synaptic input received in the first step of each
            sample (the previous sample's message in flight). For layers behind a synapse.
        bias_from_input: take each step's ``bias_mant`` from the input port and integrate no
            synaptic input (lava-dl's input layer).
        netx_reset: optional ``(R, phase)``: also reset at step ``k`` of each sample when
            ``(k + 1) % R == phase % R``.
        trace_paths: optional mapping from a subset of :data:`TRACE_NAMES` to existing ``.npy``
            files holding int32 arrays of shape ``(n_steps, *shape)``; row ``time_step - 1`` is
            written every step.
        name: Lava process name.
    """

    def __init__(
        self,
        *,
        shape: tuple[int, ...],
        du: int,
        dv: int,
        vth: int,
        bias_mant: int | np.ndarray = 0,
        bias_exp: int | np.ndarray = 0,
        steps_per_sample: int,
        drop_input_at_sample_start: bool = False,
        bias_from_input: bool = False,
        netx_reset: tuple[int, int] | None = None,
        trace_paths: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        unknown = set(trace_paths or {}) - set(TRACE_NAMES)
        if unknown:
            raise ValueError(f"unknown traces {sorted(unknown)}; allowed: {', '.join(TRACE_NAMES)}")
        if steps_per_sample < 1:
            raise ValueError(f"steps_per_sample must be >= 1, got {steps_per_sample}")
        if netx_reset is not None and netx_reset[0] < 1:
            raise ValueError(f"the netx reset interval must be >= 1, got {netx_reset[0]}")
        # time_step counts from 1: the first step of every sample has time_step % S == 1 % S.
        super().__init__(
            shape=shape,
            du=du,
            dv=dv,
            vth=vth,
            bias_mant=bias_mant,
            bias_exp=bias_exp,
            reset_interval=steps_per_sample,
            reset_offset=1 % steps_per_sample,
            name=name,
        )
        self.proc_params["drop_input_at_sample_start"] = bool(drop_input_at_sample_start)
        self.proc_params["bias_from_input"] = bool(bias_from_input)
        self.proc_params["netx_reset"] = None if netx_reset is None else tuple(map(int, netx_reset))
        self.proc_params["trace_paths"] = dict(trace_paths or {})


@implements(proc=SampleResetLIF, protocol=LoihiProtocol)
class PySampleResetLifModel(PyLifResetModelBitAcc):
    """lava-nc's bit-accurate ``LIFReset`` model plus the hooks of :class:`SampleResetLIF`.

    Tags (``bit_accurate_loihi``, ``fixed_pt``) and the CPU requirement are inherited.
    """

    # The parent implements LIFReset; @implements refuses to re-bind an inherited process.
    implements_process = None

    def __init__(self, proc_params: dict[str, Any]) -> None:
        super().__init__(proc_params)
        self._drop_input = proc_params["drop_input_at_sample_start"]
        self._bias_from_input = proc_params["bias_from_input"]
        self._netx_reset = proc_params["netx_reset"]
        # Runs in the Lava child process: open the parent's files as shared memory maps.
        self._traces = {
            name: np.load(path, mmap_mode="r+") for name, path in proc_params["trace_paths"].items()
        }

    def subthr_dynamics(self, activation_in: np.ndarray) -> None:
        """Integrate one step; ``run_spk`` has received the input and done LIFReset's reset."""
        step_in_sample = (self.time_step - 1) % self.reset_interval
        if self._bias_from_input:
            # Stored like the Var (int16, wrapping), then scaled as run_spk just did.
            self.bias_mant[:] = activation_in
            self.scale_bias()
            activation_in = np.zeros_like(activation_in)
        elif self._drop_input and step_in_sample == 0:
            activation_in = np.zeros_like(activation_in)
        if self._netx_reset is not None:
            interval, phase = self._netx_reset
            if (step_in_sample + 1) % interval == phase % interval:
                # As LIFReset: zero the state before integrating this step's input.
                self.u *= 0
                self.v *= 0
        super().subthr_dynamics(activation_in)

    def reset_voltage(self, spike_vector: np.ndarray) -> None:
        """Reset spiking neurons, then trace this step's spikes, u and v.

        ``run_spk`` calls this once per step, after thresholding and before sending: it is the one
        place that sees the spike vector (the model keeps it in a local variable).
        """
        super().reset_voltage(spike_vector)
        if not self._traces:
            return
        row = self.time_step - 1
        step_values = {"spikes": spike_vector, "u": self.u, "v": self.v}
        for name, trace in self._traces.items():
            trace[row] = step_values[name]
