"""Procedural scenarios (DESIGN §6): deterministic from (seed, index), any size, exact ground truth."""
