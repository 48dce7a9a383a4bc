"""Models: the training spine (`base.py`) and one file per translation model."""
