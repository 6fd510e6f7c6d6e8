"""TSSL-BP training in PyTorch: functional maths, autograd function, layers, losses, data, loops."""

__all__: list[str] = []
