"""Experiments: run recipes, comparison over tracked runs, and the root CLI."""
