"""Losses shared by the models: adversarial objectives and gradient penalties."""
