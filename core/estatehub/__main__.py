"""``python -m estatehub`` runs the command line."""

from .cli import main

main()
