"""The tests' plain numpy loop of TSSL-BP, now at :mod:`tsslbp.bench.numpy_loop` (the installed
``tsslbp bench`` times it too); this name stays for the tests that import it."""

from tsslbp.bench.numpy_loop import backward_layer, forward_layer, input_psp, network_grads

__all__ = ["forward_layer", "input_psp", "backward_layer", "network_grads"]
