"""``python -m tsslbp`` runs the command-line interface."""

from .cli import main

__all__: list[str] = []

main()
