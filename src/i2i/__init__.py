"""i2i: unsupervised image-to-image translation on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
