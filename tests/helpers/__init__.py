"""Helpers shared by the test files (`from helpers.params import count`); this folder is also put on
the PYTHONPATH of the DDP tests' child processes (rank_weights.py)."""
