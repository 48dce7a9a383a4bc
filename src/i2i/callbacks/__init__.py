"""Lightning callbacks: run length and checkpoints in iterations, image grids, synthetic metrics."""
