"""``python -m tsslbp`` runs the command-line interface."""

from .cli import main

main()
