"""Integer (golden) models of Loihi's fixed-point synapses and CUBA LIF neurons.

Imports nothing from the rest of tsslbp: it works on :class:`~tsslbp.hwmodels.spec.NetworkSpec`.
"""

__all__: list[str] = []
