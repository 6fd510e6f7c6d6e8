"""The sample schedule a Loihi 2 chip can run: a power-of-2 period and lava-dl's reset phase.

On the chip a network is reset between samples by lava's ``LIFReset`` (lava-dl's
``netx.hdf5.Network(reset_interval=R, reset_offset=o)`` builds it), and lava-dl's netx MNIST
tutorial (tutorials/lava/lib/dl/netx/mnist/run.ipynb) runs 32 steps per image "since
reset_interval on Loihi-2 hardware has to be a power of 2". A tsslbp network runs ``S = T + L``
steps per sample (``L`` synaptic layers); on the chip each sample is zero-padded to the next power
of two, :func:`hardware_period`.

lava-dl gives its ``i``-th neuron layer the ``LIFReset`` offset ``o + 1 + i`` ("time starts from 1
in hardware", netx/hdf5.py ``_create``); LIFReset zeroes ``u`` and ``v`` at the start of Lava time
step ``tau`` when ``tau % R == (o + 1 + i) % R``. With :data:`HW_RESET_OFFSET` ``= 1`` (the MNIST
tutorial's value), layer ``i`` resets exactly at the step where the sample's first input reaches it
(input column ``t`` reaches layer ``i`` at step ``t + i + 1``, 0-based), so every layer starts each
sample from zero state.
"""

from __future__ import annotations

__all__ = ["HW_RESET_OFFSET", "is_power_of_two", "hardware_period"]

#: netx ``reset_offset`` of the chip schedule (lava-dl's netx MNIST tutorial passes 1).
HW_RESET_OFFSET = 1


def is_power_of_two(n: int) -> bool:
    """True for 1, 2, 4, 8, ...

    >>> [n for n in range(1, 17) if is_power_of_two(n)]
    [1, 2, 4, 8, 16]
    """
    return n >= 1 and n & (n - 1) == 0


def hardware_period(steps_per_sample: int) -> int:
    """The smallest power of two that holds ``steps_per_sample`` steps.

    >>> hardware_period(7), hardware_period(8), hardware_period(9)
    (8, 8, 16)

    Raises:
        ValueError: If ``steps_per_sample < 1``.
    """
    if steps_per_sample < 1:
        raise ValueError(f"steps_per_sample must be >= 1, got {steps_per_sample}")
    return 1 << (steps_per_sample - 1).bit_length()
