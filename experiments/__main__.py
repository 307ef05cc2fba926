"""``python -m experiments`` runs the ``allystance`` CLI."""

from experiments.cli import main

main()
