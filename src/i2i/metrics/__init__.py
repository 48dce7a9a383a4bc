"""Metrics: exact synthetic metrics (from scenario ground truth) and, later, KID/FID/LPIPS."""
