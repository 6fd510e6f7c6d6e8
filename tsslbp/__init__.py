"""tsslbp: TSSL-BP spiking neural networks from PyTorch training to Loihi fixed point.

Training (:mod:`tsslbp.train`) implements Zhang & Li, "Temporal Spike Sequence Learning via
Backpropagation for Deep Spiking Neural Networks" (NeurIPS 2020).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
