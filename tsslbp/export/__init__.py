"""Quantization of trained TSSL-BP networks to Loihi fixed point, and the netx HDF5 reader/writer."""

__all__: list[str] = []
